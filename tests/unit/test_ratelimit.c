/*
 * test_ratelimit.c - token bucket and quota windows on a synthetic clock.
 */
#include "lib/ratelimit.h"

#include "harness.h"

static const struct rl_bucket_limits lim = { 60, 5 }; /* 1 token/s, burst 5 */

TEST(new_bucket_allows_exactly_burst)
{
	struct rl_bucket b = { 0, 0 };
	struct rl_bucket_verdict v;
	int64_t t = 1000000;
	int allowed = 0;

	for (int i = 0; i < 10; i++) {
		rl_bucket_take(&b, &lim, t, 1, &v);
		allowed += v.allowed;
	}
	CHECK_INT(allowed, 5);
	CHECK(!v.allowed);
	CHECK_INT(v.remaining, 0);
	CHECK_INT(v.retry_after_ms, 1000);  /* one token per second */
	CHECK_INT(v.full_in_ms, 5000);
}

TEST(refill_is_proportional_and_capped)
{
	struct rl_bucket b = { 0, 0 };
	struct rl_bucket_verdict v;
	int64_t t = 5000;

	for (int i = 0; i < 5; i++)
		rl_bucket_take(&b, &lim, t, 1, &v);
	rl_bucket_take(&b, &lim, t + 999, 1, &v);
	CHECK(!v.allowed);                     /* 0.999 of a token */
	CHECK_INT(v.retry_after_ms, 1);
	rl_bucket_take(&b, &lim, t + 1000, 1, &v);
	CHECK(v.allowed);                      /* exactly one token back */
	CHECK_INT(v.remaining, 0);
	rl_bucket_take(&b, &lim, t + 1000 + 3600 * 1000, 0, &v);
	CHECK_INT(v.remaining, 5);             /* an hour later: full, not 3600 */
	CHECK_DBL(b.tokens, 5.0, 1e-9);
}

TEST(denied_requests_take_nothing)
{
	struct rl_bucket b = { 0, 0 };
	struct rl_bucket_verdict v;

	for (int i = 0; i < 5; i++)
		rl_bucket_take(&b, &lim, 100, 1, &v);
	for (int i = 0; i < 100; i++)
		rl_bucket_take(&b, &lim, 100, 1, &v);  /* hammering does not dig a hole */
	rl_bucket_take(&b, &lim, 1100, 1, &v);
	CHECK(v.allowed);
}

TEST(clock_going_backwards_is_harmless)
{
	struct rl_bucket b = { 0, 0 };
	struct rl_bucket_verdict v;

	rl_bucket_take(&b, &lim, 10000, 5, &v);
	CHECK(v.allowed);
	rl_bucket_take(&b, &lim, 5000, 1, &v);   /* earlier time: no refill, no crash */
	CHECK(!v.allowed);
	CHECK_INT(b.updated_ms, 10000);
	rl_bucket_take(&b, &lim, 11000, 1, &v);
	CHECK(v.allowed);
}

TEST(sustained_rate_over_a_minute)
{
	struct rl_bucket b = { 0, 0 };
	struct rl_bucket_verdict v;
	struct rl_bucket_limits l = { 600, 20 };  /* 10/s */
	int allowed = 0;

	/* 100 attempts per second for 60 s: burst + 60 s * 10/s. */
	for (int64_t t = 0; t < 60000; t += 10) {
		rl_bucket_take(&b, &l, 1 + t, 1, &v);
		allowed += v.allowed;
	}
	CHECK_INT(allowed, 20 + 599);
}

TEST(window_policy_seconds)
{
	struct rl_bucket_limits a = { 100, 20 }, b = { 1, 1 }, c = { 6000, 1 };

	CHECK_INT(rl_bucket_window_s(&a), 12);
	CHECK_INT(rl_bucket_window_s(&b), 60);
	CHECK_INT(rl_bucket_window_s(&c), 1);
}

TEST(hour_quota_rolls_over_at_the_hour)
{
	struct rl_window w = { 0, 0 };
	struct rl_window_verdict v;
	int64_t t = 1795428000 + 3590; /* 10 s before a full hour */

	rl_window_take(&w, 10, 3600, t, 7, &v);
	CHECK(v.allowed);
	CHECK_INT(v.remaining, 3);
	CHECK_INT(v.reset_s, 10);
	rl_window_take(&w, 10, 3600, t + 5, 4, &v);
	CHECK(!v.allowed);
	CHECK_INT(v.fits, 3);
	CHECK_INT(w.used, 7);                   /* denial took nothing */
	rl_window_take(&w, 10, 3600, t + 10, 4, &v);
	CHECK(v.allowed);                       /* new hour */
	CHECK_INT(w.used, 4);
	CHECK_INT(v.remaining, 6);
	CHECK_INT(v.reset_s, 3600);
}

TEST(day_quota_rolls_over_at_utc_midnight)
{
	struct rl_window w = { 0, 0 };
	struct rl_window_verdict v;
	int64_t midnight = 1795392000; /* 2026-11-23T00:00:00Z */

	CHECK_INT(midnight % 86400, 0);
	rl_window_take(&w, 100, 86400, midnight - 1, 100, &v);
	CHECK(v.allowed);
	CHECK_INT(v.reset_s, 1);
	rl_window_take(&w, 100, 86400, midnight - 1, 1, &v);
	CHECK(!v.allowed);
	CHECK_INT(v.fits, 0);
	rl_window_take(&w, 100, 86400, midnight, 1, &v);
	CHECK(v.allowed);
	CHECK_INT(w.start_s, midnight);
}

TEST(zero_limit_and_peek)
{
	struct rl_window w = { 0, 0 };
	struct rl_window_verdict v;

	rl_window_peek(&w, 5, 3600, 1000, 5, &v);
	CHECK(v.allowed);
	CHECK_INT(w.used, 0);                  /* peek changes nothing */
	rl_window_take(&w, 0, 3600, 1000, 1, &v);
	CHECK(!v.allowed);
	rl_window_take(&w, 0, 3600, 1000, 0, &v);
	CHECK(v.allowed);                       /* zero records always fit */
}

int main(void)
{
	RUN(new_bucket_allows_exactly_burst);
	RUN(refill_is_proportional_and_capped);
	RUN(denied_requests_take_nothing);
	RUN(clock_going_backwards_is_harmless);
	RUN(sustained_rate_over_a_minute);
	RUN(window_policy_seconds);
	RUN(hour_quota_rolls_over_at_the_hour);
	RUN(day_quota_rolls_over_at_utc_midnight);
	RUN(zero_limit_and_peek);
	return harness_done();
}
