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
 * cache.  Thread-safe.
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

/* Fill out (reset first) from the cache: outcome PROV_HIT or PROV_MISS,
 * credits 0.  ENR_E_NOT_FOUND when there is no fresh entry. */
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

#endif
