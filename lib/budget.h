/*
 * budget.h - credit budgets: which budgets a paid call draws on, reserving
 * its worst case before it is made, settling what the provider charged.
 *
 * Prefix: bud_.  Budgets (docs/architecture.md, "Credit budgets"):
 *   client account   credits per UTC day and per calendar month (UTC):
 *                    accounts_default.credits_per_day / _per_month, or the
 *                    account's own (lib/admin's account operations:
 *                    enrichctl account set-budget, PATCH /admin/accounts).  Scopes
 *                    "account:ID:day" and "account:ID:month".
 *   upstream key     keys[].budget = { credits; period; } (scope "key:ID")
 *   upstream account providers[].account_budget = { credits; period; },
 *                    for each upstream account of the provider's keys
 *                    (scope "upstream:PROVIDER/ACCOUNT").
 * 0 credits means no budget.  A call reserves its worst case (credits_per_hit
 * per item) on every budget that applies, all or nothing, in the store
 * (st_budget_reserve): concurrent callers on any host never overshoot.  It
 * settles with what the provider reported (x-call-credits-spent,
 * isCreditCharged, per item in bulk).  A hold expires with the call's
 * deadline, so a crash leaks nothing.  An exhausted budget raises an alert
 * (lib/alert.h) and says when it resets.  This module decides; the store
 * keeps.  Thread-safe.
 */
#ifndef ENR_BUDGET_H
#define ENR_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

/* The period of a budget and when it resets (UTC). */
enum bud_period { BUD_DAY, BUD_MONTH, BUD_PERIOD__MAX };

extern const char *const bud_period_names[BUD_PERIOD__MAX];

/* The start of the period holding now_ms (seconds since the epoch), and
 * the wall-clock ms it ends (the next reset). */
int64_t bud_period_start(enum bud_period p, int64_t now_ms);
int64_t bud_period_end_ms(enum bud_period p, int64_t now_ms);

/* A client account's budgets as they apply: its own, else the
 * configuration's defaults (0: none). */
struct bud_limits {
	int64_t per_day, per_month;
};

void bud_account_limits(const struct st_account *a, const struct cfg *cfg, struct bud_limits *out);

/* The same for an account id, read from the store and kept in memory until
 * accounts change anywhere (the authentication generation) or for a
 * second. */
enum enr_err bud_account_lookup(struct store *s, const struct cfg *cfg, int64_t account_id,
				struct bud_limits *out) ENR_MUST_CHECK;

/* Credits held for one call (or a group of items), on up to two budgets. */
struct bud_hold {
	char id[160];
	struct st_budget_scope sc[2];
	int n;
	int64_t amount;
	bool held;
};

/* Why a reservation was refused. */
struct bud_verdict {
	bool ok;
	int64_t fits;            /* refused: credits the refusing budget could still take */
	int64_t until_ms;        /* refused: when it resets */
	bool upstream_account;   /* bud_reserve_key: the upstream account's budget refused */
	char what[160];          /* refused: "account acme's daily budget of 20 credits" */
};

/* Reserve credits on the client account's budgets until expires_ms.
 * v->ok true: held (or no budget applies: h->held false, nothing
 * written).  False: refused, with fits and until_ms; an alert is raised. */
enum enr_err bud_reserve_account(struct store *s, const struct cfg *cfg, int64_t account_id,
				 int64_t credits, int64_t now_ms, int64_t expires_ms,
				 struct bud_hold *h, struct bud_verdict *v) ENR_MUST_CHECK;

/* The same for an upstream key and its upstream account (config on the
 * key and the provider). */
enum enr_err bud_reserve_key(struct store *s, const struct cfg *cfg, const struct cfg_provider *p,
			     const struct cfg_key *k, int64_t credits, int64_t now_ms,
			     int64_t expires_ms, struct bud_hold *h, struct bud_verdict *v) ENR_MUST_CHECK;

/* Settle a hold with the credits actually spent (nothing when it holds
 * nothing).  A failure is logged: the hold expires by itself, the credits
 * spent are then missing from the ledger. */
void bud_settle(struct store *s, struct bud_hold *h, int64_t spent);

/* The state of one budget now, for admins (the console, enrichctl). */
struct bud_state {
	char scope[2 * LIM_NAME_MAX + 32];
	enum bud_period period;
	int64_t limit;           /* credits per period (0: none) */
	int64_t spent, held;     /* this period */
	int64_t left;            /* limit - spent - held, at least 0 */
	int64_t resets_ms;       /* wall clock */
};

/* A client account's budgets (day, month) with their state; *n how many
 * apply (0 when neither does). */
enum enr_err bud_account_state(struct store *s, const struct cfg *cfg, const struct st_account *a,
			       int64_t now_ms, struct bud_state out[2], int *n) ENR_MUST_CHECK;

/* The budgets that apply to upstream key key_id of provider (its own, its
 * upstream account's) with their state; *n how many (0: none, also for a
 * key or provider the configuration does not name). */
enum enr_err bud_key_state(struct store *s, const struct cfg *cfg, const char *provider,
			   const char *key_id, int64_t now_ms, struct bud_state out[2],
			   int *n) ENR_MUST_CHECK;

/* Every configured upstream key and account budget with its state; fn
 * returns non-zero to stop. */
enum enr_err bud_upstream_each(struct store *s, const struct cfg *cfg, int64_t now_ms,
			       int (*fn)(void *arg, const struct bud_state *st), void *arg) ENR_MUST_CHECK;

#endif
