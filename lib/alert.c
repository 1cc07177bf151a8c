/*
 * alert.c - warning lines and the optional alert webhook.
 */
#include "alert.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "upstream.h"
#include "util.h"

#define ALERT_QUEUE_MAX 64
#define ALERT_ATTEMPTS 3
#define DRY_EVERY_MS 60000

struct alert_item {
	char *url;
	char *body;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;        /* monotonic timed waits: cond_once */
static pthread_once_t cond_once = PTHREAD_ONCE_INIT;
static bool cond_ok;
static struct alert_item queue[ALERT_QUEUE_MAX];
static int qhead, qlen;
static bool running, stopping;
static pthread_t thread;

/* When an alert about a name (a provider, a budget's scope) last went out:
 * one a minute per name at most. */
struct sent {
	char name[160];
	int64_t at_ms;
};
#define SENT_SLOTS 32
static struct sent budget_sent[SENT_SLOTS], dry_sent[SENT_SLOTS];

static void cond_setup(void)
{
	cond_ok = util_cond_init(&cond) == ENR_OK;
}

static void deliver(const struct alert_item *it)
{
	struct prov_request req;
	struct up_response resp;

	prov_request_init(&req);
	up_response_init(&resp);
	memcpy(req.method, "POST", 5);
	if (buf_puts(&req.url, it->url) == ENR_OK && buf_puts(&req.body, it->body) == ENR_OK &&
	    prov_request_header(&req, "Content-Type", "application/json") == ENR_OK) {
		for (int i = 0; i < ALERT_ATTEMPTS; i++) {
			if (up_perform(&req, 5000, 65536, &resp) != ENR_OK)
				break;
			if (resp.resp.status >= 200 && resp.resp.status < 300)
				break;
			log_warn("alert", "alert webhook answered %ld (attempt %d of %d)",
				 resp.resp.status, i + 1, ALERT_ATTEMPTS);
			util_sleep_ms(200);
		}
	}
	up_response_release(&resp);
	prov_request_release(&req);
}

static void *alert_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		struct alert_item it;

		while (qlen == 0 && !stopping)
			pthread_cond_wait(&cond, &lock);
		if (qlen == 0 && stopping)
			break;
		it = queue[qhead];
		qhead = (qhead + 1) % ALERT_QUEUE_MAX;
		qlen--;
		pthread_mutex_unlock(&lock);
		deliver(&it);
		free(it.url);
		free(it.body);
		pthread_mutex_lock(&lock);
		pthread_cond_broadcast(&cond);
	}
	pthread_mutex_unlock(&lock);
	up_thread_cleanup();
	return NULL;
}

/* Queue json (stolen) for the webhook when one is configured. */
static void enqueue(const struct cfg *cfg, json_t *j)
{
	struct alert_item it = { NULL, NULL };

	if (cfg->alerts.webhook_url[0] == '\0' || j == NULL) {
		json_decref(j);
		return;
	}
	it.url = strdup(cfg->alerts.webhook_url);
	it.body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (it.url == NULL || it.body == NULL)
		goto drop;
	pthread_once(&cond_once, cond_setup);
	pthread_mutex_lock(&lock);
	if (!running && cond_ok) {
		stopping = false;
		if (pthread_create(&thread, NULL, alert_main, NULL) == 0)
			running = true;
	}
	if (!running || qlen == ALERT_QUEUE_MAX) {
		pthread_mutex_unlock(&lock);
		log_warn("alert", "alert webhook queue full; alert dropped");
		goto drop;
	}
	queue[(qhead + qlen) % ALERT_QUEUE_MAX] = it;
	qlen++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	return;
drop:
	free(it.url);
	free(it.body);
}

/* Keep the alert in the store's list; a failure costs the entry, not the
 * alert (the log line and the webhook carry it). */
static void remember(struct store *st, const struct st_alert *a)
{
	enum enr_err rc;

	if (st == NULL)
		return;
	rc = st_alert_add(st, a);
	if (rc)
		log_warn("alert", "alert not kept in the store's list: %s", enr_strerror(rc));
}

