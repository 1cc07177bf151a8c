/*
 * test_budget.c - credit budgets: periods and their resets, which limits
 * apply to an account, reservations that refuse past a limit and say what
 * still fits and when it resets, key and upstream account budgets, the
 * state admins see.  A temporary SQLite store; time is passed in.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <string.h>

#include "lib/budget.h"
#include "lib/config.h"
#include "lib/store.h"
#include "tests/unit/tmpconf.h"

static char dir[] = "/tmp/enrichd-budget-XXXXXX";
static struct cfg *cfg;
static struct store *store;

/* 2026-12-31T23:00:00Z and 2028-02-10T12:00:00Z, in ms. */
static const int64_t NYE = INT64_C(1798758000000);
static const int64_t LEAP = INT64_C(1833796800000);

static bool setup(void)
{
	char path[512], text[2048], why[256];

	if (mkdtemp(dir) == NULL)
		return false;
	setenv("BUDGET_K1", "K1-secret", 1);
	setenv("BUDGET_K2", "K2-secret", 1);
	snprintf(path, sizeof path, "%s/enrichd.conf", dir);
	snprintf(text, sizeof text,
		 "store = \"sqlite:%s/e.db\"; state_dir = \"%s\";\n"
		 "accounts_default = { credits_per_day = 5; credits_per_month = 100; };\n"
		 "providers = ( { name = \"pdl\"; kind = \"pdl\";\n"
		 "  account_budget = { credits = 4; period = \"month\"; };\n"
		 "  keys = ( { id = \"pdl-1\"; account = \"acme\"; secret = \"env:BUDGET_K1\";\n"
		 "             budget = { credits = 2; period = \"day\"; }; },\n"
		 "           { id = \"pdl-2\"; account = \"acme\"; secret = \"env:BUDGET_K2\"; } ); } );\n",
		 dir, dir);
	if (!tmpconf_load(path, text, &cfg))
		return false;
	return st_open_cfg(cfg, &store, why, sizeof why) == ENR_OK;
}

TEST(periods_and_resets)
{
	/* The day of NYE starts at midnight and ends at the new year's. */
	CHECK_INT(bud_period_start(BUD_DAY, NYE), INT64_C(1798675200));
	CHECK_INT(bud_period_end_ms(BUD_DAY, NYE), INT64_C(1798761600000));
	/* December's month, and January after it. */
	CHECK_INT(bud_period_start(BUD_MONTH, NYE), INT64_C(1796083200));
	CHECK_INT(bud_period_end_ms(BUD_MONTH, NYE), INT64_C(1798761600000));
	/* February of a leap year has 29 days. */
	CHECK_INT(bud_period_start(BUD_MONTH, LEAP), INT64_C(1832976000));
	CHECK_INT(bud_period_end_ms(BUD_MONTH, LEAP), INT64_C(1835481600000));
	/* A reset is always later than now. */
	CHECK(bud_period_end_ms(BUD_DAY, LEAP) > LEAP);
}

TEST(an_accounts_own_budget_wins_over_the_default)
{
	struct st_account a;
	struct bud_limits l;

	memset(&a, 0, sizeof a);
	a.credits_per_day = ST_LIMIT_DEFAULT;
	a.credits_per_month = 0;
	bud_account_limits(&a, cfg, &l);
	CHECK_INT(l.per_day, 5);
	CHECK_INT(l.per_month, 0); /* 0: no monthly budget for this account */
	a.credits_per_day = 7;
	a.credits_per_month = ST_LIMIT_DEFAULT;
	bud_account_limits(&a, cfg, &l);
	CHECK_INT(l.per_day, 7);
	CHECK_INT(l.per_month, 100);
}

