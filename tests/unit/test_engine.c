/*
 * test_engine.c - the engine (lib/engine.c) and the real waterfall run as
 * continuations on the fake transfer layer: the deadline gives a partial
 * answer, an answer after it is dropped, identical lookups in flight are
 * made once and every waiter wakes, a client that goes away frees its
 * continuation, max_in_flight refuses one more.  A temporary SQLite store;
 * no sockets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/co.h"
#include "lib/config.h"
#include "lib/engine.h"
#include "lib/evfake.h"
#include "lib/evloop.h"
#include "lib/record.h"
#include "lib/rotation.h"
#include "lib/spool.h"
#include "lib/store.h"
#include "lib/util.h"
#include "lib/waterfall.h"

#include "evfake_loop.h"
#include "harness.h"
#include "tmpconf.h"

static char dir[] = "/tmp/enrichd-engine-XXXXXX";
static struct cfg *cfg;
static struct store *store;
static struct prov_ctx pctx;

/* PDL's answer to a person enrichment, with a title and no phone. */
static const char pdl_hit[] =
	"{\"status\":200,\"likelihood\":8,\"data\":{\"full_name\":\"john doe\","
	"\"first_name\":\"john\",\"last_name\":\"doe\",\"job_title\":\"engineering manager\","
	"\"job_company_name\":\"acme\"}}";

static bool setup(void)
{
	char path[512], text[2048], why[256];

	if (mkdtemp(dir) == NULL)
		return false;
	setenv("ENGINE_PDL", "pdl-secret", 1);
	setenv("ENGINE_PDL2", "pdl2-secret", 1);
	snprintf(path, sizeof path, "%s/enrichd.conf", dir);
	snprintf(text, sizeof text,
		 "store = \"sqlite:%s/e.db\"; state_dir = \"%s\"; max_in_flight = 2;\n"
		 "store_threads = 1;\n"
		 "providers = (\n"
		 "  { name = \"pdl\"; kind = \"pdl\"; base_url = \"https://pdl.test\"; timeout_ms = 3000;\n"
		 "    keys = ( { id = \"pdl-1\"; secret = \"env:ENGINE_PDL\"; } ); },\n"
		 "  { name = \"pdl2\"; kind = \"pdl\"; base_url = \"https://pdl2.test\"; timeout_ms = 3000;\n"
		 "    keys = ( { id = \"pdl2-1\"; secret = \"env:ENGINE_PDL2\"; } ); } );\n"
		 "waterfall = { person = [\"pdl\", \"pdl2\"]; phone = [\"pdl\", \"pdl2\"];\n"
		 "  email = [\"pdl\"]; company = [\"pdl\"]; };\n"
		 "rotation = { strategy = \"ordered\"; breaker_threshold = 1000; };\n",
		 dir, dir);
	if (!tmpconf_load(path, text, &cfg))
		return false;
	if (st_open_cfg(cfg, &store, why, sizeof why) != ENR_OK) {
		fprintf(stderr, "%s\n", why);
		return false;
	}
	rot_init();
	wf_init();
	return rot_sync_keys(store, cfg) == ENR_OK;
}

/* One enrichment as a continuation. */
struct enr {
	struct co_task t;
	struct rec rec;
	fld_set want;
	int64_t deadline_ms;   /* from its start */
	struct wf_result res;
	enum enr_err rc;
	bool ended;
};

static void enr_body(struct co_task *t)
{
	struct enr *e = t->arg;
	struct wf_ctx ctx;

	memset(&ctx, 0, sizeof ctx);
	ctx.store = store;
	ctx.cfg = cfg;
	ctx.pctx = &pctx;
	ctx.endpoint = CFG_EP_ENRICH;
	ctx.deadline_mono_ms = util_deadline_in(e->deadline_ms);
	e->rc = wf_run(&ctx, &e->rec, e->want, &e->res);
}

static void enr_ended(struct co_task *t)
{
	((struct enr *)t->arg)->ended = true;
}

