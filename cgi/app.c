/*
 * app.c - process-wide state of the responder: the store, the bundled
 * domain lists, the HTTP client, the key pool's metrics.
 */
#include "app.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>

#include "lib/alert.h"
#include "lib/keypool.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/rotation.h"
#include "lib/upstream.h"
#include "lib/util.h"
#include "lib/waterfall.h"

static bool app_is_cgi;
static struct store *store;
static struct dom_lists *lists;
static struct prov_ctx pctx;
static struct mx_family *mx_key_state;
static struct adm *admission;

/* Whether the store took the last probe write (main thread, once a second;
 * inline per request in CGI mode), read by /health on any thread. */
static atomic_bool store_writable = true;

static void probe_store(void)
{
	enum enr_err rc = st_probe_write(store, util_now_ms());
	bool was = atomic_exchange(&store_writable, rc == ENR_OK);

	if (was && rc != ENR_OK)
		log_warn("app", "the store takes no writes (%s): /health says degraded",
			 enr_strerror(rc));
	else if (!was && rc == ENR_OK)
		log_notice("app", "the store takes writes again");
}

bool app_store_writable(void)
{
	if (app_is_cgi)
		probe_store(); /* one request per process: no verdict to reuse */
	return atomic_load(&store_writable);
}

void app_cgi_mode(void)
{
	app_is_cgi = true;
}

static int key_gauge(void *arg, const struct kp_key *k)
{
	char labels[LIM_METRIC_LABELS_MAX * 2], p[LIM_NAME_MAX * 2 + 1], id[LIM_NAME_MAX * 2 + 1];
	int64_t now = *(int64_t *)arg;
	enum kp_state s = kp_usable(k, now) ? KP_ACTIVE : k->state;

	mx_label(k->provider, p, sizeof p);
	mx_label(k->id, id, sizeof id);
	for (int i = 0; i < KP_STATE__MAX; i++) {
		snprintf(labels, sizeof labels, "provider=\"%s\",key=\"%s\",state=\"%s\"", p, id,
			 kp_state_names[i]);
		mx_set(mx_key_state, labels, i == (int)s);
	}
	return 0;
}

/* /metrics shows each key's current state, read from the shared store. */
static void refresh_key_states(void *arg)
{
	int64_t now = util_now_ms();

	(void)arg;
	mx_clear(mx_key_state);
	if (st_ukey_each(store, key_gauge, &now) != ENR_OK)
		log_warn("app", "key states not read for /metrics: the gauges are empty this time");
}

enum enr_err app_init(const struct cfg *cfg)
{
	char why[512];
	enum enr_err rc = st_open_cfg(cfg, &store, why, sizeof why);

	if (rc) {
		log_error("app", "the store: %s", why);
		return rc;
	}
	rc = rot_sync_keys(store, cfg);
	if (rc) {
		log_error("app", "cannot record the configured provider keys: %s", enr_strerror(rc));
		return rc;
	}
	lists = dom_lists_load(cfg->data_dir, &rc);
	if (lists == NULL)
		log_warn("app", "domain lists not loaded from %s (%s): e-mail types will not be derived",
			 cfg->data_dir, enr_strerror(rc));
	pctx.domains = lists;
	admission = adm_new(store, !app_is_cgi, app_is_cgi ? NULL : cfg->state_dir);
	if (admission == NULL)
		return ENR_E_NOMEM;
	rc = up_global_init();
	if (rc)
		return rc;
	rot_init();
	wf_init();
	if (!app_is_cgi)
		probe_store();
	mx_key_state = mx_gauge("enrichd_upstream_key_state",
				"State of each upstream key (1 for its current state).");
	mx_on_render(refresh_key_states, NULL);
	return ENR_OK;
}

enum enr_err app_reload(const struct cfg *next)
{
	/* New keys join the pool; known keys keep their state and counters. */
	return rot_sync_keys(store, next);
}

void app_thread_exit(void)
{
	up_thread_cleanup();
	st_thread_release(store);
}

void app_shutdown(void)
{
	adm_free(admission);
	admission = NULL;
	rot_flush(store);
	alert_shutdown(2000);
	up_thread_cleanup();
	st_close(store);
	store = NULL;
	dom_lists_free(lists);
	lists = NULL;
}

struct store *app_store(void)
{
	return store;
}

const struct dom_lists *app_lists(void)
{
	return lists;
}

const struct prov_ctx *app_prov_ctx(void)
{
	return &pctx;
}

struct adm *app_admission(void)
{
	return admission;
}

void app_tick(void)
{
	int removed = 0;
	enum enr_err rc;

	probe_store();
	rc = adm_flush(admission, util_now_ms());
	if (rc)
		log_error("app", "usage not written (%s): kept in memory for the next try",
			  enr_strerror(rc));
	rot_flush(store);
	rc = st_cache_purge(store, util_now_ms(), 1000, &removed);
	if (rc)
		log_warn("app", "expired cache entries not purged: %s", enr_strerror(rc));
}
