/*
 * co.h - continuations: work that waits without holding a thread.
 *
 * Prefix: co_.  A continuation (struct co_task) runs its body on a fiber
 * (lib/fiber.h).  It starts on the thread that calls co_start and runs
 * there for as long as it does quick work (a cache hit is answered
 * without ever leaving that thread).  At its first wait it moves to the
 * process's event loop (co_setup) and the starting thread is free again;
 * from then on the loop owns it: each wait below ends on the loop thread,
 * which carries the body on from where it stopped, and `ended` is called
 * there when the body returns.
 *
 * The waits, each a plain blocking call off a continuation (plain CGI,
 * the batch worker's threads, tests without a loop):
 *   co_perform      an upstream transfer (lib/evloop.h; up_perform off one)
 *   co_sleep_ms     a timer
 *   co_call         a function that may block (a store round trip): it
 *                   runs on the store pool's threads, never on the loop;
 *                   before the move, on the starting thread's own stack
 *   co_cond_wait    a condition shared with threads (a coalesced lookup)
 *
 * Cancelling (the client went away) ends the current wait at once and
 * makes the rest of the body see its deadline as passed
 * (co_deadline_left), so the waterfall winds down through its ordinary
 * deadline path and frees everything it holds.
 *
 * Rules for the code a body runs: no lock is held across a wait (the loop
 * thread would block on it), and no pointer into another thread's
 * thread-local state is kept across a wait (the body may resume on
 * another thread).  Every function here may be called off a continuation.
 */
#ifndef ENR_CO_H
#define ENR_CO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "evloop.h"
#include "fiber.h"
#include "upstream.h"

struct sp_pool;
struct store;
struct co_task;

/* On a function a continuation calls before or after a wait, never across
 * one, with large locals: it gets a frame of its own instead of growing its
 * caller's (into which the compiler would inline it).  The frames a waiting
 * continuation keeps are all its stack holds while it waits (fib_trim gives
 * back what lies below them), so the chain to a wait stays short: one page. */
#if defined(__GNUC__) || defined(__clang__)
#define CO_OWN_FRAME __attribute__((noinline))
#else
#define CO_OWN_FRAME
#endif


typedef void (*co_fn)(struct co_task *t);

enum co_wait { CO_W_NONE, CO_W_MOVING, CO_W_STARTING, CO_W_XFER, CO_W_TIMER, CO_W_CALL,
	       CO_W_COND, CO_W_HERE };

struct co_waiter;

/* Caller-owned; co_task_init, then co_start.  The members after arg are
 * the continuation's own. */
struct co_task {
	co_fn body;        /* runs on the fiber */
	co_fn moved;       /* loop thread, when it arrives there (may be NULL) */
	co_fn ended;       /* loop thread, once a body that moved returned */
	void *arg;
	const char *rid;   /* request id for log lines, restored at each resume */

	struct fib *fib;
	struct ev_loop *loop;   /* where it runs once moved */
	struct ev_task post;
	struct ev_timer timer;
	enum co_wait waiting;
	bool on_loop, cancelled;
	/* the wait in progress */
	struct ev_xfer *xfer;
	struct up_response *resp;
	enum enr_err xrc;
	const struct prov_request *xreq;  /* CO_W_STARTING: what to start */
	void (*here_fn)(void *arg);       /* CO_W_HERE: a call for the starting thread */
	void *here_arg;
	int xtimeout_ms;
	size_t xbody_max;
	struct co_waiter *cw;
	pthread_mutex_t *cw_lock;
	bool cw_cancellable;
};

/* The loop continuations move to and the pool their co_call functions
 * run on (either may be NULL: no loop means they never move, no pool
 * means co_call runs inline).  Before any co_start; NULL, NULL undoes it. */
void co_setup(struct ev_loop *loop, struct sp_pool *pool);
struct ev_loop *co_loop(void);

void co_task_init(struct co_task *t, co_fn body, co_fn ended, void *arg);

