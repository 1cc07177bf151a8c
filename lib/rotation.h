/*
 * rotation.h - one provider call through the provider's key pool.
 *
 * Prefix: rot_.  rot_call() tries the provider's usable keys in the
 * configured strategy's order (docs/architecture.md, "Keys"): a hit or a miss stops;
 * rate_limited, quota_exhausted and key_invalid update the key (and its
 * upstream account) and try the next; request_rejected leaves the key as it
 * is and tries the next; transient backs off briefly and tries the next,
 * within the deadline.  When no key is usable the report says so with the
 * earliest time one comes back.  With rotation off for the endpoint
 * (rotation.enabled, rotation.endpoints.X) only the provider's first key is
 * used.  Paced keys (requests_per_minute) wait for their slot.  A key or
 * upstream account with a credit budget (lib/budget.h) reserves the call's
 * worst case first; one whose budget is spent is parked exhausted until
 * the budget resets (an alert says so) and the next key is tried (one that
 * cannot take a rot_op's worst case but still its unit_credits is only
 * passed over for that call).
 *
 * Built-in providers (local, mock) are answered directly.
 * Thread-safe; blocks the calling thread for the call's duration.
 */
#ifndef ENR_ROTATION_H
#define ENR_ROTATION_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "provider.h"
#include "store.h"

struct rot_ctx {
	struct store *store;
	const struct cfg *cfg;
	const struct prov_ctx *pctx;
	enum cfg_endpoint_id endpoint;  /* whose rotation toggle applies */
	int64_t deadline_mono_ms;       /* util_mono_ms() bound; 0 = none */
};

enum rot_status {
	ROT_ANSWERED,       /* hit or miss: out holds the result */
	ROT_NO_KEY,         /* no key could be asked (comes_back_ms says when) */
	ROT_REJECTED,       /* every usable key was refused this request */
	ROT_FAILED,         /* transient failures on every key tried */
	ROT_DEADLINE,       /* the deadline passed first */
	ROT_NOT_APPLICABLE, /* nothing in the query this provider can search by */
	ROT__MAX
};

extern const char *const rot_status_names[ROT__MAX];

struct rot_report {
	enum rot_status status;
	int calls;                 /* upstream HTTP requests made */
	int64_t comes_back_ms;     /* ROT_NO_KEY: wall-clock ms; 0 when no key returns by itself */
	double upstream_ms;        /* time spent in HTTP */
	bool timed_out;            /* ROT_FAILED: the last failed call hit its timeout */
	bool deadline_cut;         /* the last call timed out at the request's deadline,
				    * before the provider's own timeout */
	char key_id[LIM_NAME_MAX + 1]; /* the key that answered ("" for built-ins) */
};

/* Call provider p for q.  out is reset and filled when status is
 * ROT_ANSWERED.  Returns ENR_OK whatever the provider did (the report
 * says); an error only when the store or memory fails. */
ENR_MUST_CHECK enum enr_err rot_call(const struct rot_ctx *ctx, const struct cfg_provider *p,
		      const struct prov_query *q, struct prov_result *out, struct rot_report *rep);

/* One item of a bulk call: its query, where its answer and report go. */
struct rot_item {
	const struct prov_query *q;
	struct prov_result *res;
	struct rot_report *rep;
};

/* Make n person lookups of p in bulk calls (the kind's build_bulk /
 * parse_bulk, docs/providers.md), through the key pool as rot_call does:
 * the call's own outcome is the key's (a 429, 402, 401 or 5xx moves the
 * whole call, every item, to the next key; nothing is charged), an item's
 * outcome is its own (hit, miss, rejected, transient); an item PDL or
 * Lusha refused for credits the account ran out of in the middle of the
 * call parks the key and goes to the next one.  A key's credit budget
 * (lib/budget.h) is reserved for the items it is sent, one credits_per_hit
 * each; a key whose budget cannot take one more is parked exhausted until
 * the budget resets.  Each item's rep says how it ended; rep.calls and
 * upstream_ms are counted on the first item only.  ENR_OK whatever the
 * provider did; an error only when the store or memory fails. */
ENR_MUST_CHECK enum enr_err rot_call_bulk(const struct rot_ctx *ctx, const struct cfg_provider *p,
					  struct rot_item *items, size_t n);

/* One call through the key pool that is not a single lookup of the
 * adapter's own ops (a search page): the same rotation, pacing, outcome
 * classification and cooling as rot_call, with the request made and the
 * answer read by the op.  parse classifies every answer into out
 * (outcome, until_ms, meters, credits) and keeps what else the answer
 * holds in arg, afresh for each key tried: when the report is not
 * ROT_ANSWERED what arg holds means nothing.  Every function gets arg. */
struct rot_op {
	/* The request with key; ENR_E_INVALID when there is nothing this
	 * provider can be asked (ROT_NOT_APPLICABLE, no call). */
	enum enr_err (*build)(void *arg, const struct cfg_provider *p, const struct cfg_key *key,
			      struct prov_request *out);
	/* NULL, or the poll of a PROV_PENDING answer. */
	enum enr_err (*build_poll)(void *arg, const struct cfg_provider *p,
				   const struct cfg_key *key, const char *pending_id,
				   struct prov_request *out);
	void (*parse)(void *arg, const struct cfg_provider *p, const struct prov_response *resp,
		      int64_t now_ms, struct prov_result *out);
	void *arg;
	int64_t worst_credits;   /* the most one call may cost: held on the key's budget */
	/* The least a paid answer costs (one record): a key whose budget
	 * cannot take worst_credits but still this much is passed over for
	 * this call; one that cannot take even this much is spent and parked
	 * exhausted until its budget resets. */
	int64_t unit_credits;
};

/* Make op's call of provider p (an HTTP kind) as rot_call makes a
 * lookup.  Same returns and report. */
ENR_MUST_CHECK enum enr_err rot_call_op(const struct rot_ctx *ctx, const struct cfg_provider *p,
					const struct rot_op *op, struct prov_result *out,
					struct rot_report *rep);

/* Register the metrics families (once per process). */
void rot_init(void);

/* Write the key call counters kept in memory (about once a second, before
 * listing keys, and at shutdown).  Counters leave memory only once
 * written: a failed write is logged and they wait for the next flush. */
void rot_flush(struct store *st);

/* Record one call's outcome for key id: read the key, apply the outcome
 * (kp_apply, with a fresh jitter) and store it with a compare-and-set,
 * again from a fresh read when another thread, process or host changed
 * the key meanwhile, so no transition is lost.  A rate limit also cools
 * the other keys of the same upstream account.  after/ch may be NULL. */
enum enr_err rot_apply(struct store *st, const char *id, enum prov_outcome o,
		       int64_t hint_until_ms, int credits, int64_t now_ms, const struct kp_params *p,
		       struct kp_key *after, struct kp_change *ch) ENR_MUST_CHECK;

/* An admin's revive (kp_revive, stored the same way); ENR_E_NOT_FOUND for
 * an unknown id. */
enum enr_err rot_revive(struct store *st, const char *id, struct kp_key *after) ENR_MUST_CHECK;

/* Make the store's key pool match cfg's providers and keys (what of each
 * key is kept: id, provider, upstream account, position, last four
 * characters of the secret). */
enum enr_err rot_sync_keys(struct store *st, const struct cfg *cfg) ENR_MUST_CHECK;

/* Add the counters still in memory to keys just read from the store. */
void rot_pending_apply(struct kp_key *keys, int n);

#endif
