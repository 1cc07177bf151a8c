/*
 * ratelimit.h - token bucket and counted quota windows, as pure functions.
 *
 * Prefix: rl_.  No I/O and no clock: the caller passes the time in and
 * stores the state (lib/store keeps it in the database so that every
 * thread, process and host sees one bucket per account).  All arithmetic
 * is exact for the values the configuration allows.
 */
#ifndef ENR_RATELIMIT_H
#define ENR_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* A token bucket: `burst` tokens at most, refilled at `per_minute` tokens
 * per minute.  A new bucket (updated_ms == 0) is full. */
struct rl_bucket {
	double tokens;
	int64_t updated_ms;
};

struct rl_bucket_limits {
	int64_t per_minute;  /* > 0 */
	int64_t burst;       /* > 0 */
};

struct rl_bucket_verdict {
	bool allowed;
	int64_t remaining;      /* whole tokens left after this request */
	int64_t retry_after_ms; /* when denied: until one token is back */
	int64_t full_in_ms;     /* until the bucket is full again */
};

/* Refill b to now_ms, then take cost tokens if there are enough.  b is
 * updated in both cases (the refill is kept). */
void rl_bucket_take(struct rl_bucket *b, const struct rl_bucket_limits *l, int64_t now_ms,
		    double cost, struct rl_bucket_verdict *v);

/* Seconds of the bucket's window for RateLimit-Policy: the time to refill
 * from empty to full, at least 1. */
int64_t rl_bucket_window_s(const struct rl_bucket_limits *l);

/* A counted quota over fixed windows aligned to the epoch (an hour starts
 * at hh:00:00 UTC, a day at 00:00:00 UTC). */
struct rl_window {
	int64_t start_s;  /* start of the window the count belongs to */
	int64_t used;
};

struct rl_window_verdict {
	bool allowed;
	int64_t remaining;   /* after this request */
	int64_t reset_s;     /* seconds until the window rolls over */
	int64_t fits;        /* how many of n would have fitted (when denied) */
};

/* Roll w over if now_s is in a later window, then add n when used + n <=
 * limit.  w is written in both cases (a roll-over is kept). */
void rl_window_take(struct rl_window *w, int64_t limit, int64_t period_s, int64_t now_s,
		    int64_t n, struct rl_window_verdict *v);

/* Like rl_window_take without taking: what the window would say. */
void rl_window_peek(const struct rl_window *w, int64_t limit, int64_t period_s, int64_t now_s,
		    int64_t n, struct rl_window_verdict *v);

#endif
