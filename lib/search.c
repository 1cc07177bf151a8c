/*
 * search.c - search requests, their filters, cursors, cached pages and
 * answers (lib/search.h).
 */
#include "search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ascii.h"
#include "buf.h"
#include "domains.h"
#include "jbody.h"
#include "json_path.h"
#include "record.h"
#include "util.h"

#define CURSOR_VERSION 1
/* people_per_company: Surfe's documented safe range (docs/providers.md). */
#define PER_COMPANY_MAX 5
/* A cursor made in the future (another host's clock) is believed this far. */
#define CURSOR_SKEW_S 300

void srch_request_init(struct srch_request *r)
{
	memset(r, 0, sizeof *r);
}

static void filters_release(struct srch_filters *f)
{
	for (int i = 0; i < PF__MAX; i++) {
		for (size_t k = 0; k < f->n[i]; k++)
			free(f->v[i][k]);
		free(f->v[i]);
	}
	memset(f, 0, sizeof *f);
}

void srch_request_release(struct srch_request *r)
{
	filters_release(&r->f);
	free(r->canon);
	free(r->prov_cursor);
	srch_request_init(r);
}

/* ---- one value ------------------------------------------------------------- */

static const char *const seniorities[] = { "cxo",     "owner",  "partner", "vp",
					   "director", "manager", "senior", "entry",
					   "training", "unpaid" };

static const struct {
	const char *alias, *v;
} seniority_aliases[] = {
	{ "c-level", "cxo" }, { "c_level", "cxo" },   { "c level", "cxo" },
	{ "c-suite", "cxo" }, { "c_suite", "cxo" },   { "c suite", "cxo" },
	{ "chief", "cxo" },   { "vice president", "vp" }, { "vice_president", "vp" },
	{ "vice-president", "vp" },
};

/* Trim, make inner white space one space, ASCII lower case; false when
 * the text holds a control character or nothing. */
static bool tidy(const char *v, size_t n, char *out, size_t outsz, const char **why)
{
	size_t o = 0;
	bool space = false;

	while (n > 0 && ascii_is_space(*v)) {
		v++;
		n--;
	}
	while (n > 0 && ascii_is_space(v[n - 1]))
		n--;
	if (n == 0) {
		*why = "an empty value";
		return false;
	}
	if (!util_utf8_valid(v, n)) {
		*why = "not valid UTF-8";
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = v[i];

		if (ascii_is_space(c)) {
			space = true;
			continue;
		}
		if ((unsigned char)c < 0x20 || c == 0x7f) {
			*why = "holds a control character";
			return false;
		}
		if (o + (space ? 2 : 1) >= outsz) {
			*why = "too long";
			return false;
		}
		if (space)
			out[o++] = ' ';
		space = false;
		out[o++] = ascii_to_lower(c);
	}
	out[o] = '\0';
	if (o > LIM_SEARCH_VALUE_MAX) {
		*why = "too long";
		return false;
	}
	return true;
}

