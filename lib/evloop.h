/*
 * evloop.h - the engine's event loop: timers, tasks posted from other
 * threads, and provider HTTP transfers, all on one thread.
 *
 * Prefix: ev_.  A loop is run by one thread at a time (ev_run*, or its own
 * thread with ev_thread_start); every callback runs on that thread, and
 * every function here except ev_post, ev_post_task, ev_wake and ev_stop
 * must be called on it (or before it first runs).  Nothing a callback
 * does may block: a store call goes to the store pool (lib/spool.h).
 *
 * Readiness: epoll, with libcurl's multi interface driven through
 * curl_multi_socket_action (lib/evcurl.c).  curl_multi_poll was the other
 * choice; it rebuilds a poll set of every transfer's sockets on each call
 * and curl_multi_perform then walks every easy handle, so one readiness
 * event costs O(transfers).  With socket_action libcurl reports each
 * socket's interest once (CURLMOPT_SOCKETFUNCTION -> epoll_ctl) and its
 * one timeout (CURLMOPT_TIMERFUNCTION -> a loop timer), and an event costs
 * O(log n) in the transfers concerned: what 10,000 waiting transfers need.
 * Cross-thread wake-ups use an eventfd in the same epoll set.
 *
 * Timers are a binary min-heap on the loop's clock (monotonic ms; a fake
 * clock in tests): start and stop are O(log n), timers due at the same
 * time fire in the order they were started.  A timer is a struct the
 * waiting state embeds (no allocation, and stopping one that is not armed
 * is harmless), as is a task that must not fail to post (ev_post_task).
 *
 * Transfers follow lib/upstream_int.h's rules (https only except loopback,
 * no redirects, body cap, lower-cased headers, timeout) and end in one
 * callback on the loop thread with an up_response, or in none when
 * cancelled first.  The transfer layer is an ops table (struct
 * ev_xfer_ops): libcurl by default, the fake of lib/evfake.h in tests.
 * Connections are the libcurl layer's (a few multi handles, filled one
 * after the other: lib/evcurl.c says why): reused per host, capped by
 * ev_opts in all, HTTP/2 multiplexed where the provider offers it over TLS.
 *
 * Memory per waiting transfer (loopback HTTP/1.1, one connection each,
 * measured by tests/unit/test_evloop.c:curl_two_thousand_on_one_thread):
 * 11 to 14 KiB resident, 27 KiB of heap (libcurl's handle and its 16 KiB
 * receive buffer are most of it); docs/architecture.md compares.
 */
#ifndef ENR_EVLOOP_H
#define ENR_EVLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "provider.h"
#include "upstream.h"

struct ev_loop;

/* ---- timers ------------------------------------------------------------ */

struct ev_timer;
typedef void (*ev_timer_fn)(struct ev_loop *l, struct ev_timer *t);

/* Caller-owned (embed it in the state that waits); ev_timer_init once.
 * The members after arg are the loop's. */
struct ev_timer {
	ev_timer_fn fn;
	void *arg;
	int64_t at_ms;
	uint64_t seq;
	size_t slot;   /* heap index + 1; 0 when not armed */
};

void ev_timer_init(struct ev_timer *t, ev_timer_fn fn, void *arg);

/* Arm t to fire once, delay_ms (<= 0: at the next turn) from now, or at
 * the loop time at_ms.  An armed timer is moved.  ENR_E_NOMEM, or
 * ENR_E_RANGE beyond LIM_EV_TIMERS_MAX armed timers (t is then not armed). */
ENR_MUST_CHECK enum enr_err ev_timer_start(struct ev_loop *l, struct ev_timer *t, int64_t delay_ms);
ENR_MUST_CHECK enum enr_err ev_timer_start_at(struct ev_loop *l, struct ev_timer *t, int64_t at_ms);

/* Disarm t; nothing when it is not armed (already fired, never started). */
void ev_timer_stop(struct ev_loop *l, struct ev_timer *t);

bool ev_timer_armed(const struct ev_timer *t);

/* The loop's clock: monotonic milliseconds (the fake clock's in tests). */
int64_t ev_now(const struct ev_loop *l);

/* ---- tasks from any thread -------------------------------------------- */

typedef void (*ev_task_fn)(struct ev_loop *l, void *arg);

/* Caller-allocated task; the loop owns it from ev_post_task until fn runs
 * (fn may free or reuse it). */
struct ev_task {
	struct ev_task *next;
	ev_task_fn fn;
	void *arg;
	bool owned;    /* the loop's: allocated by ev_post */
};

