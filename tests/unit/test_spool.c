/*
 * test_spool.c - the store pool (lib/spool.c): completions on the loop,
 * lanes in order, batched writes coalesced and in order, the write
 * barrier, backpressure, inline mode, shutdown.
 *
 * Closures here do not touch a store (the pool never looks at it); they
 * record what ran where.  Where a test needs a thread held, it holds it on
 * a gate the test opens, and waits on conditions with a timeout.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/evfake.h"
#include "lib/evloop.h"
#include "lib/limits.h"
#include "lib/spool.h"
#include "lib/util.h"

#include "evfake_loop.h"
#include "harness.h"

#define WAIT_MS 20000

/* A gate a closure waits at until the test opens it, and a flag the test
 * can wait for ("the closure has started"). */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;
	bool reached;
};

static void gate_init(struct gate *g)
{
	pthread_mutex_init(&g->mu, NULL);
	enr_ignore(util_cond_init(&g->cv)); /* a failure shows as a timed-out wait */
	g->open = g->reached = false;
}

static void gate_destroy(struct gate *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
}

/* Closure side: say it is here, wait for the gate. */
static bool gate_pass(struct gate *g)
{
	bool ok = true;

	pthread_mutex_lock(&g->mu);
	g->reached = true;
	pthread_cond_broadcast(&g->cv);
	while (!g->open && ok)
		ok = util_cond_wait_ms(&g->cv, &g->mu, WAIT_MS) != ETIMEDOUT;
	pthread_mutex_unlock(&g->mu);
	return ok;
}

