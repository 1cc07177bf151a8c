/*
 * provider.c - helpers shared by the provider adapters (lib/provider.h).
 *
 * Prefix: prov_.  Request building (headers, percent-encoded query
 * parameters), result bookkeeping (first value wins, values trimmed,
 * capped and checked for UTF-8), and the time arithmetic adapters need to
 * turn reset hints into an until_ms: Retry-After in both of its forms and
 * the next UTC minute, hour and midnight.  prov_ops_find lives in
 * lib/providers/registry.c.
 *
 * Requests carry API keys in their header lines: prov_request_release()
 * wipes them before the memory is reused.
 */
#include "provider.h"

#include "json_path.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ascii.h"
#include "domains.h"
#include "limits.h"
#include "pct.h"
#include "util.h"

const char *const prov_kind_names[PROV_KIND__MAX] = {
	[PROV_KIND_AUTO] = "auto",
	[PROV_KIND_PERSON] = "person",
	[PROV_KIND_COMPANY] = "company",
};

const char *const prov_outcome_names[PROV_OUTCOME__MAX] = {
	[PROV_HIT] = "hit",
	[PROV_MISS] = "miss",
	[PROV_RATE_LIMITED] = "rate_limited",
	[PROV_QUOTA_EXHAUSTED] = "quota_exhausted",
	[PROV_KEY_INVALID] = "key_invalid",
	[PROV_REQUEST_REJECTED] = "request_rejected",
	[PROV_PENDING] = "pending",
	[PROV_TRANSIENT] = "transient",
};

#define MS_PER_MINUTE INT64_C(60000)
#define MS_PER_HOUR   INT64_C(3600000)
#define MS_PER_DAY    INT64_C(86400000)

/* Retry-After values past this many seconds are not believed (a provider
 * that asks for more than a year is broken, and the arithmetic stays far
 * from overflow). */
#define RETRY_AFTER_MAX_S INT64_C(31622400)

void prov_request_init(struct prov_request *r)
{
	memset(r, 0, sizeof *r);
	util_strlcpy(r->method, "GET", sizeof r->method);
	buf_init(&r->url, LIM_PROV_URL_MAX);
	buf_init(&r->body, LIM_PROV_REQ_BODY_MAX);
}

/* Clear (the auth header holds a key) and free r's header lines. */
static void free_lines(struct prov_request *r)
{
	for (unsigned i = 0; i < r->nheaders; i++) {
		explicit_bzero(r->headers[i], strlen(r->headers[i]));
		free(r->headers[i]);
		r->headers[i] = NULL;
	}
	r->nheaders = 0;
}

void prov_request_release(struct prov_request *r)
{
	if (r->body.data)
		explicit_bzero(r->body.data, r->body.alloc);
	buf_release(&r->url);
	buf_release(&r->body);
	free_lines(r);
	prov_request_init(r);
}

