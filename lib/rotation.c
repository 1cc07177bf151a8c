/*
 * rotation.c - the key rotation loop for one provider call.
 */
#include "rotation.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "budget.h"
#include "co.h"
#include "keypool.h"
#include "log.h"
#include "metrics.h"
#include "upstream.h"
#include "util.h"

#define ROT_KEYS_MAX 64
#define TRANSIENT_BACKOFF_MS 50
#define POLL_MAX 600
#define APPLY_TRIES 16

const char *const rot_status_names[ROT__MAX] = {
	[ROT_ANSWERED] = "answered",
	[ROT_NO_KEY] = "no_usable_key",
	[ROT_REJECTED] = "rejected",
	[ROT_FAILED] = "failed",
	[ROT_DEADLINE] = "deadline",
	[ROT_NOT_APPLICABLE] = "not_applicable",
};

static struct mx_family *mx_builtin, *mx_seconds;

static int flush_outcomes(struct store *st, enum enr_err *first);

/* In-process state: the round-robin cursor of each provider, and the call
 * counters of keys whose state did not change (written by rot_flush about
 * once a second instead of one database write per call).  State changes
 * (cooling, exhaustion, invalid keys) are always written at once.
 *
 * Each name (a key id, a provider) has one entry in an open-addressed
 * table.  Entries are never removed, so finding one takes no lock; each
 * entry's counts have their own, and a cursor is one atomic counter. */
#define ROT_TABLE 1024          /* power of two */
#define ROT_NAMES_MAX 768       /* names kept; a key past it is counted at once */

enum { E_FREE, E_NAMING, E_NAMED };

struct entry {
	atomic_int state;
	char name[LIM_NAME_MAX + 1];
	pthread_mutex_t m;        /* the counts below */
	/* Calls counted, not yet written (a key). */
	int64_t calls, hits, misses, credits, last_used_ms;
	/* Calls and credits per outcome and the latest meters, added to the
	 * store by rot_flush: the store's counters are every process's
	 * (responders, workers, enrich-batch), so /metrics shows the whole
	 * system.  meters_ms 0: none to write. */
	int64_t ocalls[PROV_OUTCOME__MAX], ocredits[PROV_OUTCOME__MAX];
	int64_t requests_left, credits_left, meters_ms;
	atomic_uint_fast64_t next; /* round-robin cursor (a provider) */
};

static struct entry key_table[ROT_TABLE], provider_table[ROT_TABLE];
static atomic_int names_taken;

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* name's entry in t; a free one is taken for it when create.  NULL when
 * there is none (not created, or the table is full). */
static struct entry *entry_of(struct entry *t, const char *name, bool create)
{
	uint32_t h = name_hash(name);

	for (unsigned i = 0; i < ROT_TABLE; i++) {
		struct entry *e = &t[(h + i) & (ROT_TABLE - 1)];
		int st = atomic_load_explicit(&e->state, memory_order_acquire);

		if (st == E_FREE) {
			int expect = E_FREE;

			if (!create)
				return NULL;
			if (atomic_fetch_add(&names_taken, 1) >= ROT_NAMES_MAX) {
				atomic_fetch_sub(&names_taken, 1);
				return NULL;
			}
			if (atomic_compare_exchange_strong(&e->state, &expect, E_NAMING)) {
				util_strlcpy(e->name, name, sizeof e->name);
				pthread_mutex_init(&e->m, NULL);
				atomic_store_explicit(&e->state, E_NAMED, memory_order_release);
				return e;
			}
			atomic_fetch_sub(&names_taken, 1);
			st = expect;
		}
		/* Another thread is naming this entry: it is done in a moment. */
		while (st == E_NAMING) {
			sched_yield();
			st = atomic_load_explicit(&e->state, memory_order_acquire);
		}
		if (strcmp(e->name, name) == 0)
			return e;
	}
	return NULL;
}

static uint64_t rr_next(const char *provider)
{
	struct entry *e = entry_of(provider_table, provider, true);

	return e ? atomic_fetch_add(&e->next, 1) : 0;
}

/* Count a call in memory; false when there is no room (write it now). */
static bool pend_add(const struct kp_key *k, enum prov_outcome o, int credits, int64_t now)
{
	struct entry *e = entry_of(key_table, k->id, true);

	if (e == NULL)
		return false;
	pthread_mutex_lock(&e->m);
	e->calls++;
	e->hits += o == PROV_HIT;
	e->misses += o == PROV_MISS;
	e->credits += credits > 0 ? credits : 0;
	e->last_used_ms = now;
	pthread_mutex_unlock(&e->m);
	return true;
}

/* Show the counts still in memory in freshly loaded keys (least_used
 * ordering and listings see them). */
void rot_pending_apply(struct kp_key *keys, int n)
{
	for (int j = 0; j < n; j++) {
		struct entry *e = entry_of(key_table, keys[j].id, false);

		if (e == NULL)
			continue;
		pthread_mutex_lock(&e->m);
		keys[j].calls += e->calls;
		keys[j].hits += e->hits;
		keys[j].misses += e->misses;
		keys[j].credits += e->credits;
		if (e->last_used_ms > keys[j].last_used_ms)
			keys[j].last_used_ms = e->last_used_ms;
		pthread_mutex_unlock(&e->m);
	}
}

/* One key's outcomes apply one at a time within the process: hundreds of
 * continuations answering for one key at once would otherwise make each
 * other's compare-and-set fail until they gave up.  Other processes still
 * race through the compare-and-set. */
#define KEY_LANES 64

static struct co_mutex key_lane[KEY_LANES];
static pthread_once_t lanes_once = PTHREAD_ONCE_INIT;
static bool lanes_ok;

static void lanes_init(void)
{
	lanes_ok = true;
	for (int i = 0; i < KEY_LANES; i++)
		if (co_mutex_init(&key_lane[i]) != ENR_OK)
			lanes_ok = false;
}

static struct co_mutex *lane_of(const char *id)
{
	uint32_t h = 2166136261u;

