/*
 * admission.c - the admission decision, leases and usage counting.
 */
#include "admission.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "co.h"
#include "log.h"
#include "ratelimit.h"
#include "usage_journal.h"
#include "util.h"

#define ADM_SLOTS 1024        /* accounts with a lease or pending usage */
#define LEASE_MS 500
#define LEASE_MAX 256
#define REPLAY_EVERY_MS 30000
#define RENEW_WAIT_MS 1000    /* how long to wait for another caller's renewal */

struct slot {
	int64_t account_id;       /* 0: free */
	struct cfg_account_limits lim;
	int64_t tokens, records;  /* leased, not yet handed out */
	int64_t expires_ms;       /* lease end (wall clock) */
	bool renewing;            /* a caller is at the store for a new lease */
	struct adm_res last;      /* the store's last answer, for headers */
	/* Usage that neither the journal nor the store took yet. */
	struct st_usage_delta pending;
	int64_t pending_s;        /* the time it was counted at (its day) */
};

struct adm {
	struct store *store;
	bool leasing;
	struct uj *journal;       /* NULL: none (CGI, or no usable state_dir) */
	char state_dir[4096];
	int64_t replayed_ms;
	pthread_mutex_t lock;     /* the slots; never held across a store call */
	struct co_cond renewed;   /* a renewal ended */
	/* One flush at a time; held across its store writes, so a
	 * continuation waiting for it yields instead of blocking the loop. */
	struct co_mutex flush_lock;
	struct slot slots[ADM_SLOTS];
};

/* ---- the decision -------------------------------------------------------------- */

struct decide {
	const struct cfg_account_limits *lim;
	int64_t now_ms;
	int cost;
	int64_t records;
	int64_t extra_tokens, extra_records;   /* a lease to take when admitted */
	struct adm_res res;
	int64_t granted_tokens, granted_records;
};

/* Run under the account row's lock by st_adm_update (and again if the
 * transaction is retried: it starts from its inputs each time). */
static bool decide(void *arg, struct st_adm_state *st, struct st_usage_delta *u)
{
	struct decide *q = arg;
	const struct cfg_account_limits *lim = q->lim;
	struct rl_bucket_limits bl = { lim->requests_per_minute, lim->burst };
	struct rl_bucket_verdict bv;
	struct rl_window_verdict vh, vd;
	struct adm_res *r = &q->res;
	int64_t now_s = q->now_ms / 1000;

	memset(r, 0, sizeof *r);
	memset(u, 0, sizeof *u);
	q->granted_tokens = q->granted_records = 0;
	/* Decide on both quotas first, so a denial takes nothing. */
	rl_window_peek(&st->hour, lim->records_per_hour, 3600, now_s, q->records, &vh);
	rl_window_peek(&st->day, lim->records_per_day, 86400, now_s, q->records, &vd);
	rl_bucket_take(&st->bucket, &bl, q->now_ms, q->cost, &bv);
	r->bucket_remaining = bv.remaining;
	r->bucket_reset_s = (bv.full_in_ms + 999) / 1000;
	r->hour_remaining = vh.remaining;
	r->hour_reset_s = vh.reset_s;
	r->day_remaining = vd.remaining;
	r->day_reset_s = vd.reset_s;
	r->records_fit = vh.fits < vd.fits ? vh.fits : vd.fits;

	if (!bv.allowed || !vh.allowed || !vd.allowed) {
		/* Nothing is counted: report what is left as it stands. */
		struct rl_window_verdict ph, pd;

		rl_window_peek(&st->hour, lim->records_per_hour, 3600, now_s, 0, &ph);
		rl_window_peek(&st->day, lim->records_per_day, 86400, now_s, 0, &pd);
		r->hour_remaining = ph.remaining;
		r->day_remaining = pd.remaining;
	}
	if (!bv.allowed) {
		r->verdict = ADM_RATE_LIMITED;
		r->retry_after_s = (bv.retry_after_ms + 999) / 1000;
		u->rejections = 1;
	} else if (!vh.allowed || !vd.allowed) {
		r->verdict = ADM_QUOTA;
		/* The day window may reset later than the hour one. */
		r->retry_after_s = !vd.allowed ? vd.reset_s : vh.reset_s;
		/* The request still took its token: it was made. */
		u->requests = q->cost;
		u->rejections = 1;
	} else {
		int64_t extra_r = q->extra_records;

		r->verdict = ADM_OK;
		/* A lease takes what is there, up to what was asked. */
		if (extra_r > vh.remaining)
			extra_r = vh.remaining;
		if (extra_r > vd.remaining)
			extra_r = vd.remaining;
		if (extra_r < 0)
			extra_r = 0;
		q->granted_records = extra_r;
		if (q->extra_tokens > 0 && st->bucket.tokens >= 1.0) {
			int64_t t = (int64_t)st->bucket.tokens;

			q->granted_tokens = t < q->extra_tokens ? t : q->extra_tokens;
			st->bucket.tokens -= (double)q->granted_tokens;
			r->bucket_remaining -= q->granted_tokens;
		}
		rl_window_take(&st->hour, lim->records_per_hour, 3600, now_s, q->records + extra_r, &vh);
		rl_window_take(&st->day, lim->records_per_day, 86400, now_s, q->records + extra_r, &vd);
		r->hour_remaining = vh.remaining;
		r->day_remaining = vd.remaining;
		u->requests = q->cost;
		u->records = q->records;
	}
	/* The refill is kept even when the request was denied. */
	return true;
}

