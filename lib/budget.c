/*
 * budget.c - credit budgets (lib/budget.h): scopes, periods and limits;
 * reservations and settlements through the store's atomic primitives.
 */
#include "budget.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "cache.h"
#include "log.h"
#include "util.h"

const char *const bud_period_names[BUD_PERIOD__MAX] = {
	[BUD_DAY] = "day",
	[BUD_MONTH] = "month",
};

#define DAY_S INT64_C(86400)

/* The first second of the UTC month holding t, and of the month after. */
static void month_bounds(int64_t t, int64_t *start, int64_t *next)
{
	struct tm tm;
	time_t tt = (time_t)t;
	int y, m;

	gmtime_r(&tt, &tm);
	y = tm.tm_year;
	m = tm.tm_mon;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y;
	tm.tm_mon = m;
	tm.tm_mday = 1;
	*start = (int64_t)timegm(&tm);
	tm.tm_mon = m + 1; /* timegm normalises December + 1 into January */
	*next = (int64_t)timegm(&tm);
}

int64_t bud_period_start(enum bud_period p, int64_t now_ms)
{
	int64_t t = now_ms / 1000, start, next;

	if (p == BUD_DAY)
		return t - ((t % DAY_S) + DAY_S) % DAY_S;
	month_bounds(t, &start, &next);
	return start;
}

int64_t bud_period_end_ms(enum bud_period p, int64_t now_ms)
{
	int64_t start, next;

	if (p == BUD_DAY)
		return (bud_period_start(BUD_DAY, now_ms) + DAY_S) * 1000;
	month_bounds(now_ms / 1000, &start, &next);
	return next * 1000;
}

void bud_account_limits(const struct st_account *a, const struct cfg *cfg, struct bud_limits *out)
{
	out->per_day = a->credits_per_day >= 0 ? a->credits_per_day : cfg->credits_per_day;
	out->per_month = a->credits_per_month >= 0 ? a->credits_per_month : cfg->credits_per_month;
}

/* ---- the accounts' budgets, kept in memory ---------------------------------- */

#define ACCOUNTS_KEPT 256
#define KEPT_MS 1000

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept {
	int64_t id;
	uint64_t gen;
	int64_t at_ms;
	const struct cfg *cfg;
	struct bud_limits lim;
	char name[LIM_NAME_MAX + 1];
} kept[ACCOUNTS_KEPT];

static enum enr_err account_of(struct store *s, const struct cfg *cfg, int64_t id,
			       struct bud_limits *lim, char *name, size_t namesz)
{
	uint64_t gen = st_auth_generation(s);
	int64_t now = util_mono_ms();
	struct kept *k = &kept[(uint64_t)id % ACCOUNTS_KEPT];
	struct st_account a;
	enum enr_err rc;

	pthread_mutex_lock(&kept_lock);
	if (k->id == id && k->cfg == cfg && gen != 0 && k->gen == gen && now - k->at_ms < KEPT_MS) {
		*lim = k->lim;
		util_strlcpy(name, k->name, namesz);
		pthread_mutex_unlock(&kept_lock);
		return ENR_OK;
	}
	pthread_mutex_unlock(&kept_lock);
	rc = st_account_by_id(s, id, &a);
	if (rc == ENR_E_NOT_FOUND) {
		/* No such account: nothing to hold credits against. */
		lim->per_day = lim->per_month = 0;
		snprintf(name, namesz, "%lld", (long long)id);
		return ENR_OK;
	}
	if (rc)
		return rc;
	bud_account_limits(&a, cfg, lim);
	util_strlcpy(name, a.name, namesz);
	pthread_mutex_lock(&kept_lock);
	k->id = id;
	k->gen = gen;
	k->at_ms = now;
	k->cfg = cfg;
	k->lim = *lim;
	util_strlcpy(k->name, a.name, sizeof k->name);
	pthread_mutex_unlock(&kept_lock);
	return ENR_OK;
}

enum enr_err bud_account_lookup(struct store *s, const struct cfg *cfg, int64_t account_id,
				struct bud_limits *out)
{
	char name[LIM_NAME_MAX + 1];

	return account_of(s, cfg, account_id, out, name, sizeof name);
}

/* ---- holds --------------------------------------------------------------------- */

static atomic_uint_fast64_t hold_seq;

static void hold_init(struct bud_hold *h)
{
	memset(h, 0, sizeof *h);
	snprintf(h->id, sizeof h->id, "%s:%llu", cache_owner(),
		 (unsigned long long)atomic_fetch_add(&hold_seq, 1));
}

static void add_scope(struct bud_hold *h, const char *scope, enum bud_period p, int64_t limit,
		      int64_t now_ms)
{
	struct st_budget_scope *sc = &h->sc[h->n++];

	util_strlcpy(sc->scope, scope, sizeof sc->scope);
	sc->period_start = bud_period_start(p, now_ms);
	sc->limit = limit;
}