static bool gate_wait_reached(struct gate *g)
{
	bool ok = true;

	pthread_mutex_lock(&g->mu);
	while (!g->reached && ok)
		ok = util_cond_wait_ms(&g->cv, &g->mu, WAIT_MS) != ETIMEDOUT;
	pthread_mutex_unlock(&g->mu);
	return g->reached;
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void hold_at_gate(struct store *st, void *arg)
{
	(void)st;
	if (!gate_pass(arg))
		fprintf(stderr, "  gate never opened\n");
}

/* ---- inline mode ---------------------------------------------------------------- */

struct rec {
	pthread_t where;
	bool ran;
	struct gate *held;           /* when set: whether it was still closed */
	bool while_held;
	int done_calls;
	bool done_on_loop;
	bool ran_before_done;
	int *counter;
	int want;
	bool *all_done;
};

static void rec_fn(struct store *st, void *arg)
{
	struct rec *r = arg;

	(void)st;
	r->where = pthread_self();
	if (r->held) {
		pthread_mutex_lock(&r->held->mu);
		r->while_held = !r->held->open;
		pthread_mutex_unlock(&r->held->mu);
	}
	r->ran = true;
}

static void rec_done(struct ev_loop *l, void *arg)
{
	struct rec *r = arg;

	r->done_calls++;
	r->done_on_loop = ev_on_loop_thread(l);
	r->ran_before_done = r->ran;
	if (r->counter && ++*r->counter == r->want && r->all_done)
		*r->all_done = true;
}

struct wlog {
	int calls;
	int items;
	int sizes[64];
	int order_bad;
	int last;
	pthread_t where;
	struct gate *first_gate;     /* the first batch waits here */
	bool *written;               /* written[item] = true */
};

static void batch_fn(struct store *st, void **items, size_t n, void *arg)
{
	struct wlog *w = arg;

	(void)st;
	if (w->calls == 0 && w->first_gate)
		gate_pass(w->first_gate);
	if (w->calls < 64)
		w->sizes[w->calls] = (int)n;
	w->calls++;
	w->where = pthread_self();
	for (size_t i = 0; i < n; i++) {
		int v = *(int *)items[i];

		if (v <= w->last)
			w->order_bad++;
		w->last = v;
		w->items++;
		if (w->written)
			w->written[v] = true;
		free(items[i]);
	}
}

static int *boxed(int v)
{
	int *p = malloc(sizeof *p);

	if (p)
		*p = v;
	return p;
}

TEST(inline_runs_in_the_caller_and_posts_the_completion)
{
	struct evf *f;
	struct ev_loop *l = fake_loop_at(0, 0, &f);
	struct sp_pool *p = NULL;
	struct sp_opts o = { .threads = 0 };
	struct rec r = { 0 };
	struct wlog w = { 0 };
	int k;

	REQUIRE(l);
	REQUIRE(sp_new(&o, &p) == ENR_OK);
	CHECK_INT(sp_submit(p, rec_fn, &r, l, rec_done), ENR_OK);
	CHECK(r.ran);
	CHECK(pthread_equal(r.where, pthread_self()));
	CHECK_INT(r.done_calls, 0); /* never inside the submission */
	ev_run_pending(l);
	CHECK_INT(r.done_calls, 1);
	CHECK(r.done_on_loop);
	/* lanes and writes run at once too */
	memset(&r, 0, sizeof r);
	CHECK_INT(sp_submit_lane(p, 42, SP_AFTER_WRITES, rec_fn, &r, NULL, NULL), ENR_OK);
	CHECK(r.ran);
	k = sp_kind(p, batch_fn, &w, 0);
	REQUIRE(k >= 0);
	CHECK_INT(sp_write(p, k, boxed(1)), ENR_OK);
	CHECK_INT(w.calls, 1);
	CHECK_INT(w.sizes[0], 1);
	sp_drain(p);
	sp_free(p);
	ev_free(l);
	evf_free(f);
}

TEST(bad_arguments_are_refused)
{
	struct sp_pool *p = NULL;
	struct sp_opts o = { .threads = LIM_SP_THREADS_MAX + 1 };
	struct rec r = { 0 };
	int dummy = 0;

	CHECK_INT(sp_new(&o, &p), ENR_E_INVALID);
	o.threads = 1;
	o.queue_max = -1;
	CHECK_INT(sp_new(&o, &p), ENR_E_INVALID);
	o.queue_max = 0;
	REQUIRE(sp_new(&o, &p) == ENR_OK);
	CHECK_INT(sp_submit(p, NULL, &r, NULL, NULL), ENR_E_INVALID);
	CHECK_INT(sp_submit(p, rec_fn, &r, NULL, rec_done), ENR_E_INVALID); /* done needs a loop */
	CHECK_INT(sp_write(p, 0, &dummy), ENR_E_INVALID);                  /* no kinds yet */
	CHECK_INT(sp_write(p, -1, &dummy), ENR_E_INVALID);
	for (int i = 0; i < LIM_SP_KINDS_MAX; i++)
		CHECK(sp_kind(p, batch_fn, NULL, 0) == i);
	CHECK_INT(sp_kind(p, batch_fn, NULL, 0), -1);
	CHECK(!r.ran);
	sp_free(p);
	sp_free(NULL);
}

/* ---- threads ----------------------------------------------------------------------- */

TEST(closures_run_on_pool_threads_and_complete_on_the_loop)
{
	enum { N = 2000 };
	struct evf *f;
	struct ev_loop *l = fake_loop_at(0, 0, &f);
	struct sp_pool *p = NULL;
	struct sp_opts o = { .threads = 4 };
	static struct rec r[N];
	int count = 0, on_caller = 0, bad_done = 0;
	bool all = false;

	REQUIRE(l);
	REQUIRE(sp_new(&o, &p) == ENR_OK);
	memset(r, 0, sizeof r);
	for (int i = 0; i < N; i++) {
		r[i].counter = &count;
		r[i].want = N;
		r[i].all_done = &all;
		CHECK_INT(sp_submit(p, rec_fn, &r[i], l, rec_done), ENR_OK);
	}
	CHECK_INT(ev_run_until(l, &all, WAIT_MS), ENR_OK);
	for (int i = 0; i < N; i++) {
		on_caller += pthread_equal(r[i].where, pthread_self()) != 0;
		bad_done += r[i].done_calls != 1 || !r[i].done_on_loop || !r[i].ran_before_done;
	}
	CHECK_INT(count, N);
	CHECK_INT(on_caller, 0);
	CHECK_INT(bad_done, 0);
	sp_free(p);
	ev_free(l);
	evf_free(f);
}

enum { LANES = 64, PER_LANE = 300 };

static struct {
	atomic_int busy[LANES];
	int last[LANES];
	atomic_int overlap, disorder, ran;
} lanes;

struct lane_item {
	int lane, seq;
};

static void lane_fn(struct store *st, void *arg)
{
	struct lane_item *it = arg;
	volatile unsigned spin = 0;

	(void)st;
	if (atomic_exchange(&lanes.busy[it->lane], 1) != 0)
		atomic_fetch_add(&lanes.overlap, 1);
	if (it->seq != lanes.last[it->lane] + 1)
		atomic_fetch_add(&lanes.disorder, 1);
	lanes.last[it->lane] = it->seq;
	for (int i = 0; i < 5000; i++)
		spin += (unsigned)i;
	atomic_store(&lanes.busy[it->lane], 0);
	atomic_fetch_add(&lanes.ran, 1);
}

TEST(a_lane_runs_one_at_a_time_in_order)
{
	struct sp_pool *p = NULL;
	struct sp_opts o = { .threads = 4 };
	static struct lane_item items[LANES * PER_LANE];

	REQUIRE(sp_new(&o, &p) == ENR_OK);
	memset(&lanes, 0, sizeof lanes);
	/* Bursts of 10 closures of one lane, lanes taking turns: side by side
	 * in the queue, so free threads would overlap them if they could. */
	for (int s0 = 0; s0 < PER_LANE; s0 += 10) {
		for (int ln = 0; ln < LANES; ln++) {
			for (int s = s0 + 1; s <= s0 + 10; s++) {
				struct lane_item *it = &items[(s - 1) * LANES + ln];

				it->lane = ln;
				it->seq = s;
				/* lane numbers far apart, as row ids of several jobs */
				CHECK_INT(sp_submit_lane(p, (uint64_t)ln * 1000003u, 0, lane_fn, it,
							 NULL, NULL), ENR_OK);
			}
		}
	}
	sp_drain(p);
	CHECK_INT(atomic_load(&lanes.ran), LANES * PER_LANE);
	CHECK_INT(atomic_load(&lanes.overlap), 0);
	CHECK_INT(atomic_load(&lanes.disorder), 0);
	sp_free(p);
}

/* Two lanes run at the same time: each waits until both are running. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int here;
	int met;
} meet = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void meet_fn(struct store *st, void *arg)
{
	bool ok = true;

	(void)st;
	(void)arg;
	pthread_mutex_lock(&meet.mu);
	meet.here++;
	pthread_cond_broadcast(&meet.cv);
	while (meet.here < 2 && ok)
		ok = util_cond_wait_ms(&meet.cv, &meet.mu, WAIT_MS) != ETIMEDOUT;
	if (meet.here >= 2)
		meet.met++;
	pthread_mutex_unlock(&meet.mu);
}

TEST(different_lanes_run_side_by_side)
{
	struct sp_pool *p = NULL;
	struct sp_opts o = { .threads = 2 };

	REQUIRE(util_cond_init(&meet.cv) == ENR_OK);
	REQUIRE(sp_new(&o, &p) == ENR_OK);
	CHECK_INT(sp_submit_lane(p, 1, 0, meet_fn, NULL, NULL, NULL), ENR_OK);
	CHECK_INT(sp_submit_lane(p, 2, 0, meet_fn, NULL, NULL, NULL), ENR_OK);
	sp_drain(p);
	CHECK_INT(meet.met, 2);
	sp_free(p);
	pthread_cond_destroy(&meet.cv);
}

TEST(a_full_queue_refuses)
{
	struct sp_pool *p = NULL;
	struct sp_opts o = { .threads = 1, .queue_max = 4 };
	struct gate g;
	struct rec r[6];
	struct sp_stats st;
	int k;
	struct wlog w = { 0 };
	int *extra = boxed(9);

	gate_init(&g);
	memset(r, 0, sizeof r);
	REQUIRE(sp_new(&o, &p) == ENR_OK);
	k = sp_kind(p, batch_fn, &w, 0);
	REQUIRE(sp_submit(p, hold_at_gate, &g, NULL, NULL) == ENR_OK);
	REQUIRE(gate_wait_reached(&g)); /* running: no longer queued */
	for (int i = 0; i < 4; i++)
		CHECK_INT(sp_submit(p, rec_fn, &r[i], NULL, NULL), ENR_OK);
	CHECK_INT(sp_submit(p, rec_fn, &r[4], NULL, NULL), ENR_E_UNAVAILABLE);
	CHECK_INT(sp_submit_lane(p, 3, 0, rec_fn, &r[4], NULL, NULL), ENR_E_UNAVAILABLE);
	CHECK_INT(sp_write(p, k, extra), ENR_E_UNAVAILABLE); /* still ours */
	sp_stats(p, &st);
	CHECK_INT(st.queued, 4);
	CHECK_INT(st.refused, 3);
	gate_open(&g);
	sp_drain(p);
	for (int i = 0; i < 4; i++)
		CHECK(r[i].ran);
	CHECK(!r[4].ran);
	/* room again */
	CHECK_INT(sp_submit(p, rec_fn, &r[5], NULL, NULL), ENR_OK);
	CHECK_INT(sp_write(p, k, extra), ENR_OK);
	sp_drain(p);
	CHECK(r[5].ran);
	CHECK_INT(w.items, 1);
	sp_free(p);
	gate_destroy(&g);
}

