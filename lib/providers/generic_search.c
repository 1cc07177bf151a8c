/*
 * generic_search.c - the search a generic provider's configuration
 * describes (kind "generic", search_people / search_companies blocks:
 * struct cfg_generic_search; docs/providers.md, "Generic search").
 *
 * Symbol: prov_generic_search_ops.  Templates name the filters as
 * placeholders: {domains} {names} {titles} {seniorities} {departments}
 * {countries} {industries} {sizes} {company_countries}, and {limit},
 * {cursor}, {base_url}.  In the body each expands to a whole JSON value (a
 * list an array of strings, [] when the client gave none; {limit} a
 * number; {cursor} a string or null); in the URL a list is its values
 * percent-encoded and joined by commas, {limit} digits, {cursor} the
 * percent-encoded cursor or nothing.  A filter whose placeholder the
 * templates lack cannot be sent: such a search is not asked of this
 * provider.  Countries go as ISO codes where one is known.
 *
 * The answer: statuses classify as the block's lists say (defaults:
 * key_invalid 401 and 403, quota_exhausted 402, rate_limited 429,
 * request_rejected 400; miss only where listed, as an empty page); a 2xx
 * whose results path is an array is a page, each element mapped through
 * the block's fields and domain paths; the next cursor is the string at
 * next_cursor.  A 2xx without the array is transient.
 *
 * Pure: builds requests and reads answers, never does I/O, never copies
 * upstream text into a reason.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/json_path.h"
#include "lib/limits.h"
#include "lib/pct.h"
#include "lib/provider.h"
#include "lib/util.h"

#include "generic_int.h"

#ifndef ENRICHD_VERSION
#define ENRICHD_VERSION "0.0.0"
#endif

/* Placeholders beyond the filters (enum prov_filter comes first). */
enum { PH_LIMIT = PF__MAX, PH_CURSOR, PH_BASE_URL, PH__MAX };

static const char *ph_name(int ph)
{
	static const char *const more[] = { "limit", "cursor", "base_url" };

	return ph < PF__MAX ? prov_filter_names[ph] : more[ph - PF__MAX];
}

static const struct cfg_generic_search *block(const struct cfg_provider *p,
					      enum prov_search_kind k)
{
	if (p == NULL || (unsigned)k >= PROV_SEARCH__MAX)
		return NULL;
	return p->search[k];
}

/* The placeholder at p ("{name}"), its length in *len; -1 when none. */
static int placeholder_at(const char *p, size_t *len)
{
	const char *close;

	if (*p != '{' || (close = strchr(p + 1, '}')) == NULL)
		return -1;
	for (int ph = 0; ph < PH__MAX; ph++) {
		const char *n = ph_name(ph);
		size_t nl = strlen(n);

		if ((size_t)(close - (p + 1)) == nl && memcmp(p + 1, n, nl) == 0) {
			*len = nl + 2;
			return ph;
		}
	}
	return -1;
}

/* The filters the templates of g can carry. */
static prov_filter_set template_filters(const struct cfg_generic_search *g)
{
	const char *tmpl[2] = { g->url, g->body };
	prov_filter_set s = 0;

	for (int t = 0; t < 2; t++) {
		for (const char *p = tmpl[t]; p && *p; p++) {
			size_t len;
			int ph = placeholder_at(p, &len);

			if (ph >= 0 && ph < PF__MAX)
				s |= PF_BIT(ph);
		}
	}
	return s;
}

static bool gs_supports(const struct cfg_provider *p, enum prov_search_kind k)
{
	return block(p, k) != NULL;
}

static prov_filter_set gs_filters(const struct cfg_provider *p, enum prov_search_kind k,
				  bool *per_company)
{
	const struct cfg_generic_search *g = block(p, k);

	*per_company = false;
	return g ? template_filters(g) & prov_search_filters(k) : 0;
}

static int gs_limit_max(const struct cfg_provider *p, enum prov_search_kind k)
{
	const struct cfg_generic_search *g = block(p, k);

	return g ? g->max_limit : 0;
}

static int64_t gs_cost(const struct cfg_provider *p, enum prov_search_kind k, int n)
{
	const struct cfg_generic_search *g = block(p, k);

	return g ? (int64_t)n * g->credits_per_result : 0;
}

