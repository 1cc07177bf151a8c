/*
 * app.c - process-wide state of the responder: the process the
 * composition root (lib/service.h) builds, the store's health, the
 * periodic work.
 */
#include "app.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>

#include "lib/alert.h"
#include "lib/confhist.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/service.h"
#include "lib/sysmetrics.h"
#include "lib/upstream.h"
#include "lib/util.h"

static bool app_is_cgi;
static struct svc svc;   /* engine NULL in CGI mode: every wait blocks in place */
static struct store *store; /* svc.store, for short */

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
	svc_flush(&svc);
	rc = sm_refresh(store, util_now_ms());
	if (rc)
		log_warn("app", "metrics not all read from the store (%s): some families are empty "
			 "this time", enr_strerror(rc));
}

enum enr_err app_init(const struct cfg *cfg, const char *path)
{
	const struct svc_opts o = { .keys = true, .http = true, .admission = true,
				    .leases = !app_is_cgi, .engine = false, .history = !app_is_cgi };
	char why[1024], sha[CH_SHA_HEX];
	enum enr_err rc = svc_open(cfg, &o, &svc, why, sizeof why);

	if (rc) {
		log_error("app", "%s", why);
		return rc;
	}
	store = svc.store;
	if (!app_is_cgi) {
		probe_store();
		rc = svc_engine_start(&svc, cfg);
		if (rc) {
			log_error("app", "the engine did not start: %s", enr_strerror(rc));
			return rc;
		}
		svc_record_applied(&svc, cfg, path, sha);
	}
	sm_init();
	mx_on_render(refresh_system_metrics, NULL);
	return ENR_OK;
}

void app_reload(const char *path)
{
	enr_ignore(svc_reload(&svc, path));
}

void app_thread_exit(void)
{
	up_thread_cleanup();
	st_thread_release(store);
}

bool app_drain(int64_t deadline_mono_ms)
{
	return svc_drain(&svc, deadline_mono_ms);
}

void app_shutdown(void)
{
	svc_close(&svc);
	store = NULL;
}

struct store *app_store(void)
{
	return store;
}

const struct dom_lists *app_lists(void)
{
	return svc.lists;
}

const struct prov_ctx *app_prov_ctx(void)
{
	return &svc.pctx;
}

struct adm *app_admission(void)
{
	return svc.adm;
}

struct eng *app_engine(void)
{
	return svc.engine;
}

void app_tick(void)
{
	int removed = 0;
	enum enr_err rc;

	probe_store();
	svc_flush(&svc);
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