/* Run fn(loop, arg) on the loop thread, soon; from any thread, never
 * fails.  Tasks run in the order they were posted.  A task still queued
 * when the loop is freed runs then (ev_stopping() is true). */
void ev_post_task(struct ev_loop *l, struct ev_task *t, ev_task_fn fn, void *arg);

/* The same with a task the loop allocates.  ENR_E_NOMEM. */
ENR_MUST_CHECK enum enr_err ev_post(struct ev_loop *l, ev_task_fn fn, void *arg);

/* Make the loop look at its clock and queue again (any thread). */
void ev_wake(struct ev_loop *l);

/* Make ev_run return after the current turn (any thread). */
void ev_stop(struct ev_loop *l);

/* True once ev_stop was called or while the loop is being freed. */
bool ev_stopping(const struct ev_loop *l);

/* ---- file descriptors --------------------------------------------------- */

#define EV_READ  1u
#define EV_WRITE 2u
#define EV_ERROR 4u    /* reported only: error or hang-up */
#define EV_HUP   8u    /* the peer closed or shut down its side (EPOLLRDHUP),
			* without waking for data that may still be unread */

struct ev_io;
typedef void (*ev_io_fn)(struct ev_loop *l, struct ev_io *w, unsigned events);

/* Caller-owned readiness watcher (the libcurl layer's sockets; a FastCGI
 * connection to notice a client that went away). */
struct ev_io {
	ev_io_fn fn;
	void *arg;
	int fd;
	unsigned events;
	bool active;
};

void ev_io_init(struct ev_io *w, ev_io_fn fn, void *arg);

/* Watch fd for events (EV_READ | EV_WRITE; level-triggered), or change
 * what an active watcher waits for.  ENR_E_IO when epoll refuses. */
ENR_MUST_CHECK enum enr_err ev_io_start(struct ev_loop *l, struct ev_io *w, int fd, unsigned events);

/* Stop watching; safe from any callback, including w's own: an event for
 * w already taken from epoll in this turn is dropped.  w may then be freed. */
void ev_io_stop(struct ev_loop *l, struct ev_io *w);

/* ev_io_stop for a descriptor the loop's thread has just closed, with no
 * copy of it open anywhere (epoll forgets such a descriptor by itself):
 * no system call. */
void ev_io_closed(struct ev_loop *l, struct ev_io *w);

/* ---- transfers ----------------------------------------------------------- */

struct ev_xfer;

/* A transfer ended.  rc ENR_OK: resp says what the network did, exactly as
 * up_perform reports it (status 0 with error or timed_out when no whole
 * answer came); ENR_E_NOMEM: the answer could not be kept; ENR_E_UNAVAILABLE:
 * the loop is being freed.  resp is borrowed for the callback (its body may
 * be taken with buf_steal); x is gone when the callback returns. */
typedef void (*ev_xfer_fn)(struct ev_loop *l, struct ev_xfer *x, enum enr_err rc,
			   struct up_response *resp, void *arg);

/* Start req (copied: it may be released at once) with a total timeout and
 * a body cap (0: LIM_UPSTREAM_BODY_MAX); fn(arg) is called once when it
 * ends, never from inside this call.  *out (may be NULL) is the handle for
 * ev_xfer_cancel, valid until fn returns.  ENR_E_INVALID (method, URL or
 * timeout, as up_perform: nothing is sent), ENR_E_UNAVAILABLE (max_xfers
 * in flight, or the loop is stopping), ENR_E_NOMEM. */
ENR_MUST_CHECK enum enr_err ev_xfer_start(struct ev_loop *l, const struct prov_request *req,
					  int timeout_ms, size_t body_max, ev_xfer_fn fn, void *arg,
					  struct ev_xfer **out);

/* Abandon x: its callback will not run, whatever already arrived.  x is
 * freed. */
void ev_xfer_cancel(struct ev_loop *l, struct ev_xfer *x);

/* A number that names x for its whole life (never reused by the loop). */
uint64_t ev_xfer_id(const struct ev_xfer *x);

/* ---- the transfer layer seam ----------------------------------------- */

struct ev_opts;

/* A transfer layer: libcurl (ev_curl_ops, the default) or a fake. The loop
 * has checked the request (lib/upstream_int.h) before start. */
