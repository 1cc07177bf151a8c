/*
 * cache.h - the cache of provider answers, and in-flight deduplication.
 *
 * Prefix: cache_.  An entry is one provider's answer (hit with its field
 * values and confidences, or miss) for one normalised input; hits and
 * misses have their own TTLs (cache.hit_ttl_s, cache.miss_ttl_s); errors
 * and rate limits are never cached.  Entries live in the store, so every
 * process and host shares them, and a batch record re-run after a crash is
 * answered from here instead of being paid for twice.
 *
 * cache_flight_*: identical lookups in flight at the same time in one
 * process are made once; the others wait for the first and then read the
 * cache.  cache_claim_*: the same across processes and hosts, through a
 * short claim row in the store (st_flight_claim): the first claimer calls,
 * the others poll the cache until its answer is there, its claim is gone
 * or has expired.
 *
 * cache_saved() counts what the cache and coalescing saved (upstream calls
 * and the credits those answers had cost), per provider; cache_savings_
 * flush() writes the counts to the store about once a second (they leave
 * memory only once written); /admin/usage and /metrics (lib/sysmetrics)
 * read them from there, for every process.  Thread-safe.
 */
#ifndef ENR_CACHE_H
#define ENR_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "provider.h"
#include "record.h"
#include "store.h"

#define CACHE_KEY_LEN 32

/* The key of provider's answer for r; variant distinguishes lookups of one
 * provider that answer different things (e.g. "person" / "company"). */
ENR_MUST_CHECK enum enr_err cache_key(const char *provider, const char *variant, const struct rec *r,
		       unsigned char out[CACHE_KEY_LEN]);

/* The key of provider's answer for a lookup named by text alone (a
 * company key: "d:acme.com"). */
ENR_MUST_CHECK enum enr_err cache_key_text(const char *provider, const char *variant, const char *text,
			    unsigned char out[CACHE_KEY_LEN]);

/* Fill out (reset first) from the cache: outcome PROV_HIT or PROV_MISS,
 * credits 0, bought_credits what the answer cost when it was bought, and
 * the company domain it named.  ENR_E_NOT_FOUND when there is no fresh
 * entry. */
ENR_MUST_CHECK enum enr_err cache_get(struct store *s, const unsigned char key[CACHE_KEY_LEN], int64_t now_ms,
		       struct prov_result *out);

/* Store res when it is a hit or a miss (anything else is ignored). */
ENR_MUST_CHECK enum enr_err cache_put(struct store *s, const struct cfg *cfg,
		       const unsigned char key[CACHE_KEY_LEN], const char *provider,
		       const struct prov_result *res, int64_t now_ms);

/* Become the one caller that looks key up (true; call cache_flight_end
 * afterwards), or wait until the caller doing it has finished (false),
 * at most until deadline_mono_ms (0: no bound). */
bool cache_flight_begin(const unsigned char key[CACHE_KEY_LEN], int64_t deadline_mono_ms);
void cache_flight_end(const unsigned char key[CACHE_KEY_LEN]);

/* Write the cache entries of continuations on the engine's loop in
 * batches (lib/co.h, group commit) from now on; the engine calls it when it
 * starts. */
void cache_group_commit(void);

/* Callers sharing the lookup in flight for key, its maker included (0:
 * none in flight). */
int cache_flight_refs(const unsigned char key[CACHE_KEY_LEN]);

/* The same without blocking, for a caller that makes several lookups at
 * once: true when the caller now makes key's lookup (cache_flight_end
 * afterwards), false when someone else is making it (cache_flight_wait
 * for it later, then read the cache). */
bool cache_flight_try(const unsigned char key[CACHE_KEY_LEN]);
/* Wait until key's lookup in flight has finished (or none is), at most
 * until deadline_mono_ms (0: no bound). */
void cache_flight_wait(const unsigned char key[CACHE_KEY_LEN], int64_t deadline_mono_ms);

/* This process's name in claims: "host:pid:random", fixed at first use. */
const char *cache_owner(void);

/* Claim key's lookup for this process until until_ms (wall clock): *mine
 * true when this process makes it now (cache_claim_release afterwards),
 * false when another process holds an unexpired claim.  A store error
 * leaves *mine true (better pay twice than not answer). */
void cache_claim(struct store *s, const unsigned char key[CACHE_KEY_LEN], int64_t now_ms,
		 int64_t until_ms, bool *mine);
void cache_claim_release(struct store *s, const unsigned char key[CACHE_KEY_LEN]);

/* Wait for another process's lookup of key: poll the cache (every 10 ms,
 * growing to 50) until the answer is there (ENR_OK, out filled as by
 * cache_get), the claim is gone or expired, or deadline_mono_ms passed
 * (ENR_E_NOT_FOUND: make it yourself). */
enum enr_err cache_claim_wait(struct store *s, const unsigned char key[CACHE_KEY_LEN],
			      int64_t deadline_mono_ms, struct prov_result *out) ENR_MUST_CHECK;

/* Savings: an answer served by the cache (coalesced false) or by another
 * caller's lookup in flight (true) instead of an upstream call. */
void cache_saved(const char *provider, bool coalesced, int credits);
/* Write the counted savings to the store (st_savings_add); what fails to
 * be written stays for the next flush. */
void cache_savings_flush(struct store *s, int64_t now_ms);

#endif
