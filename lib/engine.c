/*
 * engine.c - one place that builds the loop, the store pool and the cap.
 */
#include "engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "cache.h"
#include "co.h"
#include "evloop.h"
#include "log.h"
#include "metrics.h"
#include "spool.h"
#include "store.h"
#include "upstream.h"
#include "util.h"

#define ENG_FREE_XFERS 2048
#define ENG_WRITERS 2
/* A batch of the engine's writes (cache puts, usage, key counters) waits
 * this long to fill: under load one commit carries many, and a request
 * that waits on its cache put waits that much longer at most. */
#define ENG_WRITE_LINGER_MS 2

struct eng {
	struct ev_loop *loop;
	struct sp_pool *pool;
	struct sp_pool *writers;
	atomic_int taken;
	int cap;
};

/* ---- the store pool's figures on /metrics --------------------------------- */

static pthread_mutex_t mx_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t mx_once = PTHREAD_ONCE_INIT;
static struct eng *mx_eng;          /* the engine whose pool is shown; NULL: none */
static struct mx_family *mx_writes, *mx_batches, *mx_refused, *mx_queued;

static void mx_refresh(void *arg)
{
	struct sp_stats st;

	(void)arg;
	pthread_mutex_lock(&mx_lock);
	if (mx_eng) {
		sp_stats(mx_eng->pool, &st);
		mx_set(mx_writes, "", (double)st.writes);
		mx_set(mx_batches, "", (double)st.batches);
		mx_set(mx_refused, "", (double)st.refused);
		mx_set(mx_queued, "", (double)st.queued);
	}
	pthread_mutex_unlock(&mx_lock);
}

static void mx_init(void)
{
	mx_writes = mx_counter("enrichd_store_writes_total",
			       "Batched store writes (cache puts, usage, key counters) made.");
	mx_batches = mx_counter("enrichd_store_write_batches_total",
				"Transactions those writes were made in.");
	mx_refused = mx_counter("enrichd_store_pool_refused_total",
				"Store calls and writes refused because the pool's queue was full.");
	mx_queued = mx_gauge("enrichd_store_pool_queued", "Store calls and writes waiting now.");
	mx_on_render(mx_refresh, NULL);
}

static void mx_show(struct eng *e)
{
	pthread_once(&mx_once, mx_init);
	pthread_mutex_lock(&mx_lock);
	mx_eng = e;
	pthread_mutex_unlock(&mx_lock);
}

static void pool_thread_exit(struct store *st, void *arg)
{
	(void)arg;
	up_thread_cleanup();
	st_thread_release(st);
}

enum enr_err eng_start(const struct cfg *cfg, struct store *st, struct eng **out)
{
	struct ev_opts eo = { 0 };
	struct sp_opts so = { 0 };
	struct eng *e = calloc(1, sizeof *e);
	enum enr_err rc;

	if (e == NULL)
		return ENR_E_NOMEM;
	e->cap = cfg->max_in_flight;
	/* Room for every place's transfer and then some: the cap is the
	 * limit, never the loop's own. */
	eo.max_xfers = cfg->max_in_flight + 64 > LIM_EV_XFERS_MAX ? LIM_EV_XFERS_MAX
								  : cfg->max_in_flight + 64;
	/* Transfers (easy handles) kept for reuse: enough that a steady load
	 * does not make and free one per call. */
	eo.free_xfers = ENG_FREE_XFERS;
	eo.max_connections = cfg->up_max_connections;
	eo.max_host_connections = cfg->up_max_host_connections;
	eo.max_streams = cfg->up_max_streams;
	/* 0: keep as many idle as may be in flight, so that a steady load
	 * reuses its connections instead of making new ones. */
	eo.max_idle_connections = cfg->up_max_idle_connections > 0 ? cfg->up_max_idle_connections
								    : eo.max_xfers;
	rc = ev_new(&eo, &e->loop);
	if (rc)
		goto fail;
	so.store = st;
	so.threads = cfg->store_threads;
	so.write_linger_ms = ENG_WRITE_LINGER_MS;
	so.thread_exit = pool_thread_exit;
	rc = sp_new(&so, &e->pool);
	if (rc)
		goto fail;
	so.store = NULL;
	so.threads = ENG_WRITERS;
	so.write_linger_ms = 0;
	so.thread_exit = NULL;
	rc = sp_new(&so, &e->writers);
	if (rc)
		goto fail;
	rc = ev_thread_start(e->loop);
	if (rc)
		goto fail;
	co_setup(e->loop, e->pool);
	cache_group_commit();
	mx_show(e);
	log_info("engine", "loop and %d store threads started; at most %d requests in flight",
		 cfg->store_threads, e->cap);
	*out = e;
	return ENR_OK;
fail:
	sp_free(e->writers);
	sp_free(e->pool);
	ev_free(e->loop);
	free(e);
	return rc;
}

bool eng_drain(struct eng *e, int64_t deadline_mono_ms)
{
	if (e == NULL)
		return true;
	while (co_in_flight() > 0 && !util_deadline_passed(deadline_mono_ms))
		util_sleep_ms(10);
	return co_in_flight() == 0;
}

void eng_stop(struct eng *e)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&mx_lock);
	if (mx_eng == e)
		mx_eng = NULL;
	pthread_mutex_unlock(&mx_lock);
	ev_thread_join(e->loop);
	co_setup(NULL, NULL);
	/* The pools post completions to the loop: they go first. */
	sp_free(e->writers);
	sp_free(e->pool);
	ev_free(e->loop);
	free(e);
}

struct hand_off {
	void (*fn)(void *arg);
	void *arg;
};

static void hand_off_run(struct store *st, void *arg)
{
	struct hand_off *h = arg;

	(void)st;
	h->fn(h->arg);
	free(h);
}

void eng_hand_off(struct eng *e, void (*fn)(void *arg), void *arg)
{
	struct hand_off *h = e ? malloc(sizeof *h) : NULL;

	if (h) {
		h->fn = fn;
		h->arg = arg;
		if (sp_submit(e->writers, hand_off_run, h, NULL, NULL) == ENR_OK)
			return;
		free(h);
	}
	fn(arg);
}

bool eng_enter(struct eng *e)
{
	if (e == NULL)
		return true;
	if (atomic_fetch_add(&e->taken, 1) >= e->cap) {
		atomic_fetch_sub(&e->taken, 1);
		return false;
	}
	return true;
}

void eng_leave(struct eng *e)
{
	if (e)
		atomic_fetch_sub(&e->taken, 1);
}

int eng_in_flight(const struct eng *e)
{
	return e ? atomic_load(&e->taken) : 0;
}