struct ev_xfer_ops {
	const char *name;
	/* Set up for loop l with o's settings (o->xfer_arg is the layer's
	 * own); *be is handed to the other functions. */
	enum enr_err (*open)(struct ev_loop *l, const struct ev_opts *o, void **be);
	/* Every transfer was cancelled before this. */
	void (*close)(void *be);
	/* Begin x; report its end with ev_xfer_done, never from inside start. */
	enum enr_err (*start)(void *be, struct ev_xfer *x, const struct prov_request *req,
			      int timeout_ms);
	/* Forget x (it has not ended); nothing of it may be used afterwards. */
	void (*cancel)(void *be, struct ev_xfer *x);
};

extern const struct ev_xfer_ops ev_curl_ops;

/* For transfer layers.  The capture that fills x's response (with
 * lib/upstream_int.h's callbacks), its id, a pointer of the layer's own,
 * and the report of its end (loop thread: runs the callback, frees x). */
struct up_capture *ev_xfer_capture(struct ev_xfer *x);
void *ev_xfer_layer_data(const struct ev_xfer *x);
void ev_xfer_set_layer_data(struct ev_xfer *x, void *p);
void ev_xfer_done(struct ev_loop *l, struct ev_xfer *x, enum enr_err rc);

/* ---- the loop ------------------------------------------------------------ */

struct ev_opts {
	int max_xfers;              /* in flight at once; 0: LIM_EV_XFERS_DEFAULT */
	int free_xfers;             /* idle transfers kept for reuse; 0: LIM_EV_FREE_DEFAULT */
	/* The multi handle's shared connection cache (libcurl layer); 0 leaves
	 * libcurl's default.  Beyond the caps transfers queue inside libcurl
	 * (their timeout runs). */
	int max_connections;        /* CURLMOPT_MAX_TOTAL_CONNECTIONS */
	int max_host_connections;   /* CURLMOPT_MAX_HOST_CONNECTIONS */
	int max_idle_connections;   /* CURLMOPT_MAXCONNECTS: idle ones kept open */
	int max_streams;            /* CURLMOPT_MAX_CONCURRENT_STREAMS: HTTP/2 calls a
				     * connection carries at once (the server may say fewer) */
	const struct ev_xfer_ops *xfer; /* NULL: ev_curl_ops */
	void *xfer_arg;
	/* NULL: util_mono_ms.  With another clock the loop never sleeps for a
	 * timer (time moves when the clock's owner says: it calls ev_wake). */
	int64_t (*clock)(void *arg);
	void *clock_arg;
};

/* A new loop (o may be NULL for the defaults); *out is freed with ev_free.
 * ENR_E_NOMEM, ENR_E_IO (epoll, eventfd), ENR_E_INVALID (an option out of
 * range), or the transfer layer's error. */
ENR_MUST_CHECK enum enr_err ev_new(const struct ev_opts *o, struct ev_loop **out);

/* Free l, on its thread once ev_run returned (or after ev_thread_join):
 * transfers still running are cancelled (no callback), armed timers are
 * disarmed, tasks still queued run.  Whoever owns state waiting on l ends
 * it first.  ev_free(NULL) does nothing. */
void ev_free(struct ev_loop *l);

/* Run on the calling thread until ev_stop.  ENR_E_IO when epoll fails. */
ENR_MUST_CHECK enum enr_err ev_run(struct ev_loop *l);

/* The synchronous driver: run on the calling thread until *done is true
 * (set by a callback of this loop), or timeout_ms of the loop's clock
 * passed (<= 0: no bound; ENR_E_TIMEOUT), or ev_stop (ENR_E_UNAVAILABLE).
 * One code path serves plain CGI and tests: the same state machine, on a
 * private loop. */
ENR_MUST_CHECK enum enr_err ev_run_until(struct ev_loop *l, const bool *done, int64_t timeout_ms);

/* Everything that is due now, without waiting: ready descriptors, queued
 * tasks, due timers, repeated while any ran.  Returns how many callbacks
 * ran.  Tests drive a fake-clock loop with it. */
int ev_run_pending(struct ev_loop *l);

/* Run l on a thread of its own; ev_thread_join stops and joins it. */
ENR_MUST_CHECK enum enr_err ev_thread_start(struct ev_loop *l);
void ev_thread_join(struct ev_loop *l);

/* True on the thread running l. */
bool ev_on_loop_thread(const struct ev_loop *l);

struct ev_stats {
	size_t timers;           /* armed */
	size_t xfers;            /* in flight */
	size_t xfers_idle;       /* kept for reuse */
	uint64_t xfers_started;
	uint64_t xfers_ended;    /* callbacks run */
	uint64_t tasks_run;
};

/* Counters of l (loop thread). */
void ev_stats(const struct ev_loop *l, struct ev_stats *out);

#endif
