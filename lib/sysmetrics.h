/*
 * sysmetrics.h - the metrics of the whole system, read from the store.
 *
 * Prefix: sm_.  Whatever every process shares through the store is shown
 * once, by whichever responder is scraped, so nothing is counted twice and
 * nothing is missing: upstream calls of the responders, the workers and
 * enrich-batch by provider, key and outcome; each key's state, credits and
 * last meters (requests and credits left as the provider said); each
 * account's requests, records, credits and rejections; the upstream calls
 * and credits the cache and coalescing avoided, by provider; the queue (rows
 * pending, running and failed, jobs per status, the age of the oldest
 * pending job).  Counters mirror the store's totals, so they only grow.
 *
 * sm_init registers the families once per process; sm_refresh re-reads
 * them (call it from a render hook, after the process wrote what it holds
 * in memory).  Thread-safe.
 */
#ifndef ENR_SYSMETRICS_H
#define ENR_SYSMETRICS_H

#include <stdint.h>

#include "err.h"
#include "store.h"

void sm_init(void);

/* Re-read every family from the store at now_ms.  A family whose read
 * failed is left empty this time (never half-filled); the first error is
 * returned. */
ENR_MUST_CHECK enum enr_err sm_refresh(struct store *s, int64_t now_ms);

#endif
