/*
 * adapter_harness.h - what the tests of the HTTP provider adapters share
 * (test_pdl.c, test_lusha.c, test_surfe.c, test_generic.c).
 *
 * An adapter is pure: a request comes out of build(), a result out of
 * parse() given a status, headers and a body at a fixed clock.  These
 * helpers build the response, run parse() and check what every adapter
 * must do (the key only in its header, garbage and silence transient,
 * reasons free of upstream text); a test file holds the provider's own
 * answers, mostly as tables of ah_case rows.
 *
 *   static const struct ah adapter = { &prov_pdl_ops, &prov, NOW };
 *   ah_parse(&adapter, NULL, &q, 404, body, hdrs, &res);
 */
#ifndef ENR_TEST_ADAPTER_HARNESS_H
#define ENR_TEST_ADAPTER_HARNESS_H

#include <stdint.h>
#include <jansson.h>
#include <string.h>

#include "lib/provider.h"

#include "harness.h"

#define AH_HEADERS_MAX 16

/* One response header; a list of them ends with a NULL name. */
struct ah_hdr {
	const char *name, *value;
};

/* The adapter under test, the provider it is configured as, the clock. */
struct ah {
	const struct prov_ops *ops;
	const struct cfg_provider *p;
	int64_t now_ms;
};

/* A query for the fields want by one identifier. */
static inline struct prov_query ah_query(enum fld_ident id, const char *value, fld_set want)
{
	struct prov_query q = { { NULL }, want };

	q.id[id] = value;
	return q;
}

/* Parse one answer to q: status, body (NULL: empty), headers (NULL or a
 * list ending with a NULL name), as provider p (NULL: the adapter's). */
static inline void ah_parse(const struct ah *a, const struct cfg_provider *p,
			    const struct prov_query *q, long status, const char *body,
			    const struct ah_hdr *hdrs, struct prov_result *out)
{
	struct prov_header h[AH_HEADERS_MAX];
	struct prov_response r;
	size_t n = 0;

	for (; hdrs && hdrs[n].name && n < AH_HEADERS_MAX; n++) {
		h[n].name = (char *)hdrs[n].name;
		h[n].value = (char *)hdrs[n].value;
	}
	r.status = status;
	r.timed_out = false;
	r.body = body ? body : "";
	r.body_len = body ? strlen(body) : 0;
	r.headers = h;
	r.nheaders = n;
	a->ops->parse(p ? p : a->p, q, &r, a->now_ms, out);
}

/* A field's value in a result; NULL: the field must be absent. */
struct ah_value {
	enum fld_id f;
	const char *value;
};

static inline void ah_check_values(const struct prov_result *res, const struct ah_value *v,
				   size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *got = res->value[v[i].f];

		if (got == NULL || v[i].value == NULL ? got != v[i].value
						      : strcmp(got, v[i].value) != 0)
			HARNESS_FAIL("%s is \"%s\", want \"%s\"", fld_names[v[i].f],
				     got ? got : "(absent)", v[i].value ? v[i].value : "(absent)");
	}
}

/* AH_VALUES(&res, { FLD_TITLE, "CTO" }, { FLD_PHONE, NULL }, ...) */
#define AH_VALUES(res, ...)                                                             \
	ah_check_values(res, (const struct ah_value[]){ __VA_ARGS__ },                  \
			sizeof((const struct ah_value[]){ __VA_ARGS__ }) / sizeof(struct ah_value))

/* One answer and what it must come to: the outcome, and words the reason
 * must (in_reason) or must not (not_in_reason, upstream text) hold. */
struct ah_case {
	long status;
	const char *body;
	enum prov_outcome outcome;
	const char *in_reason;
	const char *not_in_reason;
	const struct ah_hdr *hdrs;
};

static inline void ah_check_cases(const struct ah *a, const struct prov_query *q,
				  const struct ah_case *c, size_t n)
{
	struct prov_result res;

	prov_result_init(&res);
	for (size_t i = 0; i < n; i++) {
		ah_parse(a, NULL, q, c[i].status, c[i].body, c[i].hdrs, &res);
		if (res.outcome != c[i].outcome)
			HARNESS_FAIL("case %zu (%ld): outcome %s, want %s", i, c[i].status,
				     prov_outcome_names[res.outcome], prov_outcome_names[c[i].outcome]);
		if (c[i].in_reason && strstr(res.reason, c[i].in_reason) == NULL)
			HARNESS_FAIL("case %zu (%ld): reason \"%s\" without \"%s\"", i, c[i].status,
				     res.reason, c[i].in_reason);
		if (c[i].not_in_reason && strstr(res.reason, c[i].not_in_reason) != NULL)
			HARNESS_FAIL("case %zu (%ld): reason \"%s\" quotes \"%s\"", i, c[i].status,
				     res.reason, c[i].not_in_reason);
	}
	prov_result_release(&res);
}