	pthread_once(&lanes_once, lanes_init);
	if (!lanes_ok)
		return NULL;
	for (const char *c = id; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	return &key_lane[h % KEY_LANES];
}

static enum enr_err apply_once(struct store *st, const char *id, enum prov_outcome o,
			       int64_t hint_until_ms, int credits, int64_t now_ms,
			       const struct kp_params *p, struct kp_key *after, struct kp_change *ch);

enum enr_err rot_apply(struct store *st, const char *id, enum prov_outcome o,
		       int64_t hint_until_ms, int credits, int64_t now_ms, const struct kp_params *p,
		       struct kp_key *after, struct kp_change *ch)
{
	struct co_mutex *lane = lane_of(id);
	enum enr_err rc;

	if (lane)
		co_mutex_lock(lane);
	rc = apply_once(st, id, o, hint_until_ms, credits, now_ms, p, after, ch);
	if (lane)
		co_mutex_unlock(lane);
	return rc;
}

static enum enr_err apply_once(struct store *st, const char *id, enum prov_outcome o,
			       int64_t hint_until_ms, int credits, int64_t now_ms,
			       const struct kp_params *p, struct kp_key *after, struct kp_change *ch)
{
	enum enr_err rc = ENR_E_UNAVAILABLE;

	for (int attempt = 0; attempt < APPLY_TRIES; attempt++) {
		struct kp_key before, k;
		struct kp_change change;
		double jitter = util_jitter();
		bool stored = false;

		rc = st_ukey_get(st, id, &before);
		if (rc)
			return rc;
		k = before;
		kp_apply(&k, o, hint_until_ms, credits, now_ms, p, jitter, &change);
		rc = st_ukey_put(st, &before, &k, &stored);
		if (rc)
			return rc;
		if (!stored) {
			/* Someone changed the key meanwhile: read it again and
			 * apply on top, after a short random pause so that
			 * contenders do not collide again in step. */
			rc = ENR_E_UNAVAILABLE;
			co_sleep_ms((int64_t)(jitter * (2 << (attempt < 4 ? attempt : 4))));
			continue;
		}
		k.version = before.version + 1;
		if (change.account_cool && change.to == KP_COOLING) {
			/* The store moves the other keys only where the deadline
			 * gets later; a failure here leaves them to their own
			 * 429s. */
			rc = st_ukey_cool_account(st, k.provider, k.account, k.id, k.until_ms, now_ms,
						  NULL);
			if (rc)
				log_warn("rotation", "keys of account %s/%s not cooled: %s", k.provider,
					 k.account, enr_strerror(rc));
		}
		if (after)
			*after = k;
		if (ch)
			*ch = change;
		return ENR_OK;
	}
	log_warn("rotation", "key %s: outcome not recorded after %d tries (contention)", id,
		 APPLY_TRIES);
	return rc;
}

enum enr_err rot_revive(struct store *st, const char *id, struct kp_key *after)
{
	for (int attempt = 0; attempt < APPLY_TRIES; attempt++) {
		struct kp_key before, k;
		bool stored = false;
		enum enr_err rc = st_ukey_get(st, id, &before);

		if (rc)
			return rc;
		k = before;
		kp_revive(&k);
		rc = st_ukey_put(st, &before, &k, &stored);
		if (rc)
			return rc;
		if (stored) {
			k.version = before.version + 1;
			if (after)
				*after = k;
			return ENR_OK;
		}
	}
	return ENR_E_UNAVAILABLE;
}

enum enr_err rot_sync_keys(struct store *st, const struct cfg *cfg)
{
	struct st_ukey_cfg *keys;
	size_t n = 0, total = 0;
	enum enr_err rc;

