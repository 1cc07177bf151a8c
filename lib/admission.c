/*
 * admission.c - leased admission and batched usage counts.
 */
#include "admission.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define ADM_SLOTS 1024        /* accounts with a lease or pending usage */
#define LEASE_MS 500
#define LEASE_MAX 256

struct slot {
	int64_t account_id;       /* 0: free */
	struct cfg_account_limits lim;
	int64_t tokens, records;  /* leased, not yet handed out */
	int64_t expires_ms;       /* lease end (wall clock) */
	struct st_admit_res last; /* the store's last answer, for headers */
	int64_t last_ms;
	int64_t u_requests, u_records, u_credits, u_rejections; /* usage not yet written */
};

struct adm {
	struct store *store;
	bool leasing;
	pthread_mutex_t lock;
	struct slot slots[ADM_SLOTS];
};

struct adm *adm_new(struct store *s, bool leasing)
{
	struct adm *a = calloc(1, sizeof *a);

	if (a == NULL)
		return NULL;
	a->store = s;
	a->leasing = leasing;
	pthread_mutex_init(&a->lock, NULL);
	return a;
}

void adm_free(struct adm *a)
{
	if (a == NULL)
		return;
	if (adm_flush(a, util_now_ms()) != ENR_OK)
		log_error("admission", "usage counted in memory could not be written at shutdown");
	pthread_mutex_destroy(&a->lock);
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

enum enr_err adm_check(struct adm *a, int64_t account_id, const struct cfg_account_limits *lim,
		       int cost, int64_t records, int64_t now_ms, struct st_admit_res *res)
{
	struct st_admit_req q;
	struct st_admit_res r;
	struct slot *s;
	enum enr_err rc;

	memset(&q, 0, sizeof q);
	q.account_id = account_id;
	q.limits = *lim;
	q.now_ms = now_ms;
	q.request_cost = cost;
	q.records = records;
	if (!a->leasing || records > 1) {
		rc = st_admit(a->store, &q, res);
		return rc;
	}

	pthread_mutex_lock(&a->lock);
	s = slot_of(a, account_id);
	if (s == NULL) {
		pthread_mutex_unlock(&a->lock);
		return st_admit(a->store, &q, res);
	}
	if (!same_limits(&s->lim, lim) || now_ms >= s->expires_ms) {
		s->tokens = s->records = 0; /* an old lease is dropped, never returned */
		s->lim = *lim;
	}
	if (s->tokens >= cost && s->records >= records) {
		s->tokens -= cost;
		s->records -= records;
		s->u_requests += cost;
		s->u_records += records;
		*res = s->last;
		res->verdict = ST_ADMIT_OK;
		res->retry_after_s = 0;
		res->bucket_remaining = s->last.bucket_remaining + s->tokens;
		res->hour_remaining = s->last.hour_remaining + s->records;
		res->day_remaining = s->last.day_remaining + s->records;
		pthread_mutex_unlock(&a->lock);
		return ENR_OK;
	}
	/* A store call: take this request plus a lease, and write what was
	 * counted in memory since the last one.  The slot lock is held so the
	 * account's threads do not all go to the store at once. */
	lease_size(lim, &q.extra_tokens, &q.extra_records);
	rc = st_admit(a->store, &q, &r);
	if (rc == ENR_OK) {
		if (r.verdict == ST_ADMIT_OK) {
			s->tokens = r.granted_tokens;
			s->records = r.granted_records;
			s->expires_ms = now_ms + LEASE_MS;
		} else {
			s->tokens = s->records = 0;
		}
		s->last = r;
		s->last_ms = now_ms;
		r.bucket_remaining += s->tokens;
		r.hour_remaining += s->records;
		r.day_remaining += s->records;
		*res = r;
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

enum enr_err adm_add_credits(struct adm *a, int64_t account_id, int64_t credits, int64_t now_ms)
{
	struct slot *s = NULL;

	if (credits <= 0)
		return ENR_OK;
	if (a->leasing) {
		pthread_mutex_lock(&a->lock);
		s = slot_of(a, account_id);
		if (s)
			s->u_credits += credits;
		pthread_mutex_unlock(&a->lock);
	}
	if (s == NULL)
		return st_usage_add_credits(a->store, account_id, now_ms / 1000, credits);
	return ENR_OK;
}

enum enr_err adm_flush(struct adm *a, int64_t now_ms)
{
	struct { int64_t id, req, rec, cred, rej; } pending[64];
	enum enr_err first = ENR_OK;
	int n, from = 0;

	/* Counts are taken out of memory only once the store has them: a write
	 * that fails leaves them for the next flush, and what was counted
	 * meanwhile is kept too (only what was written is subtracted). */
	do {
		int next = ADM_SLOTS;

		n = 0;
		pthread_mutex_lock(&a->lock);
		for (int i = from; i < ADM_SLOTS; i++) {
			struct slot *s = &a->slots[i];

			if (s->account_id == 0 ||
			    (s->u_requests | s->u_records | s->u_credits | s->u_rejections) == 0)
				continue;
			if (n == 64) {
				next = i;
				break;
			}
			pending[n].id = s->account_id;
			pending[n].req = s->u_requests;
			pending[n].rec = s->u_records;
			pending[n].cred = s->u_credits;
			pending[n].rej = s->u_rejections;
			n++;
		}
		pthread_mutex_unlock(&a->lock);
		for (int i = 0; i < n; i++) {
			enum enr_err rc = st_usage_add(a->store, pending[i].id, now_ms / 1000,
						       pending[i].req, pending[i].rec, pending[i].cred,
						       pending[i].rej);
			struct slot *s;

			if (rc) {
				if (first == ENR_OK)
					first = rc;
				continue;
			}
			pthread_mutex_lock(&a->lock);
			s = slot_of(a, pending[i].id);
			if (s) {
				s->u_requests -= pending[i].req;
				s->u_records -= pending[i].rec;
				s->u_credits -= pending[i].cred;
				s->u_rejections -= pending[i].rej;
			}
			pthread_mutex_unlock(&a->lock);
		}
		from = next;
	} while (from < ADM_SLOTS);
	return first;
}