TEST(reservations_refuse_past_the_budget_and_say_what_fits)
{
	struct bud_hold h1, h2, h3;
	struct bud_verdict v;
	struct bud_state st[2];
	struct st_account a;
	int64_t id;
	int n = 0;

	REQUIRE(st_account_create(store, "acme", 1, &id) == ENR_OK);
	CHECK_INT(bud_reserve_account(store, cfg, id, 3, NYE, NYE + 60000, &h1, &v), ENR_OK);
	CHECK(v.ok && h1.held && h1.n == 2);
	CHECK_INT(bud_reserve_account(store, cfg, id, 3, NYE, NYE + 60000, &h2, &v), ENR_OK);
	CHECK(!v.ok && !h2.held);
	CHECK_INT(v.fits, 2);
	CHECK_INT(v.until_ms, bud_period_end_ms(BUD_DAY, NYE));
	CHECK(strstr(v.what, "account acme's daily budget of 5 credits") != NULL);
	/* The provider charged one of the three: two come free again. */
	bud_settle(store, &h1, 1);
	CHECK(!h1.held);
	CHECK_INT(bud_reserve_account(store, cfg, id, 4, NYE, NYE + 60000, &h3, &v), ENR_OK);
	CHECK(v.ok);
	REQUIRE(st_account_by_id(store, id, &a) == ENR_OK);
	CHECK_INT(bud_account_state(store, cfg, &a, NYE, st, &n), ENR_OK);
	CHECK_INT(n, 2);
	CHECK_INT(st[0].period, BUD_DAY);
	CHECK_INT(st[0].spent, 1);
	CHECK_INT(st[0].held, 4);
	CHECK_INT(st[0].left, 0);
	CHECK_INT(st[1].period, BUD_MONTH);
	CHECK_INT(st[1].left, 95);
	/* The next day starts from nothing (the month remembers). */
	bud_settle(store, &h3, 4);
	CHECK_INT(bud_reserve_account(store, cfg, id, 5, NYE + 3600000, NYE + 3660000, &h1, &v),
		  ENR_OK);
	CHECK(v.ok);
	bud_settle(store, &h1, 0);
	/* No budget: nothing held, nothing written. */
	REQUIRE(st_account_set_budgets(store, id, 0, 0) == ENR_OK);
	/* The kept limits follow the generation: this process sees it at once. */
	CHECK_INT(bud_reserve_account(store, cfg, id, 1000, NYE, NYE + 60000, &h2, &v), ENR_OK);
	CHECK(v.ok && !h2.held);
}

TEST(key_and_upstream_account_budgets)
{
	const struct cfg_provider *p = cfg_provider_find(cfg, "pdl");
	struct bud_hold h[4];
	struct bud_verdict v;

	REQUIRE(p != NULL);
	/* pdl-1: its own 2 a day, and the account's 4 a month. */
	CHECK_INT(bud_reserve_key(store, cfg, p, &p->keys[0], 2, LEAP, LEAP + 60000, &h[0], &v),
		  ENR_OK);
	CHECK(v.ok && h[0].n == 2);
	CHECK_INT(bud_reserve_key(store, cfg, p, &p->keys[0], 1, LEAP, LEAP + 60000, &h[1], &v),
		  ENR_OK);
	CHECK(!v.ok && !v.upstream_account);
	CHECK_INT(v.until_ms, bud_period_end_ms(BUD_DAY, LEAP));
	/* pdl-2 has no budget of its own; the account has 2 left. */
	CHECK_INT(bud_reserve_key(store, cfg, p, &p->keys[1], 2, LEAP, LEAP + 60000, &h[2], &v),
		  ENR_OK);
	CHECK(v.ok && h[2].n == 1);
	CHECK_INT(bud_reserve_key(store, cfg, p, &p->keys[1], 1, LEAP, LEAP + 60000, &h[3], &v),
		  ENR_OK);
	CHECK(!v.ok && v.upstream_account);
	CHECK_INT(v.until_ms, bud_period_end_ms(BUD_MONTH, LEAP));
	bud_settle(store, &h[0], 2);
	bud_settle(store, &h[2], 2);
}

static int count_state(void *arg, const struct bud_state *st)
{
	int *n = arg;

	if (strcmp(st->scope, "key:pdl-1") == 0)
		CHECK_INT(st->spent, 2);
	if (strcmp(st->scope, "upstream:pdl/acme") == 0)
		CHECK_INT(st->left, 0);
	(*n)++;
	return 0;
}

TEST(admins_see_each_upstream_budget_once)
{
	int n = 0;

	CHECK_INT(bud_upstream_each(store, cfg, LEAP, count_state, &n), ENR_OK);
	CHECK_INT(n, 2); /* pdl-1's own, and the account's once for both keys */
}

int main(void)
{
	if (!setup()) {
		printf("FAIL tests/unit/test_budget.c:setup\n");
		return 1;
	}
	RUN(periods_and_resets);
	RUN(an_accounts_own_budget_wins_over_the_default);
	RUN(reservations_refuse_past_the_budget_and_say_what_fits);
	RUN(key_and_upstream_account_budgets);
	RUN(admins_see_each_upstream_budget_once);
	st_close(store);
	cfg_release(cfg);
	tmpconf_remove(dir);
	return harness_done();
}