bool srch_norm_value(enum prov_filter f, const char *v, size_t n, char *out, size_t outsz,
		     const char **why)
{
	char t[LIM_SEARCH_VALUE_MAX * 2 + 2];

	if (n > LIM_SEARCH_VALUE_MAX * 2) {
		*why = "too long";
		return false;
	}
	if (!tidy(v, n, t, sizeof t, why))
		return false;
	switch (f) {
	case PF_DOMAINS: {
		struct rec r;
		const char *d;
		bool ok;

		rec_init(&r);
		ok = rec_set(&r, ID_DOMAIN, t, strlen(t)) == ENR_OK &&
		     rec_normalise(&r, LIM_SEARCH_VALUE_MAX * 2, NULL) == ENR_OK &&
		     (d = rec_get(&r, ID_DOMAIN)) != NULL && util_strlcpy(out, d, outsz);
		rec_release(&r);
		if (!ok)
			*why = "not a domain name";
		return ok;
	}
	case PF_SENIORITIES:
		for (size_t i = 0; i < sizeof seniority_aliases / sizeof seniority_aliases[0]; i++) {
			if (strcmp(t, seniority_aliases[i].alias) == 0)
				return util_strlcpy(out, seniority_aliases[i].v, outsz);
		}
		for (size_t i = 0; i < sizeof seniorities / sizeof seniorities[0]; i++) {
			if (strcmp(t, seniorities[i]) == 0)
				return util_strlcpy(out, t, outsz);
		}
		*why = "not a seniority (cxo, owner, partner, vp, director, manager, senior, entry, "
		       "training, unpaid)";
		return false;
	case PF_DEPARTMENTS:
		for (char *c = t; *c; c++) {
			if (*c == ' ' || *c == '-')
				*c = '_';
			else if (!ascii_is_lower(*c) && !ascii_is_digit(*c) && *c != '_') {
				*why = "not a department (words of letters joined by '_', such as "
				       "human_resources)";
				return false;
			}
		}
		return util_strlcpy(out, t, outsz);
	case PF_SIZES: {
		int64_t lo, hi;

		if (!prov_size_range(t, &lo, &hi)) {
			*why = "not a size (1-10, 11-50, 51-200, 201-500, 501-1000, 1001-5000, "
			       "5001-10000, 10001+)";
			return false;
		}
		return util_strlcpy(out, t, outsz);
	}
	case PF_COUNTRIES:
	case PF_COMPANY_COUNTRIES: {
		const char *code = NULL;

		if (strlen(t) == 2)
			code = prov_country_name(t) ? (strcmp(t, "uk") == 0 ? "gb" : t) : NULL;
		else
			code = prov_country_code(t);
		if (code == NULL) {
			*why = "not a country (an ISO 3166 two-letter code or an English name)";
			return false;
		}
		return util_strlcpy(out, code, outsz);
	}
	default:
		return util_strlcpy(out, t, outsz);
	}
}

/* ---- filters ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and deduplicate list i. */
static void filters_settle(struct srch_filters *f, int i)
{
	size_t o = 0;

	if (f->n[i] == 0)
		return;
	qsort(f->v[i], f->n[i], sizeof f->v[i][0], cmp_str);
	for (size_t k = 0; k < f->n[i]; k++) {
		if (o > 0 && strcmp(f->v[i][o - 1], f->v[i][k]) == 0) {
			free(f->v[i][k]);
			continue;
		}
		f->v[i][o++] = f->v[i][k];
	}
	f->n[i] = o;
}

static void problem(json_t *details, const char *field, const char *what)
{
	char fb[LIM_NAME_MAX * 2 + 1], wb[320];

	ascii_printable_copy(field, strlen(field), fb, sizeof fb);
	ascii_printable_copy(what, strlen(what), wb, sizeof wb);
	json_array_append_new(details, json_pack("{s:s, s:s}", "field", fb, "problem", wb));
}

/* One filter member (a JSON array of strings, or null) into f->v[i].
 * Problems go to details; ENR_E_NOMEM only. */
static enum enr_err read_filter(const json_t *v, int i, struct srch_filters *f, json_t *details,
				bool *bad)
{
	const char *name = prov_filter_names[i];
	size_t k;
	json_t *el;

	if (json_is_null(v))
		return ENR_OK;
	if (!json_is_array(v)) {
		problem(details, name, "must be an array of strings");
		*bad = true;
		return ENR_OK;
	}
	if (json_array_size(v) > LIM_SEARCH_VALUES_MAX) {
		char what[64];

		snprintf(what, sizeof what, "more than %u values", LIM_SEARCH_VALUES_MAX);
		problem(details, name, what);
		*bad = true;
		return ENR_OK;
	}
	f->v[i] = calloc(json_array_size(v) + 1, sizeof f->v[i][0]);
	if (f->v[i] == NULL)
		return ENR_E_NOMEM;
	json_array_foreach(v, k, el) {
		char out[LIM_SEARCH_VALUE_MAX * 2 + 2], field[LIM_NAME_MAX + 16];
		const char *why = NULL;

		snprintf(field, sizeof field, "%s[%zu]", name, k);
		if (!json_is_string(el)) {
			problem(details, field, "must be a string");
			*bad = true;
			continue;
		}
		if (!srch_norm_value((enum prov_filter)i, json_string_value(el), json_string_length(el),
				     out, sizeof out, &why)) {
			problem(details, field, why);
			*bad = true;
			continue;
		}
		if ((f->v[i][f->n[i]] = strdup(out)) == NULL)
			return ENR_E_NOMEM;
		f->n[i]++;
	}
	filters_settle(f, i);
	return ENR_OK;
}