static void enr_start(struct enr *e, const char *email, fld_set want, int64_t deadline_ms)
{
	bool moved = false;

	rec_init(&e->rec);
	enr_ignore(rec_set(&e->rec, ID_EMAIL, email, strlen(email)));
	enr_ignore(rec_normalise(&e->rec, 0, NULL));
	wf_result_init(&e->res);
	e->want = want;
	e->deadline_ms = deadline_ms;
	co_task_init(&e->t, enr_body, enr_ended, e);
	if (co_start(&e->t, &moved) != ENR_OK || !moved)
		HARNESS_FAIL("the enrichment of %s did not wait on the loop", email);
}

static void enr_release(struct enr *e)
{
	wf_result_release(&e->res);
	rec_release(&e->rec);
}

struct fixture {
	struct evf *f;
	struct ev_loop *l;
	struct sp_pool *pool;
};

static bool fixture_up(struct fixture *x)
{
	struct sp_opts so = { .store = store, .threads = 0 };

	memset(x, 0, sizeof *x);
	x->l = fake_loop_at(1000, 0, &x->f);
	if (x->l == NULL || sp_new(&so, &x->pool) != ENR_OK)
		return false;
	co_setup(x->l, x->pool);
	return true;
}

static void fixture_down(struct fixture *x)
{
	co_setup(NULL, NULL);
	sp_free(x->pool);
	ev_free(x->l);
	evf_free(x->f);
}

/* The transfer in flight to host (NULL: any), 0 when none. */
static uint64_t xfer_to(struct fixture *x, const char *host)
{
	for (size_t i = 0; i < evf_count(x->f); i++) {
		struct evf_call c;
		uint64_t id = evf_nth(x->f, i);

		if (evf_call(x->f, id, &c) && (host == NULL || strstr(c.url, host)))
			return id;
	}
	return 0;
}

TEST(the_deadline_gives_a_partial_answer_and_a_late_one_is_dropped)
{
	struct fixture x;
	struct enr e;
	uint64_t late;
	int64_t until;

	REQUIRE(fixture_up(&x));
	memset(&e, 0, sizeof e);
	enr_start(&e, "john.doe@acme.com", FLD_BIT(FLD_TITLE) | FLD_BIT(FLD_PHONE), 150);
	ev_run_pending(x.l);
	REQUIRE(xfer_to(&x, "pdl.test") != 0);
	CHECK_INT(evf_answer(x.f, xfer_to(&x, "pdl.test"), 200, NULL, pdl_hit), ENR_OK);
	ev_run_pending(x.l);
	/* The phone is still missing: the second provider is asked, within
	 * what is left of the 150 ms. */
	late = xfer_to(&x, "pdl2.test");
	REQUIRE(late != 0);
	CHECK(!e.ended);
	/* The request's own 150 ms pass on the real clock (waited for, not
	 * guessed: the deadline is a point in time), then the transfer's
	 * timeout on the fake one. */
	until = util_deadline_in(150);
	while (!util_deadline_passed(until))
		util_sleep_ms(5);
	evf_advance(x.f, 3000);
	ev_run_pending(x.l);
	CHECK(e.ended);
	CHECK_INT(e.rc, ENR_OK);
	CHECK_INT(e.res.status, WF_PARTIAL);
	CHECK(e.res.deadline_passed);
	CHECK_STR(e.res.value[FLD_TITLE], "engineering manager");
	CHECK(e.res.value[FLD_PHONE] == NULL);
	CHECK_INT(e.res.nerrors, 1);
	CHECK_STR(e.res.errors[0].provider, "pdl2");
	/* pdl2 answers after all: the continuation is gone, nothing changes. */
	CHECK_INT(evf_answer(x.f, late, 200, NULL, pdl_hit), ENR_OK);
	ev_run_pending(x.l);
	CHECK(e.res.value[FLD_PHONE] == NULL);
	CHECK_INT(co_in_flight(), 0);
	enr_release(&e);
	fixture_down(&x);
}

