/*
 * sysmetrics.c - store-wide metrics: upstream calls, keys, accounts, queue.
 */
#include "sysmetrics.h"

#include <stdio.h>

#include "keypool.h"
#include "limits.h"
#include "metrics.h"
#include "provider.h"

static struct mx_family *f_calls, *f_call_credits, *f_key_state, *f_key_credits, *f_req_left,
	*f_cred_left, *f_meters_at, *f_acc_requests, *f_acc_records, *f_acc_credits,
	*f_acc_rejections, *f_rows, *f_jobs, *f_oldest, *f_saved_calls, *f_saved_credits;

static const char *const row_states[] = { "pending", "running", "failed" };

void sm_init(void)
{
	f_calls = mx_counter("enrichd_upstream_calls_total",
			     "Upstream calls of every process sharing the store, by provider, key and "
			     "outcome.");
	f_call_credits = mx_counter("enrichd_upstream_call_credits_total",
				    "Credits upstream calls spent, by provider, key and outcome.");
	f_key_state = mx_gauge("enrichd_upstream_key_state",
			       "State of each upstream key (1 for its current state).");
	f_key_credits = mx_counter("enrichd_upstream_key_credits_total",
				   "Credits spent with each upstream key.");
	f_req_left = mx_gauge("enrichd_upstream_key_requests_left",
			      "Requests left as the provider's meters last said, per key.");
	f_cred_left = mx_gauge("enrichd_upstream_key_credits_left",
			       "Credits left as the provider's meters last said, per key.");
	f_meters_at = mx_gauge("enrichd_upstream_key_meters_timestamp_seconds",
			       "When each key's meters were last read (unix time).");
	f_acc_requests = mx_counter("enrichd_account_requests_total",
				    "Requests admitted per client account.");
	f_acc_records = mx_counter("enrichd_account_records_total",
				   "Records counted against quotas per client account.");
	f_acc_credits = mx_counter("enrichd_account_credits_total",
				   "Upstream credits spent per client account.");
	f_acc_rejections = mx_counter("enrichd_account_rejections_total",
				      "Requests refused by rate limit or quota per client account.");
	f_saved_calls = mx_counter("enrichd_upstream_calls_avoided_total",
				   "Upstream calls not made because the cache or another caller's "
				   "lookup in flight answered, by provider and by what.");
	f_saved_credits = mx_counter("enrichd_upstream_credits_avoided_total",
				     "Credits those answers had cost when bought, by provider and by "
				     "what.");
	f_rows = mx_gauge("enrichd_job_rows", "Batch rows by state (pending, running, failed).");
	f_jobs = mx_gauge("enrichd_jobs", "Batch jobs by status.");
	f_oldest = mx_gauge("enrichd_job_oldest_pending_age_seconds",
			    "Age of the oldest job that still has pending rows (0: none).");
}

static void key_labels(const char *provider, const char *key, char *out, size_t outsz)
{
	char p[LIM_NAME_MAX * 2 + 1], k[LIM_NAME_MAX * 2 + 1];

	mx_label(provider, p, sizeof p);
	mx_label(key, k, sizeof k);
	snprintf(out, outsz, "provider=\"%s\",key=\"%s\"", p, k);
}

static int outcome_row(void *arg, const char *provider, const char *id, int outcome,
		       int64_t calls, int64_t credits)
{
	char labels[LIM_METRIC_LABELS_MAX * 3], kl[LIM_METRIC_LABELS_MAX * 2];

	(void)arg;
	if (outcome < 0 || outcome >= PROV_OUTCOME__MAX)
		return 0;
	key_labels(provider, id, kl, sizeof kl);
	snprintf(labels, sizeof labels, "%s,outcome=\"%s\"", kl, prov_outcome_names[outcome]);
	mx_set(f_calls, labels, (double)calls);
	mx_set(f_call_credits, labels, (double)credits);
	return 0;
}