static enum bud_period period_of(const struct cfg_budget *b)
{
	return b->period == BUD_DAY ? BUD_DAY : BUD_MONTH;
}

/* Reserve on h's scopes; on a refusal fill v from the refusing scope.
 * provider names the upstream provider in the alert ("" for an account). */
static enum enr_err reserve(struct store *s, const struct cfg *cfg, const char *provider,
			    struct bud_hold *h, const enum bud_period *periods, const char *const *what,
			    int64_t credits, int64_t now_ms, int64_t expires_ms,
			    struct bud_verdict *v)
{
	bool ok = false;
	int refused = -1;
	int64_t avail = 0;
	enum enr_err rc;

	memset(v, 0, sizeof *v);
	if (h->n == 0 || credits <= 0) {
		v->ok = true;
		return ENR_OK;
	}
	rc = st_budget_reserve(s, h->id, h->sc, h->n, credits, now_ms, expires_ms, &ok, &refused,
			       &avail);
	if (rc)
		return rc;
	if (ok) {
		h->held = true;
		h->amount = credits;
		v->ok = true;
		return ENR_OK;
	}
	if (refused < 0 || refused >= h->n)
		refused = 0;
	v->fits = avail;
	v->until_ms = bud_period_end_ms(periods[refused], now_ms);
	util_strlcpy(v->what, what[refused], sizeof v->what);
	/* No room at all is a spent budget: tell someone.  (A call that did
	 * not fit whole may still go for what fits.) */
	if (avail <= 0)
		alert_budget(cfg, s, provider, h->sc[refused].scope, v->what, v->until_ms);
	return ENR_OK;
}

enum enr_err bud_reserve_account(struct store *s, const struct cfg *cfg, int64_t account_id,
				 int64_t credits, int64_t now_ms, int64_t expires_ms,
				 struct bud_hold *h, struct bud_verdict *v)
{
	struct bud_limits lim;
	char name[LIM_NAME_MAX + 1], scope[64], what[2][160];
	const char *whatp[2] = { what[0], what[1] };
	enum bud_period periods[2];
	enum enr_err rc;

	hold_init(h);
	rc = account_of(s, cfg, account_id, &lim, name, sizeof name);
	if (rc)
		return rc;
	if (lim.per_day > 0) {
		snprintf(scope, sizeof scope, "account:%lld:day", (long long)account_id);
		snprintf(what[h->n], sizeof what[0], "account %s's daily budget of %lld credits", name,
			 (long long)lim.per_day);
		periods[h->n] = BUD_DAY;
		add_scope(h, scope, BUD_DAY, lim.per_day, now_ms);
	}
	if (lim.per_month > 0) {
		snprintf(scope, sizeof scope, "account:%lld:month", (long long)account_id);
		snprintf(what[h->n], sizeof what[0], "account %s's monthly budget of %lld credits",
			 name, (long long)lim.per_month);
		periods[h->n] = BUD_MONTH;
		add_scope(h, scope, BUD_MONTH, lim.per_month, now_ms);
	}
	return reserve(s, cfg, "", h, periods, whatp, credits, now_ms, expires_ms, v);
}

enum enr_err bud_reserve_key(struct store *s, const struct cfg *cfg, const struct cfg_provider *p,
			     const struct cfg_key *k, int64_t credits, int64_t now_ms,
			     int64_t expires_ms, struct bud_hold *h, struct bud_verdict *v)
{
	char scope[2 * LIM_NAME_MAX + 32], what[2][160];
	const char *whatp[2] = { what[0], what[1] };
	enum bud_period periods[2];
	enum enr_err rc;
	int account_at = -1;

	hold_init(h);
	if (k->budget.credits > 0) {
		snprintf(scope, sizeof scope, "key:%s", k->id);
		snprintf(what[h->n], sizeof what[0], "key %s's %s budget of %lld credits", k->id,
			 period_of(&k->budget) == BUD_DAY ? "daily" : "monthly",
			 (long long)k->budget.credits);
		periods[h->n] = period_of(&k->budget);
		add_scope(h, scope, periods[h->n], k->budget.credits, now_ms);
	}
	if (p->account_budget.credits > 0) {
		snprintf(scope, sizeof scope, "upstream:%s/%s", p->name, k->account);
		snprintf(what[h->n], sizeof what[0], "upstream account %s/%s's %s budget of %lld credits",
			 p->name, k->account,
			 period_of(&p->account_budget) == BUD_DAY ? "daily" : "monthly",
			 (long long)p->account_budget.credits);
		periods[h->n] = period_of(&p->account_budget);
		account_at = h->n;
		add_scope(h, scope, periods[h->n], p->account_budget.credits, now_ms);
	}
	rc = reserve(s, cfg, p->name, h, periods, whatp, credits, now_ms, expires_ms, v);
	if (rc == ENR_OK && !v->ok && account_at >= 0 && strcmp(v->what, what[account_at]) == 0)
		v->upstream_account = true;
	return rc;
}

