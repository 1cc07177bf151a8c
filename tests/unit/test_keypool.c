/*
 * test_keypool.c - the key state machine and key order on a synthetic clock.
 */
#include <string.h>

#include "lib/keypool.h"

#include "harness.h"

static const struct kp_params P = { 3, 60000 };

static struct kp_key key(const char *id, int ord)
{
	struct kp_key k;

	memset(&k, 0, sizeof k);
	snprintf(k.id, sizeof k.id, "%s", id);
	k.ord = ord;
	return k;
}

TEST(hit_and_miss_keep_the_key_active)
{
	struct kp_key k = key("a", 0);
	struct kp_change ch;

	kp_apply(&k, PROV_HIT, 0, 1, 1000, &P, 0, &ch);
	kp_apply(&k, PROV_MISS, 0, 0, 2000, &P, 0, &ch);
	CHECK_INT(k.state, KP_ACTIVE);
	CHECK_INT(k.calls, 2);
	CHECK_INT(k.hits, 1);
	CHECK_INT(k.misses, 1);
	CHECK_INT(k.credits, 1);
	CHECK_INT(k.last_used_ms, 2000);
	CHECK(!ch.account_cool);
}

TEST(rate_limit_uses_the_provider_reset_and_cools_the_account)
{
	struct kp_key k = key("a", 0);
	struct kp_change ch;

	kp_apply(&k, PROV_RATE_LIMITED, 31000, 0, 1000, &P, 0, &ch);
	CHECK_INT(k.state, KP_COOLING);
	CHECK_INT(k.until_ms, 31000);
	CHECK(ch.account_cool);
	CHECK(!kp_usable(&k, 30999));
	CHECK(kp_usable(&k, 31000));          /* comes back by itself */
	CHECK_INT(kp_comes_back_ms(&k, 2000), 31000);
}

TEST(deadline_never_moves_earlier)
{
	struct kp_key k = key("a", 0);

	kp_apply(&k, PROV_RATE_LIMITED, 60000, 0, 1000, &P, 0, NULL);
	kp_apply(&k, PROV_RATE_LIMITED, 5000, 0, 2000, &P, 0, NULL);
	CHECK_INT(k.until_ms, 60000);
	kp_apply(&k, PROV_RATE_LIMITED, 90000, 0, 3000, &P, 0, NULL);
	CHECK_INT(k.until_ms, 90000);         /* a later one extends it */
}

TEST(rate_limit_without_hint_backs_off_exponentially_with_cap)
{
	struct kp_key k = key("a", 0);
	int64_t now = 0;
	int64_t want[] = { 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000 };

	for (int i = 0; i < 8; i++) {
		now = k.until_ms > now ? k.until_ms : now + 1;
		kp_apply(&k, PROV_RATE_LIMITED, 0, 0, now, &P, 0, NULL);
		CHECK_INT(k.until_ms - now, want[i]);
	}
	/* Jitter adds at most a quarter. */
	now = k.until_ms;
	kp_apply(&k, PROV_RATE_LIMITED, 0, 0, now, &P, 0.999, NULL);
	CHECK(k.until_ms - now >= 60000 && k.until_ms - now < 75000);
	/* A success resets the back-off. */
	kp_apply(&k, PROV_HIT, 0, 0, k.until_ms, &P, 0, NULL);
	now = k.last_used_ms;
	kp_apply(&k, PROV_RATE_LIMITED, 0, 0, now, &P, 0, NULL);
	CHECK_INT(k.until_ms - now, 1000);
}

TEST(quota_exhaustion_parks_until_reset_or_revive)
{
	struct kp_key k = key("a", 0), m = key("b", 1);
	struct kp_change ch;

	kp_apply(&k, PROV_QUOTA_EXHAUSTED, 86400000, 0, 1000, &P, 0, &ch);
	CHECK_INT(k.state, KP_EXHAUSTED);
	CHECK_INT(ch.from, KP_ACTIVE);
	CHECK_INT(ch.to, KP_EXHAUSTED);
	CHECK(!ch.account_cool);
	CHECK(kp_usable(&k, 86400000));
	kp_apply(&m, PROV_QUOTA_EXHAUSTED, 0, 0, 1000, &P, 0, NULL);
	CHECK_INT(m.until_ms, 0);
	CHECK(!kp_usable(&m, 1LL << 50));    /* waits for an admin */
	CHECK_INT(kp_comes_back_ms(&m, 5), 0);
	/* A rate limit does not turn exhaustion into a shorter cooling. */
	kp_apply(&k, PROV_RATE_LIMITED, 5000, 0, 2000, &P, 0, NULL);
	CHECK_INT(k.state, KP_EXHAUSTED);
	CHECK_INT(k.until_ms, 86400000);
	kp_revive(&m);
	CHECK(kp_usable(&m, 0));
}

TEST(invalid_key_is_retired_until_revived)
{
	struct kp_key k = key("a", 0);

	kp_apply(&k, PROV_KEY_INVALID, 0, 0, 1000, &P, 0, NULL);
	CHECK_INT(k.state, KP_INVALID);
	CHECK(!kp_usable(&k, 1LL << 50));
	kp_revive(&k);
	CHECK_INT(k.state, KP_ACTIVE);
}

TEST(request_rejected_leaves_the_key_alone)
{
	struct kp_key k = key("a", 0);

	kp_apply(&k, PROV_REQUEST_REJECTED, 0, 0, 1000, &P, 0, NULL);
	CHECK_INT(k.state, KP_ACTIVE);
	CHECK_INT(k.errors, 0);
	CHECK_INT(k.calls, 1);
}

