/*
 * search.h - POST /search/people and POST /search/companies: the request
 * and its normalised filters, the cursor, the page cache, the answer, and
 * the planner that asks the providers (lib/search_run.c).
 *
 * Prefix: srch_.  A request is validated against a table of members (the
 * filters of its kind, "limit", "cursor", and for people
 * "people_per_company"): unknown members, wrong types, values that are no
 * filter value, a limit outside 1..search.limit_max, a cursor that does
 * not verify and a search without any filter are refused, every problem
 * reported as {"field", "problem"}.  Filters are normalised so that equal
 * searches are equal (and share their cache entries):
 *   domains              as POST /enrich's domain: lower case, no scheme,
 *                        "www.", port or path; a valid host name
 *   names, titles,       trimmed, inner white space one space, ASCII
 *   industries           lower case
 *   seniorities          cxo, owner, partner, vp, director, manager,
 *                        senior, entry, training, unpaid ("C-Level" and
 *                        "vice president" are accepted for cxo and vp)
 *   departments          lower case words joined by "_" (human_resources)
 *   sizes                1-10, 11-50, 51-200, 201-500, 501-1000,
 *                        1001-5000, 5001-10000, 10001+
 *   countries,           an ISO 3166 alpha-2 code ("us", "gb"), given as
 *   company_countries    the code or the English name
 * then each list deduplicated and sorted.  At most LIM_SEARCH_VALUES_MAX
 * values a filter, each at most LIM_SEARCH_VALUE_MAX bytes, and
 * LIM_SEARCH_FILTERS_BYTES for all of them as JSON.
 *
 * A cursor is an opaque token: base64url of a JSON object (the kind, the
 * provider that answered, that provider's own token, the normalised
 * filters, the page size, the offset and the time it was made), a '.',
 * and base64url of its HMAC-SHA256 under the cursor key (search.
 * cursor_secret, else derived from the configured key secrets).  A cursor
 * that was altered, belongs to the other kind, or is older than
 * search.cursor_ttl_s is refused.  It pins the provider: the next page
 * comes from the provider that gave the first.
 *
 * Ownership: a struct srch_request owns its strings (srch_request_init /
 * release); returned strings and JSON values are the caller's.  Pure
 * functions except srch_run / srch_collect (store and providers);
 * thread-safe.
 */
#ifndef ENR_SEARCH_H
#define ENR_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "limits.h"
#include "provider.h"
#include "store.h"
#include "waterfall.h"

#define SRCH_KEY_LEN 32

/* Normalised filters: each list sorted and distinct (owned strings). */
struct srch_filters {
	char **v[PF__MAX];
	size_t n[PF__MAX];
};

struct srch_request {
	enum prov_search_kind kind;
	struct srch_filters f;
	char *canon;               /* the filters (and people_per_company) as canonical JSON */
	int limit;                 /* results asked for: 1..search.limit_max */
	int per_company;           /* people_per_company, 0 when not given */
	/* From a cursor (has_cursor): the page it names. */
	bool has_cursor;
	char provider[LIM_NAME_MAX + 1];
	char *prov_cursor;         /* the provider's token; NULL: its first page */
	int64_t offset;            /* results on the pages before this one */
};

void srch_request_init(struct srch_request *r);
void srch_request_release(struct srch_request *r);

/* The cursor key of cfg (SRCH_KEY_LEN bytes): a digest of
 * search.cursor_secret when set, else of every configured key's id and
 * secret, so every host with the same configuration has the same key. */
void srch_cursor_key(const struct cfg *cfg, unsigned char out[SRCH_KEY_LEN]);

/* Parse and validate a request body of kind (len bytes) at now_s (cursor
 * age).  ENR_E_INVALID with *details (a JSON array the caller owns, NULL
 * otherwise) naming every problem; ENR_E_NOMEM. */
ENR_MUST_CHECK enum enr_err srch_parse(const char *body, size_t len, enum prov_search_kind kind,
				       const struct cfg *cfg, const unsigned char key[SRCH_KEY_LEN],
				       int64_t now_s, struct srch_request *out, json_t **details);

/* The same for a parsed object (from_search's cursor member is checked
 * with it): obj is borrowed. */
ENR_MUST_CHECK enum enr_err srch_parse_json(const json_t *obj, enum prov_search_kind kind,
					    const struct cfg *cfg,
					    const unsigned char key[SRCH_KEY_LEN], int64_t now_s,
					    struct srch_request *out, json_t **details);

/* Normalise one value of filter f (n bytes): writes it into out (outsz
 * bytes).  False with *why (a static phrase) when it is no such value. */
bool srch_norm_value(enum prov_filter f, const char *v, size_t n, char *out, size_t outsz,
		     const char **why);

/* The cursor of a page of req answered by provider: its own token ptoken
 * (NULL: the provider's first page), at offset, made at now_s.  A new
 * string in *out (the caller frees it). */
ENR_MUST_CHECK enum enr_err srch_cursor_make(const unsigned char key[SRCH_KEY_LEN],
					     const struct srch_request *req, const char *provider,
					     const char *ptoken, int limit, int64_t offset,
					     int64_t now_s, char **out);

/* The kind a cursor is for, without verifying it (to pick the endpoint
 * toggle of a from_search submission); false when it does not say. */
bool srch_cursor_kind(const char *cursor, size_t n, enum prov_search_kind *out);

/* The cache key of a page: kind, provider, filters, page size, the
 * provider's token of the page. */
