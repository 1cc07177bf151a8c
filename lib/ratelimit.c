/*
 * ratelimit.c - token bucket and fixed-window quota arithmetic.
 */
#include "ratelimit.h"

#include <math.h>

void rl_bucket_take(struct rl_bucket *b, const struct rl_bucket_limits *l, int64_t now_ms,
		    double cost, struct rl_bucket_verdict *v)
{
	double per_ms = (double)l->per_minute / 60000.0;
	double cap = (double)l->burst;

	if (b->updated_ms <= 0) {
		b->tokens = cap;
	} else if (now_ms > b->updated_ms) {
		b->tokens += (double)(now_ms - b->updated_ms) * per_ms;
	}
	/* A clock that went backwards refills nothing and takes nothing away. */
	if (now_ms > b->updated_ms)
		b->updated_ms = now_ms;
	if (b->tokens > cap)
		b->tokens = cap;

	/* Float error must not deny the last whole token. */
	if (b->tokens + 1e-9 >= cost) {
		b->tokens -= cost;
		if (b->tokens < 0)
			b->tokens = 0;
		v->allowed = true;
		v->retry_after_ms = 0;
	} else {
		v->allowed = false;
		v->retry_after_ms = (int64_t)ceil((cost - b->tokens) / per_ms - 1e-6);
		if (v->retry_after_ms < 1)
			v->retry_after_ms = 1;
	}
	v->remaining = (int64_t)floor(b->tokens + 1e-9);
	v->full_in_ms = (int64_t)ceil((cap - b->tokens) / per_ms - 1e-6);
}

int64_t rl_bucket_window_s(const struct rl_bucket_limits *l)
{
	int64_t w = (l->burst * 60 + l->per_minute - 1) / l->per_minute;

	return w < 1 ? 1 : w;
}

static void window_eval(const struct rl_window *w, int64_t limit, int64_t period_s, int64_t now_s,
			int64_t n, struct rl_window_verdict *v, int64_t *start, int64_t *used)
{
	int64_t cur = now_s - ((now_s % period_s) + period_s) % period_s;

	*start = cur;
	*used = w->start_s == cur ? w->used : 0;
	v->reset_s = cur + period_s - now_s;
	v->fits = limit - *used > 0 ? limit - *used : 0;
	v->allowed = n <= v->fits;
	v->remaining = v->allowed ? v->fits - n : v->fits;
	if (v->fits > n)
		v->fits = n;
}

void rl_window_take(struct rl_window *w, int64_t limit, int64_t period_s, int64_t now_s,
		    int64_t n, struct rl_window_verdict *v)
{
	int64_t start, used;

	window_eval(w, limit, period_s, now_s, n, v, &start, &used);
	w->start_s = start;
	w->used = v->allowed ? used + n : used;
}

void rl_window_peek(const struct rl_window *w, int64_t limit, int64_t period_s, int64_t now_s,
		    int64_t n, struct rl_window_verdict *v)
{
	int64_t start, used;

	window_eval(w, limit, period_s, now_s, n, v, &start, &used);
}