TEST(breaker_cools_after_consecutive_transients)
{
	struct kp_key k = key("a", 0);

	kp_apply(&k, PROV_TRANSIENT, 0, 0, 1000, &P, 0, NULL);
	kp_apply(&k, PROV_TRANSIENT, 0, 0, 1001, &P, 0, NULL);
	CHECK_INT(k.state, KP_ACTIVE);
	kp_apply(&k, PROV_HIT, 0, 0, 1002, &P, 0, NULL);    /* success resets the count */
	kp_apply(&k, PROV_TRANSIENT, 0, 0, 1003, &P, 0, NULL);
	kp_apply(&k, PROV_TRANSIENT, 0, 0, 1004, &P, 0, NULL);
	CHECK_INT(k.state, KP_ACTIVE);
	kp_apply(&k, PROV_TRANSIENT, 0, 0, 1005, &P, 0, NULL);
	CHECK_INT(k.state, KP_COOLING);
	CHECK_INT(k.until_ms, 2005);
	CHECK_INT(k.errors, 5);
}

TEST(expired_deadline_heals_before_the_next_outcome)
{
	struct kp_key k = key("a", 0);
	struct kp_change ch;

	kp_apply(&k, PROV_RATE_LIMITED, 2000, 0, 1000, &P, 0, NULL);
	kp_apply(&k, PROV_HIT, 0, 0, 3000, &P, 0, &ch);
	CHECK_INT(k.state, KP_ACTIVE);
	CHECK_INT(k.until_ms, 0);
	CHECK_INT(ch.to, KP_ACTIVE);
}

TEST(order_strategies)
{
	struct kp_key k[4] = { key("a", 0), key("b", 1), key("c", 2), key("d", 3) };
	int o[4], n;
	bool skip[4] = { false, true, false, false };

	n = kp_order(k, 4, CFG_STRATEGY_ORDERED, 7, NULL, false, 0, o);
	CHECK_INT(n, 4);
	CHECK(o[0] == 0 && o[1] == 1 && o[2] == 2 && o[3] == 3);
	n = kp_order(k, 4, CFG_STRATEGY_ROUND_ROBIN, 6, NULL, false, 0, o);
	CHECK(n == 4 && o[0] == 2 && o[1] == 3 && o[2] == 0 && o[3] == 1);
	n = kp_order(k, 4, CFG_STRATEGY_ROUND_ROBIN, 6, skip, false, 0, o);
	CHECK(n == 3 && o[0] == 2 && o[2] == 0);
	k[0].calls = 5;
	k[1].calls = 1;
	k[2].calls = 3;
	k[3].calls = 1;
	n = kp_order(k, 4, CFG_STRATEGY_LEAST_USED, 0, NULL, false, 0, o);
	CHECK(n == 4 && o[0] == 1 && o[1] == 3 && o[2] == 2 && o[3] == 0);
	kp_apply(&k[0], PROV_KEY_INVALID, 0, 0, 1, &P, 0, NULL);
	n = kp_order(k, 4, CFG_STRATEGY_ORDERED, 0, NULL, false, 10, o);
	CHECK(n == 3 && o[0] == 1);
	/* Rotation off: the first configured key or nothing. */
	n = kp_order(k, 4, CFG_STRATEGY_ROUND_ROBIN, 3, NULL, true, 10, o);
	CHECK_INT(n, 0);
	kp_revive(&k[0]);
	n = kp_order(k, 4, CFG_STRATEGY_ROUND_ROBIN, 3, NULL, true, 10, o);
	CHECK(n == 1 && o[0] == 0);
}

TEST(earliest_comeback)
{
	struct kp_key k[3] = { key("a", 0), key("b", 1), key("c", 2) };

	kp_apply(&k[0], PROV_RATE_LIMITED, 40000, 0, 0, &P, 0, NULL);
	kp_apply(&k[1], PROV_RATE_LIMITED, 20000, 0, 0, &P, 0, NULL);
	kp_apply(&k[2], PROV_KEY_INVALID, 0, 0, 0, &P, 0, NULL);
	CHECK_INT(kp_earliest_ms(k, 3, false, 10), 20000);
	CHECK_INT(kp_earliest_ms(k, 3, true, 10), 40000);
	kp_apply(&k[0], PROV_KEY_INVALID, 0, 0, 1, &P, 0, NULL);
	kp_apply(&k[1], PROV_QUOTA_EXHAUSTED, 0, 0, 1, &P, 0, NULL);
	CHECK_INT(kp_earliest_ms(k, 3, false, 10), 0);   /* nothing comes back by itself */
}

int main(void)
{
	RUN(hit_and_miss_keep_the_key_active);
	RUN(rate_limit_uses_the_provider_reset_and_cools_the_account);
	RUN(deadline_never_moves_earlier);
	RUN(rate_limit_without_hint_backs_off_exponentially_with_cap);
	RUN(quota_exhaustion_parks_until_reset_or_revive);
	RUN(invalid_key_is_retired_until_revived);
	RUN(request_rejected_leaves_the_key_alone);
	RUN(breaker_cools_after_consecutive_transients);
	RUN(expired_deadline_heals_before_the_next_outcome);
	RUN(order_strategies);
	RUN(earliest_comeback);
	return harness_done();
}