	for (size_t i = 0; i < cfg->nproviders; i++)
		total += cfg->providers[i].nkeys;
	keys = calloc(total ? total : 1, sizeof *keys);
	if (keys == NULL)
		return ENR_E_NOMEM;
	for (size_t i = 0; i < cfg->nproviders; i++) {
		const struct cfg_provider *p = &cfg->providers[i];

		for (size_t k = 0; k < p->nkeys; k++) {
			const struct cfg_key *key = &p->keys[k];
			size_t sl = strlen(key->secret);

			util_strlcpy(keys[n].id, key->id, sizeof keys[n].id);
			util_strlcpy(keys[n].provider, p->name, sizeof keys[n].provider);
			util_strlcpy(keys[n].account, key->account, sizeof keys[n].account);
			/* Only the last four characters of a secret are ever
			 * stored ("" keeps what is there: tools that load the
			 * configuration without its secrets). */
			util_strlcpy(keys[n].last4, sl >= 4 ? key->secret + sl - 4 : "",
				     sizeof keys[n].last4);
			keys[n].ord = (int)k;
			n++;
		}
	}
	rc = st_ukey_sync(st, keys, n);
	free(keys);
	return rc;
}

/* Write the call counters kept in memory; what the store refused stays
 * for the next flush.  Returns how many writes failed. */
static int flush_calls(struct store *st, enum enr_err *first)
{
	int failed = 0;

	for (unsigned i = 0; i < ROT_TABLE; i++) {
		struct entry *e = &key_table[i];
		int64_t calls, hits, misses, credits, last;
		enum enr_err rc;

		if (atomic_load_explicit(&e->state, memory_order_acquire) != E_NAMED)
			continue;
		pthread_mutex_lock(&e->m);
		calls = e->calls;
		hits = e->hits;
		misses = e->misses;
		credits = e->credits;
		last = e->last_used_ms;
		pthread_mutex_unlock(&e->m);
		if (calls == 0)
			continue;
		rc = st_ukey_add_counts(st, e->name, calls, hits, misses, credits, last);
		if (rc) {
			if (failed++ == 0)
				*first = rc;
			continue;
		}
		/* Calls counted meanwhile stay: only what was written leaves. */
		pthread_mutex_lock(&e->m);
		e->calls -= calls;
		e->hits -= hits;
		e->misses -= misses;
		e->credits -= credits;
		pthread_mutex_unlock(&e->m);
	}
	return failed;
}

/* One flush at a time.  Held across its store writes, so a co_mutex: a
 * continuation waiting for it (a /metrics scrape on the loop) yields
 * instead of blocking the loop the holder needs to carry on. */
static struct co_mutex flush_lock;
static pthread_once_t flush_once = PTHREAD_ONCE_INIT;
static bool flush_lock_ok;

static void flush_lock_init(void)
{
	flush_lock_ok = co_mutex_init(&flush_lock) == ENR_OK;
}

void rot_flush(struct store *st)
{
	enum enr_err first = ENR_OK;
	int failed;

	pthread_once(&flush_once, flush_lock_init);
	if (!flush_lock_ok)
		return; /* the counts stay in memory for a later flush */
	co_mutex_lock(&flush_lock);
	failed = flush_calls(st, &first);
	if (failed)
		log_error("rotation", "call counters of %d keys not written (%s): kept for the next "
			  "flush", failed, enr_strerror(first));
	first = ENR_OK;
	failed = flush_outcomes(st, &first);
	if (failed)
		log_error("rotation", "%d outcome counters or meters not written (%s): kept for the "
			  "next flush", failed, enr_strerror(first));
	co_mutex_unlock(&flush_lock);
}

void rot_init(void)
{
	mx_builtin = mx_counter("enrichd_builtin_answers_total",
				"Answers of built-in providers (local, mock) in this process, by "
				"provider and outcome.");
	mx_seconds = mx_histogram("enrichd_upstream_call_duration_seconds",
				  "Provider call latency by provider.", mx_latency_bounds,
				  mx_latency_nbounds);
}


static const struct cfg_key *cfg_key_of(const struct cfg_provider *p, const char *id)
{
	for (size_t i = 0; i < p->nkeys; i++) {
		if (strcmp(p->keys[i].id, id) == 0)
			return &p->keys[i];
	}
	return NULL;
}

/* Count one upstream call of key (NULL for a built-in provider: those are
 * this process's answers, not upstream calls) with its outcome, credits
 * and meters. */
static CO_OWN_FRAME void count_call(const char *provider, const char *key,
				    const struct prov_result *res, double ms)
{
	char labels[LIM_METRIC_LABELS_MAX * 2], pv[LIM_NAME_MAX * 2 + 1];
	enum prov_outcome o = res->outcome;
	struct entry *e;

	mx_label(provider, pv, sizeof pv);
	if (key == NULL) {
		snprintf(labels, sizeof labels, "provider=\"%s\",outcome=\"%s\"", pv,
			 prov_outcome_names[o]);
		mx_add(mx_builtin, labels, 1);
		return;
	}
	snprintf(labels, sizeof labels, "provider=\"%s\"", pv);
	mx_observe(mx_seconds, labels, ms / 1000.0);
	e = entry_of(key_table, key, true);
	if (e == NULL)
		return;
	pthread_mutex_lock(&e->m);
	e->ocalls[o]++;
	e->ocredits[o] += res->credits > 0 ? res->credits : 0;
	if (res->requests_left >= 0 || res->credits_left >= 0) {
		e->requests_left = res->requests_left;
		e->credits_left = res->credits_left;
		e->meters_ms = util_now_ms();
	}
	pthread_mutex_unlock(&e->m);
}

/* Write the outcome counters and meters kept in memory; what the store
 * refused stays for the next flush.  Returns how many writes failed.
 * Called with rot_flush's lock. */
static int flush_outcomes(struct store *st, enum enr_err *first)
{
	int failed = 0;

	for (unsigned i = 0; i < ROT_TABLE; i++) {
		struct entry *e = &key_table[i];
		int64_t calls[PROV_OUTCOME__MAX], credits[PROV_OUTCOME__MAX];
		int64_t requests_left, credits_left, meters_ms;
		bool done[PROV_OUTCOME__MAX], meters_done;

		if (atomic_load_explicit(&e->state, memory_order_acquire) != E_NAMED)
			continue;
		pthread_mutex_lock(&e->m);
		memcpy(calls, e->ocalls, sizeof calls);
		memcpy(credits, e->ocredits, sizeof credits);
		requests_left = e->requests_left;
		credits_left = e->credits_left;
		meters_ms = e->meters_ms;
		pthread_mutex_unlock(&e->m);
		meters_done = meters_ms == 0;
		for (int o = 0; o < PROV_OUTCOME__MAX; o++) {
			enum enr_err rc = ENR_OK;

			if (calls[o] != 0 || credits[o] != 0)
				rc = st_ukey_outcome_add(st, e->name, o, calls[o], credits[o]);
			done[o] = rc == ENR_OK;
			if (rc && failed++ == 0)
				*first = rc;
		}
		if (!meters_done) {
			enum enr_err rc = st_ukey_meters_put(st, e->name, requests_left, credits_left,
							     meters_ms);

			meters_done = rc == ENR_OK;
			if (rc && failed++ == 0)
				*first = rc;
		}
		pthread_mutex_lock(&e->m);
		for (int o = 0; o < PROV_OUTCOME__MAX; o++) {
			if (done[o]) {
				e->ocalls[o] -= calls[o];
				e->ocredits[o] -= credits[o];
			}
		}
		if (meters_done && e->meters_ms == meters_ms)
			e->meters_ms = 0;
		pthread_mutex_unlock(&e->m);
	}
	return failed;
}

/* Wait for the key's (and its upstream account's) pacing slots.  False
 * when the slot is past the deadline: the caller tries another key. */
static CO_OWN_FRAME bool pace(const struct rot_ctx *ctx, const struct cfg_provider *p,
			      const struct cfg_key *k)
{
	int64_t now = util_now_ms(), start = now, wait;
	char scope[2 * LIM_NAME_MAX + 16];

	if (k->requests_per_minute > 0) {
		snprintf(scope, sizeof scope, "key:%s", k->id);
		if (st_pace_reserve(ctx->store, scope, 60000 / k->requests_per_minute + 1, now,
				    &start) != ENR_OK)
			start = now;
	}
	if (p->account_requests_per_minute > 0) {
		int64_t s2 = now;

		snprintf(scope, sizeof scope, "account:%s/%s", p->name, k->account);
		if (st_pace_reserve(ctx->store, scope, 60000 / p->account_requests_per_minute + 1,
				    now, &s2) == ENR_OK && s2 > start)
			start = s2;
	}
	wait = start - now;
	if (wait <= 0)
		return true;
	if (wait > co_deadline_left(ctx->deadline_mono_ms))
		return false;
	co_sleep_ms(wait);
	return true;
}

/* Perform req within the provider's timeout and what is left of the
 * request's deadline, and count the call in rep. */
static enum enr_err perform(const struct rot_ctx *ctx, const struct cfg_provider *p,
			    struct prov_request *req, struct rot_report *rep,
			    struct up_response *resp)
{
	int64_t left = co_deadline_left(ctx->deadline_mono_ms);
	int timeout = p->timeout_ms;
	enum enr_err rc;

