/*
 * query.c - query strings against a parameter table.
 */
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "fields.h"
#include "pct.h"
#include "util.h"

static enum enr_err problem(json_t **details, const char *field, size_t flen, const char *what)
{
	char f[LIM_NAME_MAX + 1];
	json_t *d;

	if (*details == NULL && (*details = json_array()) == NULL)
		return ENR_E_NOMEM;
	/* Details quote client bytes only as printable ASCII, cut short. */
	ascii_printable_copy(field, flen, f, sizeof f);
	d = json_pack("{s:s, s:s}", "field", f, "problem", what);
	if (d == NULL || json_array_append_new(*details, d) != 0)
		return ENR_E_NOMEM;
	return ENR_OK;
}

static const struct qs_param *find(const struct qs_param *table, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	}
	return NULL;
}

void qs_init(struct qs *q)
{
	q->n = 0;
	q->buf = NULL;
}

void qs_release(struct qs *q)
{
	free(q->buf);
	qs_init(q);
}

enum enr_err qs_parse(const char *query, const struct qs_param *table, size_t n, struct qs *out,
		      json_t **details)
{
	size_t qlen = query ? strlen(query) : 0, used = 0, room;
	enum enr_err rc = ENR_OK;
	bool bad = false;

	*details = NULL;
	qs_release(out);
	if (qlen > LIM_QUERY_MAX) {
		char what[64];

		snprintf(what, sizeof what, "longer than %u bytes", LIM_QUERY_MAX);
		rc = problem(details, "query", 5, what);
		return rc ? rc : ENR_E_INVALID;
	}
	if (qlen == 0)
		return ENR_OK;
	/* Decoding never grows a value, and each takes one byte more for
	 * its terminator: the query's length and one a parameter do. */
	room = qlen + QS_PARAMS_MAX + 2;
	out->buf = malloc(room);
	if (out->buf == NULL)
		return ENR_E_NOMEM;
	for (const char *p = query; p && *p && rc == ENR_OK;) {
		const char *seg = p, *amp = strchr(p, '&');
		size_t seglen = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(seg, '=', seglen);
		size_t nlen = eq ? (size_t)(eq - seg) : seglen;
		const char *vraw = eq ? eq + 1 : seg + seglen;
		size_t vrawlen = eq ? seglen - nlen - 1 : 0;
		char name[LIM_NAME_MAX + 1];
		char *val = out->buf + used;
		size_t dn = 0, vlen = 0;
		const struct qs_param *prm = NULL;
		char why[160];

		p = amp ? amp + 1 : NULL;
		if (seglen == 0)
			continue; /* "a=1&&b=2", a trailing '&' */
		/* A name longer than any parameter's cannot be one; a name is
		 * compared decoded, and one with a NUL byte matches nothing. */
		if (nlen <= LIM_NAME_MAX &&
		    pct_decode(seg, nlen, PCT_PLUS_SPACE, name, sizeof name, &dn) &&
		    strlen(name) == dn)
			prm = find(table, n, name);
		if (prm == NULL) {
			rc = problem(details, seg, nlen, "unknown parameter");
			bad = true;
			continue;
		}
		for (unsigned i = 0; i < out->n; i++) {
			if (out->v[i].param == prm) {
				rc = problem(details, name, dn, "given more than once");
				bad = true;
				prm = NULL;
				break;
			}
		}
		if (prm == NULL)
			continue;
		/* Decoding never grows a value: it fits in what is left of buf. */
		if (!pct_decode(vraw, vrawlen, PCT_PLUS_SPACE, val, room - used, &vlen)) {
			rc = problem(details, name, dn, "bad percent-encoding");
			bad = true;
			continue;
		}
		if (vlen > prm->max_len) {
			snprintf(why, sizeof why, "longer than %zu bytes", prm->max_len);
			rc = problem(details, name, dn, why);
			bad = true;
			continue;
		}
		if (!util_utf8_valid(val, vlen)) {
			rc = problem(details, name, dn, "not UTF-8 text (or holds a NUL byte)");
			bad = true;
			continue;
		}
		why[0] = '\0';
		if (prm->valid && !prm->valid(val, vlen, prm->arg, why, sizeof why)) {
			rc = problem(details, name, dn, why[0] ? why : "not a valid value");
			bad = true;
			continue;
		}
		if (out->n == QS_PARAMS_MAX) {
			rc = problem(details, "query", 5, "too many parameters");
			bad = true;
			break;
		}
		out->v[out->n].param = prm;
		out->v[out->n].value = val;
		out->v[out->n].len = vlen;
		out->n++;
		used += vlen + 1;
	}
	if (rc) {
		json_decref(*details);
		*details = NULL;
		return rc;
	}
	return bad ? ENR_E_INVALID : ENR_OK;
}

const char *qs_get(const struct qs *q, const char *name)
{
	for (unsigned i = 0; i < q->n; i++) {
		if (strcmp(q->v[i].param->name, name) == 0)
			return q->v[i].value;
	}
	return NULL;
}

bool qs_valid_int(const char *v, size_t len, const void *arg, char *why, size_t whylen)
{
	const struct qs_range *r = arg;
	int64_t x;

	if (util_parse_i64n(v, len, r->min, r->max, &x) == ENR_OK)
		return true;
	snprintf(why, whylen, "not a whole number from %lld to %lld", (long long)r->min,
		 (long long)r->max);
	return false;
}

bool qs_valid_choice(const char *v, size_t len, const void *arg, char *why, size_t whylen)
{
	const char *const *words = arg;
	size_t o = 0;
	int n;

	for (size_t i = 0; words[i]; i++) {
		if (strlen(words[i]) == len && memcmp(words[i], v, len) == 0)
			return true;
	}
	n = snprintf(why, whylen, "not one of");
	o = n > 0 ? (size_t)n : 0;
	for (size_t i = 0; words[i] && o < whylen; i++) {
		n = snprintf(why + o, whylen - o, "%s %s", i ? "," : "", words[i]);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	return false;
}

bool qs_valid_name(const char *v, size_t len, const void *arg, char *why, size_t whylen)
{
	(void)arg;
	for (size_t i = 0; i < len; i++) {
		char c = v[i];

		if (!(ascii_is_alnum(c) || c == '-' || c == '_' || c == '.')) {
			snprintf(why, whylen, "only letters, digits, '.', '-' and '_'");
			return false;
		}
	}
	if (len == 0) {
		snprintf(why, whylen, "empty");
		return false;
	}
	return true;
}

bool qs_valid_fields(const char *v, size_t len, const void *arg, char *why, size_t whylen)
{
	fld_set set;

	(void)arg;
	return fld_list_parse(v, len, &set, why, whylen) == ENR_OK;
}
