/*
 * engine.c - one place that builds the loop, the store pool and the cap.
 */
#include "engine.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "co.h"
#include "evloop.h"
#include "log.h"
#include "spool.h"
#include "store.h"
#include "upstream.h"
#include "util.h"

struct eng {
	struct ev_loop *loop;
	struct sp_pool *pool;
	atomic_int taken;
	int cap;
};

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
	eo.max_connections = cfg->up_max_connections;
	eo.max_host_connections = cfg->up_max_host_connections;
	eo.max_idle_connections = cfg->up_max_idle_connections;
	rc = ev_new(&eo, &e->loop);
	if (rc)
		goto fail;
	so.store = st;
	so.threads = cfg->store_threads;
	so.thread_exit = pool_thread_exit;
	rc = sp_new(&so, &e->pool);
	if (rc)
		goto fail;
	rc = ev_thread_start(e->loop);
	if (rc)
		goto fail;
	co_setup(e->loop, e->pool);
	log_info("engine", "loop and %d store threads started; at most %d requests in flight",
		 cfg->store_threads, e->cap);
	*out = e;
	return ENR_OK;
fail:
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
	ev_thread_join(e->loop);
	co_setup(NULL, NULL);
	/* The pool posts completions to the loop: it goes first. */
	sp_free(e->pool);
	ev_free(e->loop);
	free(e);
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