static const char *value_of(enum prov_filter f, const char *v)
{
	if (f == PF_COUNTRIES || f == PF_COMPANY_COUNTRIES) {
		const char *code = strlen(v) == 2 ? v : prov_country_code(v);

		return code ? code : v;
	}
	return v;
}

/* One placeholder into b, as the mode wants it. */
static enum enr_err put_value(struct buf *b, int ph, bool json, const struct prov_search *s,
			      const char *base_url)
{
	enum enr_err rc = ENR_OK;

	if (ph == PH_BASE_URL) {
		size_t bl = strlen(base_url);

		while (bl > 0 && base_url[bl - 1] == '/')
			bl--;
		return buf_append(b, base_url, bl);
	}
	if (ph == PH_LIMIT)
		return buf_printf(b, "%d", s->limit);
	if (ph == PH_CURSOR) {
		json_t *v;
		char *t;

		if (!json)
			return s->cursor ? pct_encode(b, s->cursor, strlen(s->cursor), NULL, 0) : ENR_OK;
		v = s->cursor ? json_string(s->cursor) : json_null();
		t = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
		rc = t ? buf_puts(b, t) : ENR_E_NOMEM;
		free(t);
		json_decref(v);
		return rc;
	}
	if (json) {
		json_t *a = json_array();
		char *t;

		for (size_t i = 0; a && i < s->f[ph].n; i++) {
			if (json_array_append_new(a, json_string(value_of((enum prov_filter)ph,
									    s->f[ph].v[i])))) {
				json_decref(a);
				return ENR_E_NOMEM;
			}
		}
		t = a ? json_dumps(a, JSON_COMPACT) : NULL;
		rc = t ? buf_puts(b, t) : ENR_E_NOMEM;
		free(t);
		json_decref(a);
		return rc;
	}
	for (size_t i = 0; rc == ENR_OK && i < s->f[ph].n; i++) {
		const char *v = value_of((enum prov_filter)ph, s->f[ph].v[i]);

		if (i)
			rc = buf_putc(b, ',');
		if (rc == ENR_OK)
			rc = pct_encode(b, v, strlen(v), NULL, 0);
	}
	return rc;
}

static enum enr_err expand(const char *tmpl, bool json, const struct prov_search *s,
			   const char *base_url, struct buf *b)
{
	for (const char *p = tmpl; *p;) {
		size_t len;
		int ph = placeholder_at(p, &len);
		enum enr_err rc;

		if (ph < 0) {
			if (buf_putc(b, *p))
				return ENR_E_TOO_LARGE;
			p++;
			continue;
		}
		rc = put_value(b, ph, json, s, base_url);
		if (rc)
			return rc == ENR_E_NOMEM ? rc : ENR_E_TOO_LARGE;
		p += len;
	}
	return ENR_OK;
}

static enum enr_err gs_build(const struct cfg_provider *p, const struct cfg_key *key,
			     const struct prov_search *s, struct prov_request *out)
{
	const struct cfg_generic_search *g;
	const struct cfg_generic *lookup;
	char auth[PROV_HEADER_LINE];
	prov_filter_set can;
	bool post;
	enum enr_err rc;

	if (p == NULL || key == NULL || key->secret == NULL || s == NULL)
		return ENR_E_INTERNAL;
	g = block(p, s->kind);
	if (g == NULL || g->url == NULL)
		return ENR_E_INTERNAL;
	prov_request_release(out);
	if (s->limit < 1 || s->limit > g->max_limit || s->per_company > 0)
		return ENR_E_INVALID;
	can = template_filters(g);
	for (int f = 0; f < PF__MAX; f++) {
		if (s->f[f].n > 0 && !(can & PF_BIT(f)))
			return ENR_E_INVALID;
	}
	post = g->method && strcasecmp(g->method, "POST") == 0;
	util_strlcpy(out->method, post ? "POST" : "GET", sizeof out->method);
	rc = expand(g->url, false, s, p->base_url ? p->base_url : "", &out->url);
	if (rc == ENR_OK && post && g->body && g->body[0])
		rc = expand(g->body, true, s, p->base_url ? p->base_url : "", &out->body);
	if (rc == ENR_OK)
		rc = prov_request_header(out, "Accept", "application/json");
	if (rc == ENR_OK)
		rc = prov_request_header(out, "User-Agent", "enrichd/" ENRICHD_VERSION);
	if (rc == ENR_OK && out->body.len > 0)
		rc = prov_request_header(out, "Content-Type", "application/json");
	/* The key travels as the provider's lookups send it. */
	lookup = p->generic;
	if (rc == ENR_OK) {
		snprintf(auth, sizeof auth, "%s%s",
			 lookup && lookup->auth_prefix ? lookup->auth_prefix : "Bearer ", key->secret);
		rc = prov_request_header(out,
					 lookup && lookup->auth_header && lookup->auth_header[0]
						 ? lookup->auth_header
						 : "Authorization",
					 auth);
		explicit_bzero(auth, sizeof auth);
	}
	if (rc)
		prov_request_release(out);
	return rc;
}