/* One answer and the time it says the key may be used again. */
struct ah_until {
	const char *body;
	const struct ah_hdr *hdrs;
	int64_t until_ms;
};

/* Each answer of status comes to outcome with its until_ms. */
static inline void ah_check_until(const struct ah *a, const struct prov_query *q, long status,
				  enum prov_outcome outcome, const struct ah_until *c, size_t n)
{
	struct prov_result res;

	prov_result_init(&res);
	for (size_t i = 0; i < n; i++) {
		ah_parse(a, NULL, q, status, c[i].body, c[i].hdrs, &res);
		if (res.outcome != outcome)
			HARNESS_FAIL("case %zu: outcome %s, want %s", i,
				     prov_outcome_names[res.outcome], prov_outcome_names[outcome]);
		if (res.until_ms != c[i].until_ms)
			HARNESS_FAIL("case %zu: until_ms %" PRId64 ", want %" PRId64, i, res.until_ms,
				     c[i].until_ms);
	}
	prov_result_release(&res);
}

/* Every body of a status the adapter must not believe: transient, nothing
 * mapped, nothing charged, no job to poll, a reason that quotes none of
 * leaks (a NULL-ended list of words from the bodies). */
static inline void ah_check_transient(const struct ah *a, const struct prov_query *q, long status,
				      const char *const *bodies, size_t n,
				      const char *const *leaks)
{
	struct prov_result res;

	prov_result_init(&res);
	for (size_t i = 0; i < n; i++) {
		ah_parse(a, NULL, q, status, bodies[i], NULL, &res);
		if (res.outcome != PROV_TRANSIENT)
			HARNESS_FAIL("body %zu: outcome %s, want transient", i,
				     prov_outcome_names[res.outcome]);
		CHECK_INT(res.found, 0);
		for (int f = 0; f < FLD__MAX; f++)
			CHECK(res.value[f] == NULL);
		CHECK_INT(res.credits, 0);
		CHECK_STR(res.pending_id, "");
		CHECK(res.reason[0] != '\0');
		for (size_t k = 0; leaks && leaks[k]; k++) {
			if (strstr(res.reason, leaks[k]))
				HARNESS_FAIL("body %zu: reason \"%s\" quotes \"%s\"", i, res.reason,
					     leaks[k]);
		}
	}
	prov_result_release(&res);
}

/* No answer is transient and says so: a timeout, even of an answer
 * (status and body) that is a hit when it arrives in time, and no status
 * at all; the values of the hit parsed before are gone. */