/* {"domains": [...], ..., "per_company": N}: only filters with values,
 * keys sorted, so equal searches give equal text.  NULL out of memory. */
static char *canonical(const struct srch_filters *f, int per_company)
{
	json_t *o = json_object();
	char *s;

	for (int i = 0; o && i < PF__MAX; i++) {
		json_t *a;

		if (f->n[i] == 0)
			continue;
		a = json_array();
		for (size_t k = 0; a && k < f->n[i]; k++)
			json_array_append_new(a, json_string(f->v[i][k]));
		if (a == NULL || json_object_set_new(o, prov_filter_names[i], a)) {
			json_decref(o);
			return NULL;
		}
	}
	if (o && per_company > 0)
		json_object_set_new(o, "per_company", json_integer(per_company));
	s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return s;
}

static bool any_filter(const struct srch_filters *f)
{
	for (int i = 0; i < PF__MAX; i++) {
		if (f->n[i] > 0)
			return true;
	}
	return false;
}

/* ---- cursors ---------------------------------------------------------------- */

struct key_entry {
	const char *id, *secret;
};

static int cmp_key(const void *a, const void *b)
{
	return strcmp(((const struct key_entry *)a)->id, ((const struct key_entry *)b)->id);
}

void srch_cursor_key(const struct cfg *cfg, unsigned char out[SRCH_KEY_LEN])
{
	static const char label[] = "enrichd search cursor v1";
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = SRCH_KEY_LEN;
	struct key_entry *ks = NULL;
	size_t nk = 0, total = 0;

	memset(out, 0, SRCH_KEY_LEN);
	if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		goto out;
	EVP_DigestUpdate(md, label, sizeof label);
	if (cfg->search.cursor_secret && cfg->search.cursor_secret[0]) {
		EVP_DigestUpdate(md, cfg->search.cursor_secret, strlen(cfg->search.cursor_secret));
	} else {
		/* Every key's id and secret, by id: the same on every host that
		 * has the same keys, whatever the order of the file. */
		for (size_t i = 0; i < cfg->nproviders; i++)
			total += cfg->providers[i].nkeys;
		ks = calloc(total ? total : 1, sizeof *ks);
		if (ks == NULL)
			goto out;
		for (size_t i = 0; i < cfg->nproviders; i++) {
			for (size_t k = 0; k < cfg->providers[i].nkeys; k++) {
				ks[nk].id = cfg->providers[i].keys[k].id;
				ks[nk].secret = cfg->providers[i].keys[k].secret;
				nk++;
			}
		}
		qsort(ks, nk, sizeof *ks, cmp_key);
		for (size_t i = 0; i < nk; i++) {
			EVP_DigestUpdate(md, ks[i].id, strlen(ks[i].id) + 1);
			EVP_DigestUpdate(md, ks[i].secret ? ks[i].secret : "",
					 ks[i].secret ? strlen(ks[i].secret) + 1 : 1);
		}
	}
	EVP_DigestFinal_ex(md, out, &n);
out:
	free(ks);
	EVP_MD_CTX_free(md);
}

static void mac(const unsigned char key[SRCH_KEY_LEN], const char *msg, size_t n,
		unsigned char out[32])
{
	unsigned int len = 32;

	if (HMAC(EVP_sha256(), key, SRCH_KEY_LEN, (const unsigned char *)msg, n, out, &len) == NULL)
		memset(out, 0, 32);
}

