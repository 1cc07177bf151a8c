/*
 * provider.h - the interface every provider adapter implements.
 *
 * Prefix: prov_.  An adapter has four jobs: build the
 * HTTP request from the normalised identifiers and the wanted fields;
 * classify the answer into exactly one enum prov_outcome; map the body to
 * record fields with a confidence; read the meters (credits spent,
 * requests left, reset time) from headers and body.  Adapters are pure:
 * they never perform I/O (lib/upstream does the HTTP, lib/rotation walks
 * the keys), never log secrets, and never copy upstream bodies into
 * messages.  The wire formats are in docs/providers.md.
 *
 * Built-in kinds without HTTP ("local", "mock") implement answer() instead
 * of build()/parse().
 *
 * Thread-safety: the ops tables are immutable; every function is
 * reentrant.
 */
#ifndef ENR_PROVIDER_H
#define ENR_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "err.h"
#include "fields.h"
#include "limits.h"

enum prov_outcome {
	PROV_HIT,
	PROV_MISS,
	PROV_RATE_LIMITED,
	PROV_QUOTA_EXHAUSTED,
	PROV_KEY_INVALID,
	PROV_REQUEST_REJECTED,
	PROV_PENDING,
	PROV_TRANSIENT,
	PROV_OUTCOME__MAX
};

extern const char *const prov_outcome_names[PROV_OUTCOME__MAX];

/* What a lookup asks about: a person, or a company.  A query is a company
 * lookup when every wanted field is a company field and a domain or a
 * company name is known (prov_company_only); the planner (lib/plan.h)
 * gives a company lookup only the company's domain or name.  AUTO: decide
 * from the query that way. */
enum prov_kind { PROV_KIND_AUTO, PROV_KIND_PERSON, PROV_KIND_COMPANY, PROV_KIND__MAX };

extern const char *const prov_kind_names[PROV_KIND__MAX];

/* What the waterfall asks one provider for. */
struct prov_query {
	const char *id[ID__MAX]; /* normalised identifiers (lib/record), NULL when absent */
	fld_set want;            /* the fields still missing; ask only for these */
};

#define PROV_MAX_HEADERS 8
#define PROV_HEADER_LINE 512   /* bytes of one header line, its terminator included */

/* How a call speaks HTTP (a provider's "http2" setting). */
enum prov_http2 {
	PROV_HTTP2_AUTO,            /* HTTP/2 when TLS negotiates it, else HTTP/1.1 */
	PROV_HTTP2_OFF,             /* HTTP/1.1 only */
};

/* An HTTP request an adapter wants made (caller-owned: prov_request_init /
 * prov_request_release). */
struct prov_request {
	char method[8];                      /* "GET" or "POST" */
	enum prov_http2 http2;
	const char *ca_file;                 /* borrowed; NULL or "": the system's CAs */
	struct buf url;
	struct buf body;                     /* len 0: no body */
	unsigned nheaders;
	/* The complete "Name: value" lines, nheaders of them, each on the heap
	 * in its own size (PROV_HEADER_LINE at most, terminator included). */
	char *headers[PROV_MAX_HEADERS];
};

void prov_request_init(struct prov_request *r);
void prov_request_release(struct prov_request *r);

/* Add "name: value" (value cut at the line's size). ENR_E_RANGE when full,
 * ENR_E_NOMEM. */
ENR_MUST_CHECK enum enr_err prov_request_header(struct prov_request *r, const char *name, const char *value);

/* Append "name=<percent-encoded value>" to r->url with '?' or '&' as needed
 * (RFC 3986: unreserved characters stay, everything else is %XX). */
ENR_MUST_CHECK enum enr_err prov_request_query(struct prov_request *r, const char *name, const char *value);

/* One response header, as received. */
struct prov_header {
	char *name;   /* lower-cased */
	char *value;  /* trimmed */
};

/* An HTTP response (or the absence of one) as the upstream client got it. */
struct prov_response {
	long status;             /* 0 when no response arrived */
	bool timed_out;          /* the call hit its timeout */
	const char *body;        /* NUL-terminated, may be empty */
	size_t body_len;
	const struct prov_header *headers;
	size_t nheaders;
};

/* The value of header name (case-insensitive), NULL when absent. */
const char *prov_header(const struct prov_response *r, const char *name);