static inline void ah_check_no_answer(const struct ah *a, const struct prov_query *q, long status,
				      const char *hit)
{
	struct prov_response r = { status, true, hit, strlen(hit), NULL, 0 };
	struct prov_result res;

	prov_result_init(&res);
	ah_parse(a, NULL, q, status, hit, NULL, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	a->ops->parse(a->p, q, &r, a->now_ms, &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	CHECK(strstr(res.reason, "timed out") != NULL);
	CHECK_INT(res.found, 0);
	for (int f = 0; f < FLD__MAX; f++)
		CHECK(res.value[f] == NULL);
	r = (struct prov_response){ 0, false, "", 0, NULL, 0 };
	a->ops->parse(a->p, q, &r, a->now_ms, &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	CHECK(strstr(res.reason, "no response") != NULL);
	/* a status with a NULL body */
	r = (struct prov_response){ status, false, NULL, 0, NULL, 0 };
	a->ops->parse(a->p, q, &r, a->now_ms, &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	prov_result_release(&res);
}

/* The ops table of an HTTP adapter of kind (with a poll when polls). */
static inline void ah_check_ops(const struct prov_ops *ops, const char *kind, bool polls)
{
	CHECK_STR(ops->kind, kind);
	CHECK(prov_ops_find(kind) == ops);
	CHECK(ops->needs_key);
	CHECK(ops->build != NULL && ops->parse != NULL);
	CHECK((ops->build_poll != NULL) == polls);
	CHECK(ops->answer == NULL);
}

/* The key appears in exactly one place of r: the header line `line`. */
static inline void ah_check_key_only_in(const struct prov_request *r, const char *key,
					const char *line)
{
	unsigned hits = 0;

	CHECK(strstr(buf_cstr(&r->url), key) == NULL);
	CHECK(strstr(buf_cstr(&r->body), key) == NULL);
	for (unsigned i = 0; i < r->nheaders; i++) {
		if (strstr(r->headers[i], key)) {
			hits++;
			CHECK_STR(r->headers[i], line);
		}
	}
	CHECK_INT(hits, 1);
}

/* A GET as the adapters send one: url, no body, the headers Accept
 * (JSON), User-Agent (enrichd/<version>) and key_line, in that order, and
 * the key nowhere else. */
static inline void ah_check_get(const struct prov_request *r, const char *url, const char *key,
				const char *key_line)
{
	CHECK_STR(r->method, "GET");
	CHECK_STR(buf_cstr(&r->url), url);
	CHECK_INT(r->body.len, 0);
	CHECK_INT(r->nheaders, 3);
	CHECK_STR(r->headers[0], "Accept: application/json");
	CHECK_STR(r->headers[1], "User-Agent: enrichd/" ENRICHD_VERSION);
	CHECK_STR(r->headers[2], key_line);
	ah_check_key_only_in(r, key, key_line);
}

/* ---- search adapters (lib/provider.h, struct prov_search_ops) ---------- */

/* A search of kind with one filter (f, values) for limit results. */
static inline struct prov_search ah_search(enum prov_search_kind kind, enum prov_filter f,
					   const char *const *values, size_t n, int limit)
{
	struct prov_search s;

	memset(&s, 0, sizeof s);
	s.kind = kind;
	s.f[f].v = values;
	s.f[f].n = n;
	s.limit = limit;
	return s;
}

/* Parse one search answer to s: status, body (NULL: empty), headers (a
 * NULL-ended list or NULL) into call and page. */
static inline void ah_search_parse(const struct prov_search_ops *ops, const struct cfg_provider *p,
				   const struct prov_search *s, int64_t now_ms, long status,
				   const char *body, const struct ah_hdr *hdrs,
				   struct prov_result *call, struct prov_page *page)
{
	struct prov_header h[AH_HEADERS_MAX];
	struct prov_response r;
	size_t n = 0;

	for (; hdrs && hdrs[n].name && n < AH_HEADERS_MAX; n++) {
		h[n].name = (char *)hdrs[n].name;
		h[n].value = (char *)hdrs[n].value;
	}
	r.status = status;
	r.timed_out = false;
	r.body = body ? body : "";
	r.body_len = body ? strlen(body) : 0;
	r.headers = h;
	r.nheaders = n;
	ops->parse(p, s, &r, now_ms, call, page);
}

/* What every failed search answer leaves: the outcome, an empty page, no
 * credits, a reason that quotes none of leaks (NULL-ended, may be NULL). */
static inline void ah_check_search_failure(const struct prov_result *call,
					   const struct prov_page *page, enum prov_outcome want,
					   const char *const *leaks)
{
	if (call->outcome != want)
		HARNESS_FAIL("outcome %s, want %s (%s)", prov_outcome_names[call->outcome],
			     prov_outcome_names[want], call->reason);
	CHECK_INT(page->n, 0);
	CHECK(page->next_cursor == NULL);
	CHECK_INT(call->credits, 0);
	CHECK(call->reason[0] != '\0');
	for (size_t k = 0; leaks && leaks[k]; k++) {
		if (strstr(call->reason, leaks[k]))
			HARNESS_FAIL("reason \"%s\" quotes \"%s\"", call->reason, leaks[k]);
	}
}

/* The body of a built request as JSON; NULL (and a failure) when it is not. */
static inline json_t *ah_body_json(const struct prov_request *r)
{
	json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);

	if (j == NULL)
		HARNESS_FAIL("request body is not JSON: %s", buf_cstr(&r->body));
	return j;
}

/* The body of r equals the JSON text want (member order aside). */
static inline void ah_check_body(const struct prov_request *r, const char *want)
{
	json_t *got = ah_body_json(r), *w = json_loads(want, 0, NULL);

	if (w == NULL)
		HARNESS_FAIL("bad JSON in the test: %s", want);
	else if (got && !json_equal(got, w))
		HARNESS_FAIL("body %s, want %s", buf_cstr(&r->body), want);
	json_decref(got);
	json_decref(w);
}

#endif