struct refund {
	int64_t now_s, records;
	int64_t given;
};

static bool give_back(void *arg, struct st_adm_state *st, struct st_usage_delta *u)
{
	struct refund *x = arg;
	int64_t hour = x->now_s - x->now_s % 3600, day = x->now_s - x->now_s % 86400;
	int64_t n = x->records;

	memset(u, 0, sizeof *u);
	x->given = 0;
	/* Records counted in a window that has rolled over are not owed. */
	if (st->hour.start_s == hour)
		st->hour.used = st->hour.used > n ? st->hour.used - n : 0;
	if (st->day.start_s == day)
		st->day.used = st->day.used > n ? st->day.used - n : 0;
	u->records = -n;
	x->given = n;
	return true;
}

/* ---- the state ------------------------------------------------------------------- */

struct adm *adm_new(struct store *s, bool leasing, const char *state_dir)
{
	struct adm *a = calloc(1, sizeof *a);

	if (a == NULL)
		return NULL;
	a->store = s;
	a->leasing = leasing;
	if (co_cond_init(&a->renewed) != ENR_OK) {
		free(a);
		return NULL;
	}
	if (co_mutex_init(&a->flush_lock) != ENR_OK) {
		co_cond_release(&a->renewed);
		free(a);
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	if (leasing && state_dir && *state_dir &&
	    util_strlcpy(a->state_dir, state_dir, sizeof a->state_dir)) {
		enum enr_err rc = ENR_OK;
		int n = 0;

		a->journal = uj_open(s, state_dir, &rc);
		if (a->journal == NULL)
			log_warn("usage", "no usage journal in %s (%s): usage counted since the last "
				 "flush is lost if the process crashes", state_dir, enr_strerror(rc));
		else if (uj_replay(s, state_dir, &n) != ENR_OK)
			log_warn("usage", "usage journals left in %s could not all be replayed yet",
				 state_dir);
		a->replayed_ms = util_now_ms();
	} else if (leasing) {
		log_warn("usage", "no state_dir: usage counted since the last flush is lost if the "
			 "process crashes");
	}
	return a;
}

void adm_free(struct adm *a)
{
	if (a == NULL)
		return;
	if (adm_flush(a, util_now_ms()) != ENR_OK)
		log_warn("usage", "usage not written at shutdown; the journal keeps it");
	uj_close(a->journal);
	co_mutex_release(&a->flush_lock);
	pthread_mutex_destroy(&a->lock);
	co_cond_release(&a->renewed);
	free(a);
}

static int64_t min3(int64_t x, int64_t y, int64_t z)
{
	int64_t m = x < y ? x : y;

	return m < z ? m : z;
}

/* How much more than one request to take at once: enough to matter for a
 * busy account, never enough to matter for a small limit. */
static void lease_size(const struct cfg_account_limits *l, int64_t *tokens, int64_t *records)
{
	*tokens = min3(l->requests_per_minute / 600, l->burst / 10, LEASE_MAX);
	*records = min3(l->records_per_hour / 1000, l->records_per_day / 10000, LEASE_MAX);
	if (*records > *tokens)
		*records = *tokens;
}

static struct slot *slot_of(struct adm *a, int64_t account_id)
{
	unsigned h = (unsigned)((uint64_t)account_id * 2654435761u) % ADM_SLOTS;

