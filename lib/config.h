/*
 * config.h - the configuration: load, validate, snapshot, swap.
 *
 * Prefix: cfg_.  cfg_load() parses one libconfig file into a struct cfg
 * and validates everything (unknown settings, types, ranges, references
 * between sections, secrets that do not resolve); errors name the file,
 * the line and the setting.  A loaded struct cfg is immutable and
 * reference-counted: the responder publishes one as "current", each
 * request takes a reference with cfg_acquire() and drops it with
 * cfg_release(), and a reload publishes a fresh snapshot while requests
 * in flight finish on the one they started with.
 *
 * Relative paths in the file (listen, the PATH of store "sqlite:PATH",
 * data_dir, state_dir, log_file, "file:" secrets, @include), and the
 * defaults of those settings, are taken relative to the directory of the
 * file, never the working directory; a loaded snapshot holds them
 * absolute.
 *
 * The module is lib/config_rules.c (the directive tables: every setting
 * once), lib/config_check.c (checks of single values), lib/config_load.c
 * (reading a file against the tables) and lib/config_snapshot.c
 * (publish/acquire/release).
 */
#ifndef ENR_CONFIG_H
#define ENR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "log.h"

enum cfg_endpoint_id {
	CFG_EP_ENRICH,
	CFG_EP_ENQUEUE,
	CFG_EP_JOBS,
	CFG_EP_ADMIN,
	CFG_EP_SEARCH_PEOPLE,
	CFG_EP_SEARCH_COMPANIES,
	CFG_EP__MAX
};

enum cfg_fallback { CFG_FALLBACK_NONE, CFG_FALLBACK_MOCK, CFG_FALLBACK__MAX };

enum cfg_strategy {
	CFG_STRATEGY_ROUND_ROBIN,
	CFG_STRATEGY_ORDERED,
	CFG_STRATEGY_LEAST_USED,
	CFG_STRATEGY__MAX
};

/* Field groups of the waterfall: which fields a provider list answers. */
enum cfg_group {
	CFG_GROUP_PERSON,
	CFG_GROUP_PHONE,
	CFG_GROUP_EMAIL,
	CFG_GROUP_COMPANY,
	CFG_GROUP__MAX
};

extern const char *const cfg_endpoint_names[CFG_EP__MAX];
extern const char *const cfg_fallback_names[CFG_FALLBACK__MAX];
extern const char *const cfg_strategy_names[CFG_STRATEGY__MAX];
extern const char *const cfg_group_names[CFG_GROUP__MAX];

struct cfg_endpoint {
	bool enabled;
	int deadline_ms;            /* enrich, search_*: bound on the whole request */
	enum cfg_fallback fallback; /* enrich: what answers when no provider could */
};

struct cfg_account_limits {
	int64_t requests_per_minute;
	int64_t burst;
	int64_t records_per_hour;
	int64_t records_per_day;
};

/* A credit budget: credits per period ("day": the UTC day, "month": the
 * calendar month in UTC; lib/budget.h enum bud_period), 0 = none. */
struct cfg_budget {
	int64_t credits;
	int period;
};

struct cfg_key {
	char *id;
	char *account;   /* upstream account; keys of one account share limits */
	char *secret;    /* resolved from env:NAME or file:PATH; never logged */
	char *category;  /* optional: "phone", "email", ... ("" when none) */
	int requests_per_minute; /* pacing for this key (0: provider's value) */
	struct cfg_budget budget; /* the key's own credit budget */
};

/* Statuses a generic provider maps to outcomes. */
struct cfg_int_list {
	int *v;
	size_t n;
};

struct cfg_generic {
	char *method;        /* GET | POST */
	char *url;           /* template: {base_url} {email} {domain} ... url-encoded */
	char *body;          /* template for POST, JSON-escaped values ("" none) */
	char *auth_header;   /* header carrying the key */
	char *auth_prefix;   /* e.g. "Bearer " */
	char *fields[32];    /* per enum fld_id: JSON path into the response, or NULL */
	struct cfg_int_list miss, key_invalid, quota_exhausted, rate_limited,
		request_rejected;
};

