/*
 * waterfall.h - the enrichment engine: walk the providers of each wanted
 * field group, ask each only for what is still missing, merge field by
 * field, stop when everything is found or the deadline passes.
 *
 * Prefix: wf_.  lib/plan.h decides which lookup comes next (a provider
 * gets at most one person and one company lookup per enrichment, company
 * lookups keyed by the company); this module drives it: an answer comes
 * from the cache when fresh, else from rot_call() or, for batches, a bulk
 * call (lib/bulk.h), and hits and misses are written to the cache at once.
 * Identical lookups in flight at once are made once (in the process, and
 * for company lookups across processes).  A paid lookup first reserves the
 * client's credit budget (lib/budget.h).  A provider with no usable key
 * is skipped and listed.  The same engine serves POST /enrich and the
 * batch workers.  Thread-safe.
 */
#ifndef ENR_WATERFALL_H
#define ENR_WATERFALL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "fields.h"
#include "provider.h"
#include "record.h"
#include "store.h"

#define WF_PROVIDERS_MAX 16

struct wf_ctx {
	struct store *store;
	const struct cfg *cfg;
	const struct prov_ctx *pctx;
	enum cfg_endpoint_id endpoint;
	int64_t deadline_mono_ms;   /* 0: none */
	bool no_calls;              /* dry run: cache and free providers only */
	int64_t account_id;         /* wf_run: whose credit budget pays (0: none) */
};

/* What an enrichment came to.  A failure is never a miss: NOT_FOUND only
 * when nothing was found and every provider asked answered that it has no
 * such record; when nothing was found and a provider could not be asked or
 * failed, the answer is INCOMPLETE (a retry may find more).  PARTIAL is
 * "something found, not everything", whether or not a provider failed;
 * the errors say which did. */
enum wf_status { WF_COMPLETE, WF_PARTIAL, WF_NOT_FOUND, WF_INCOMPLETE, WF_STATUS__MAX };

extern const char *const wf_status_names[WF_STATUS__MAX];

/* Why a provider gave no answer. */
enum wf_error_kind {
	WF_ERR_TRANSIENT,   /* errors on every key tried: 5xx, garbage, resets, oversized */
	WF_ERR_TIMEOUT,     /* the last call tried timed out */
	WF_ERR_REJECTED,    /* every usable key was refused this request */
	WF_ERR_NO_KEY,      /* no usable key (cooling, exhausted, invalid) */
	WF_ERR_DEADLINE,    /* the request's deadline passed before it answered */
	WF_ERR_BUDGET,      /* the client's credit budget is spent: not asked */
	WF_ERR__MAX
};

extern const char *const wf_error_names[WF_ERR__MAX];

/* Its provider's name points where the result's other names do (below). */
struct wf_error {
	const char *provider;
	enum wf_error_kind kind;
};

struct wf_result {
	char *value[FLD__MAX];                 /* owned */
	double confidence[FLD__MAX];
	const char *source[FLD__MAX];          /* provider name (static or from cfg) */
	fld_set want, found;
	enum wf_status status;

	/* Provider names point into the configuration the run was given (or
	 * are static): a result lives no longer than the snapshot it ran on. */
	const char *tried[WF_PROVIDERS_MAX];   /* asked, in order (cache included) */
	int ntried;
	const char *skipped[WF_PROVIDERS_MAX]; /* no usable key */
	int nskipped;
	int paid_asked;          /* paid providers that gave an answer (live or cached) */
	int paid_unavailable;    /* paid providers skipped: no usable key */
	int paid_failed;         /* paid providers that failed (transient, rejected) */
	int64_t comes_back_ms;   /* earliest key return among skipped providers */
	struct wf_error errors[WF_PROVIDERS_MAX]; /* each provider that gave no answer, once */
	int nerrors;
	bool cached;             /* answered without any upstream call, from the cache */
	int cache_hits, cache_misses;
	int coalesced;           /* answers another caller's lookup in flight bought */
	bool budget_exceeded;    /* the client's credit budget refused a paid lookup */
	int64_t budget_until_ms; /* when that budget resets (wall clock) */
	bool mock;               /* the mock provider supplied data */
	bool deadline_passed;
	int credits;
	int calls;               /* upstream HTTP requests (a bulk call counts on one row) */
	int shared_calls;        /* bulk calls whose request another row counted */
	int depth;               /* providers consulted */
	double upstream_ms;
	/* Dry run: providers that would be called (not in the cache). */
	const char *would_call[WF_PROVIDERS_MAX];
	int nwould_call;
};

void wf_result_init(struct wf_result *r);
void wf_result_release(struct wf_result *r);

/* Enrich rec (normalised) for the fields in want.  Never fails because a
 * provider did: the result says what was found.  Errors: store or memory. */
ENR_MUST_CHECK enum enr_err wf_run(const struct wf_ctx *ctx, const struct rec *rec, fld_set want,
		    struct wf_result *out);

/* One enrichment of a batch run together by wf_run_many. */
struct wf_job {
	const struct rec *rec;   /* normalised; borrowed */
	fld_set want;
	int64_t account_id;      /* whose credit budget pays (0: none) */
	struct wf_result *out;   /* initialised by the caller */
};

/* Enrich n records together: their lookups go out in rounds, so identical
 * ones are made once and person lookups of a bulk provider share bulk
 * calls (provider bulk settings).  Errors as wf_run. */
ENR_MUST_CHECK enum enr_err wf_run_many(const struct wf_ctx *ctx, struct wf_job *jobs, size_t n);

/* Fill the still-missing wanted fields from the mock provider (the
 * configured fallback); marks out->mock when it supplied anything. */
ENR_MUST_CHECK enum enr_err wf_fallback_mock(const struct wf_ctx *ctx, const struct rec *rec,
			      struct wf_result *out);

/* True when a paid provider was in the walk and none could be asked for
 * lack of a usable key (the client gets 503 with Retry-After). */
bool wf_none_available(const struct wf_result *r);

/* "pdl: transient; lusha: timeout" for r's errors (empty when none), for
 * logs and a batch row's _error.  Always NUL-terminated. */
void wf_errors_text(const struct wf_result *r, char *out, size_t outsz);

/* Register the metrics families (once per process). */
void wf_init(void);

#endif