void srch_page_key(const struct srch_request *req, const char *provider, int limit,
		   const char *ptoken, unsigned char out[SRCH_KEY_LEN]);

/* A page as the cache keeps it ({"r": records, "n": next token, "t":
 * total, "c": credits it cost}), and back.  dump: a new string or NULL
 * (out of memory); load: ENR_E_INVALID for a body that is not one. */
char *srch_page_dump(const struct prov_page *pg, int credits);
ENR_MUST_CHECK enum enr_err srch_page_load(const char *body, struct prov_page *out, int *credits);

/* A found record as a result: its fields (those the provider gave), the
 * company's "domain" and "_source".  New reference; NULL out of memory. */
json_t *srch_record_json(const struct prov_record *r, const char *source);

/* The identifiers of a result row (one srch_record_json made, or a
 * client posted back) for a batch record: email (from business_email,
 * else personal_email), linkedin_url, first_name, last_name,
 * company_name, domain; other members are left out.  New reference; NULL
 * when row is not an object or memory ran out. */
json_t *srch_row_identifiers(const json_t *row);

/* ---- the planner (lib/search_run.c) -------------------------------------- */

struct srch_ctx {
	struct store *store;
	const struct cfg *cfg;
	enum cfg_endpoint_id endpoint;  /* toggle, rotation switch and deadline */
	int64_t deadline_mono_ms;       /* 0: none */
	int64_t account_id;             /* whose budget pays */
	const unsigned char *key;       /* the cursor key */
};

/* Why a search got no page. */
enum srch_status {
	SRCH_ANSWERED,      /* a provider answered (page may be empty) */
	SRCH_NO_PROVIDER,   /* no provider is configured for the kind */
	SRCH_NOT_APPLICABLE,/* no configured provider can search by these filters */
	SRCH_CURSOR_GONE,   /* the cursor's provider is no longer configured */
	SRCH_UNAVAILABLE,   /* no provider could be asked: no usable key */
	SRCH_FAILED,        /* the providers asked failed */
	SRCH_DEADLINE,      /* the deadline passed, or the last failure timed out */
	SRCH_BUDGET,        /* the client's credit budget cannot take the call */
	SRCH__MAX
};

extern const char *const srch_status_names[SRCH__MAX];

struct srch_result {
	enum srch_status status;
	struct prov_page page;
	char source[LIM_NAME_MAX + 1];   /* the provider that answered */
	int limit;                       /* the page size it was asked for */
	char tried[WF_PROVIDERS_MAX][LIM_NAME_MAX + 1];  /* asked (cache included), in order */
	int ntried;
	char skipped[WF_PROVIDERS_MAX][LIM_NAME_MAX + 1]; /* no usable key */
	int nskipped;
	struct wf_error errors[WF_PROVIDERS_MAX];         /* each that gave no page, once */
	int nerrors;
	bool cached;                     /* answered from the cache, no upstream call */
	int credits;                     /* credits spent by upstream calls */
	int calls;                       /* upstream HTTP requests */
	int64_t comes_back_ms;           /* SRCH_UNAVAILABLE: earliest key return (wall clock) */
	int64_t budget_until_ms;         /* SRCH_BUDGET: when the budget resets */
	int budget_fits;                 /* SRCH_BUDGET: results a page could have now */
	char *next_cursor;               /* owned: our cursor of the next page, NULL at the end */
	char *page_cursor;               /* owned: our cursor of this page */
};

void srch_result_init(struct srch_result *r);
void srch_result_release(struct srch_result *r);

/* Answer req: its cursor's provider, or the kind's providers in order
 * (search.people / search.companies) until one answers, each page from
 * the cache when fresh (cache.search_ttl_s), else through the key pool
 * (lib/rotation.h, rot_call_op) for no more than req->limit results, the
 * client's budget reserved first; a provider without a usable key or
 * that fails is listed and the next one asked.  An answered page goes to
 * the cache.  ENR_OK whatever the providers did (out->status says);
 * errors: store or memory. */
ENR_MUST_CHECK enum enr_err srch_run(const struct srch_ctx *ctx, const struct srch_request *req,
				     struct srch_result *out);

/* The response body of an answered search: {"results": [...],
 * "next_cursor": ..., "_meta": {request_id, status (complete, or
 * incomplete when a provider before the one that answered failed or had
 * no key), source, providers_tried, providers_skipped, errors, cached,
 * credits_used, total, page_cursor, elapsed_ms}}.  New reference; NULL
 * when out of memory. */
json_t *srch_response(const struct srch_result *r, const char *request_id, int64_t elapsed_ms);

/* Register the metrics families (once per process). */
void srch_init(void);

/* Count one answer to a client: the search's kind, provider and status
 * (metrics: searches by provider and outcome, results returned). */
void srch_count(enum prov_search_kind kind, const struct srch_result *r);

/* For a batch made from a search (POST /enrich/enqueue from_search): the
 * rows of the page req names and, while fewer than max_records and at
 * most max_pages pages, of the pages after it, as identifier objects
 * (srch_row_identifiers) appended to rows.  *out gets the
 * last page's outcome (status, credits, calls, providers).  ENR_OK
 * whatever the providers did; out->status other than SRCH_ANSWERED means
 * the walk stopped there. */
ENR_MUST_CHECK enum enr_err srch_collect(const struct srch_ctx *ctx, struct srch_request *req,
					 int max_records, int max_pages, json_t *rows,
					 struct srch_result *out, int *credits, int *pages);

#endif