static bool has_line_break(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* Beyond the contract in provider.h: a name or value holding CR or LF is
 * ENR_E_INVALID, so nothing taken from a record or a key can add a
 * header line of its own. */
enum enr_err prov_request_header(struct prov_request *r, const char *name, const char *value)
{
	size_t n;
	char *line;

	if (name == NULL || value == NULL || name[0] == '\0' || strchr(name, ':') ||
	    has_line_break(name) || has_line_break(value))
		return ENR_E_INVALID;
	if (r->nheaders >= PROV_MAX_HEADERS)
		return ENR_E_RANGE;
	/* A value longer than the line is cut, as the header promises. */
	n = strlen(name) + 2 + strlen(value) + 1;
	if (n > PROV_HEADER_LINE)
		n = PROV_HEADER_LINE;
	line = malloc(n);
	if (line == NULL)
		return ENR_E_NOMEM;
	snprintf(line, n, "%s: %s", name, value);
	r->headers[r->nheaders++] = line;
	return ENR_OK;
}

enum enr_err prov_request_query(struct prov_request *r, const char *name, const char *value)
{
	size_t old = r->url.len;
	const char *u = buf_cstr(&r->url);
	enum enr_err rc;

	if (name == NULL || value == NULL || name[0] == '\0')
		return ENR_E_INVALID;
	if (strchr(u, '?') == NULL)
		rc = buf_putc(&r->url, '?');
	else if (old > 0 && u[old - 1] != '?' && u[old - 1] != '&')
		rc = buf_putc(&r->url, '&');
	else
		rc = ENR_OK;
	/* RFC 3986 2.3: unreserved characters as they are, every other byte
	 * (UTF-8 included) as %XX. */
	if (rc == ENR_OK)
		rc = pct_encode(&r->url, name, strlen(name), NULL, 0);
	if (rc == ENR_OK)
		rc = buf_putc(&r->url, '=');
	if (rc == ENR_OK)
		rc = pct_encode(&r->url, value, strlen(value), NULL, 0);
	if (rc)
		buf_truncate(&r->url, old); /* as it was, not with half a parameter */
	return rc;
}

const char *prov_header(const struct prov_response *r, const char *name)
{
	if (r == NULL || name == NULL || r->headers == NULL)
		return NULL;
	for (size_t i = 0; i < r->nheaders; i++) {
		if (r->headers[i].name && strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value ? r->headers[i].value : "";
	}
	return NULL;
}

void prov_result_init(struct prov_result *r)
{
	memset(r, 0, sizeof *r);
	/* An adapter that forgets to classify leaves a harmless outcome. */
	r->outcome = PROV_TRANSIENT;
	r->requests_left = -1;
	r->credits_left = -1;
}

void prov_result_release(struct prov_result *r)
{
	for (int i = 0; i < FLD__MAX; i++)
		free(r->value[i]);
	prov_result_init(r);
}

void prov_result_reset(struct prov_result *r)
{
	prov_result_release(r);
}

enum enr_err prov_result_set(struct prov_result *r, enum fld_id f, const char *value, size_t n,
			     double confidence)
{
	char *copy;

	if ((unsigned)f >= FLD__MAX || value == NULL || r->value[f] != NULL)
		return ENR_OK;
	while (n > 0 && ascii_is_space(value[0])) {
		value++;
		n--;
	}
	while (n > 0 && ascii_is_space(value[n - 1]))
		n--;
	if (n == 0 || n > LIM_PROV_VALUE_MAX || !util_utf8_valid(value, n))
		return ENR_OK;
	copy = malloc(n + 1);
	if (copy == NULL)
		return ENR_E_NOMEM;
	memcpy(copy, value, n);
	copy[n] = '\0';
	r->value[f] = copy;
	/* NaN fails both comparisons and becomes 0. */
	if (!(confidence >= 0.0))
		confidence = 0.0;
	if (confidence > 1.0)
		confidence = 1.0;
	r->confidence[f] = confidence;
	r->found |= FLD_BIT(f);
	return ENR_OK;
}

void prov_result_reason(struct prov_result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof r->reason, fmt, ap);
	va_end(ap);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int days_in_month(int64_t y, int m)
{
	static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

/* A cursor over an HTTP date. */
struct dscan {
	const char *p, *end;
};

static bool d_lit(struct dscan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return false;
	s->p += n;
	return true;
}

/* Exactly n digits (n > 0), or 1..n digits when exact is false. */
static bool d_num(struct dscan *s, int n, bool exact, int *out)
{
	int v = 0, got = 0;

	while (got < n && s->p < s->end && ascii_is_digit(*s->p)) {
		v = v * 10 + (*s->p - '0');
		s->p++;
		got++;
	}
	if (got == 0 || (exact && got != n))
		return false;
	*out = v;
	return true;
}

static bool d_month(struct dscan *s, int *m)
{
	static const char names[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

	for (int i = 0; i < 12; i++) {
		if (d_lit(s, names[i])) {
			*m = i + 1;
			return true;
		}
	}
	return false;
}

static bool d_time(struct dscan *s, int *hh, int *mm, int *ss)
{
	return d_num(s, 2, true, hh) && d_lit(s, ":") && d_num(s, 2, true, mm) && d_lit(s, ":") &&
	       d_num(s, 2, true, ss);
}

/* Day names as the three HTTP-date forms spell them; the name is
 * checked for shape only (RFC 9110 5.6.7 lets a recipient ignore it). */
static bool d_dayname(struct dscan *s, bool long_form)
{
	static const char *const shorts[7] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
	static const char *const longs[7] = { "Monday", "Tuesday", "Wednesday", "Thursday",
					      "Friday", "Saturday", "Sunday" };

	for (int i = 0; i < 7; i++) {
		if (d_lit(s, long_form ? longs[i] : shorts[i]))
			return true;
	}
	return false;
}

/* RFC 9110 5.6.7: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), and the
 * obsolete rfc850-date ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime
 * ("Sun Nov  6 08:49:37 1994") forms a recipient must still accept.  A
 * two-digit year is taken within 50 years of now_year: one more than 50
 * years ahead is the most recent past year with those digits (RFC 9110
 * 5.6.7).  Returns seconds since the epoch. */
static bool parse_http_date(const char *v, size_t len, int64_t now_year, int64_t *out)
{
	struct dscan s = { v, v + len };
	int d = 0, m = 0, y = 0, hh = 0, mm = 0, ss = 0;
	int64_t year;

	if (d_dayname(&s, false) && d_lit(&s, ", ")) {
		if (!(d_num(&s, 2, true, &d) && d_lit(&s, " ") && d_month(&s, &m) && d_lit(&s, " ") &&
		      d_num(&s, 4, true, &y) && d_lit(&s, " ") && d_time(&s, &hh, &mm, &ss) &&
		      d_lit(&s, " GMT")))
			return false;
		year = y;
	} else {
		s.p = v;
		if (d_dayname(&s, true) && d_lit(&s, ", ")) {
			if (!(d_num(&s, 2, true, &d) && d_lit(&s, "-") && d_month(&s, &m) &&
			      d_lit(&s, "-") && d_num(&s, 2, true, &y) && d_lit(&s, " ") &&
			      d_time(&s, &hh, &mm, &ss) && d_lit(&s, " GMT")))
				return false;
			year = (now_year / 100) * 100 + y;
			if (year > now_year + 50)
				year -= 100;
			else if (year < now_year - 50)
				year += 100;
		} else {
			s.p = v;
			if (!(d_dayname(&s, false) && d_lit(&s, " ") && d_month(&s, &m) &&
			      d_lit(&s, " ")))
				return false;
			/* asctime pads a one-digit day with a space. */
			if (d_lit(&s, " ")) {
				if (!d_num(&s, 1, true, &d))
					return false;
			} else if (!d_num(&s, 2, true, &d)) {
				return false;
			}
			if (!(d_lit(&s, " ") && d_time(&s, &hh, &mm, &ss) && d_lit(&s, " ") &&
			      d_num(&s, 4, true, &y)))
				return false;
			year = y;
		}
	}
	if (s.p != s.end || year < 1970 || d < 1 || d > days_in_month(year, m) || hh > 23 ||
	    mm > 59 || ss > 60)
		return false;
	/* A leap second names the same instant as the next one. */
	*out = days_from_civil(year, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
	return true;
}

static int64_t year_of_ms(int64_t ms)
{
	int64_t days = ms / MS_PER_DAY;
	/* Good to a day: only the century of a two-digit year depends on it. */
	return 1970 + (days * 400) / 146097;
}

int64_t prov_retry_after_ms(const struct prov_response *r, int64_t now_ms)
{
	const char *v = prov_header(r, "retry-after");
	size_t len;
	int64_t secs;

	if (v == NULL)
		return 0;
	while (ascii_is_space(*v))
		v++;
	len = strlen(v);
	while (len > 0 && ascii_is_space(v[len - 1]))
		len--;
	if (len == 0)
		return 0;
	/* RFC 9110 10.2.3: delta-seconds = 1*DIGIT, or an HTTP-date. */
	if (ascii_is_digit(v[0])) {
		for (size_t i = 0; i < len; i++) {
			if (!ascii_is_digit(v[i]))
				return 0;
		}
		if (util_parse_i64n(v, len, 0, RETRY_AFTER_MAX_S, &secs) != ENR_OK)
			return 0;
		return now_ms + secs * 1000;
	}
	if (!parse_http_date(v, len, year_of_ms(now_ms), &secs))
		return 0;
	/* A date in the past means "now". */
	if (secs * 1000 < now_ms)
		return now_ms;
	if (secs * 1000 - now_ms > RETRY_AFTER_MAX_S * 1000)
		return 0;
	return secs * 1000;
}

/* The first multiple of unit strictly after now_ms (floor division, so a
 * time before the epoch rounds the right way too). */
static int64_t next_boundary(int64_t now_ms, int64_t unit)
{
	int64_t q = now_ms / unit;

	if (now_ms % unit < 0)
		q--;
	return (q + 1) * unit;
}

int64_t prov_next_minute_ms(int64_t now_ms)
{
	return next_boundary(now_ms, MS_PER_MINUTE);
}

int64_t prov_next_hour_ms(int64_t now_ms)
{
	return next_boundary(now_ms, MS_PER_HOUR);
}

/* UTC days are exactly 86400 s apart in epoch time (POSIX ignores leap
 * seconds), so midnight is a plain multiple. */
int64_t prov_next_utc_midnight_ms(int64_t now_ms)
{
	return next_boundary(now_ms, MS_PER_DAY);
}

/* ---- helpers shared by the adapters ------------------------------------------ */

#define COMPANY_FIELDS                                                                   \
	(FLD_BIT(FLD_COMPANY_NAME) | FLD_BIT(FLD_INDUSTRY) | FLD_BIT(FLD_COMPANY_SIZE) | \
	 FLD_BIT(FLD_COMPANY_REVENUE) | FLD_BIT(FLD_TECHNOLOGIES))

bool prov_present(const char *s)
{
	return s != NULL && *s != '\0';
}

const char *prov_query_id(const struct prov_query *q, enum fld_ident id)
{
	const char *v = q ? q->id[id] : NULL;

	return prov_present(v) ? v : NULL;
}

bool prov_company_only(const struct prov_query *q)
{
	return q != NULL && q->want != 0 && (q->want & ~COMPANY_FIELDS) == 0 &&
	       (prov_query_id(q, ID_DOMAIN) || prov_query_id(q, ID_COMPANY_NAME));
}

fld_set prov_company_fields(void)
{
	return COMPANY_FIELDS;
}

void prov_result_company_domain(struct prov_result *r, const json_t *v)
{
	char host[sizeof r->company_domain], reg[sizeof r->company_domain];
	const char *s = json_string_value(v), *end;
	size_t n, o = 0;

	if (s == NULL || r->company_domain[0])
		return;
	/* "https://www.acme.com/about" and "acme.com" name one company. */
	if (strncmp(s, "https://", 8) == 0)
		s += 8;
	else if (strncmp(s, "http://", 7) == 0)
		s += 7;
	if (strncmp(s, "www.", 4) == 0)
		s += 4;
	end = s + strcspn(s, "/?#:");
	n = (size_t)(end - s);
	if (n == 0 || n >= sizeof host)
		return;
	for (size_t i = 0; i < n; i++)
		host[o++] = ascii_to_lower(s[i]);
	host[o] = '\0';
	if (!dom_valid(host, o) || dom_registrable(host, reg, sizeof reg) != ENR_OK)
		return;
	util_strlcpy(r->company_domain, reg, sizeof r->company_domain);
}

bool prov_is_profile_url(const char *s)
{
	return prov_present(s) && (strncmp(s, "https://www.linkedin.com/in/", 28) == 0 ||
				   strncmp(s, "https://www.linkedin.com/pub/", 29) == 0);
}

const char *prov_person_profile(const struct prov_query *q)
{
	const char *li = prov_query_id(q, ID_LINKEDIN_URL);

	return li && strstr(li, "linkedin.com/company/") == NULL ? li : NULL;
}

enum enr_err prov_request_base(struct prov_request *out, const char *base, const char *path)
{
	size_t n = strlen(base);

	/* "https://host/" and "https://host" name the same base. */
	while (n > 0 && base[n - 1] == '/')
		n--;
	if (n == 0)
		return ENR_E_INVALID;
	if (buf_append(&out->url, base, n) || buf_puts(&out->url, path))
		return ENR_E_TOO_LARGE;
	return ENR_OK;
}

void prov_result_clear_values(struct prov_result *r)
{
	for (int i = 0; i < FLD__MAX; i++) {
		free(r->value[i]);
		r->value[i] = NULL;
		r->confidence[i] = 0.0;
	}
	r->found = 0;
}

bool prov_set_json_text(struct prov_result *r, enum fld_id f, const struct json_t *v,
			double confidence)
{
	char scratch[64];
	const char *t;
	size_t n;

	t = jp_text(v, scratch, sizeof scratch, &n);
	if (t == NULL)
		return true;
	return prov_result_set(r, f, t, n, confidence) == ENR_OK;
}

bool prov_header_int(const struct prov_response *r, const char *name, int64_t max, int64_t *out)
{
	const char *v = prov_header(r, name);

	return v && util_parse_i64(v, 0, max, out) == ENR_OK;
}

void prov_not_found_404(const struct prov_answer *a, struct prov_result *out)
{
	json_t *doc = jp_load(a->resp->body, a->resp->body_len, LIM_PROV_BODY_MAX);

	if (json_is_object(doc)) {
		out->outcome = PROV_MISS;
		prov_result_reason(out, "%s: not found", a->name);
	} else {
		out->outcome = PROV_TRANSIENT;
		prov_result_reason(out, "%s: 404 without a JSON body", a->name);
	}
	json_decref(doc);
}

/* ---- classifying an answer by its status ------------------------------------- */

/* Out reset and transient; false, with the reason, when resp or p is
 * missing. */
static bool begin(const char *name, const struct cfg_provider *p, const struct prov_response *resp,
		  struct prov_result *out)
{
	prov_result_reset(out);
	out->outcome = PROV_TRANSIENT;
	if (resp == NULL || p == NULL) {
		prov_result_reason(out, "%s: no response", name);
		return false;
	}
	return true;
}

/* True, with the reason, when resp carries no status to classify. */
static bool no_answer(const char *name, const struct prov_response *resp, struct prov_result *out)
{
	if (resp->timed_out)
		prov_result_reason(out, "%s: timed out", name);
	else if (resp->status == 0)
		prov_result_reason(out, "%s: no response", name);
	else
		return false;
	return true;
}

bool prov_parse_begin(const char *name, const struct cfg_provider *p,
		      const struct prov_response *resp, struct prov_result *out)
{
	return begin(name, p, resp, out) && !no_answer(name, resp, out);
}

void prov_status_unknown(const char *name, long status, struct prov_result *out)
{
	out->outcome = PROV_TRANSIENT;
	prov_result_reason(out, "%s: %s (%ld)", name,
			   status >= 500 && status <= 599 ? "server error" : "unexpected status",
			   status);
}

void prov_parse_by_status(const struct prov_status_table *t, const struct cfg_provider *p,
			  const struct prov_query *q, const struct prov_response *resp,
			  int64_t now_ms, struct prov_result *out)
{
	struct prov_answer a = { t->name, p, q, resp, now_ms };

	if (!begin(t->name, p, resp, out))
		return;
	/* An answer that arrived too late still tells what is left. */
	if (t->meters)
		t->meters(resp, out);
	if (no_answer(t->name, resp, out))
		return;
	for (size_t i = 0; i < t->nrows; i++) {
		const struct prov_status_rule *row = &t->rows[i];

		if (resp->status < row->lo || resp->status > row->hi)
			continue;
		out->outcome = row->outcome;
		if (row->reason)
			prov_result_reason(out, "%s: %s (%ld)", t->name, row->reason, resp->status);
		if (row->then)
			row->then(&a, out);
		return;
	}
	prov_status_unknown(t->name, resp->status, out);
}