void alert_key(const struct cfg *cfg, struct store *st, const struct kp_key *k)
{
	char until[21] = "", msg[512];
	struct st_alert a;

	if (k->until_ms > 0)
		util_fmt_time_s(k->until_ms / 1000, until);
	snprintf(msg, sizeof msg, "key %s (...%s) of provider %s is %s%s%s", k->id, k->last4,
		 k->provider, kp_state_names[k->state],
		 until[0] ? " until " : " until an admin revives it", until);
	log_warn("keypool", "%s", msg);
	a = (struct st_alert){ 0, util_now_ms(), "key_state", k->provider, k->id, k->last4,
			       kp_state_names[k->state], k->until_ms, msg };
	remember(st, &a);
	enqueue(cfg, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?}", "event", "key_state", "provider",
			       k->provider, "key", k->id, "last4", k->last4, "state",
			       kp_state_names[k->state], "until", until[0] ? until : NULL));
}

/* True when an alert about name may go out now (and note that it did);
 * false within DRY_EVERY_MS of the last one.  A full table reuses slot 0. */
static bool due(struct sent *tab, const char *name)
{
	int64_t now = util_mono_ms();
	int slot = -1;
	bool send = true;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < SENT_SLOTS; i++) {
		if (strcmp(tab[i].name, name) == 0) {
			slot = i;
			break;
		}
		if (slot < 0 && tab[i].name[0] == '\0')
			slot = i;
	}
	if (slot < 0)
		slot = 0;
	if (strcmp(tab[slot].name, name) == 0 && tab[slot].at_ms && now - tab[slot].at_ms < DRY_EVERY_MS)
		send = false;
	if (send) {
		util_strlcpy(tab[slot].name, name, sizeof tab[slot].name);
		tab[slot].at_ms = now;
	}
	pthread_mutex_unlock(&lock);
	return send;
}

void alert_pool_dry(const struct cfg *cfg, struct store *st, const char *provider, int64_t back_ms)
{
	char back[21] = "", msg[256];
	struct st_alert a;

	if (!due(dry_sent, provider))
		return;
	if (back_ms > 0)
		util_fmt_time_s(back_ms / 1000, back);
	snprintf(msg, sizeof msg, "provider %s has no usable key%s%s", provider,
		 back[0] ? "; the first comes back at " : " until an admin revives one", back);
	log_warn("keypool", "%s", msg);
	a = (struct st_alert){ 0, util_now_ms(), "pool_dry", provider, NULL, NULL, "dry", back_ms, msg };
	remember(st, &a);
	enqueue(cfg, json_pack("{s:s, s:s, s:s?}", "event", "pool_dry", "provider", provider,
			       "comes_back", back[0] ? back : NULL));
}

void alert_budget(const struct cfg *cfg, struct store *st, const char *provider, const char *scope,
		  const char *what, int64_t until_ms)
{
	char until[21] = "", msg[256];
	struct st_alert a;

	if (!due(budget_sent, scope))
		return;
	if (until_ms > 0)
		util_fmt_time_s(until_ms / 1000, until);
	snprintf(msg, sizeof msg, "%s is spent%s%s", what, until[0] ? " until " : "", until);
	log_warn("budget", "%s", msg);
	a = (struct st_alert){ 0, util_now_ms(), "budget_exhausted", provider, NULL, NULL,
			       "exhausted",
			       until_ms, msg };
	remember(st, &a);
	enqueue(cfg, json_pack("{s:s, s:s, s:s, s:s?}", "event", "budget_exhausted", "budget",
			       scope, "what", what, "resets", until[0] ? until : NULL));
}

void alert_shutdown(int timeout_ms)
{
	int64_t end = util_deadline_in(timeout_ms);

	pthread_mutex_lock(&lock);
	if (!running) {
		pthread_mutex_unlock(&lock);
		return;
	}
	while (qlen > 0) {
		int64_t left = util_deadline_left(end);

		if (left <= 0 || util_cond_wait_ms(&cond, &lock, left) == ETIMEDOUT)
			break;
	}
	stopping = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	pthread_mutex_lock(&lock);
	running = false;
	pthread_mutex_unlock(&lock);
}
