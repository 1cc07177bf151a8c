/*
 * spool.h - the store pool: a few threads that run store closures for the
 * event loop, so that no store round trip (a network one with PostgreSQL)
 * ever blocks it.
 *
 * Prefix: sp_.  A closure is fn(store, arg), run on a pool thread; its
 * completion done(loop, arg) is posted to the loop given with it and runs
 * there.  The pool knows nothing of particular store operations: callers
 * close over what they need.
 *
 * Order.  Plain closures run in any order, several at once.  Closures of
 * one lane (sp_submit_lane: a key's outcome writes, a job row's writes)
 * run one at a time, in the order they were submitted.  Batched writes
 * (sp_write: cache puts, usage, key counters) of one kind also run in
 * order, one batch at a time: whatever is queued of a kind when a thread
 * takes it runs in one go (up to the kind's batch size), so writes
 * coalesce when the store is the bottleneck.  With write_linger_ms the
 * thread that takes a batch waits that long for it to fill first: a
 * commit costs about the same for one write as for many.  A lane closure submitted with SP_AFTER_WRITES
 * runs only after every write queued before it has run: "a result is in
 * the cache before the row is finished".
 *
 * Bounds.  At most queue_max closures and writes wait; beyond, submissions
 * fail with ENR_E_UNAVAILABLE and nothing runs (the caller answers 503 or
 * retries later).
 *
 * Inline mode (threads = 0; plain CGI and tests): a closure runs in the
 * submitting thread before sp_submit returns, a write runs as a batch of
 * one; completions are still posted, never run inside the submission, so
 * a state machine behaves the same in both modes.
 *
 * Thread-safety: sp_submit*, sp_write and sp_drain from any thread;
 * sp_kind before the pool is shared; sp_free once nothing submits.
 */
#ifndef ENR_SPOOL_H
#define ENR_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "evloop.h"

struct store;
struct sp_pool;

typedef void (*sp_fn)(struct store *st, void *arg);
typedef void (*sp_done_fn)(struct ev_loop *l, void *arg);

/* A batch of writes of one kind: runs items[0..n) in order and owns them
 * (frees them, logs and counts what failed). */
typedef void (*sp_batch_fn)(struct store *st, void **items, size_t n, void *arg);

struct sp_opts {
	struct store *store;   /* borrowed; handed to every closure */
	int threads;           /* 0: inline; at most LIM_SP_THREADS_MAX */
	int queue_max;         /* 0: LIM_SP_QUEUE_DEFAULT; at most LIM_SP_QUEUE_MAX */
	/* How long a batch of writes that is not full may wait for more
	 * before it is written (0..60000 ms; 0: at once).  Only with two
	 * threads or more. */
	int write_linger_ms;
	/* Run on each pool thread as it ends (e.g. release its store
	 * connection); may be NULL. */
	void (*thread_exit)(struct store *st, void *arg);
	void *thread_arg;
};

/* A new pool; its threads start at once.  ENR_E_INVALID (a setting out
 * of range), ENR_E_NOMEM, ENR_E_UNAVAILABLE (a thread did not start). */
ENR_MUST_CHECK enum enr_err sp_new(const struct sp_opts *o, struct sp_pool **out);

/* Run everything still queued (completions are posted as usual: their
 * loops must still exist), stop the threads, free p.  sp_free(NULL) does
 * nothing. */
void sp_free(struct sp_pool *p);

/* Run fn(store, arg) on a pool thread, then done(loop, arg) on loop when
 * done is not NULL (loop may be NULL only then).  ENR_E_UNAVAILABLE when
 * the queue is full or the pool is stopping, ENR_E_NOMEM: nothing runs
 * then and done is not called. */
ENR_MUST_CHECK enum enr_err sp_submit(struct sp_pool *p, sp_fn fn, void *arg, struct ev_loop *loop,
				      sp_done_fn done);

#define SP_AFTER_WRITES 1u

/* The same, in lane `lane` (any number naming what must stay in order;
 * lanes are hashed onto LIM_SP_LANES queues, so two lanes may share one:
 * slower, never out of order).  flags: SP_AFTER_WRITES. */
ENR_MUST_CHECK enum enr_err sp_submit_lane(struct sp_pool *p, uint64_t lane, unsigned flags, sp_fn fn,
					   void *arg, struct ev_loop *loop, sp_done_fn done);

/* Register a kind of batched write; returns its number, or -1 when
 * LIM_SP_KINDS_MAX kinds exist.  batch_max 0: LIM_SP_BATCH_MAX. */
int sp_kind(struct sp_pool *p, sp_batch_fn fn, void *arg, size_t batch_max);

/* Queue item for kind's next batch (write-behind: no completion).  The
 * pool owns item on ENR_OK; on ENR_E_UNAVAILABLE (queue full, stopping),
 * ENR_E_NOMEM or ENR_E_INVALID (no such kind) the caller still does. */
ENR_MUST_CHECK enum enr_err sp_write(struct sp_pool *p, int kind, void *item);

/* Wait until everything submitted before the call has run (its
 * completions posted): for tests and an orderly shutdown. */
void sp_drain(struct sp_pool *p);

struct sp_stats {
	size_t queued;            /* waiting now */
	uint64_t run;             /* closures run */
	uint64_t writes, batches; /* writes run, in how many batches */
	uint64_t refused;         /* submissions refused: queue full */
};

void sp_stats(struct sp_pool *p, struct sp_stats *out);

#endif
