/*
 * estimate.h - what a batch would cost before it runs: rows that are
 * valid, answered from the cache or by the free local provider, the
 * upstream lookups, calls (bulk calls counted as the provider's batch
 * size of lookups each) and credits at most, and the time the key pool's
 * pacing allows.
 *
 * Prefix: est_.  est_row() plans one record the way the engine would
 * (lib/plan.h) without calling anyone: built-in providers answer, the
 * cache is read, every paid lookup that is not in the cache is counted
 * as if each provider missed (so the figures are bounds).  Lookups are
 * counted once across rows by their key (every person of a company shares
 * its company lookup); a company lookup a person answer could lead to
 * (the input names no company) cannot be keyed beforehand and counts once
 * per row.  Nothing is written: no cache, no claims, no budget, no quota.
 *
 * est_row() may run on many threads at once (it reads only); est_add()
 * and est_finish() need the caller's lock around one struct est.
 */
#ifndef ENR_ESTIMATE_H
#define ENR_ESTIMATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cache.h"
#include "plan.h"
#include "store.h"
#include "waterfall.h"

/* One row's share: the lookups it would make. */
struct est_row {
	bool cached;      /* every lookup it needs is in the cache (at least one) */
	bool local_only;  /* nothing but the free local provider answers it */
	int n;
	struct {
		const struct cfg_provider *p;
		enum prov_kind kind;
		bool keyed;                       /* key names the lookup (else unknown company) */
		unsigned char key[CACHE_KEY_LEN];
	} lk[PL_LOOKUPS_MAX + WF_PROVIDERS_MAX];
};

struct est_provider {
	const struct cfg_provider *p;
	int64_t rows;              /* rows that would ask it */
	int64_t person, company;   /* lookups at most */
	int64_t calls;             /* est_finish: upstream calls at most (bulk counted) */
	int64_t credits;           /* est_finish: credits at most */
	int64_t per_minute;        /* est_finish: calls a minute the usable keys' pacing allows (0: unpaced) */
	int64_t eta_s;             /* est_finish: calls / per_minute, -1 when unpaced */
	int usable_keys;           /* est_finish */
};

struct est {
	const struct cfg *cfg;
	enum cfg_endpoint_id endpoint;  /* ENQUEUE: bulk settings apply */
	int64_t rows, cached, local_only, needing_calls;
	struct est_provider prov[WF_PROVIDERS_MAX];
	int nprov;
	/* the lookup keys counted so far (open addressing) */
	unsigned char (*seen)[CACHE_KEY_LEN];
	size_t nseen, aseen;
	/* est_finish */
	int64_t calls, credits, eta_s;  /* eta_s -1: no provider is paced */
};

void est_init(struct est *e, const struct cfg *cfg, enum cfg_endpoint_id endpoint);
void est_release(struct est *e);

/* Plan rec for want without calling anyone (ctx: store, cfg, pctx; its
 * no_calls is implied).  Errors: store or memory. */
enum enr_err est_row(const struct wf_ctx *ctx, const struct rec *rec, fld_set want,
		     struct est_row *out) ENR_MUST_CHECK;

/* Count a row's share (lookups already counted for another row are not
 * counted again).  ENR_E_NOMEM only. */
enum enr_err est_add(struct est *e, const struct est_row *r) ENR_MUST_CHECK;

/* Calls, credits and the time the key pool's pacing allows, from the
 * lookups counted (keys the store says are out of service now count for
 * nothing). */
void est_finish(struct est *e, struct store *s, int64_t now_ms);

/* The figures as JSON (the answer of POST /enrich/enqueue?dry_run=true
 * and enrich-batch's dry-run report): valid rows, cached, local_only,
 * needing_calls, upstream_calls_max, credits_max, eta_seconds (null when
 * no provider is paced), providers {name: {rows, lookups_max,
 * person_lookups_max, company_lookups_max, calls_max, bulk,
 * credits_per_hit, credits_max, requests_per_minute, eta_seconds}}.  New
 * reference; NULL when out of memory. */
json_t *est_json(const struct est *e);

#endif
