/*
 * keypool.h - the upstream key state machine and key choice, as pure
 * functions over key records (docs/architecture.md, "Keys").
 *
 * Prefix: kp_.  A key is active, cooling until a time, exhausted until a
 * time (or until an admin revives it) or invalid (until revived).
 * Deadlines only move later.  The records live in the store (st_ukey_*);
 * lib/rotation reads a key, runs kp_apply and stores the result with a
 * compare-and-set, so every thread, process and host sees one pool and no
 * outcome is lost: this module decides, the store persists.  No clock, no
 * randomness of its own: both are passed in.
 */
#ifndef ENR_KEYPOOL_H
#define ENR_KEYPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "limits.h"
#include "provider.h"

enum kp_state { KP_ACTIVE, KP_COOLING, KP_EXHAUSTED, KP_INVALID, KP_STATE__MAX };

extern const char *const kp_state_names[KP_STATE__MAX];

struct kp_key {
	char id[LIM_NAME_MAX + 1];
	char provider[LIM_NAME_MAX + 1];
	char account[LIM_NAME_MAX + 1];  /* upstream account */
	char last4[5];
	int ord;                         /* position in the configuration */
	enum kp_state state;
	int64_t until_ms;                /* cooling/exhausted: usable again at; 0 = never by itself */
	int transients;                  /* consecutive transient failures */
	int64_t backoff_ms;              /* last cool-down chosen without a provider hint */
	int64_t calls, hits, misses, errors, credits;
	int64_t last_used_ms;
	int64_t version;                 /* the store's row version (compare-and-set) */
	/* The provider's meters as its last answer gave them (-1: unknown). */
	int64_t requests_left, credits_left;
	int64_t meters_ms;               /* when they were read (0: never) */
};

/* Tunables from the configuration's rotation group. */
struct kp_params {
	int breaker_threshold;    /* consecutive transients that cool a key */
	int64_t cooldown_max_ms;  /* cap of the exponential cool-down */
};

void kp_params_from_cfg(const struct cfg *c, struct kp_params *out);

/* True when k may be called at now_ms (an expired deadline counts as
 * active: the pool heals lazily, no timer needed). */
bool kp_usable(const struct kp_key *k, int64_t now_ms);

/* When k is usable again: now for usable keys, its deadline for cooling or
 * timed exhaustion, 0 for "not by itself" (invalid, or exhausted with no
 * reset known). */
int64_t kp_comes_back_ms(const struct kp_key *k, int64_t now_ms);

/* What kp_apply did, for logs and alerts. */
struct kp_change {
	enum kp_state from, to;
	int64_t until_ms;
	bool account_cool;   /* the whole upstream account must cool until until_ms */
};

/* Apply the outcome of one call made with k at now_ms.  hint_until_ms is
 * the provider's reset time (0 when it gave none); jitter in [0, 1) spreads
 * cool-downs chosen without a hint.  Counters are updated; `credits` are
 * the credits the call spent. */
void kp_apply(struct kp_key *k, enum prov_outcome o, int64_t hint_until_ms, int credits,
	      int64_t now_ms, const struct kp_params *p, double jitter, struct kp_change *ch);

/* An admin's revive: active, no deadline, breaker reset. */
void kp_revive(struct kp_key *k);

/* Order the usable keys among keys[0..n) for one call: writes their
 * indexes into order (n slots) and returns how many.  `cursor` is the
 * round-robin position (any non-negative number; the store advances it);
 * `skip` (may be NULL) marks keys already tried for this call.  With
 * first_only (rotation off), only the key with the lowest ord is
 * considered. */
int kp_order(const struct kp_key *keys, int n, enum cfg_strategy strategy, uint64_t cursor,
	     const bool *skip, bool first_only, int64_t now_ms, int *order);

/* Why a key in state s is out of service and how it comes back, in one
 * sentence; NULL for an active key.  Static text. */
const char *kp_state_why(enum kp_state s);

/* A key as admins see it (GET /admin/keys, enrichctl keys): id,
 * provider, account, state as of now_ms, why (kp_state_why, null when
 * active), until, last4 (never more of the secret), counters, last_used.
 * New reference; NULL when out of memory. */
struct json_t;
struct json_t *kp_key_json(const struct kp_key *k, int64_t now_ms);

/* Earliest time any key in keys[0..n) comes back (0: none will by itself). */
int64_t kp_earliest_ms(const struct kp_key *keys, int n, bool first_only, int64_t now_ms);

#endif