	req->http2 = (enum prov_http2)p->http2;
	req->ca_file = p->ca_file;
	if (left < timeout)
		timeout = left < 1 ? 1 : (int)left;
	rc = co_perform(req, timeout, LIM_UPSTREAM_BODY_MAX, resp);
	if (rc)
		return rc;
	rep->calls++;
	rep->upstream_ms += resp->elapsed_ms;
	rep->timed_out = resp->resp.timed_out;
	rep->deadline_cut = resp->resp.timed_out && timeout < p->timeout_ms;
	return ENR_OK;
}

/* The call ran out of the request's time, not the provider's: a key is
 * not to blame for a request that waited before its call (a queue under
 * load, a slow provider earlier in the waterfall). */
static bool cut_by_deadline(const struct prov_result *res, const struct rot_report *rep)
{
	return res->outcome == PROV_TRANSIENT && rep->deadline_cut;
}

/* One HTTP exchange: perform req and parse it into res. */
static enum enr_err exchange(const struct rot_ctx *ctx, const struct cfg_provider *p,
			     const struct rot_op *op, struct prov_request *req,
			     struct prov_result *res, struct rot_report *rep,
			     struct up_response *resp)
{
	enum enr_err rc = perform(ctx, p, req, rep, resp);

	if (rc)
		return rc;
	prov_result_reset(res);
	op->parse(op->arg, p, &resp->resp, util_now_ms(), res);
	return ENR_OK;
}

/* Surfe-style providers: poll until the job is done or the deadline. */
static CO_OWN_FRAME enum enr_err poll_pending(const struct rot_ctx *ctx,
					      const struct cfg_provider *p, const struct rot_op *op,
					      const struct cfg_key *key, struct prov_result *res,
					      struct rot_report *rep, struct up_response *resp)
{
	char id[sizeof res->pending_id];
	enum enr_err rc = ENR_OK;

	util_strlcpy(id, res->pending_id, sizeof id);
	for (int i = 0; i < POLL_MAX && res->outcome == PROV_PENDING; i++) {
		struct prov_request req;

		if (co_deadline_left(ctx->deadline_mono_ms) <= p->poll_interval_ms)
			break;
		co_sleep_ms(p->poll_interval_ms);
		prov_request_init(&req);
		rc = op->build_poll(op->arg, p, key, id, &req);
		if (rc == ENR_OK)
			rc = exchange(ctx, p, op, &req, res, rep, resp);
		prov_request_release(&req);
		if (rc)
			break;
		/* An answer that does not repeat the id keeps the one we have. */
		if (res->outcome == PROV_PENDING && res->pending_id[0] == '\0')
			util_strlcpy(res->pending_id, id, sizeof res->pending_id);
	}
	return rc;
}

static CO_OWN_FRAME void log_move(const struct kp_key *k, enum prov_outcome o,
				  const struct kp_key *next)
{
	char until[21] = "";

	if (k->until_ms)
		util_fmt_time_s(k->until_ms / 1000, until);
	if (next)
		log_info("rotation", "key %s (...%s) %s%s%s, trying %s (...%s)", k->id, k->last4,
			 prov_outcome_names[o], until[0] ? " until " : "", until, next->id,
			 next->last4);
	else
		log_info("rotation", "key %s (...%s) %s%s%s, no other key to try", k->id, k->last4,
			 prov_outcome_names[o], until[0] ? " until " : "", until);
}

/* The wall-clock end of a budget hold for a call made now. */
static int64_t hold_until(const struct rot_ctx *ctx)
{
	int64_t left = co_deadline_left(ctx->deadline_mono_ms);

	if (left > 600000)
		left = 600000;
	return util_now_ms() + (left > 0 ? left : 0) + 30000;
}

/* Whether a call that may cost credits draws on key ck's budget or its
 * upstream account's. */
static bool budget_applies(const struct cfg_provider *p, const struct cfg_key *ck,
			   int64_t credits)
{
	return credits > 0 && (ck->budget.credits > 0 || p->account_budget.credits > 0);
}

/* Key idx's budget (or its upstream account's) is spent: park it, and for
 * an account budget every key of that account, exhausted until the budget
 * resets; the pool moves on.  An alert says so. */
static CO_OWN_FRAME void park_for_budget(const struct rot_ctx *ctx, const struct kp_params *params,
					 struct kp_key *keys, int nkeys, bool *skip, int idx,
					 const struct bud_verdict *v)
{
	for (int i = 0; i < nkeys; i++) {
		struct kp_key after;
		struct kp_change ch;

		if (i != idx && !(v->upstream_account && strcmp(keys[i].account, keys[idx].account) == 0))
			continue;
		skip[i] = true;
		if (rot_apply(ctx->store, keys[i].id, PROV_QUOTA_EXHAUSTED, v->until_ms, 0, util_now_ms(),
			      params, &after, &ch) != ENR_OK)
			continue;
		keys[i] = after;
		if (ch.from != ch.to)
			alert_key(ctx->cfg, ctx->store, &after);
	}
	log_warn("rotation", "key %s (...%s): %s is spent; parked until it resets", keys[idx].id,
		 keys[idx].last4, v->what);
}

/* A lookup as a call through the key pool: the adapter's own ops. */
struct lookup {
	const struct prov_ops *ops;
	const struct prov_query *q;
};

static enum enr_err lookup_build(void *arg, const struct cfg_provider *p,
				 const struct cfg_key *key, struct prov_request *out)
{
	const struct lookup *l = arg;

	return l->ops->build(p, key, l->q, out);
}

static enum enr_err lookup_build_poll(void *arg, const struct cfg_provider *p,
				      const struct cfg_key *key, const char *pending_id,
				      struct prov_request *out)
{
	const struct lookup *l = arg;