static int key_row(void *arg, const struct kp_key *k)
{
	char labels[LIM_METRIC_LABELS_MAX * 3], kl[LIM_METRIC_LABELS_MAX * 2];
	int64_t now = *(const int64_t *)arg;
	enum kp_state s = kp_usable(k, now) ? KP_ACTIVE : k->state;

	key_labels(k->provider, k->id, kl, sizeof kl);
	for (int i = 0; i < KP_STATE__MAX; i++) {
		snprintf(labels, sizeof labels, "%s,state=\"%s\"", kl, kp_state_names[i]);
		mx_set(f_key_state, labels, i == (int)s);
	}
	mx_set(f_key_credits, kl, (double)k->credits);
	if (k->requests_left >= 0)
		mx_set(f_req_left, kl, (double)k->requests_left);
	if (k->credits_left >= 0)
		mx_set(f_cred_left, kl, (double)k->credits_left);
	if (k->meters_ms > 0)
		mx_set(f_meters_at, kl, (double)k->meters_ms / 1000.0);
	return 0;
}

static int account_row(void *arg, const struct st_usage *u)
{
	char labels[LIM_METRIC_LABELS_MAX], a[LIM_NAME_MAX * 2 + 1];

	(void)arg;
	mx_label(u->account, a, sizeof a);
	snprintf(labels, sizeof labels, "account=\"%s\"", a);
	mx_set(f_acc_requests, labels, (double)u->requests);
	mx_set(f_acc_records, labels, (double)u->records);
	mx_set(f_acc_credits, labels, (double)u->credits);
	mx_set(f_acc_rejections, labels, (double)u->rejections);
	return 0;
}

/* Days add up: the counters are each provider's totals of every day kept. */
static int savings_row(void *arg, const struct st_savings *v)
{
	char labels[LIM_METRIC_LABELS_MAX], pv[LIM_NAME_MAX * 2 + 1];

	(void)arg;
	mx_label(v->provider, pv, sizeof pv);
	snprintf(labels, sizeof labels, "provider=\"%s\",by=\"cache\"", pv);
	mx_add(f_saved_calls, labels, (double)v->cache_calls);
	mx_add(f_saved_credits, labels, (double)v->cache_credits);
	snprintf(labels, sizeof labels, "provider=\"%s\",by=\"coalescing\"", pv);
	mx_add(f_saved_calls, labels, (double)v->flight_calls);
	mx_add(f_saved_credits, labels, (double)v->flight_credits);
	return 0;
}

static void clear(struct mx_family *const *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mx_clear(f[i]);
}

enum enr_err sm_refresh(struct store *s, int64_t now_ms)
{
	struct mx_family *const calls[] = { f_calls, f_call_credits };
	struct mx_family *const keys[] = { f_key_state, f_key_credits, f_req_left, f_cred_left,
					   f_meters_at };
	struct mx_family *const accounts[] = { f_acc_requests, f_acc_records, f_acc_credits,
					       f_acc_rejections };
	struct mx_family *const queue[] = { f_rows, f_jobs, f_oldest };
	struct mx_family *const saved[] = { f_saved_calls, f_saved_credits };
	struct st_queue_stats q;
	enum enr_err rc, first = ENR_OK;

	clear(calls, 2);
	rc = st_ukey_outcome_each(s, outcome_row, NULL);
	if (rc) {
		clear(calls, 2);
		first = rc;
	}
	clear(keys, 5);
	rc = st_ukey_each(s, key_row, &now_ms);
	if (rc) {
		clear(keys, 5);
		first = first ? first : rc;
	}
	clear(accounts, 4);
	rc = st_usage_totals(s, account_row, NULL);
	if (rc) {
		clear(accounts, 4);
		first = first ? first : rc;
	}
	clear(saved, 2);
	rc = st_savings_each(s, "0000-01-01", savings_row, NULL);
	if (rc) {
		clear(saved, 2);
		first = first ? first : rc;
	}
	clear(queue, 3);
	rc = st_queue_stats(s, &q);
	if (rc) {
		first = first ? first : rc;
	} else {
		const int64_t rows[] = { q.rows_pending, q.rows_running, q.rows_failed };
		char labels[64];

		for (int i = 0; i < 3; i++) {
			snprintf(labels, sizeof labels, "state=\"%s\"", row_states[i]);
			mx_set(f_rows, labels, (double)rows[i]);
		}
		for (int i = 0; i < ST_JOB__MAX; i++) {
			snprintf(labels, sizeof labels, "status=\"%s\"", st_job_status_names[i]);
			mx_set(f_jobs, labels, (double)q.jobs[i]);
		}
		mx_set(f_oldest, "", q.oldest_pending_ms > 0 && now_ms > q.oldest_pending_ms
					     ? (double)(now_ms - q.oldest_pending_ms) / 1000.0 : 0.0);
	}
	return first;
}