	for (unsigned i = 0; i < ADM_SLOTS; i++) {
		struct slot *s = &a->slots[(h + i) % ADM_SLOTS];

		if (s->account_id == account_id)
			return s;
		if (s->account_id == 0) {
			memset(s, 0, sizeof *s);
			s->account_id = account_id;
			return s;
		}
	}
	return NULL;
}

static bool same_limits(const struct cfg_account_limits *a, const struct cfg_account_limits *b)
{
	return memcmp(a, b, sizeof *a) == 0;
}

/* Count usage that the store did not take with an admission: in the
 * journal, else in the slot until the next flush.  Called with a->lock. */
static void count_locked(struct adm *a, struct slot *s, int64_t now_ms,
			 const struct st_usage_delta *d)
{
	if (uj_add(a->journal, s->account_id, now_ms / 1000, d))
		return;
	s->pending.requests += d->requests;
	s->pending.records += d->records;
	s->pending.credits += d->credits;
	s->pending.rejections += d->rejections;
	s->pending_s = now_ms / 1000;
}

/* A request admitted from the slot's lease.  Called with a->lock. */
static void from_lease(struct adm *a, struct slot *s, int cost, int64_t records, int64_t now_ms,
		       struct adm_res *res)
{
	struct st_usage_delta d = { cost, records, 0, 0 };