	return l->ops->build_poll(p, key, pending_id, out);
}

static void lookup_parse(void *arg, const struct cfg_provider *p, const struct prov_response *resp,
			 int64_t now_ms, struct prov_result *out)
{
	const struct lookup *l = arg;

	l->ops->parse(p, l->q, resp, now_ms, out);
}

enum enr_err rot_call(const struct rot_ctx *ctx, const struct cfg_provider *p,
		      const struct prov_query *q, struct prov_result *out, struct rot_report *rep)
{
	const struct prov_ops *ops = prov_ops_find(p->kind);
	struct lookup l = { ops, q };
	struct rot_op op = { lookup_build, NULL, lookup_parse, &l, 0, 0 };
	enum enr_err rc;

	memset(rep, 0, sizeof *rep);
	prov_result_reset(out);
	if (ops == NULL)
		return ENR_E_CONFIG;
	if (ops->answer) {
		rc = ops->answer(ctx->pctx, p, q, out);
		rep->status = ROT_ANSWERED;
		count_call(p->name, NULL, out, 0);
		return rc;
	}
	if (ops->build_poll)
		op.build_poll = lookup_build_poll;
	op.worst_credits = p->credits_per_hit;
	op.unit_credits = p->credits_per_hit;
	return rot_call_op(ctx, p, &op, out, rep);
}

/* The provider's keys as the store has them, with the counts still in
 * memory: on the heap and no larger than the pool, since a call keeps them
 * for as long as it waits on the provider (NULL when it has none). */
static enum enr_err load_keys(const struct rot_ctx *ctx, const char *provider,
			      struct kp_key **out, int *n)
{
	enum enr_err rc = st_ukeys_load(ctx->store, provider, ROT_KEYS_MAX, out, n);

	if (rc == ENR_OK)
		rot_pending_apply(*out, *n);
	return rc;
}

/* Read the keys again (a rate limit cooled the others of its account too):
 * in a new array, since the pool may have more keys now than when the call
 * began; *keys stays as it was when the read fails. */
static void reload_keys(const struct rot_ctx *ctx, const char *provider, struct kp_key **keys,
			int *n)
{
	struct kp_key *fresh;
	int m;

	if (st_ukeys_load(ctx->store, provider, ROT_KEYS_MAX, &fresh, &m) != ENR_OK)
		return;
	free(*keys);
	*keys = fresh;
	*n = m;
}

/* A call's walk over the key pool.  What lives here lives across the
 * call's waits; what is needed only between them is in the helpers below,
 * each with its own frame (CO_OWN_FRAME), so a waiting call keeps little
 * stack. */
struct walk {
	struct kp_key *keys;   /* the pool as read, on the heap */
	int nkeys;
	bool skip[ROT_KEYS_MAX];
	bool first_only;       /* rotation off: the first key or nothing */
	bool any_rejected, any_transient;
	int transients;
	struct kp_params params;
};

/* The key to try next (an index into w->keys), -1 when none may be. */
static CO_OWN_FRAME int next_key(const struct rot_ctx *ctx, const struct walk *w, uint64_t cursor,
				 int64_t now)
{
	int order[ROT_KEYS_MAX];

	return kp_order(w->keys, w->nkeys, ctx->cfg->rotation.strategy, cursor, w->skip,
			w->first_only, now, order) > 0
		       ? order[0]
		       : -1;
}

/* The key's budget (or its upstream account's) for this call: *hold is
 * NULL when none applies, else a reservation to settle (on the heap: only
 * calls with a budget carry one while they wait).  *use is false when the
 * key is not to be used now (skipped, or parked with its budget). */
static CO_OWN_FRAME enum enr_err reserve_budget(const struct rot_ctx *ctx,
						const struct cfg_provider *p,
						const struct rot_op *op, const struct cfg_key *ck,
						struct walk *w, int idx, struct bud_hold **hold,
						bool *use)
{
	const struct kp_key *k = &w->keys[idx];
	struct bud_verdict v;
	enum enr_err rc;

	*hold = NULL;
	*use = true;
	if (!budget_applies(p, ck, op->worst_credits))
		return ENR_OK;
	*hold = calloc(1, sizeof **hold);
	if (*hold == NULL)
		return ENR_E_NOMEM;
	rc = bud_reserve_key(ctx->store, ctx->cfg, p, ck, op->worst_credits, util_now_ms(),
			     hold_until(ctx), *hold, &v);
	if (rc == ENR_OK && !v.ok) {
		*use = false;
		if (v.fits >= op->unit_credits && op->unit_credits > 0) {
			/* Not spent, only too small for this call: the next key. */
			log_info("rotation", "key %s (...%s): %s cannot take %lld credits "
				 "(%lld left), trying the next key", k->id, k->last4, v.what,
				 (long long)op->worst_credits, (long long)v.fits);
			w->skip[idx] = true;
		} else {
			park_for_budget(ctx, &w->params, w->keys, w->nkeys, w->skip, idx, &v);
		}
	}
	if (rc || !*use) {
		free(*hold);
		*hold = NULL;
	}
	return rc;
}

/* Settle a budget hold with what the call spent, and free it. */
static void settle_budget(const struct rot_ctx *ctx, struct bud_hold *hold, int64_t spent)
{
	if (hold == NULL)
		return;
	bud_settle(ctx->store, hold, spent);
	free(hold);
}

/* What the call's outcome does to key idx: counted in memory or applied
 * in the store.  An answer ends the walk (*done); else the key is skipped,
 * the pool read again when a rate limit may have cooled its account's
 * other keys, a transient failure paused on, and the move logged. */
static CO_OWN_FRAME enum enr_err take_outcome(const struct rot_ctx *ctx,
					      const struct cfg_provider *p, struct walk *w, int idx,
					      uint64_t cursor, const struct prov_result *out,
					      struct rot_report *rep, bool *done)
{
	struct kp_key *k = &w->keys[idx], after;
	struct kp_change ch;
	enum enr_err rc;
	int next;