TEST(queued_writes_of_a_kind_run_in_one_go_in_order)
{
	struct sp_pool *p = NULL;
	struct sp_opts o = { .threads = 1 };
	struct gate g;
	struct wlog w = { 0 }, w30 = { 0 };
	struct sp_stats st;
	int k, k30;

	gate_init(&g);
	REQUIRE(sp_new(&o, &p) == ENR_OK);
	k = sp_kind(p, batch_fn, &w, 1000);
	k30 = sp_kind(p, batch_fn, &w30, 30);
	REQUIRE(k >= 0 && k30 >= 0);
	/* The only thread is busy while the writes come in. */
	REQUIRE(sp_submit(p, hold_at_gate, &g, NULL, NULL) == ENR_OK);
	REQUIRE(gate_wait_reached(&g));
	for (int i = 1; i <= 100; i++) {
		CHECK_INT(sp_write(p, k, boxed(i)), ENR_OK);
		CHECK_INT(sp_write(p, k30, boxed(i)), ENR_OK);
	}
	gate_open(&g);
	sp_drain(p);
	CHECK_INT(w.items, 100);
	CHECK_INT(w.calls, 1);
	CHECK_INT(w.sizes[0], 100);
	CHECK_INT(w.order_bad, 0);
	CHECK_INT(w30.items, 100);
	CHECK_INT(w30.calls, 4);
	CHECK_INT(w30.sizes[0], 30);
	CHECK_INT(w30.sizes[3], 10);
	CHECK_INT(w30.order_bad, 0);
	sp_stats(p, &st);
	CHECK_INT(st.writes, 200);
	CHECK_INT(st.batches, 5);
	sp_free(p);
	gate_destroy(&g);
}