TEST(identical_lookups_in_flight_are_made_once_and_every_waiter_wakes)
{
	struct fixture x;
	struct enr e[3];
	int coalesced = 0;

	REQUIRE(fixture_up(&x));
	memset(e, 0, sizeof e);
	for (int i = 0; i < 3; i++)
		enr_start(&e[i], "jane.roe@acme.com", FLD_BIT(FLD_TITLE), 10000);
	ev_run_pending(x.l);
	CHECK_INT(evf_count(x.f), 1);
	REQUIRE(xfer_to(&x, "pdl.test") != 0);
	CHECK_INT(evf_answer(x.f, xfer_to(&x, "pdl.test"), 200, NULL, pdl_hit), ENR_OK);
	ev_run_pending(x.l);
	for (int i = 0; i < 3; i++) {
		CHECK(e[i].ended);
		CHECK_INT(e[i].res.status, WF_COMPLETE);
		CHECK_STR(e[i].res.value[FLD_TITLE], "engineering manager");
		coalesced += e[i].res.coalesced;
		enr_release(&e[i]);
	}
	CHECK_INT(evf_started(x.f), 1);
	CHECK_INT(coalesced, 2);
	CHECK_INT(co_in_flight(), 0);
	fixture_down(&x);
}

TEST(a_client_that_goes_away_frees_its_continuation)
{
	struct fixture x;
	struct enr e;

	REQUIRE(fixture_up(&x));
	memset(&e, 0, sizeof e);
	enr_start(&e, "gone.away@acme.com", FLD_BIT(FLD_TITLE) | FLD_BIT(FLD_PHONE), 10000);
	ev_run_pending(x.l);
	REQUIRE(evf_count(x.f) == 1);
	co_cancel(&e.t);
	ev_run_pending(x.l);
	CHECK(e.ended);
	CHECK_INT(e.rc, ENR_OK);
	/* Nothing was found and nobody said "no such person". */
	CHECK_INT(e.res.status, WF_INCOMPLETE);
	/* The second provider was never sent anything. */
	CHECK_INT(evf_started(x.f), 1);
	CHECK_INT(evf_count(x.f), 0);
	CHECK_INT(co_in_flight(), 0);
	enr_release(&e);
	fixture_down(&x);
}

static void pause_then_end(struct co_task *t)
{
	co_sleep_ms(20);
	*(bool *)t->arg = true;
}

static void ended_nothing(struct co_task *t)
{
	(void)t;
}

TEST(max_in_flight_refuses_one_more_and_drain_waits_for_the_rest)
{
	struct eng *e = NULL;
	struct co_task t;
	bool moved = false, done = false;

	REQUIRE(eng_start(cfg, store, &e) == ENR_OK);
	CHECK(eng_enter(e));
	CHECK(eng_enter(e));
	CHECK(!eng_enter(e)); /* max_in_flight = 2 */
	CHECK_INT(eng_in_flight(e), 2);
	eng_leave(e);
	CHECK(eng_enter(e));
	eng_leave(e);
	eng_leave(e);
	CHECK_INT(eng_in_flight(e), 0);
	CHECK(eng_enter(NULL)); /* no engine, no cap */

	/* A continuation started now waits on the engine's own loop thread. */
	co_task_init(&t, pause_then_end, ended_nothing, &done);
	REQUIRE(co_start(&t, &moved) == ENR_OK);
	CHECK(moved);
	CHECK(eng_drain(e, util_deadline_in(5000)));
	CHECK(done);
	CHECK_INT(co_in_flight(), 0);
	eng_stop(e);
	CHECK(co_loop() == NULL);
}

int main(void)
{
	char cmd[600];

	if (!setup()) {
		fprintf(stderr, "set-up failed\n");
		return 1;
	}
	RUN(the_deadline_gives_a_partial_answer_and_a_late_one_is_dropped);
	RUN(identical_lookups_in_flight_are_made_once_and_every_waiter_wakes);
	RUN(a_client_that_goes_away_frees_its_continuation);
	RUN(max_in_flight_refuses_one_more_and_drain_waits_for_the_rest);
	st_close(store);
	cfg_release(cfg);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return harness_done();
}