	*done = false;
	if (k->state == KP_ACTIVE && k->transients == 0 &&
	    (out->outcome == PROV_HIT || out->outcome == PROV_MISS) &&
	    pend_add(k, out->outcome, out->credits, util_now_ms())) {
		/* Nothing about the key changes: count the call in memory. */
		after = *k;
		ch.from = ch.to = KP_ACTIVE;
	} else {
		rc = rot_apply(ctx->store, k->id, out->outcome, out->until_ms, out->credits,
			       util_now_ms(), &w->params, &after, &ch);
		if (rc)
			return rc;
	}
	*k = after;
	if (ch.from != ch.to && (ch.to == KP_INVALID || ch.to == KP_EXHAUSTED))
		alert_key(ctx->cfg, ctx->store, &after);
	if (out->outcome == PROV_HIT || out->outcome == PROV_MISS) {
		rep->status = ROT_ANSWERED;
		util_strlcpy(rep->key_id, k->id, sizeof rep->key_id);
		*done = true;
		return ENR_OK;
	}
	w->skip[idx] = true;
	/* Other keys of the same upstream account cooled too. */
	if (out->outcome == PROV_RATE_LIMITED)
		reload_keys(ctx, p->name, &w->keys, &w->nkeys);
	if (out->outcome == PROV_REQUEST_REJECTED)
		w->any_rejected = true;
	if (out->outcome == PROV_TRANSIENT) {
		int64_t pause = TRANSIENT_BACKOFF_MS << (w->transients < 4 ? w->transients : 4);

		w->any_transient = true;
		/* Not when the pause would use up the time left. */
		if (pause < co_deadline_left(ctx->deadline_mono_ms))
			co_sleep_ms(pause);
		w->transients++;
	}
	next = next_key(ctx, w, cursor + 1, util_now_ms());
	log_move(&after, out->outcome, next >= 0 ? &w->keys[next] : NULL);
	if (out->reason[0])
		log_debug("rotation", "%s: %s", p->name, out->reason);
	return ENR_OK;
}

/* The walk found no key to try: why, for the report. */
static CO_OWN_FRAME void no_key_left(const struct rot_ctx *ctx, const struct cfg_provider *p,
				     const struct walk *w, int64_t now, struct rot_report *rep)
{
	if (w->any_rejected) {
		rep->status = ROT_REJECTED;
	} else if (w->any_transient) {
		rep->status = ROT_FAILED;
	} else {
		rep->status = ROT_NO_KEY;
		rep->comes_back_ms = kp_earliest_ms(w->keys, w->nkeys, w->first_only, now);
		alert_pool_dry(ctx->cfg, ctx->store, p->name, rep->comes_back_ms);
	}
}

enum enr_err rot_call_op(const struct rot_ctx *ctx, const struct cfg_provider *p,
			 const struct rot_op *op, struct prov_result *out, struct rot_report *rep)
{
	struct walk w;
	struct up_response resp;
	enum enr_err rc = ENR_OK;

	memset(rep, 0, sizeof *rep);
	prov_result_reset(out);
	memset(&w, 0, sizeof w);
	w.first_only = !(ctx->cfg->rotation.enabled && ctx->cfg->rotation.endpoints[ctx->endpoint]);
	kp_params_from_cfg(ctx->cfg, &w.params);
	rc = load_keys(ctx, p->name, &w.keys, &w.nkeys);
	if (rc)
		return rc;
	up_response_init(&resp);
	for (;;) {
		const struct cfg_key *ck;
		struct bud_hold *hold;
		struct prov_request req;
		int64_t now;
		uint64_t cursor;
		int idx;
		bool use, answered, done;

		if (co_deadline_left(ctx->deadline_mono_ms) <= 0) {
			rep->status = ROT_DEADLINE;
			break;
		}
		now = util_now_ms();
		cursor = 0;
		if (ctx->cfg->rotation.strategy == CFG_STRATEGY_ROUND_ROBIN && !w.first_only)
			cursor = rr_next(p->name);
		idx = next_key(ctx, &w, cursor, now);
		if (idx < 0) {
			no_key_left(ctx, p, &w, now, rep);
			break;
		}
		ck = cfg_key_of(p, w.keys[idx].id);
		if (ck == NULL || !pace(ctx, p, ck)) {
			w.skip[idx] = true;
			continue;
		}
		rc = reserve_budget(ctx, p, op, ck, &w, idx, &hold, &use);
		if (rc)
			break;
		if (!use)
			continue;
		prov_request_init(&req);
		rc = op->build(op->arg, p, ck, &req);
		if (rc == ENR_E_INVALID) {
			prov_request_release(&req);
			settle_budget(ctx, hold, 0);
			rep->status = ROT_NOT_APPLICABLE;
			rc = ENR_OK;
			break;
		}
		if (rc == ENR_OK)
			rc = exchange(ctx, p, op, &req, out, rep, &resp);
		prov_request_release(&req);
		if (rc == ENR_OK && out->outcome == PROV_PENDING && op->build_poll)
			rc = poll_pending(ctx, p, op, ck, out, rep, &resp);
		answered = rc == ENR_OK && (out->outcome == PROV_HIT || out->outcome == PROV_MISS);
		settle_budget(ctx, hold, answered ? out->credits : 0);
		if (rc)
			break;
		if (co_cancelled()) {
			/* The client went away mid-call: nothing to hold against the key. */
			rep->status = ROT_DEADLINE;
			break;
		}
		count_call(p->name, w.keys[idx].id, out, resp.elapsed_ms);
		if (out->outcome == PROV_PENDING || cut_by_deadline(out, rep)) {
			/* The job or the call did not finish in the request's time:
			 * nothing to hold against the key. */
			rep->status = ROT_DEADLINE;
			break;
		}
		rc = take_outcome(ctx, p, &w, idx, cursor, out, rep, &done);
		if (rc || done)
			break;
	}
	up_response_release(&resp);
	free(w.keys);
	if (rep->status != ROT_ANSWERED)
		prov_result_reset(out);
	return rc;
}

/* ---- bulk calls ------------------------------------------------------------- */

/* One bulk exchange: perform req and read the answer's items. */
static enum enr_err exchange_bulk(const struct rot_ctx *ctx, const struct cfg_provider *p,
				  const struct prov_ops *ops, const struct prov_query *const *qs,
				  const char *const *ids, size_t m, struct prov_request *req,
				  struct prov_result *call, struct prov_result *res,
				  struct rot_report *rep, struct up_response *resp)
{
	enum enr_err rc = perform(ctx, p, req, rep, resp);