	s->tokens -= cost;
	s->records -= records;
	count_locked(a, s, now_ms, &d);
	*res = s->last;
	res->verdict = ADM_OK;
	res->retry_after_s = 0;
	res->bucket_remaining = s->last.bucket_remaining + s->tokens;
	res->hour_remaining = s->last.hour_remaining + s->records;
	res->day_remaining = s->last.day_remaining + s->records;
}

static enum enr_err admit_store(struct adm *a, struct decide *q, int64_t account_id)
{
	return st_adm_update(a->store, account_id, q->now_ms / 1000, decide, q);
}

enum enr_err adm_check(struct adm *a, int64_t account_id, const struct cfg_account_limits *lim,
		       int cost, int64_t records, int64_t now_ms, struct adm_res *res)
{
	struct decide q;
	struct slot *s;
	enum enr_err rc;
	int64_t wait_until = 0;
	bool renew;

	memset(&q, 0, sizeof q);
	q.lim = lim;
	q.now_ms = now_ms;
	q.cost = cost;
	q.records = records;
	if (!a->leasing || records > 1) {
		rc = admit_store(a, &q, account_id);
		if (rc == ENR_OK)
			*res = q.res;
		return rc;
	}

	pthread_mutex_lock(&a->lock);
	s = slot_of(a, account_id);
	if (s == NULL) {
		pthread_mutex_unlock(&a->lock);
		rc = admit_store(a, &q, account_id);
		if (rc == ENR_OK)
			*res = q.res;
		return rc;
	}
	for (;;) {
		if (!same_limits(&s->lim, lim) || now_ms >= s->expires_ms) {
			s->tokens = s->records = 0; /* an old lease is dropped, never returned */
			s->lim = *lim;
		}
		if (s->tokens >= cost && s->records >= records) {
			from_lease(a, s, cost, records, now_ms, res);
			pthread_mutex_unlock(&a->lock);
			return ENR_OK;
		}
		if (!s->renewing)
			break;
		/* The account's callers do not all go to the store at once: the
		 * next lease is on its way, and it is likely to cover this one.
		 * A slow renewal is not waited for past RENEW_WAIT_MS. */
		if (wait_until == 0)
			wait_until = util_mono_ms() + RENEW_WAIT_MS;
		else if (util_mono_ms() >= wait_until || co_cancelled())
			break;
		co_cond_wait(&a->renewed, &a->lock, wait_until);
	}
	/* A store call for this request plus a lease, without the lock: other
	 * accounts are admitted from their leases meanwhile. */
	renew = !s->renewing;
	if (renew) {
		s->renewing = true;
		lease_size(lim, &q.extra_tokens, &q.extra_records);
	}
	pthread_mutex_unlock(&a->lock);
	rc = admit_store(a, &q, account_id);
	if (!renew) {
		if (rc == ENR_OK)
			*res = q.res;
		return rc;
	}
	pthread_mutex_lock(&a->lock);
	if (rc == ENR_OK) {
		struct adm_res r = q.res;

		if (r.verdict == ADM_OK) {
			s->tokens = q.granted_tokens;
			s->records = q.granted_records;
			s->expires_ms = now_ms + LEASE_MS;
		} else {
			s->tokens = s->records = 0;
		}
		s->lim = *lim;
		s->last = r;
		r.bucket_remaining += s->tokens;
		r.hour_remaining += s->records;
		r.day_remaining += s->records;
		*res = r;
	}
	s->renewing = false;
	co_cond_broadcast(&a->renewed);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

enum enr_err adm_refund(struct adm *a, int64_t account_id, const struct cfg_account_limits *lim,
			int64_t records, int64_t now_ms)
{
	struct refund x = { now_ms / 1000, records, 0 };

	(void)lim;
	if (records <= 0)
		return ENR_OK;
	return st_adm_update(a->store, account_id, now_ms / 1000, give_back, &x);
}

enum enr_err adm_add_credits(struct adm *a, int64_t account_id, int64_t credits, int64_t now_ms)
{
	struct st_usage_delta d = { 0, 0, credits, 0 };
	struct slot *s;
	enum enr_err rc;

	if (credits <= 0)
		return ENR_OK;
	if (!a->leasing && st_usage_add(a->store, account_id, now_ms / 1000, &d) == ENR_OK)
		return ENR_OK;
	pthread_mutex_lock(&a->lock);
	s = slot_of(a, account_id);
	if (s)
		count_locked(a, s, now_ms, &d);
	pthread_mutex_unlock(&a->lock);
	if (s)
		return ENR_OK;
	rc = st_usage_add(a->store, account_id, now_ms / 1000, &d);
	if (rc)
		log_error("usage", "%lld credits of account %lld could not be counted: %s",
			  (long long)credits, (long long)account_id, enr_strerror(rc));
	return rc;
}

/* Write the counts held in slots (no journal, or a full one); a count
 * leaves its slot only once the store has it. */
static enum enr_err flush_pending(struct adm *a)
{
	enum enr_err rc = ENR_OK;

	for (int i = 0; i < ADM_SLOTS; i++) {
		struct slot *s = &a->slots[i];
		struct st_usage_delta d;
		int64_t id, when;
		enum enr_err e;

		pthread_mutex_lock(&a->lock);
		id = s->account_id;
		d = s->pending;
		when = s->pending_s;
		pthread_mutex_unlock(&a->lock);
		if (id == 0 || (d.requests | d.records | d.credits | d.rejections) == 0)
			continue;
		e = st_usage_add(a->store, id, when, &d);
		if (e) {
			rc = e;
			continue;
		}
		pthread_mutex_lock(&a->lock);
		if (s->account_id == id) {
			s->pending.requests -= d.requests;
			s->pending.records -= d.records;
			s->pending.credits -= d.credits;
			s->pending.rejections -= d.rejections;
		}
		pthread_mutex_unlock(&a->lock);
	}
	return rc;
}

enum enr_err adm_flush(struct adm *a, int64_t now_ms)
{
	enum enr_err rc, e;

	if (a == NULL)
		return ENR_OK;
	co_mutex_lock(&a->flush_lock);
	rc = uj_flush(a->journal);
	e = flush_pending(a);
	if (rc == ENR_OK)
		rc = e;
	if (a->journal && now_ms - a->replayed_ms >= REPLAY_EVERY_MS) {
		a->replayed_ms = now_ms;
		if (uj_replay(a->store, a->state_dir, NULL) != ENR_OK && rc == ENR_OK)
			rc = ENR_E_UNAVAILABLE;
	}
	co_mutex_unlock(&a->flush_lock);
	return rc;
}
