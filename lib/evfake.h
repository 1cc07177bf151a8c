/*
 * evfake.h - a fake transfer layer and clock for the event loop, so the
 * engine is unit-tested without sockets.
 *
 * Prefix: evf_.  A loop made with evf_opts() sends nothing: each transfer
 * is recorded (method, URL, headers, body, timeout) and waits until the
 * test ends it with evf_answer, evf_fail or evf_time_out, or until the
 * fake clock passes its timeout (then it times out as libcurl's would).
 * The loop's clock is the fake one: it moves only with evf_advance.
 * Requests go through the same checks as real ones (lib/upstream_int.h)
 * and answers through the same capture (body cap, lower-cased headers).
 *
 * Thread-safety: every function may be called from any thread (those that
 * post to the loop while it exists, between ev_new and ev_free); the ends
 * of transfers are posted to the loop and happen on its thread, so an id
 * that was cancelled or ended meanwhile is dropped there, safely.
 */
#ifndef ENR_EVFAKE_H
#define ENR_EVFAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "evloop.h"

struct evf;

/* A fake whose clock starts at start_ms.  Free it after its loop. */
ENR_MUST_CHECK enum enr_err evf_new(int64_t start_ms, struct evf **out);
void evf_free(struct evf *f);

/* Point o's transfer layer and clock at f (other members untouched). */
void evf_opts(struct evf *f, struct ev_opts *o);

int64_t evf_now(const struct evf *f);

/* Move the clock ms forward and wake the loop. */
void evf_advance(struct evf *f, int64_t ms);

/* Transfers in flight (started, neither ended nor cancelled), and started
 * in all. */
size_t evf_count(struct evf *f);
uint64_t evf_started(const struct evf *f);

/* The id of the n-th oldest transfer in flight (0 first); 0 when none. */
uint64_t evf_nth(struct evf *f, size_t n);

/* What a transfer asked for (copies, cut to these sizes). */
struct evf_call {
	char method[8];
	char url[2048];
	char body[4096];
	size_t body_len;
	unsigned nheaders;
	char headers[PROV_MAX_HEADERS][512];
	int timeout_ms;
	int64_t started_ms;     /* fake clock */
};

/* False when id is not in flight. */
bool evf_call(struct evf *f, uint64_t id, struct evf_call *out);

/* End transfer id on the loop: an HTTP answer (headers: "Name: value"
 * lines separated by "\n", may be NULL; body may be NULL); a transport
 * failure (status 0 with error); a timeout (timed_out, as at its timeout).
 * ENR_E_NOMEM only. */
ENR_MUST_CHECK enum enr_err evf_answer(struct evf *f, uint64_t id, long status, const char *headers,
				       const char *body);
ENR_MUST_CHECK enum enr_err evf_fail(struct evf *f, uint64_t id, const char *error);
ENR_MUST_CHECK enum enr_err evf_time_out(struct evf *f, uint64_t id);

#endif
