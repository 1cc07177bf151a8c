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
#include "lib/cache.h"
#include "lib/engine.h"
#include "lib/keypool.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/rotation.h"
#include "lib/sysmetrics.h"
#include "lib/search.h"
#include "lib/upstream.h"
#include "lib/util.h"
#include "lib/waterfall.h"

static bool app_is_cgi;
static struct store *store;
static struct dom_lists *lists;
static struct prov_ctx pctx;
static struct adm *admission;
static struct eng *engine;   /* NULL in CGI mode: every wait blocks in place */

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

/* /metrics shows the whole system from the shared store, after this
 * process wrote the counts it holds in memory. */
static void refresh_system_metrics(void *arg)
{
	enum enr_err rc;

	(void)arg;
	rot_flush(store);
	cache_savings_flush(store, util_now_ms());
	rc = adm_flush(admission, util_now_ms());
	if (rc)
		log_warn("app", "usage not written before /metrics (%s): the account counters lag",
			 enr_strerror(rc));
	rc = sm_refresh(store, util_now_ms());
	if (rc)
		log_warn("app", "metrics not all read from the store (%s): some families are empty "
			 "this time", enr_strerror(rc));
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
	srch_init();
	if (!app_is_cgi) {
		probe_store();
		rc = eng_start(cfg, store, &engine);
		if (rc) {
			log_error("app", "the engine did not start: %s", enr_strerror(rc));
			return rc;
		}
	}
	sm_init();
	mx_on_render(refresh_system_metrics, NULL);
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

bool app_drain(int64_t deadline_mono_ms)
{
	return eng_drain(engine, deadline_mono_ms);
}

void app_shutdown(void)
{
	eng_stop(engine);
	engine = NULL;
	adm_free(admission);
	admission = NULL;
	rot_flush(store);
	cache_savings_flush(store, util_now_ms());
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

struct eng *app_engine(void)
{
	return engine;
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
	cache_savings_flush(store, util_now_ms());
	rc = st_cache_purge(store, util_now_ms(), 1000, &removed);
	if (rc)
		log_warn("app", "expired cache entries not purged: %s", enr_strerror(rc));
	rc = st_alert_purge(store, util_now_ms() - (int64_t)ALERT_KEEP_DAYS * 86400 * 1000, NULL);
	if (rc)
		log_warn("app", "old alerts not purged: %s", enr_strerror(rc));
	rc = st_flight_purge(store, util_now_ms(), 1000, &removed);
	if (rc)
		log_warn("app", "expired lookup claims not purged: %s", enr_strerror(rc));
}
