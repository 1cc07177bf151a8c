/*
 * bulk.h - the bulk collector: person lookups of many rows, gathered per
 * provider into bulk calls (PDL /v5/person/bulk, Lusha POST /v2/person,
 * Surfe's enrichment of many people; docs/providers.md).
 *
 * Prefix: bulk_.  A caller fills a struct bulk_item (provider, query,
 * cache key) and submits it; the collector adds it to the provider's open
 * batch (one per provider, configuration snapshot and endpoint).  A batch
 * is made - one call through lib/rotation's bulk path - when it holds
 * batch_size items or its linger has passed since it opened, by whichever
 * caller finds it due first: a blocking caller in bulk_wait(), an event
 * loop in bulk_poll().  Each item's answer goes to the cache at once (by
 * the caller that made the call), then the item is done: its on_done runs
 * (if any) and waiters wake.  An item's own miss or failure is its own;
 * the call's outcome (429, 402, 401, 5xx) is the key's, and its items are
 * tried again on the next key (lib/rotation.h, rot_call_bulk).
 *
 * Thread-safe.  The item, its query's identifiers and the rot_ctx's
 * configuration belong to the caller and must stay until the item is
 * done.
 */
#ifndef ENR_BULK_H
#define ENR_BULK_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "provider.h"
#include "rotation.h"

struct bulk_batch;

struct bulk_item {
	/* set by the caller before bulk_submit */
	const struct cfg_provider *p;
	struct prov_query q;              /* identifiers borrowed until done */
	unsigned char key[CACHE_KEY_LEN]; /* the answer's cache key */
	bool cacheable;                   /* write a hit or a miss to the cache */
	int64_t deadline_mono_ms;         /* the item's own bound (0: none) */
	void (*on_done)(struct bulk_item *it, void *arg); /* may be NULL; runs on the
							   * thread that made the call */
	void *arg;

	/* filled when done: res as rot_call fills it; rep.status says how it
	 * ended (ROT_ANSWERED: a hit or a miss); rep.calls is 1 on the first
	 * item of a call, 0 on the others (the call is shared) */
	struct prov_result res;
	struct rot_report rep;
	bool cache_failed;                /* the answer could not be cached */
	bool done;

	/* the collector's */
	struct bulk_batch *batch;
};

/* Ready an item (caller-owned); release frees its result. */
void bulk_item_init(struct bulk_item *it);
void bulk_item_release(struct bulk_item *it);

/* Add it to the open batch of it->p for ctx (its store, configuration,
 * endpoint and deadline), opening one when none is open or it is full.
 * batch_size: the batch is full at this many items (1..the kind's
 * bulk_max); linger_ms: how long an open batch waits for more.
 * ENR_E_INVALID when the kind has no bulk endpoint; ENR_E_NOMEM. */
enum enr_err bulk_submit(const struct rot_ctx *ctx, struct bulk_item *it, int batch_size,
			 int linger_ms) ENR_MUST_CHECK;

/* Block until it is done, making due batches (its own or another
 * caller's) in the calling thread meanwhile. */
void bulk_wait(struct bulk_item *it);

/* For an event loop: make every batch due at now_mono_ms (blocking the
 * caller today), and return when the next open batch is due (monotonic
 * ms), 0 when none is open. */
int64_t bulk_poll(int64_t now_mono_ms);

/* Register the metrics families (once per process). */
void bulk_init(void);

#endif