/* ---- the write barrier ----------------------------------------------------------------- */

struct row {
	bool *written;
	int need[2];
	bool saw_all;
	bool before_open;
	struct gate *g;
	bool ran;
};

static void finish_row(struct store *st, void *arg)
{
	struct row *r = arg;

	(void)st;
	r->saw_all = r->written[r->need[0]] && r->written[r->need[1]];
	pthread_mutex_lock(&r->g->mu);
	r->before_open = !r->g->open;
	pthread_mutex_unlock(&r->g->mu);
	r->ran = true;
}

TEST(after_writes_waits_for_a_batch_in_progress)
{
	struct sp_pool *p = NULL;
	struct sp_opts o = { .threads = 3 };
	struct gate g, plain;
	static bool written[16];
	struct wlog w = { 0 };
	struct row row = { written, { 7, 7 }, false, false, &g, false };
	int k;

	memset(written, 0, sizeof written);
	gate_init(&g);
	gate_init(&plain);
	w.first_gate = &g;
	w.written = written;
	REQUIRE(sp_new(&o, &p) == ENR_OK);
	k = sp_kind(p, batch_fn, &w, 0);
	/* the cache put; its batch is held at the gate */
	CHECK_INT(sp_write(p, k, boxed(7)), ENR_OK);
	REQUIRE(gate_wait_reached(&g));
	/* the row's end, in its lane, after the writes */
	CHECK_INT(sp_submit_lane(p, 7, SP_AFTER_WRITES, finish_row, &row, NULL, NULL), ENR_OK);
	/* a plain closure submitted later runs on the third thread, so the
	 * row's thread has taken the row by then */
	plain.open = true;
	CHECK_INT(sp_submit(p, hold_at_gate, &plain, NULL, NULL), ENR_OK);
	REQUIRE(gate_wait_reached(&plain));
	CHECK(!row.ran);
	gate_open(&g);
	sp_drain(p);
	CHECK(row.ran);
	CHECK(row.saw_all);
	CHECK(!row.before_open);
	sp_free(p);
	gate_destroy(&g);
	gate_destroy(&plain);
}