/* Run t's body on the calling thread until it returns (*moved false: t is
 * the caller's again) or waits (*moved true: the loop owns t until it
 * calls t->ended).  ENR_E_NOMEM (no fiber: nothing ran). */
ENR_MUST_CHECK enum enr_err co_start(struct co_task *t, bool *moved);

/* Loop thread: the client of t went away.  Its wait ends now; its body
 * then sees no time left.  Harmless on a task that was cancelled. */
void co_cancel(struct co_task *t);

/* Continuations that moved to the loop and have not ended (any thread). */
int co_in_flight(void);

/* The continuation running on this thread, NULL off one. */
struct co_task *co_current(void);

/* ---- waits ------------------------------------------------------------- */

/* up_perform's contract.  A cancelled continuation's transfer ends at once
 * as a timeout. */
ENR_MUST_CHECK enum enr_err co_perform(const struct prov_request *req, int timeout_ms,
				       size_t body_max, struct up_response *out);

void co_sleep_ms(int64_t ms);

/* fn(arg) where blocking is allowed: on a store pool thread when called
 * on the loop (the continuation waits); on the starting thread's own stack
 * (not the fiber's) from a continuation that has not moved; else right
 * here.  fn sees no continuation (co_current is NULL) off the loop. */
void co_call(void (*fn)(void *arg), void *arg);

/* Group commit.  Writes of one kind that continuations on the loop queue
 * run together on the store pool, one call of run(st, items, n) for
 * whatever is queued (in order, one batch of a kind at a time); each
 * continuation waits until its own ran, so what it does next (end a
 * coalesced lookup, answer) still comes after the write.  Embed a struct
 * co_write first in the item; run sets each item's result.
 *
 * co_write_kind: on the pool co_setup was given, before it is shared
 * (the engine's start); -1 without a pool or kinds left.  co_write: true
 * when w ran (the continuation waited); false when it was not queued (off
 * the loop, no such kind, the queue full): the caller writes it itself. */
#define CO_WRITE_BATCH_MAX 256   /* items of one kind in one run, at most */

struct co_write {
	struct co_task *t;
	struct ev_task wake;
};

typedef void (*co_write_fn)(struct store *st, struct co_write **items, size_t n, void *arg);

int co_write_kind(co_write_fn run, void *arg);
bool co_write(int kind, struct co_write *w);

/* util_deadline_left, but 0 once the continuation was cancelled. */
int64_t co_deadline_left(int64_t deadline_mono_ms);

/* util_deadline_passed, but true once the continuation was cancelled. */
bool co_deadline_passed(int64_t deadline_mono_ms);

bool co_cancelled(void);

/* A condition variable that threads and continuations wait on together.
 * co_cond_wait: lock held, as pthread_cond_timedwait; returns woken, at the
 * deadline (0: none), cancelled or spuriously, with lock held again.
 * co_cond_broadcast: lock held. */
struct co_cond {
	pthread_cond_t cv;
	struct co_waiter *head;
};

ENR_MUST_CHECK enum enr_err co_cond_init(struct co_cond *c);
void co_cond_release(struct co_cond *c);
void co_cond_wait(struct co_cond *c, pthread_mutex_t *lock, int64_t deadline_mono_ms);
void co_cond_broadcast(struct co_cond *c);

/* A lock that may be held across waits: a continuation waiting for it
 * yields, a thread blocks.  For work that must not interleave within the
 * process while it makes store round trips (one key's outcomes, applied by
 * compare-and-set).  Not recursive; co_mutex_init once. */
struct co_mutex {
	pthread_mutex_t m;
	struct co_cond free;
	bool held;
};

ENR_MUST_CHECK enum enr_err co_mutex_init(struct co_mutex *x);
void co_mutex_lock(struct co_mutex *x);
void co_mutex_unlock(struct co_mutex *x);
/* Free what co_mutex_init set up (nobody may hold or wait for it). */
void co_mutex_release(struct co_mutex *x);

#endif