/* A generic provider's people or company search (docs/providers.md,
 * "Generic search"): templates with the filter placeholders, where the
 * answer keeps its records, the next cursor and the total. */
struct cfg_generic_search {
	char *method;        /* GET | POST */
	char *url;           /* template: {base_url} {domains} {titles} ... {limit} {cursor} */
	char *body;          /* template for POST: placeholders expand to JSON values */
	int max_limit;       /* the provider's page cap */
	char *results;       /* JSON path to the array of records */
	char *next_cursor;   /* path to the next page's cursor ("" none: one page) */
	char *total;         /* path to the number of matches ("" none) */
	int credits_per_result;
	char *fields[32];    /* per enum fld_id: JSON path inside a record, or NULL */
	char *domain;        /* path to the company's domain inside a record ("" none) */
	struct cfg_int_list miss, key_invalid, quota_exhausted, rate_limited,
		request_rejected;
};

struct cfg_provider {
	char *name;
	char *kind;            /* pdl | lusha | surfe | generic | local | mock */
	char *base_url;
	bool enabled;
	int timeout_ms;
	int requests_per_minute;   /* default pace per key (0: unpaced) */
	int account_requests_per_minute; /* pace per upstream account (0: none) */
	int min_likelihood;        /* pdl */
	int credits_per_hit;
	int poll_interval_ms;      /* surfe */
	int http2;                 /* enum prov_http2 */
	char *ca_file;             /* CAs its TLS certificate is checked against ("": the system's) */
	struct {
		bool enabled;            /* batches call the bulk endpoint (pdl, lusha, surfe) */
		int batch_size;          /* items per bulk call (up to the kind's maximum) */
		int linger_ms;           /* how long a batch waits for more items */
		int realtime_linger_ms;  /* /enrich: micro-batch within this bound (0: off) */
	} bulk;
	struct cfg_budget account_budget; /* per upstream account of its keys */
	struct cfg_key *keys;
	size_t nkeys;
	struct cfg_generic *generic; /* kind "generic" only */
	/* kind "generic": [0] its people search, [1] its company search
	 * (enum prov_search_kind); NULL when the block is not there. */
	struct cfg_generic_search *search[2];
};

struct cfg_list {
	char **v;
	size_t n;
};

struct cfg {
	char *path;

	/* process */
	char *listen;
	int listen_backlog;
	int threads;             /* responder threads: accept, read, answer what is quick */
	int max_in_flight;       /* requests waiting on providers at once; beyond, 503 */
	int store_threads;       /* threads that make the loop's store calls */
	int up_max_connections;       /* upstream connection cache (0: no cap) */
	int up_max_host_connections;  /* per provider host (0: no cap) */
	int up_max_idle_connections;  /* idle ones kept open */
	int up_max_streams;           /* HTTP/2 calls one connection carries at once */
	enum log_level log_level;
	enum log_format log_format;
	char *log_file;          /* "" = standard error */
	char *store;             /* "sqlite:PATH" or "postgresql://..." (lib/store.h) */
	char *store_password;    /* "env:NAME" / "file:PATH" reference, "" none */
	int store_pool_size;     /* PostgreSQL connections per process */
	int store_pool_wait_ms;  /* wait for a free one, then 503 */
	int store_statement_timeout_ms;
	int store_busy_timeout_ms;   /* SQLite: wait for another writer's lock */
	char *data_dir;          /* bundled data files (domain lists) */
	char *state_dir;         /* history of applied configurations (lib/confhist.h),
				  * usage journals and the host's authentication
				  * counter (lib/usage_journal.h, lib/store.h) */
	char *listen_group;      /* group given to the socket after bind ("" keep) */

	/* http edge (nginx renders these too) */
	struct cfg_list cors_origins;
	char *server_name;

	struct {
		int64_t body_max_bytes;
		int records_per_job_max;
		int field_max_bytes;
	} limits;

	struct cfg_account_limits accounts_default;
	int64_t credits_per_day;    /* accounts_default: client credit budgets (0: none) */
	int64_t credits_per_month;
	struct cfg_endpoint endpoints[CFG_EP__MAX];