void bud_settle(struct store *s, struct bud_hold *h, int64_t spent)
{
	enum enr_err rc;

	if (!h->held)
		return;
	h->held = false;
	rc = st_budget_settle(s, h->id, h->sc, h->n, spent);
	if (rc)
		log_error("budget", "%lld credits spent not written to the budget ledger (%s); the "
			  "hold of %lld expires by itself", (long long)spent, enr_strerror(rc),
			  (long long)h->amount);
}

/* ---- state for admins ------------------------------------------------------------- */

static enum enr_err state_of(struct store *s, const char *scope, enum bud_period p, int64_t limit,
			     int64_t now_ms, struct bud_state *out)
{
	enum enr_err rc;

	memset(out, 0, sizeof *out);
	util_strlcpy(out->scope, scope, sizeof out->scope);
	out->period = p;
	out->limit = limit;
	out->resets_ms = bud_period_end_ms(p, now_ms);
	rc = st_budget_get(s, scope, bud_period_start(p, now_ms), now_ms, &out->spent, &out->held);
	if (rc)
		return rc;
	out->left = limit - out->spent - out->held;
	if (out->left < 0)
		out->left = 0;
	return ENR_OK;
}

enum enr_err bud_account_state(struct store *s, const struct cfg *cfg, const struct st_account *a,
			       int64_t now_ms, struct bud_state out[2], int *n)
{
	struct bud_limits lim;
	char scope[64];
	enum enr_err rc;
	int k = 0;

	bud_account_limits(a, cfg, &lim);
	if (lim.per_day > 0) {
		snprintf(scope, sizeof scope, "account:%lld:day", (long long)a->id);
		rc = state_of(s, scope, BUD_DAY, lim.per_day, now_ms, &out[k]);
		if (rc)
			return rc;
		k++;
	}
	if (lim.per_month > 0) {
		snprintf(scope, sizeof scope, "account:%lld:month", (long long)a->id);
		rc = state_of(s, scope, BUD_MONTH, lim.per_month, now_ms, &out[k]);
		if (rc)
			return rc;
		k++;
	}
	*n = k;
	return ENR_OK;
}

enum enr_err bud_key_state(struct store *s, const struct cfg *cfg, const char *provider,
			   const char *key_id, int64_t now_ms, struct bud_state out[2], int *n)
{
	const struct cfg_provider *p = cfg_provider_find(cfg, provider);
	const struct cfg_key *key = NULL;
	char scope[2 * LIM_NAME_MAX + 32];
	enum enr_err rc;
	int k = 0;

	for (size_t i = 0; p && i < p->nkeys; i++) {
		if (strcmp(p->keys[i].id, key_id) == 0)
			key = &p->keys[i];
	}
	if (key && key->budget.credits > 0) {
		snprintf(scope, sizeof scope, "key:%s", key->id);
		rc = state_of(s, scope, period_of(&key->budget), key->budget.credits, now_ms, &out[k]);
		if (rc)
			return rc;
		k++;
	}
	if (key && p->account_budget.credits > 0) {
		snprintf(scope, sizeof scope, "upstream:%s/%s", p->name, key->account);
		rc = state_of(s, scope, period_of(&p->account_budget), p->account_budget.credits,
			      now_ms, &out[k]);
		if (rc)
			return rc;
		k++;
	}
	*n = k;
	return ENR_OK;
}

enum enr_err bud_upstream_each(struct store *s, const struct cfg *cfg, int64_t now_ms,
			       int (*fn)(void *arg, const struct bud_state *st), void *arg)
{
	char scope[2 * LIM_NAME_MAX + 32];
	struct bud_state st;
	enum enr_err rc;

	for (size_t i = 0; i < cfg->nproviders; i++) {
		const struct cfg_provider *p = &cfg->providers[i];

		for (size_t k = 0; k < p->nkeys; k++) {
			const struct cfg_key *key = &p->keys[k];
			bool seen = false;

			if (key->budget.credits > 0) {
				snprintf(scope, sizeof scope, "key:%s", key->id);
				rc = state_of(s, scope, period_of(&key->budget), key->budget.credits,
					      now_ms, &st);
				if (rc)
					return rc;
				if (fn(arg, &st))
					return ENR_OK;
			}
			if (p->account_budget.credits <= 0)
				continue;
			/* Each upstream account once. */
			for (size_t j = 0; j < k; j++)
				seen |= strcmp(p->keys[j].account, key->account) == 0;
			if (seen)
				continue;
			snprintf(scope, sizeof scope, "upstream:%s/%s", p->name, key->account);
			rc = state_of(s, scope, period_of(&p->account_budget),
				      p->account_budget.credits, now_ms, &st);
			if (rc)
				return rc;
			if (fn(arg, &st))
				return ENR_OK;
		}
	}
	return ENR_OK;
}