enum enr_err srch_cursor_make(const unsigned char key[SRCH_KEY_LEN],
			      const struct srch_request *req, const char *provider,
			      const char *ptoken, int limit, int64_t offset, int64_t now_s,
			      char **out)
{
	json_t *f = req->canon ? json_loads(req->canon, 0, NULL) : NULL, *o;
	unsigned char m[32];
	char *payload = NULL, *tok = NULL;
	size_t pl, b1, b2;
	enum enr_err rc = ENR_E_NOMEM;

	if (f == NULL)
		return ENR_E_NOMEM;
	o = json_pack("{s:i, s:s, s:s, s:o?, s:O, s:i, s:I, s:I}", "v", CURSOR_VERSION, "k",
		      prov_search_kind_names[req->kind], "p", provider, "c",
		      ptoken ? json_string(ptoken) : json_null(), "f", f, "l", limit, "o",
		      (json_int_t)offset, "t", (json_int_t)now_s);
	if (o)
		payload = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (payload == NULL)
		goto out;
	pl = strlen(payload);
	mac(key, payload, pl, m);
	b1 = util_b64url_len(pl);
	b2 = util_b64url_len(sizeof m);
	tok = malloc(b1 + 1 + b2 + 1);
	if (tok == NULL)
		goto out;
	util_b64url_encode(payload, pl, tok);
	tok[b1] = '.';
	util_b64url_encode(m, sizeof m, tok + b1 + 1);
	*out = tok;
	tok = NULL;
	rc = ENR_OK;
out:
	free(tok);
	free(payload);
	json_decref(o);
	json_decref(f);
	return rc;
}

/* The payload of a cursor whose MAC verifies, as a new JSON object; NULL
 * with *why otherwise. */