	if (rc)
		return rc;
	ops->parse_bulk(p, qs, ids, m, &resp->resp, util_now_ms(), call, res);
	return ENR_OK;
}

/* An asynchronous bulk call (Surfe): poll until the job is done or the
 * deadline. */
static enum enr_err poll_bulk(const struct rot_ctx *ctx, const struct cfg_provider *p,
			      const struct prov_ops *ops, const struct cfg_key *key,
			      const struct prov_query *const *qs, const char *const *ids, size_t m,
			      struct prov_result *call, struct prov_result *res,
			      struct rot_report *rep, struct up_response *resp)
{
	char id[sizeof call->pending_id];
	enum enr_err rc = ENR_OK;

	util_strlcpy(id, call->pending_id, sizeof id);
	for (int i = 0; i < POLL_MAX && call->outcome == PROV_PENDING; i++) {
		struct prov_request req;

		if (co_deadline_left(ctx->deadline_mono_ms) <= p->poll_interval_ms)
			break;
		co_sleep_ms(p->poll_interval_ms);
		prov_request_init(&req);
		rc = ops->build_poll(p, key, id, &req);
		if (rc == ENR_OK)
			rc = exchange_bulk(ctx, p, ops, qs, ids, m, &req, call, res, rep, resp);
		prov_request_release(&req);
		if (rc)
			break;
		if (call->outcome == PROV_PENDING && call->pending_id[0] == '\0')
			util_strlcpy(call->pending_id, id, sizeof call->pending_id);
	}
	return rc;
}

struct bulk_run {
	size_t *pend;              /* indexes of the items still to be made */
	size_t npend;
	const struct prov_query **qs;
	const char **ids;
	char (*idbuf)[24];
	struct prov_result *tmp;
};

static void bulk_end(struct rot_item *it, enum rot_status st, bool timed_out)
{
	it->rep->status = st;
	it->rep->timed_out = timed_out;
	if (st != ROT_ANSWERED)
		prov_result_reset(it->res);
}

enum enr_err rot_call_bulk(const struct rot_ctx *ctx, const struct cfg_provider *p,
			   struct rot_item *items, size_t n)
{
	const struct prov_ops *ops = prov_ops_find(p->kind);
	struct kp_key *keys = NULL;
	bool skip[ROT_KEYS_MAX] = { false };
	struct kp_params params;
	struct up_response resp;
	struct bulk_run b = { NULL, 0, NULL, NULL, NULL, NULL };
	struct rot_report *rep0;
	bool first_only = !(ctx->cfg->rotation.enabled && ctx->cfg->rotation.endpoints[ctx->endpoint]);
	bool any_rejected = false, any_transient = false, last_timed_out = false;
	int nkeys = 0, transients = 0;
	enum enr_err rc = ENR_OK;