TEST(after_writes_runs_queued_writes_first)
{
	struct sp_pool *p = NULL;
	struct sp_opts o = { .threads = 2 };
	struct gate g;
	static bool written[16];
	struct wlog w = { 0 };
	struct row row = { written, { 1, 2 }, false, false, &g, false };
	int k;

	memset(written, 0, sizeof written);
	gate_init(&g);
	w.first_gate = &g;
	w.written = written;
	REQUIRE(sp_new(&o, &p) == ENR_OK);
	k = sp_kind(p, batch_fn, &w, 0);
	CHECK_INT(sp_write(p, k, boxed(1)), ENR_OK);
	REQUIRE(gate_wait_reached(&g));
	/* write 2 waits behind the batch in progress, not in the ready list;
	 * the row comes after it and must see both */
	CHECK_INT(sp_write(p, k, boxed(2)), ENR_OK);
	CHECK_INT(sp_submit_lane(p, 99, SP_AFTER_WRITES, finish_row, &row, NULL, NULL), ENR_OK);
	gate_open(&g);
	sp_drain(p);
	CHECK(row.ran);
	CHECK(row.saw_all);
	CHECK_INT(w.items, 2);
	CHECK_INT(w.order_bad, 0);
	sp_free(p);
	gate_destroy(&g);
}

/* ---- the linger: a batch waits to fill ------------------------------------------------ */

#define LONG_LINGER_MS 60000   /* far beyond what any check below waits */
#define PROMPT_MS 30000         /* "at once", on the slowest sanitizer run */

/* Wait (PROMPT_MS at most) until the pool has run `writes` writes and
 * `closures` closures; sp_drain would cut a linger short itself. */
static bool ran(struct sp_pool *p, uint64_t writes, uint64_t closures)
{
	int64_t deadline = util_deadline_in(PROMPT_MS);
	struct sp_stats st;

	for (;;) {
		sp_stats(p, &st);
		if (st.writes >= writes && st.run >= closures)
			return true;
		if (util_deadline_passed(deadline))
			return false;
		util_sleep_ms(1);
	}
}

/* A pool of `threads` threads whose batches linger, with one kind of
 * write (batch size batch_max) logged in w. */
static struct sp_pool *lingering(int threads, size_t batch_max, struct wlog *w, int *k)
{
	struct sp_opts o = { .threads = threads, .write_linger_ms = LONG_LINGER_MS };
	struct sp_pool *p = NULL;

	if (sp_new(&o, &p) != ENR_OK)
		return NULL;
	*k = sp_kind(p, batch_fn, w, batch_max);
	return p;
}

TEST(a_lingering_batch_waits_to_fill_then_goes_at_once)
{
	struct wlog w = { 0 };
	struct sp_stats st;
	int k = -1;
	struct sp_pool *p = lingering(2, 4, &w, &k);

	REQUIRE(p != NULL && k >= 0);
	for (int i = 1; i <= 3; i++)
		CHECK_INT(sp_write(p, k, boxed(i)), ENR_OK);
	sp_stats(p, &st);
	CHECK_INT(st.writes, 0); /* three of four: still waiting for the fourth */
	CHECK_INT(sp_write(p, k, boxed(4)), ENR_OK);
	CHECK(ran(p, 4, 0)); /* full: written without waiting out the linger */
	sp_drain(p);
	CHECK_INT(w.calls, 1);
	CHECK_INT(w.sizes[0], 4);
	CHECK_INT(w.order_bad, 0);
	sp_free(p);
}

TEST(a_barrier_does_not_wait_for_a_linger)
{
	struct sp_pool *p = NULL;
	struct sp_opts o = { .threads = 2, .write_linger_ms = LONG_LINGER_MS };
	struct gate g;
	static bool written[16];
	struct wlog w = { 0 };
	struct row row = { written, { 3, 3 }, false, false, &g, false };
	int k;

	memset(written, 0, sizeof written);
	gate_init(&g);
	g.open = true;
	w.written = written;
	REQUIRE(sp_new(&o, &p) == ENR_OK);
	k = sp_kind(p, batch_fn, &w, 0);
	CHECK_INT(sp_write(p, k, boxed(3)), ENR_OK);
	CHECK_INT(sp_submit_lane(p, 3, SP_AFTER_WRITES, finish_row, &row, NULL, NULL), ENR_OK);
	CHECK(ran(p, 1, 1));
	sp_drain(p);
	CHECK(row.ran);
	CHECK(row.saw_all);
	CHECK_INT(w.items, 1);
	sp_free(p);
	gate_destroy(&g);
}