static json_t *cursor_open(const unsigned char key[SRCH_KEY_LEN], const char *s, size_t n,
			   bool verify, const char **why)
{
	const char *dot = memchr(s, '.', n);
	unsigned char *raw = NULL, m[32], want[32];
	size_t rl = 0, ml = 0;
	json_t *o = NULL;

	*why = "not a cursor enrichd made";
	if (n > LIM_SEARCH_CURSOR_MAX || dot == NULL)
		return NULL;
	raw = malloc(n);
	if (raw == NULL) {
		*why = "out of memory";
		return NULL;
	}
	if (!util_b64url_decode(s, (size_t)(dot - s), raw, n, &rl) ||
	    !util_b64url_decode(dot + 1, n - (size_t)(dot + 1 - s), m, sizeof m, &ml) ||
	    ml != sizeof m)
		goto out;
	if (verify) {
		mac(key, (const char *)raw, rl, want);
		if (!util_ct_equal(m, want, sizeof m)) {
			*why = "altered, or made with another cursor key";
			goto out;
		}
	}
	o = jp_load((const char *)raw, rl, LIM_SEARCH_CURSOR_MAX);
	if (!json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
out:
	free(raw);
	return o;
}

bool srch_cursor_kind(const char *cursor, size_t n, enum prov_search_kind *out)
{
	const char *why;
	json_t *o = cursor_open(NULL, cursor, n, false, &why);
	const char *k = json_string_value(json_object_get(o, "k"));
	bool ok = false;

	for (int i = 0; k && i < PROV_SEARCH__MAX; i++) {
		if (strcmp(k, prov_search_kind_names[i]) == 0) {
			*out = (enum prov_search_kind)i;
			ok = true;
		}
	}
	json_decref(o);
	return ok;
}

/* Read a verified cursor into out (kind checked, filters normalised again
 * from it).  False with *why. */
static bool cursor_read(const json_t *o, enum prov_search_kind kind, const struct cfg *cfg,
			int64_t now_s, struct srch_request *out, int *limit, const char **why)
{
	const json_t *k = json_object_get(o, "k"), *p = json_object_get(o, "p"),
		     *c = json_object_get(o, "c"), *f = json_object_get(o, "f"),
		     *l = json_object_get(o, "l"), *off = json_object_get(o, "o"),
		     *t = json_object_get(o, "t"), *v = json_object_get(o, "v"), *m;
	const char *name;

	*why = "not a cursor enrichd made";
	if (!json_is_integer(v) || json_integer_value(v) != CURSOR_VERSION || !json_is_string(k) ||
	    !json_is_string(p) || json_string_length(p) == 0 ||
	    json_string_length(p) > LIM_NAME_MAX || !(json_is_null(c) || json_is_string(c)) ||
	    !json_is_object(f) || !json_is_integer(l) || !json_is_integer(off) ||
	    json_integer_value(off) < 0 || !json_is_integer(t))
		return false;
	if (strcmp(json_string_value(k), prov_search_kind_names[kind]) != 0) {
		*why = kind == PROV_SEARCH_PEOPLE ? "a cursor of a company search"
						  : "a cursor of a people search";
		return false;
	}
	if (json_integer_value(t) > now_s + CURSOR_SKEW_S ||
	    now_s - json_integer_value(t) > cfg->search.cursor_ttl_s) {
		*why = "expired (search.cursor_ttl_s); start the search again";
		return false;
	}
	if (json_integer_value(l) < 1 || json_integer_value(l) > LIM_SEARCH_LIMIT_CEILING)
		return false;
	util_strlcpy(out->provider, json_string_value(p), sizeof out->provider);
	if (json_is_string(c)) {
		if (json_string_length(c) == 0 || json_string_length(c) > LIM_SEARCH_PROV_CURSOR_MAX)
			return false;
		if ((out->prov_cursor = strdup(json_string_value(c))) == NULL) {
			*why = "out of memory";
			return false;
		}
	}
	out->offset = json_integer_value(off);
	*limit = (int)json_integer_value(l);
	/* The filters as the first page had them. */
	json_object_foreach((json_t *)f, name, m) {
		bool bad = false;
		int i;

		if (strcmp(name, "per_company") == 0) {
			if (!json_is_integer(m) || json_integer_value(m) < 1 ||
			    json_integer_value(m) > PER_COMPANY_MAX)
				return false;
			out->per_company = (int)json_integer_value(m);
			continue;
		}
		for (i = 0; i < PF__MAX && strcmp(prov_filter_names[i], name) != 0; i++)
			;
		if (i == PF__MAX || !(prov_search_filters(kind) & PF_BIT(i)) || out->f.n[i] > 0)
			return false;
		{
			json_t *d = json_array();
			enum enr_err rc = d ? read_filter(m, i, &out->f, d, &bad) : ENR_E_NOMEM;

			json_decref(d);
			if (rc || bad)
				return false;
		}
	}
	return any_filter(&out->f);
}

/* ---- requests --------------------------------------------------------------- */

enum enr_err srch_parse_json(const json_t *obj, enum prov_search_kind kind, const struct cfg *cfg,
			     const unsigned char key[SRCH_KEY_LEN], int64_t now_s,
			     struct srch_request *out, json_t **details)
{
	json_t *d = json_array(), *v;
	const char *name;
	const json_t *cursor = NULL, *limit = NULL, *ppc = NULL;
	struct srch_request cur;
	bool bad = false, filters_given = false;
	int cursor_limit = 0;
	enum enr_err rc = ENR_OK;

	*details = NULL;
	srch_request_init(&cur);
	if (d == NULL)
		return ENR_E_NOMEM;
	out->kind = kind;
	if (!json_is_object(obj)) {
		problem(d, "body", "must be a JSON object");
		bad = true;
		goto out;
	}
	json_object_foreach((json_t *)obj, name, v) {
		int i;

		if (strcmp(name, "cursor") == 0) {
			cursor = v;
			continue;
		}
		if (strcmp(name, "limit") == 0) {
			limit = v;
			continue;
		}
		if (kind == PROV_SEARCH_PEOPLE && strcmp(name, "people_per_company") == 0) {
			ppc = v;
			continue;
		}
		for (i = 0; i < PF__MAX && strcmp(prov_filter_names[i], name) != 0; i++)
			;
		if (i == PF__MAX || !(prov_search_filters(kind) & PF_BIT(i))) {
			char field[LIM_NAME_MAX + 1];
			size_t n = strlen(name);

			/* Do not echo a huge member name; cut it on a UTF-8 boundary. */
			if (n > LIM_NAME_MAX) {
				n = LIM_NAME_MAX;
				while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
					n--;
			}
			memcpy(field, name, n);
			field[n] = '\0';
			problem(d, field, "unknown member");
			bad = true;
			continue;
		}
		if ((rc = read_filter(v, i, &out->f, d, &bad)) != ENR_OK)
			goto out;
		filters_given = filters_given || out->f.n[i] > 0;
	}
	if (limit && !json_is_null(limit)) {
		if (!json_is_integer(limit)) {
			problem(d, "limit", "must be an integer");
			bad = true;
		} else if (json_integer_value(limit) < 1 ||
			   json_integer_value(limit) > cfg->search.limit_max) {
			char what[96];

			snprintf(what, sizeof what, "must be 1..%d (search.limit_max)",
				 cfg->search.limit_max);
			problem(d, "limit", what);
			bad = true;
		} else {
			out->limit = (int)json_integer_value(limit);
		}
	}
	if (ppc && !json_is_null(ppc)) {
		if (!json_is_integer(ppc)) {
			problem(d, "people_per_company", "must be an integer");
			bad = true;
		} else if (json_integer_value(ppc) < 1 || json_integer_value(ppc) > PER_COMPANY_MAX) {
			problem(d, "people_per_company", "must be 1..5");
			bad = true;
		} else {
			out->per_company = (int)json_integer_value(ppc);
		}
	}
	if (cursor && !json_is_null(cursor)) {
		const char *why = NULL;
		json_t *o;

		if (!json_is_string(cursor)) {
			problem(d, "cursor", "must be a string (a next_cursor enrichd gave) or null");
			bad = true;
			goto out;
		}
		o = cursor_open(key, json_string_value(cursor), json_string_length(cursor), true, &why);
		if (o == NULL || !cursor_read(o, kind, cfg, now_s, &cur, &cursor_limit, &why)) {
			problem(d, "cursor", why);
			json_decref(o);
			bad = true;
			goto out;
		}
		json_decref(o);
		if (bad)
			goto out;
		/* Filters sent with a cursor must be the cursor's own. */
		if (!filters_given && out->per_company && out->per_company != cur.per_company) {
			problem(d, "cursor", "belongs to a search with another people_per_company");
			bad = true;
			goto out;
		}
		if (filters_given) {
			char *mine = canonical(&out->f, out->per_company ? out->per_company
									 : cur.per_company);
			char *theirs = canonical(&cur.f, cur.per_company);

			if (mine == NULL || theirs == NULL) {
				free(mine);
				free(theirs);
				rc = ENR_E_NOMEM;
				goto out;
			}
			if (strcmp(mine, theirs) != 0) {
				problem(d, "cursor", "belongs to a search with other filters");
				bad = true;
			}
			free(mine);
			free(theirs);
			if (bad)
				goto out;
		}
		filters_release(&out->f);
		out->f = cur.f;
		memset(&cur.f, 0, sizeof cur.f);
		out->per_company = cur.per_company;
		out->has_cursor = true;
		util_strlcpy(out->provider, cur.provider, sizeof out->provider);
		out->prov_cursor = cur.prov_cursor;
		cur.prov_cursor = NULL;
		out->offset = cur.offset;
		/* The page size of the pages before, unless the client says. */
		if (out->limit == 0)
			out->limit = cursor_limit <= cfg->search.limit_max ? cursor_limit
									  : cfg->search.limit_max;
	} else if (!bad && !filters_given) {
		problem(d, "body", kind == PROV_SEARCH_PEOPLE
					   ? "at least one filter is required (domains, names, titles, "
					     "seniorities, departments, countries, industries, sizes, "
					     "company_countries)"
					   : "at least one filter is required (domains, names, "
					     "industries, sizes, countries)");
		bad = true;
	}
	if (bad)
		goto out;
	if (out->per_company) {
		for (int i = 0; i < PF__MAX; i++) {
			if (out->f.n[i] > 0 && i != PF_DOMAINS && i != PF_NAMES) {
				problem(d, "people_per_company",
					"only with a search by company domains or names alone");
				bad = true;
				goto out;
			}
		}
	}
	if (out->limit == 0)
		out->limit = cfg->search.limit_default;
	out->canon = canonical(&out->f, out->per_company);
	if (out->canon == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	if (strlen(out->canon) > LIM_SEARCH_FILTERS_BYTES) {
		char what[96];

		snprintf(what, sizeof what, "the filters together are more than %u bytes",
			 LIM_SEARCH_FILTERS_BYTES);
		problem(d, "body", what);
		bad = true;
	}
out:
	srch_request_release(&cur);
	if (rc == ENR_OK && bad) {
		*details = d;
		return ENR_E_INVALID;
	}
	json_decref(d);
	return rc;
}

enum enr_err srch_parse(const char *body, size_t len, enum prov_search_kind kind,
			const struct cfg *cfg, const unsigned char key[SRCH_KEY_LEN], int64_t now_s,
			struct srch_request *out, json_t **details)
{
	json_t *j, *d;
	enum enr_err rc;

	*details = NULL;
	d = json_array();
	if (d == NULL)
		return ENR_E_NOMEM;
	rc = jb_load(body, len, &j, d);
	if (rc) {
		*details = d;
		return rc;
	}
	json_decref(d);
	rc = srch_parse_json(j, kind, cfg, key, now_s, out, details);
	json_decref(j);
	return rc;
}

/* ---- pages ------------------------------------------------------------------ */

void srch_page_key(const struct srch_request *req, const char *provider, int limit,
		   const char *ptoken, unsigned char out[SRCH_KEY_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char num[32];
	unsigned int n = SRCH_KEY_LEN;

	memset(out, 0, SRCH_KEY_LEN);
	if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(md);
		return;
	}
	/* Parts separated by NUL bytes, which none of them holds. */
	EVP_DigestUpdate(md, "search-page-v1", 15);
	EVP_DigestUpdate(md, prov_search_kind_names[req->kind],
			 strlen(prov_search_kind_names[req->kind]) + 1);
	EVP_DigestUpdate(md, provider, strlen(provider) + 1);
	EVP_DigestUpdate(md, req->canon ? req->canon : "", req->canon ? strlen(req->canon) + 1 : 1);
	snprintf(num, sizeof num, "%d", limit);
	EVP_DigestUpdate(md, num, strlen(num) + 1);
	if (ptoken)
		EVP_DigestUpdate(md, ptoken, strlen(ptoken) + 1);
	else
		EVP_DigestUpdate(md, "\x01", 2); /* the first page: no token is \x01 */
	EVP_DigestFinal_ex(md, out, &n);
	EVP_MD_CTX_free(md);
}

static json_t *record_fields(const struct prov_record *r)
{
	json_t *o = json_object();

	for (int f = 0; o && f < FLD__MAX; f++) {
		if (r->value[f] && json_object_set_new(o, fld_names[f], json_string(r->value[f]))) {
			json_decref(o);
			return NULL;
		}
	}
	if (o && r->domain[0] && json_object_set_new(o, "domain", json_string(r->domain))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *srch_page_dump(const struct prov_page *pg, int credits)
{
	json_t *recs = json_array(), *o;
	char *s;

	for (size_t i = 0; recs && i < pg->n; i++) {
		if (json_array_append_new(recs, record_fields(&pg->rec[i]))) {
			json_decref(recs);
			return NULL;
		}
	}
	if (recs == NULL)
		return NULL;
	o = json_pack("{s:o, s:o?, s:o?, s:i}", "r", recs, "n",
		      pg->next_cursor ? json_string(pg->next_cursor) : json_null(), "t",
		      pg->total >= 0 ? json_integer(pg->total) : json_null(), "c", credits);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

enum enr_err srch_page_load(const char *body, struct prov_page *out, int *credits)
{
	json_t *o = jp_load(body, strlen(body), LIM_PROV_BODY_MAX), *recs, *el;
	bool oom = false;
	size_t i;
	enum enr_err rc = ENR_E_INVALID;

	prov_page_release(out);
	recs = json_object_get(o, "r");
	if (!json_is_array(recs) || json_array_size(recs) > (size_t)LIM_SEARCH_LIMIT_CEILING)
		goto out;
	json_array_foreach(recs, i, el) {
		struct prov_record *r = prov_page_add(out);
		const char *name;
		json_t *v;

		if (r == NULL) {
			rc = ENR_E_NOMEM;
			goto out;
		}
		if (!json_is_object(el))
			goto out;
		json_object_foreach(el, name, v) {
			enum fld_id f;

			if (strcmp(name, "domain") == 0)
				prov_record_domain(r, v);
			else if (fld_parse(name, &f) && !prov_record_set_json(r, f, v)) {
				rc = ENR_E_NOMEM;
				goto out;
			}
		}
	}
	if (!prov_page_cursor(out, json_object_get(o, "n"), &oom)) {
		rc = oom ? ENR_E_NOMEM : ENR_E_INVALID;
		goto out;
	}
	if (json_is_integer(json_object_get(o, "t")))
		out->total = json_integer_value(json_object_get(o, "t"));
	*credits = (int)json_integer_value(json_object_get(o, "c"));
	rc = ENR_OK;
out:
	if (rc)
		prov_page_release(out);
	json_decref(o);
	return rc;
}

json_t *srch_record_json(const struct prov_record *r, const char *source)
{
	json_t *o = record_fields(r);

	if (o && json_object_set_new(o, "_source", json_string(source))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *srch_row_identifiers(const json_t *row)
{
	static const struct {
		const char *from, *to;
	} map[] = {
		{ "business_email", "email" },  { "personal_email", "email" },
		{ "email", "email" },           { "linkedin_url", "linkedin_url" },
		{ "first_name", "first_name" }, { "last_name", "last_name" },
		{ "company_name", "company_name" }, { "domain", "domain" },
	};
	json_t *o;

	if (!json_is_object(row))
		return NULL;
	o = json_object();
	for (size_t i = 0; o && i < sizeof map / sizeof map[0]; i++) {
		json_t *v = json_object_get(row, map[i].from);

		/* The first of business and personal e-mail wins. */
		if (!json_is_string(v) || json_object_get(o, map[i].to))
			continue;
		if (json_object_set(o, map[i].to, v)) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

json_t *srch_response(const struct srch_result *r, const char *request_id, int64_t elapsed_ms)
{
	json_t *top = json_object(), *meta = json_object(), *results = json_array(),
	       *tried = json_array();

	if (!top || !meta || !results || !tried)
		goto oom;
	for (size_t i = 0; i < r->page.n; i++) {
		if (json_array_append_new(results, srch_record_json(&r->page.rec[i], r->source)))
			goto oom;
	}
	for (int i = 0; i < r->ntried; i++)
		json_array_append_new(tried, json_string(r->tried[i]));
	json_object_set_new(top, "results", results);
	results = NULL;
	json_object_set_new(top, "next_cursor",
			    r->next_cursor ? json_string(r->next_cursor) : json_null());
	json_object_set_new(meta, "request_id", json_string(request_id));
	json_object_set_new(meta, "status",
			    json_string(r->nerrors > 0 || r->nskipped > 0 ? "incomplete" : "complete"));
	json_object_set_new(meta, "source", json_string(r->source));
	json_object_set_new(meta, "providers_tried", tried);
	tried = NULL;
	if (r->nskipped > 0) {
		json_t *sk = json_array();

		for (int i = 0; sk && i < r->nskipped; i++)
			json_array_append_new(sk, json_string(r->skipped[i]));
		json_object_set_new(meta, "providers_skipped", sk);
	}
	if (r->nerrors > 0) {
		json_t *errs = json_array();

		for (int i = 0; errs && i < r->nerrors; i++)
			json_array_append_new(errs, json_pack("{s:s, s:s}", "provider",
							      r->errors[i].provider, "outcome",
							      wf_error_names[r->errors[i].kind]));
		json_object_set_new(meta, "errors", errs);
	}
	json_object_set_new(meta, "cached", json_boolean(r->cached));
	json_object_set_new(meta, "credits_used", json_integer(r->credits));
	json_object_set_new(meta, "total", r->page.total >= 0 ? json_integer(r->page.total)
							     : json_null());
	json_object_set_new(meta, "page_cursor",
			    r->page_cursor ? json_string(r->page_cursor) : json_null());
	json_object_set_new(meta, "elapsed_ms", json_integer(elapsed_ms));
	json_object_set_new(top, "_meta", meta);
	return top;
oom:
	json_decref(top);
	json_decref(meta);
	json_decref(results);
	json_decref(tried);
	return NULL;
}
