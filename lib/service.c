/*
 * service.c - the composition root of a process (see service.h).
 */
#include "service.h"

#include <stdio.h>
#include <string.h>

#include "alert.h"
#include "cache.h"
#include "confhist.h"
#include "log.h"
#include "rotation.h"
#include "search.h"
#include "upstream.h"
#include "util.h"
#include "waterfall.h"

enum enr_err svc_open(const struct cfg *cfg, const struct svc_opts *o, struct svc *s, char *why,
		      size_t whylen)
{
	char what[512];
	enum enr_err rc;

	memset(s, 0, sizeof *s);
	s->o = *o;
	rc = st_open_cfg(cfg, &s->store, what, sizeof what);
	if (rc) {
		snprintf(why, whylen, "the store: %s", what);
		return rc;
	}
	if (o->keys && (rc = rot_sync_keys(s->store, cfg)) != ENR_OK) {
		snprintf(why, whylen, "cannot record the configured provider keys in the store: %s",
			 enr_strerror(rc));
		goto fail;
	}
	s->lists = dom_lists_load(cfg->data_dir, &rc);
	if (s->lists == NULL)
		log_warn("service", "domain lists not loaded from %s (%s): e-mail types will not be "
			 "derived", cfg->data_dir, enr_strerror(rc));
	s->pctx.domains = s->lists;
	if (o->admission) {
		s->adm = adm_new(s->store, o->leases, o->leases ? cfg->state_dir : NULL);
		if (s->adm == NULL) {
			rc = ENR_E_NOMEM;
			snprintf(why, whylen, "out of memory for the admission state");
			goto fail;
		}
	}
	if (o->http && (rc = up_global_init()) != ENR_OK) {
		snprintf(why, whylen, "cannot start the HTTP client: %s", enr_strerror(rc));
		goto fail;
	}
	rot_init();
	wf_init();
	srch_init();
	if (o->engine && (rc = svc_engine_start(s, cfg)) != ENR_OK) {
		snprintf(why, whylen, "the engine did not start: %s", enr_strerror(rc));
		goto fail;
	}
	return ENR_OK;
fail:
	svc_close(s);
	return rc;
}

enum enr_err svc_engine_start(struct svc *s, const struct cfg *cfg)
{
	if (s->engine)
		return ENR_OK;
	return eng_start(cfg, s->store, &s->engine);
}

void svc_engine_stop(struct svc *s)
{
	eng_stop(s->engine);
	s->engine = NULL;
}

void svc_record_applied(const struct svc *s, const struct cfg *cfg, const char *path, char *sha)
{
	enum enr_err rc;

	util_strlcpy(sha, "unknown", CH_SHA_HEX);
	if (!s->o.history)
		return;
	/* A failure costs the history, not the configuration. */
	rc = ch_record(cfg->state_dir, path, util_now_ms() / 1000, sha, NULL);
	if (rc != ENR_OK) {
		log_warn("config", "could not record %s in the history under %s: %s", path,
			 cfg->state_dir, enr_strerror(rc));
		util_strlcpy(sha, "unknown", CH_SHA_HEX);
	}
}

/* What a running process built from its configuration at start: a new
 * value of these is read, and warned about, but not applied. */
static bool restart_only_changed(const struct cfg *a, const struct cfg *b)
{
	return strcmp(a->listen, b->listen) != 0 || a->threads != b->threads ||
	       strcmp(a->store, b->store) != 0 || a->max_in_flight != b->max_in_flight ||
	       a->store_threads != b->store_threads ||
	       a->up_max_connections != b->up_max_connections ||
	       a->up_max_host_connections != b->up_max_host_connections ||
	       a->up_max_idle_connections != b->up_max_idle_connections ||
	       a->up_max_streams != b->up_max_streams;
}

enum enr_err svc_reload(struct svc *s, const char *path)
{
	char err[LIM_CONFIG_ERR_MAX], sha[CH_SHA_HEX];
	struct cfg *next = NULL, *cur;
	enum enr_err rc = cfg_load(path, &next, err, sizeof err);

	if (rc) {
		log_notice("config", "reload refused, keeping the running configuration: %s", err);
		return rc;
	}
	cur = cfg_acquire();
	if (cur && restart_only_changed(cur, next))
		log_warn("config", "listen, threads, store, max_in_flight, store_threads and "
			 "upstream change only on restart");
	cfg_release(cur);
	/* The new snapshot names keys the pool must know first: a snapshot
	 * whose keys could not be recorded is not published. */
	if (s->o.keys && (rc = rot_sync_keys(s->store, next)) != ENR_OK) {
		log_notice("config", "reload refused, keeping the running configuration: the "
			   "configured provider keys could not be recorded (%s)", enr_strerror(rc));
		cfg_release(next);
		return rc;
	}
	log_set_level(next->log_level);
	log_set_format(next->log_format);
	svc_record_applied(s, next, path, sha);
	cfg_publish(next);
	if (s->o.history)
		log_notice("config", "reloaded %s (sha256 %.12s)", path, sha);
	else
		log_notice("config", "reloaded %s", path);
	return ENR_OK;
}

void svc_flush(struct svc *s)
{
	enum enr_err rc;

	if (s->store == NULL)
		return;
	rot_flush(s->store);
	cache_savings_flush(s->store, util_now_ms());
	rc = adm_flush(s->adm, util_now_ms());
	if (rc)
		log_warn("usage", "usage not written yet (%s): kept for the next try",
			 enr_strerror(rc));
}

bool svc_drain(struct svc *s, int64_t deadline_mono_ms)
{
	return eng_drain(s->engine, deadline_mono_ms);
}

void svc_close(struct svc *s)
{
	svc_engine_stop(s);
	/* adm_free writes the usage it holds (the journal keeps what the
	 * store does not take). */
	adm_free(s->adm);
	s->adm = NULL;
	if (s->store) {
		rot_flush(s->store);
		cache_savings_flush(s->store, util_now_ms());
	}
	if (s->o.http)
		alert_shutdown(2000);
	up_thread_cleanup();
	st_close(s->store);
	s->store = NULL;
	dom_lists_free(s->lists);
	s->lists = NULL;
	s->pctx.domains = NULL;
}