	if (n == 0)
		return ENR_OK;
	if (ops == NULL || ops->bulk_max <= 0 || ops->build_bulk == NULL || ops->parse_bulk == NULL)
		return ENR_E_INVALID;
	rep0 = items[0].rep;
	for (size_t i = 0; i < n; i++) {
		memset(items[i].rep, 0, sizeof *items[i].rep);
		prov_result_reset(items[i].res);
	}
	b.pend = calloc(n, sizeof *b.pend);
	b.qs = calloc(n, sizeof *b.qs);
	b.ids = calloc(n, sizeof *b.ids);
	b.idbuf = calloc(n, sizeof *b.idbuf);
	b.tmp = calloc(n, sizeof *b.tmp);
	if (!b.pend || !b.qs || !b.ids || !b.idbuf || !b.tmp) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		b.pend[i] = i;
		prov_result_init(&b.tmp[i]);
		/* The id each item carries in the call, to map its answer back. */
		snprintf(b.idbuf[i], sizeof b.idbuf[i], "r%zu", i);
	}
	b.npend = n;
	kp_params_from_cfg(ctx->cfg, &params);
	rc = load_keys(ctx, p->name, &keys, &nkeys);
	if (rc)
		goto out;
	up_response_init(&resp);
	while (b.npend > 0) {
		int order[ROT_KEYS_MAX], nk;
		uint64_t cursor = 0;
		const struct cfg_key *ck;
		struct kp_key *k, after;
		struct kp_change ch;
		struct prov_request req;
		struct prov_result call;
		struct bud_hold hold;
		size_t m = b.npend, still = 0;
		bool quota = false;

		if (co_deadline_left(ctx->deadline_mono_ms) <= 0) {
			for (size_t i = 0; i < b.npend; i++)
				bulk_end(&items[b.pend[i]], ROT_DEADLINE, false);
			b.npend = 0;
			break;
		}
		if (ctx->cfg->rotation.strategy == CFG_STRATEGY_ROUND_ROBIN && !first_only)
			cursor = rr_next(p->name);
		nk = kp_order(keys, nkeys, ctx->cfg->rotation.strategy, cursor, skip, first_only,
			      util_now_ms(), order);
		if (nk == 0) {
			enum rot_status st = any_rejected ? ROT_REJECTED
					     : any_transient ? ROT_FAILED : ROT_NO_KEY;
			int64_t back = kp_earliest_ms(keys, nkeys, first_only, util_now_ms());

			if (st == ROT_NO_KEY)
				alert_pool_dry(ctx->cfg, ctx->store, p->name, back);
			for (size_t i = 0; i < b.npend; i++) {
				bulk_end(&items[b.pend[i]], st, last_timed_out);
				items[b.pend[i]].rep->comes_back_ms = st == ROT_NO_KEY ? back : 0;
			}
			b.npend = 0;
			break;
		}
		k = &keys[order[0]];
		ck = cfg_key_of(p, k->id);
		if (ck == NULL || !pace(ctx, p, ck)) {
			skip[order[0]] = true;
			continue;
		}
		if (m > (size_t)ops->bulk_max)
			m = (size_t)ops->bulk_max;
		memset(&hold, 0, sizeof hold);
		if (budget_applies(p, ck, p->credits_per_hit)) {
			struct bud_verdict v;

			rc = bud_reserve_key(ctx->store, ctx->cfg, p, ck, (int64_t)m * p->credits_per_hit,
					     util_now_ms(), hold_until(ctx), &hold, &v);
			if (rc == ENR_OK && !v.ok && v.fits >= p->credits_per_hit) {
				/* Part of the call fits the key's budget: send that part. */
				m = (size_t)(v.fits / p->credits_per_hit);
				rc = bud_reserve_key(ctx->store, ctx->cfg, p, ck,
						     (int64_t)m * p->credits_per_hit, util_now_ms(),
						     hold_until(ctx), &hold, &v);
			}
			if (rc)
				break;
			if (!v.ok) {
				park_for_budget(ctx, &params, keys, nkeys, skip, order[0], &v);
				continue;
			}
		}
		for (size_t i = 0; i < m; i++) {
			b.qs[i] = items[b.pend[i]].q;
			b.ids[i] = b.idbuf[b.pend[i]];
		}
		prov_request_init(&req);
		prov_result_init(&call);
		rc = ops->build_bulk(p, ck, b.qs, b.ids, m, &req);
		if (rc == ENR_E_INVALID) {
			/* An item names no one this provider can search for: the
			 * planner asks only for those that do, so this is a bug. */
			prov_request_release(&req);
			bud_settle(ctx->store, &hold, 0);
			for (size_t i = 0; i < b.npend; i++)
				bulk_end(&items[b.pend[i]], ROT_NOT_APPLICABLE, false);
			b.npend = 0;
			rc = ENR_OK;
			break;
		}
		if (rc == ENR_OK)
			rc = exchange_bulk(ctx, p, ops, b.qs, b.ids, m, &req, &call, b.tmp, rep0, &resp);
		prov_request_release(&req);
		if (rc == ENR_OK && call.outcome == PROV_PENDING && ops->build_poll)
			rc = poll_bulk(ctx, p, ops, ck, b.qs, b.ids, m, &call, b.tmp, rep0, &resp);
		bud_settle(ctx->store, &hold, rc == ENR_OK && call.outcome == PROV_HIT ? call.credits : 0);
		if (rc) {
			prov_result_release(&call);
			break;
		}
		count_call(p->name, k->id, &call, resp.elapsed_ms);
		last_timed_out = rep0->timed_out;
		if (call.outcome == PROV_PENDING || cut_by_deadline(&call, rep0)) {
			for (size_t i = 0; i < b.npend; i++)
				bulk_end(&items[b.pend[i]], ROT_DEADLINE, false);
			b.npend = 0;
			prov_result_release(&call);
			break;
		}
		if (call.outcome == PROV_HIT) {
			/* The call went through: each item has its own answer. */
			for (size_t i = 0; i < m; i++) {
				struct rot_item *it = &items[b.pend[i]];
				struct prov_result *r = &b.tmp[i];

				switch (r->outcome) {
				case PROV_HIT:
				case PROV_MISS:
					prov_result_release(it->res);
					*it->res = *r;
					prov_result_init(r);
					it->rep->status = ROT_ANSWERED;
					util_strlcpy(it->rep->key_id, k->id, sizeof it->rep->key_id);
					break;
				case PROV_QUOTA_EXHAUSTED:
					/* Credits ran out during the call: the key's, and the
					 * item goes on to the next key. */
					quota = true;
					b.pend[still++] = b.pend[i];
					break;
				case PROV_REQUEST_REJECTED:
					bulk_end(it, ROT_REJECTED, false);
					break;
				default:
					bulk_end(it, ROT_FAILED, false);
					break;
				}
				prov_result_reset(r);
			}
			/* Items the key's budget did not take wait for the next key. */
			for (size_t i = m; i < b.npend; i++)
				b.pend[still++] = b.pend[i];
			b.npend = still;
			if (quota) {
				rc = rot_apply(ctx->store, k->id, PROV_QUOTA_EXHAUSTED, call.until_ms,
					       call.credits, util_now_ms(), &params, &after, &ch);
			} else if (k->state == KP_ACTIVE && k->transients == 0 &&
				   pend_add(k, PROV_HIT, call.credits, util_now_ms())) {
				after = *k;
				ch.from = ch.to = KP_ACTIVE;
			} else {
				rc = rot_apply(ctx->store, k->id, PROV_HIT, 0, call.credits,
					       util_now_ms(), &params, &after, &ch);
			}
			prov_result_release(&call);
			if (rc)
				break;
			*k = after;
			if (ch.from != ch.to && (ch.to == KP_INVALID || ch.to == KP_EXHAUSTED))
				alert_key(ctx->cfg, ctx->store, &after);
			if (b.npend > 0)
				skip[order[0]] = true;
			continue;
		}
		/* The call's own outcome: the key's; every item tries the next key. */
		rc = rot_apply(ctx->store, k->id, call.outcome, call.until_ms, 0, util_now_ms(),
			       &params, &after, &ch);
		if (rc) {
			prov_result_release(&call);
			break;
		}
		*k = after;
		if (ch.from != ch.to && (ch.to == KP_INVALID || ch.to == KP_EXHAUSTED))
			alert_key(ctx->cfg, ctx->store, &after);
		skip[order[0]] = true;
		if (call.outcome == PROV_RATE_LIMITED)
			reload_keys(ctx, p->name, &keys, &nkeys);
		if (call.outcome == PROV_REQUEST_REJECTED)
			any_rejected = true;
		if (call.outcome == PROV_TRANSIENT) {
			int64_t backoff = TRANSIENT_BACKOFF_MS << (transients < 4 ? transients : 4);

			any_transient = true;
			co_sleep_ms(backoff < co_deadline_left(ctx->deadline_mono_ms) ? backoff : 0);
			transients++;
		}
		{
			int nn = kp_order(keys, nkeys, ctx->cfg->rotation.strategy, cursor + 1, skip,
					  first_only, util_now_ms(), order);

			log_move(&after, call.outcome, nn > 0 ? &keys[order[0]] : NULL);
		}
		if (call.reason[0])
			log_debug("rotation", "%s: %s", p->name, call.reason);
		prov_result_release(&call);
	}
	up_response_release(&resp);
out:
	if (b.tmp) {
		for (size_t i = 0; i < n; i++)
			prov_result_release(&b.tmp[i]);
	}
	free(b.pend);
	free(b.qs);
	free(b.ids);
	free(b.idbuf);
	free(b.tmp);
	free(keys);
	return rc;
}