/* What one call produced (caller-owned: prov_result_init/release). */
struct prov_result {
	enum prov_outcome outcome;
	int64_t until_ms;             /* rate_limited/quota_exhausted: usable again at (ms since
					 the epoch); 0 when the provider did not say */
	char *value[FLD__MAX];        /* owned, NULL when not found */
	double confidence[FLD__MAX];  /* 0..1 */
	fld_set found;
	int credits;                  /* credits this call spent */
	int bought_credits;           /* from the cache: what the answer cost when bought */
	int64_t requests_left;        /* from the meters; -1 when unknown */
	int64_t credits_left;         /* -1 when unknown */
	char pending_id[128];         /* PROV_PENDING: what to poll */
	char reason[160];             /* short, loggable; never upstream text or secrets */
	/* The registrable domain of the company a person answer names (PDL
	 * job_company_website, Lusha company.domain, Surfe companyDomain), ""
	 * when it names none: not a field, it keys the company lookup. */
	char company_domain[254];
};

void prov_result_init(struct prov_result *r);
void prov_result_release(struct prov_result *r);

/* Forget values and outcome, keep nothing (same as release + init). */
void prov_result_reset(struct prov_result *r);

/* Set field f to a copy of value (n bytes), trimmed; empty values and
 * values over the cap (LIM_PROV_VALUE_MAX) or not valid UTF-8 are ignored.
 * A second set of the same field keeps the first.  ENR_E_NOMEM only. */
ENR_MUST_CHECK enum enr_err prov_result_set(struct prov_result *r, enum fld_id f, const char *value, size_t n,
			     double confidence);

/* Keep the company domain a person answer names (v: a JSON string,
 * possibly a URL such as "www.acme.com/"), when it is a valid host name;
 * anything else is ignored. */
struct json_t;
void prov_result_company_domain(struct prov_result *r, const struct json_t *v);