TEST(a_stopping_pool_writes_a_lingering_batch_at_once)
{
	struct wlog w = { 0 };
	int64_t t0 = util_mono_ms();
	int k = -1;
	struct sp_pool *p = lingering(3, 0, &w, &k);

	REQUIRE(p != NULL && k >= 0);
	CHECK_INT(sp_write(p, k, boxed(1)), ENR_OK);
	CHECK_INT(sp_write(p, k, boxed(2)), ENR_OK);
	sp_free(p);
	CHECK(util_mono_ms() - t0 < PROMPT_MS);
	CHECK_INT(w.items, 2);
	CHECK_INT(w.order_bad, 0);
}

TEST(one_thread_never_lingers)
{
	struct sp_pool *p = NULL;
	struct sp_opts bad = { .threads = 2, .write_linger_ms = 60001 };
	struct wlog w = { 0 };
	int k = -1;

	CHECK_INT(sp_new(&bad, &p), ENR_E_INVALID);
	bad.write_linger_ms = -1;
	CHECK_INT(sp_new(&bad, &p), ENR_E_INVALID);
	p = lingering(1, 0, &w, &k);
	REQUIRE(p != NULL && k >= 0);
	CHECK_INT(sp_write(p, k, boxed(1)), ENR_OK);
	CHECK(ran(p, 1, 0));
	sp_drain(p);
	CHECK_INT(w.items, 1);
	sp_free(p);
}

TEST(a_drain_does_not_wait_for_a_linger)
{
	struct wlog w = { 0 };
	int64_t t0 = util_mono_ms();
	int k = -1;
	struct sp_pool *p = lingering(2, 0, &w, &k);

	REQUIRE(p != NULL && k >= 0);
	CHECK_INT(sp_write(p, k, boxed(1)), ENR_OK);
	sp_drain(p);
	CHECK(util_mono_ms() - t0 < PROMPT_MS);
	CHECK_INT(w.items, 1);
	sp_free(p);
}

/* ---- shutdown ------------------------------------------------------------------------- */

static atomic_int exits;

static void on_thread_exit(struct store *st, void *arg)
{
	(void)st;
	(void)arg;
	atomic_fetch_add(&exits, 1);
}

TEST(free_runs_what_is_queued_then_ends_the_threads)
{
	struct evf *f;
	struct ev_loop *l = fake_loop_at(0, 0, &f);
	struct sp_pool *p = NULL;
	struct sp_opts o = { .threads = 3, .thread_exit = on_thread_exit };
	struct gate g;
	struct rec r[10];
	int count = 0;

	REQUIRE(l);
	gate_init(&g);
	memset(r, 0, sizeof r);
	atomic_store(&exits, 0);
	REQUIRE(sp_new(&o, &p) == ENR_OK);
	REQUIRE(sp_submit_lane(p, 5, 0, hold_at_gate, &g, NULL, NULL) == ENR_OK);
	REQUIRE(gate_wait_reached(&g));
	for (int i = 0; i < 10; i++) {
		r[i].counter = &count;
		r[i].held = &g;
		/* behind the held one in its lane: they must wait for it */
		CHECK_INT(sp_submit_lane(p, 5, 0, rec_fn, &r[i], l, rec_done), ENR_OK);
	}
	gate_open(&g);
	sp_free(p);
	CHECK_INT(atomic_load(&exits), 3);
	for (int i = 0; i < 10; i++)
		CHECK(r[i].ran && !r[i].while_held);
	CHECK_INT(count, 0); /* completions are on the loop ... */
	ev_run_pending(l);
	CHECK_INT(count, 10); /* ... and arrive there */
	ev_free(l);
	evf_free(f);
	gate_destroy(&g);
}

int main(void)
{
	RUN(inline_runs_in_the_caller_and_posts_the_completion);
	RUN(bad_arguments_are_refused);
	RUN(closures_run_on_pool_threads_and_complete_on_the_loop);
	RUN(a_lane_runs_one_at_a_time_in_order);
	RUN(different_lanes_run_side_by_side);
	RUN(a_full_queue_refuses);
	RUN(queued_writes_of_a_kind_run_in_one_go_in_order);
	RUN(after_writes_waits_for_a_batch_in_progress);
	RUN(after_writes_runs_queued_writes_first);
	RUN(a_lingering_batch_waits_to_fill_then_goes_at_once);
	RUN(a_barrier_does_not_wait_for_a_linger);
	RUN(a_stopping_pool_writes_a_lingering_batch_at_once);
	RUN(one_thread_never_lingers);
	RUN(a_drain_does_not_wait_for_a_linger);
	RUN(free_runs_what_is_queued_then_ends_the_threads);
	return harness_done();
}
