/*
 * engine.h - the engine's moving parts for a process: the event loop that
 * waiting requests live on, the store pool that makes its store calls, and
 * the cap on requests waiting at once.
 *
 * Prefix: eng_.  eng_start builds them from the configuration and makes
 * them the process's (lib/co.h): from then on a continuation that waits
 * (a provider call, a pause, a coalesced lookup, a store call) moves to
 * the loop and holds no thread.  Without eng_start (plain CGI, tools that
 * run their own threads) the same code waits in place.
 *
 * Threads: one loop thread, store_threads pool threads and a few writer
 * threads, whatever the load.  Connections to providers are the loop's (reused per host, capped
 * by upstream.max_*, HTTP/2 where offered over TLS).
 *
 * eng_start/eng_stop on one thread, once each; eng_enter/eng_leave and
 * eng_in_flight from any thread.
 */
#ifndef ENR_ENGINE_H
#define ENR_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

struct store;
struct eng;

/* Start the loop and pool for cfg's settings (max_in_flight,
 * store_threads, upstream.*) over st (borrowed; it outlives the engine).
 * ENR_E_NOMEM, ENR_E_IO, ENR_E_UNAVAILABLE (a thread did not start). */
ENR_MUST_CHECK enum enr_err eng_start(const struct cfg *cfg, struct store *st, struct eng **out);

/* Wait until no continuation is in flight or the monotonic deadline
 * passes; true when none is left. */
bool eng_drain(struct eng *e, int64_t deadline_mono_ms);

/* Stop the loop (continuations still in flight are abandoned: call
 * eng_drain first) and the pool, free e.  eng_stop(NULL) does nothing. */
void eng_stop(struct eng *e);

/* A request that may wait on providers takes a place (false: max_in_flight
 * are already taken, answer 503 unavailable) and gives it back when it
 * ends.  e may be NULL (no engine: no cap). */
bool eng_enter(struct eng *e);
void eng_leave(struct eng *e);

/* Run fn(arg) on one of the engine's writer threads: what may block on a
 * client's socket (finishing a FastCGI request waits for nginx to close
 * its end) never runs on the loop.  Without an engine, or when the queue
 * is full, fn runs here.  Any thread. */
void eng_hand_off(struct eng *e, void (*fn)(void *arg), void *arg);

/* Places taken now. */
int eng_in_flight(const struct eng *e);

#endif