/* Printf into r->reason. */
void prov_result_reason(struct prov_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Shared read-only context for built-in providers. */
struct dom_lists;
struct prov_ctx {
	const struct dom_lists *domains;  /* free / disposable e-mail domains */
};

struct prov_search_ops;

struct prov_ops {
	const char *kind;
	bool needs_key;        /* false for local and mock */

	/* What a lookup of this kind for q can answer: the fields the
	 * provider's answer carries (before knowing whether it finds anyone),
	 * or 0 when q holds nothing the provider can search by for that kind.
	 * The planner (lib/plan.h) asks a provider only for what it can add,
	 * and refuses a request nobody could look up, from this alone, so it
	 * follows the configuration.  Never NULL. */
	fld_set (*supplies)(const struct cfg_provider *p, enum prov_kind kind,
			    const struct prov_query *q);

	/* HTTP kinds: the first request for q with key.  ENR_E_INVALID when q
	 * holds nothing this provider can search by (the waterfall treats that
	 * as a miss without a call). */
	enum enr_err (*build)(const struct cfg_provider *p, const struct cfg_key *key,
			      const struct prov_query *q, struct prov_request *out);

	/* Asynchronous kinds (surfe): the poll for a pending job; NULL otherwise. */
	enum enr_err (*build_poll)(const struct cfg_provider *p, const struct cfg_key *key,
				   const char *pending_id, struct prov_request *out);

	/* HTTP kinds: classify resp, map fields, read meters.  now_ms turns
	 * relative reset hints into until_ms.  Never fails: anything it cannot
	 * understand is PROV_TRANSIENT with a reason. */
	void (*parse)(const struct cfg_provider *p, const struct prov_query *q,
		      const struct prov_response *resp, int64_t now_ms, struct prov_result *out);

	/* Built-in kinds: answer q directly (outcome hit or miss). */
	enum enr_err (*answer)(const struct prov_ctx *ctx, const struct cfg_provider *p,
			       const struct prov_query *q, struct prov_result *out);

	/* Bulk person lookups (docs/providers.md, "Bulk and search calls"):
	 * the most items one call carries, 0 when the kind has no bulk
	 * endpoint (build_bulk and parse_bulk are then NULL).  build_bulk
	 * makes one request for the n person queries qs, item i carrying id
	 * ids[i]; ENR_E_INVALID when one of them names no one the provider
	 * can search for.  parse_bulk reads the answer: call gets the call's
	 * own outcome (PROV_HIT when the items hold answers; PROV_PENDING with
	 * pending_id for an asynchronous kind, whose poll build_poll makes and
	 * parse_bulk reads again; otherwise the outcome of the whole call, as
	 * for a single lookup, and the items say nothing), its meters and the
	 * credits it spent; items[i] gets item i's own outcome (hit, miss,
	 * request_rejected, quota_exhausted when the account ran out in the
	 * middle of the call, transient when the item is missing or failed)
	 * with its fields and credits.  Items are matched by id, never by
	 * position alone.  Never fails. */
	int bulk_max;
	enum enr_err (*build_bulk)(const struct cfg_provider *p, const struct cfg_key *key,
				   const struct prov_query *const *qs, const char *const *ids,
				   size_t n, struct prov_request *out);
	void (*parse_bulk)(const struct cfg_provider *p, const struct prov_query *const *qs,
			   const char *const *ids, size_t n, const struct prov_response *resp,
			   int64_t now_ms, struct prov_result *call, struct prov_result *items);

	/* People and company search (below); NULL when the kind has none. */
	const struct prov_search_ops *search;
};

/* The adapter of a kind ("pdl", "lusha", "surfe", "generic", "local",
 * "mock"); NULL when unknown. */
const struct prov_ops *prov_ops_find(const char *kind);

/* Helpers shared by adapters (lib/provider.c). */

/* Parse an HTTP date or a delta-seconds Retry-After value into ms since
 * the epoch; 0 when absent or unparseable. */
int64_t prov_retry_after_ms(const struct prov_response *r, int64_t now_ms);

/* The identifier id of q when present and non-empty, else NULL. */
const char *prov_query_id(const struct prov_query *q, enum fld_ident id);

/* True when s is present and non-empty. */
bool prov_present(const char *s);

/* True when q is a company lookup: every wanted field is a company field
 * and q has a domain or a company name. */
bool prov_company_only(const struct prov_query *q);

/* The fields of the company group (company_name, industry, company_size,
 * company_revenue, technologies). */
fld_set prov_company_fields(void);

/* True for a person's LinkedIn page as lib/record normalises it
 * (https://www.linkedin.com/in/... or /pub/...); company pages are not. */
bool prov_is_profile_url(const char *s);

/* q's LinkedIn URL when it is a person's page, else NULL. */
const char *prov_person_profile(const struct prov_query *q);

/* Start out->url with base (trailing slashes dropped) and path.
 * ENR_E_INVALID for an empty base, ENR_E_TOO_LARGE past the cap. */
ENR_MUST_CHECK enum enr_err prov_request_base(struct prov_request *out, const char *base, const char *path);

/* Forget every field value of r (a 200 that turned out not to be a hit). */
void prov_result_clear_values(struct prov_result *r);

/* Set field f from a JSON scalar (string or number); absent or null sets
 * nothing.  False only when memory ran out. */
struct json_t;
bool prov_set_json_text(struct prov_result *r, enum fld_id f, const struct json_t *v,
			double confidence);

/* ---- classifying an answer by its status --------------------------------
 *
 * The built-in HTTP adapters (pdl, lusha, surfe) describe their answers as
 * a table, as the generic adapter's configuration does: each row gives a
 * range of statuses its outcome, and a handler where the status alone does
 * not decide (a 200 whose body must be read, a 429 whose reset time is in
 * a header).  Rows are tried in order and the first that covers the status
 * wins; the provider-specific special cases are documented next to their
 * rows in lib/providers/.  The wire formats are in docs/providers.md. */

/* One answer being classified, as a row's handler sees it. */
struct prov_answer {
	const char *name;                  /* the adapter: every reason starts "<name>: " */
	const struct cfg_provider *p;
	const struct prov_query *q;
	const struct prov_response *resp;  /* never NULL here */
	int64_t now_ms;
};

struct prov_status_rule {
	long lo, hi;               /* statuses lo..hi */
	enum prov_outcome outcome;
	const char *reason;        /* "<name>: <reason> (<status>)"; NULL: the handler says */
	/* NULL, or called once outcome and reason are set; it may change both
	 * and fill in values, credits and until_ms. */
	void (*then)(const struct prov_answer *a, struct prov_result *out);
};

struct prov_status_table {
	const char *name;
	const struct prov_status_rule *rows;
	size_t nrows;
	/* NULL, or reads the meters (credits, requests left) from every answer
	 * that arrived, timed out or not, before it is classified. */
	void (*meters)(const struct prov_response *resp, struct prov_result *out);
};

/* The whole of an adapter's parse(): out reset and transient; no answer
 * (resp or p NULL, status 0) is transient "no response", a timeout
 * "timed out"; the meters; then the first row covering the status.  A
 * status no row covers is transient: "server error (5xx)" or "unexpected
 * status (N)". */
void prov_parse_by_status(const struct prov_status_table *t, const struct cfg_provider *p,
			  const struct prov_query *q, const struct prov_response *resp,
			  int64_t now_ms, struct prov_result *out);

/* The first steps of prov_parse_by_status for adapters without a table
 * (generic): out reset and transient; false, with the reason set, when
 * there is no answer to classify. */
bool prov_parse_begin(const char *name, const struct cfg_provider *p,
		      const struct prov_response *resp, struct prov_result *out);

/* A status nothing classified: transient, "server error" or "unexpected
 * status". */
void prov_status_unknown(const char *name, long status, struct prov_result *out);

/* A row handler for a 404 that means "no such record" only when the body
 * is the provider's JSON error object: then a miss; any other 404 (a
 * proxy, a wrong base_url) says nothing about the record and stays
 * transient. */
void prov_not_found_404(const struct prov_answer *a, struct prov_result *out);

/* A header as a whole number in [0, max]; false when absent or not one. */
bool prov_header_int(const struct prov_response *r, const char *name, int64_t max, int64_t *out);

/* Start of the next UTC minute / hour / day after now_ms. */
int64_t prov_next_minute_ms(int64_t now_ms);
int64_t prov_next_hour_ms(int64_t now_ms);
int64_t prov_next_utc_midnight_ms(int64_t now_ms);

/* ---- search ---------------------------------------------------------------
 *
 * A search asks a provider for one page of the people or companies that
 * match a set of filters (docs/providers.md, "Bulk and search calls" and
 * "Search filters and results in enrichd's terms").  The filters come
 * normalised (lib/search.h): lower case, trimmed, deduplicated and sorted;
 * seniorities and sizes are enrichd's values (cxo, vp, ...; 1-10, 11-50,
 * ...), countries an ISO 3166 code when one is known (prov_country_*).  The
 * whole call's outcome is the key's, as for a lookup; a page (possibly
 * empty) is an answer: PROV_HIT with records, PROV_MISS without. */

enum prov_search_kind { PROV_SEARCH_PEOPLE, PROV_SEARCH_COMPANIES, PROV_SEARCH__MAX };

extern const char *const prov_search_kind_names[PROV_SEARCH__MAX]; /* "people", "companies" */

/* The filters, in the order of their names in requests and cursors. */
enum prov_filter {
	PF_DOMAINS,           /* company domains */
	PF_NAMES,             /* company names */
	PF_TITLES,            /* job titles (a title matches when it contains the text) */
	PF_SENIORITIES,
	PF_DEPARTMENTS,
	PF_COUNTRIES,         /* people: where the person is; companies: the headquarters */
	PF_INDUSTRIES,
	PF_SIZES,             /* head count buckets */
	PF_COMPANY_COUNTRIES, /* people: where the company is */
	PF__MAX
};

extern const char *const prov_filter_names[PF__MAX];

/* A set of filters as a bit mask (bit i = enum prov_filter i). */
typedef uint32_t prov_filter_set;
#define PF_BIT(f) ((prov_filter_set)1u << (f))

/* The filters a search of kind k may use at all. */
prov_filter_set prov_search_filters(enum prov_search_kind k);

struct prov_filter_values {
	const char *const *v;   /* borrowed; n values */
	size_t n;
};

/* One page asked of one provider. */
struct prov_search {
	enum prov_search_kind kind;
	struct prov_filter_values f[PF__MAX];
	int limit;               /* results wanted: 1..the provider's limit_max */
	int per_company;         /* people: at most this many per company (0: no cap) */
	const char *cursor;      /* the provider's token of this page; NULL: the first */
};

/* One record a search found, in enrichd's field names, and the company's
 * domain (not a field: it lets the record be enriched later). */
struct prov_record {
	char *value[FLD__MAX];          /* owned, NULL when the provider gave none */
	char domain[LIM_REC_DOMAIN_MAX + 1];
};

/* One page of results (caller-owned: prov_page_init/release). */
struct prov_page {
	struct prov_record *rec;
	size_t n, cap;
	char *next_cursor;       /* owned; NULL: this was the last page */
	int64_t total;           /* matches in all, -1 when the provider did not say */
};

void prov_page_init(struct prov_page *pg);
void prov_page_release(struct prov_page *pg);

/* A new empty record at the end of pg; NULL when memory ran out or pg
 * already holds LIM_SEARCH_LIMIT_CEILING records. */
struct prov_record *prov_page_add(struct prov_page *pg);

/* Drop the last record (one that turned out to carry nothing). */
void prov_page_drop_last(struct prov_page *pg);

/* Set field f of rec from n bytes, with prov_result_set's rules (trimmed,
 * capped, UTF-8; a second value keeps the first).  ENR_E_NOMEM only. */
ENR_MUST_CHECK enum enr_err prov_record_set(struct prov_record *rec, enum fld_id f, const char *v,
					    size_t n);

/* The same from a JSON scalar (string or number), or an array of strings
 * joined with ", "; absent, null or a boolean sets nothing.  False only
 * when memory ran out. */
bool prov_record_set_json(struct prov_record *rec, enum fld_id f, const struct json_t *v);

/* Keep the company's domain from a JSON string ("www.Acme.com/" and
 * "https://acme.com" become "acme.com") when it is a valid host name. */
void prov_record_domain(struct prov_record *rec, const struct json_t *v);

/* True when rec holds at least one field or a domain. */
bool prov_record_any(const struct prov_record *rec);

/* The next page's token from a JSON value: a non-empty string of at most
 * LIM_SEARCH_PROV_CURSOR_MAX printable ASCII bytes.  Absent, null or ""
 * ends the search (true, no cursor); any other value is false (the answer
 * is not the documented shape).  ENR_E_NOMEM is false with *oom set. */
bool prov_page_cursor(struct prov_page *pg, const struct json_t *v, bool *oom);

/* Map one search result (a JSON object) into r; false only when memory
 * ran out.  arg is the caller's. */
typedef bool (*prov_map_fn)(const struct json_t *el, struct prov_record *r, const void *arg);

/* Add every element of the JSON array list to pg through map, leaving out
 * records with nothing usable.  False, with call's reason naming the
 * provider (name), when an element is not an object or memory ran out. */
bool prov_page_fill(struct prov_result *call, struct prov_page *pg, const struct json_t *list,
		    prov_map_fn map, const void *arg, const char *name);

/* pg's total from a JSON value: a non-negative integer, else unchanged. */
void prov_page_total(struct prov_page *pg, const struct json_t *v);

/* A head count bucket (1-10 ... 10001+) as an employee range: lo..hi,
 * hi -1 for the open top bucket.  False for anything else. */
bool prov_size_range(const char *bucket, int64_t *lo, int64_t *hi);

/* The bucket a head count falls in ("1-10", ..., "10001+"); NULL below 1. */
const char *prov_size_bucket(int64_t employees);

/* Countries: the English short name of an ISO 3166 alpha-2 code, lower
 * case ("us" -> "United States"), and the code of a name (ASCII case
 * ignored); NULL when unknown (lib/domains.h).  Static strings. */
const char *prov_country_name(const char *code);
const char *prov_country_code(const char *name);

struct prov_search_ops {
	/* Whether provider p answers searches of kind k (a generic provider
	 * only when its configuration describes one). */
	bool (*supports)(const struct cfg_provider *p, enum prov_search_kind k);
	/* The filters p can send for kind k; a search with any other is not
	 * asked of p.  per_company: whether it can cap people per company. */
	prov_filter_set (*filters)(const struct cfg_provider *p, enum prov_search_kind k,
				   bool *per_company);
	/* The most results one page of p may ask for. */
	int (*limit_max)(const struct cfg_provider *p, enum prov_search_kind k);
	/* The most credits a page of n results costs: what is reserved before
	 * the call. */
	int64_t (*cost)(const struct cfg_provider *p, enum prov_search_kind k, int n);
	/* The request for s with key.  ENR_E_INVALID when s holds nothing p
	 * can search by. */
	enum enr_err (*build)(const struct cfg_provider *p, const struct cfg_key *key,
			      const struct prov_search *s, struct prov_request *out);
	/* Classify resp into call (outcome, until_ms, meters, credits, reason,
	 * as parse() does for a lookup; no field values) and, for an answer,
	 * fill page (reset first).  Anything not the documented shape is
	 * PROV_TRANSIENT with an empty page.  Never fails. */
	void (*parse)(const struct cfg_provider *p, const struct prov_search *s,
		      const struct prov_response *resp, int64_t now_ms, struct prov_result *call,
		      struct prov_page *page);
};

/* The search adapters (lib/providers/pdl_search.c, surfe_search.c,
 * generic_search.c). */
extern const struct prov_search_ops prov_pdl_search_ops;
extern const struct prov_search_ops prov_surfe_search_ops;
extern const struct prov_search_ops prov_generic_search_ops;

#endif