	struct {
		bool enabled;
		enum cfg_strategy strategy;
		bool endpoints[CFG_EP__MAX];
		int breaker_threshold;   /* consecutive transients that cool a key */
		int cooldown_max_s;      /* cap of the exponential cool-down */
	} rotation;

	struct cfg_list waterfall[CFG_GROUP__MAX];

	struct {
		bool enabled;
		int64_t hit_ttl_s;
		int64_t miss_ttl_s;
		int64_t search_ttl_s;    /* a search page */
	} cache;

	struct {
		struct cfg_list people;    /* provider order of POST /search/people */
		struct cfg_list companies; /* ... of POST /search/companies */
		int limit_max;             /* most results a client may ask for in one page */
		int limit_default;         /* when the request names no limit */
		char *cursor_secret;       /* signs cursors ("" derived from the key secrets) */
		int64_t cursor_ttl_s;      /* how long a cursor may be used */
		int enqueue_max_records;   /* rows a from_search submission takes at most */
	} search;

	struct {
		char *webhook_url;       /* key death / pool dry ("" none) */
	} alerts;

	struct {
		char *secret;            /* HMAC secret for job webhooks ("" none) */
		bool allow_private;      /* allow loopback/private targets (tests) */
		int timeout_ms;
		int max_attempts;
	} webhooks;

	struct {
		int concurrency;
		int claim_batch;
		int lease_s;
		int heartbeat_s;
		int max_attempts;
		int grace_s;
		int backoff_base_ms;
		int backoff_max_ms;
		int poll_ms;
		int batch_rows;          /* rows one thread runs together (bulk calls, coalescing) */
	} worker;

	struct cfg_provider *providers;
	size_t nproviders;

	int refs; /* managed by cfg_acquire/cfg_release; starts at 1 */
};

/* Parse and validate path.  On success *out is a new snapshot with one
 * reference (the caller's).  On failure err (errlen bytes) holds one line
 * "FILE:LINE: SETTING: problem" and nothing is allocated.  Thread-safe. */
ENR_MUST_CHECK enum enr_err cfg_load(const char *path, struct cfg **out, char *err, size_t errlen);

/* cfg_load with flags: CFG_LOAD_NO_SECRETS checks that every secret
 * reference has the env:/file: form but does not read it (secret is then
 * ""), for tools that only need the store and the defaults. */
#define CFG_LOAD_NO_SECRETS 1u
ENR_MUST_CHECK enum enr_err cfg_load_flags(const char *path, unsigned flags, struct cfg **out, char *err,
			    size_t errlen);

/* Drop a reference; frees the snapshot at zero.  cfg_release(NULL) does
 * nothing. */
void cfg_release(struct cfg *c);

/* Make c the current snapshot (takes over the caller's reference) and
 * drop the reference to the previous one.  Thread-safe. */
void cfg_publish(struct cfg *c);

/* A new reference to the current snapshot (NULL before the first
 * cfg_publish).  Pair with cfg_release(). Thread-safe. */
struct cfg *cfg_acquire(void);

/* One more reference to c, which the caller holds (a request that outlives
 * its thread's reference).  Returns c.  Thread-safe. */
struct cfg *cfg_share(struct cfg *c);

/* A number that changes with every cfg_publish, so a thread can keep its
 * reference to the current snapshot across requests and take a new one
 * only when it changed (no lock on the request path).  Thread-safe. */
unsigned cfg_generation(void);

/* Find a provider by name; NULL when absent. */
const struct cfg_provider *cfg_provider_find(const struct cfg *c, const char *name);

/* The PATH of "sqlite:PATH": a pointer into the string after the scheme,
 * *scheme_len set; NULL for any other form (PostgreSQL URLs included). */
const char *cfg_store_path(const char *store, size_t *scheme_len);


/* True for a URL enrichd may call: https:// to any host, http:// only to
 * a loopback host (an IPv4 literal in 127.0.0.0/8, [::1], or "localhost";
 * names are not resolved), so keys never cross a network in clear text.
 * The host is the one libcurl's URL parser finds.  On false, why (whylen
 * bytes, may be NULL) says what is wrong.  Thread-safe. */
bool cfg_url_check(const char *url, char *why, size_t whylen);

#endif