/* One result through the configured paths (g); false only when memory ran out. */
static bool map_result(const json_t *el, struct prov_record *r, const void *arg)
{
	const struct cfg_generic_search *g = arg;

	for (int f = 0; f < FLD__MAX; f++) {
		if (g->fields[f] && !prov_record_set_json(r, (enum fld_id)f, jp_get(el, g->fields[f])))
			return false;
	}
	if (g->domain && g->domain[0])
		prov_record_domain(r, jp_get(el, g->domain));
	return true;
}

static void parse_page(const struct cfg_generic_search *g, const struct prov_response *resp,
		       struct prov_result *call, struct prov_page *page)
{
	json_t *doc = jp_load(resp->body, resp->body_len, LIM_PROV_BODY_MAX);
	const json_t *list;
	bool oom = false;

	call->outcome = PROV_TRANSIENT;
	list = doc ? jp_get(doc, g->results) : NULL;
	if (!json_is_array(list) || json_array_size(list) > (size_t)g->max_limit) {
		prov_result_reason(call, "generic: search %ld without a results array of at most %d",
				   resp->status, g->max_limit);
		goto out;
	}
	if (!prov_page_fill(call, page, list, map_result, g, "generic"))
		goto out;
	if (g->total && g->total[0])
		prov_page_total(page, jp_get(doc, g->total));
	if (g->next_cursor && g->next_cursor[0] &&
	    !prov_page_cursor(page, jp_get(doc, g->next_cursor), &oom)) {
		prov_result_reason(call, oom ? "generic: out of memory" : "generic: search with a bad next cursor");
		goto out;
	}
	call->credits = (int)((int64_t)json_array_size(list) * g->credits_per_result);
	call->outcome = json_array_size(list) > 0 ? PROV_HIT : PROV_MISS;
	prov_result_reason(call, "generic: search page of %zu", page->n);
out:
	if (call->outcome == PROV_TRANSIENT) {
		prov_page_release(page);
		call->credits = 0;
	}
	json_decref(doc);
}

static void gs_parse(const struct cfg_provider *p, const struct prov_search *s,
		     const struct prov_response *resp, int64_t now_ms, struct prov_result *call,
		     struct prov_page *page)
{
	struct generic_statuses st;
	const struct cfg_generic_search *g = s ? block(p, s->kind) : NULL;
	enum prov_outcome o;

	prov_page_release(page);
	if (!prov_parse_begin("generic", p, resp, call))
		return;
	if (g == NULL) {
		prov_result_reason(call, "generic: no search described");
		return;
	}
	st = (struct generic_statuses){ &g->miss, &g->key_invalid, &g->quota_exhausted,
					&g->rate_limited, &g->request_rejected, false };

	if (generic_classify(&st, resp->status, &o)) {
		call->outcome = o;
		if (o == PROV_RATE_LIMITED || o == PROV_QUOTA_EXHAUSTED)
			call->until_ms = prov_retry_after_ms(resp, now_ms);
		prov_result_reason(call, "generic: search %s (%ld)", prov_outcome_names[o],
				   resp->status);
		return;
	}
	if (resp->status >= 200 && resp->status <= 299)
		parse_page(g, resp, call, page);
	else
		prov_status_unknown("generic", resp->status, call);
}

const struct prov_search_ops prov_generic_search_ops = {
	.supports = gs_supports,
	.filters = gs_filters,
	.limit_max = gs_limit_max,
	.cost = gs_cost,
	.build = gs_build,
	.parse = gs_parse,
};
