/*
 * test_co.c - continuations (lib/co.c) on the event loop's fake transfer
 * layer and fake clock: a wait moves the continuation to the loop and the
 * starting thread gets on; answers, timers, cancelling, conditions shared
 * with threads, and calls that run on the store pool.  No sockets.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "lib/cache.h"
#include "lib/co.h"
#include "lib/evfake.h"
#include "lib/evloop.h"
#include "lib/fiber.h"
#include "lib/spool.h"
#include "lib/util.h"

#include "evfake_loop.h"
#include "harness.h"

/* A fake loop that continuations move to (no store pool: co_call runs in
 * place); fx_down undoes it. */
struct fx {
	struct evf *f;
	struct ev_loop *l;
};

static bool fx_up(struct fx *x)
{
	x->l = fake_loop_at(1000, 0, &x->f);
	if (x->l)
		co_setup(x->l, NULL);
	return x->l != NULL;
}

static void fx_down(struct fx *x)
{
	co_setup(NULL, NULL);
	ev_free(x->l);
	evf_free(x->f);
}

/* What one continuation did. */
struct job {
	struct co_task t;
	int steps;
	bool ended;
	long status[2];
	bool timed_out[2];
	char body[64];
	int64_t left_after;
	pthread_t ran_on;
	struct evf *f;
};

static void on_ended(struct co_task *t)
{
	((struct job *)t->arg)->ended = true;
}

static void start(struct job *j, co_fn body, bool *moved)
{
	co_task_init(&j->t, body, on_ended, j);
	if (co_start(&j->t, moved) != ENR_OK)
		HARNESS_FAIL("co_start failed");
}

static void two_calls(struct co_task *t)
{
	struct job *j = t->arg;

	for (int i = 0; i < 2; i++) {
		struct prov_request r;
		struct up_response resp;

		prov_request_init(&r);
		util_strlcpy(r.method, "GET", sizeof r.method);
		enr_ignore(buf_puts(&r.url, "https://api.provider.test/v5/person/enrich"));
		up_response_init(&resp);
		if (co_perform(&r, 1000, 0, &resp) == ENR_OK) {
			j->status[i] = resp.resp.status;
			j->timed_out[i] = resp.resp.timed_out;
			if (i == 0)
				util_strlcpy(j->body, resp.resp.body, sizeof j->body);
		}
		j->steps++;
		up_response_release(&resp);
		prov_request_release(&r);
	}
	j->left_after = co_deadline_left(util_deadline_in(60000));
}

static void quick(struct co_task *t)
{
	((struct job *)t->arg)->steps = 1;
}

TEST(quick_work_never_leaves_the_thread)
{
	struct fx x;
	struct job j = { 0 };
	bool moved = true;

	REQUIRE(fx_up(&x));
	start(&j, quick, &moved);
	/* The body ran to its end in co_start: the caller finishes it. */
	CHECK(!moved);
	CHECK_INT(j.steps, 1);
	CHECK(!j.ended);
	CHECK_INT(co_in_flight(), 0);
	CHECK_INT(ev_run_pending(x.l), 0);
	fx_down(&x);
}

TEST(a_wait_moves_to_the_loop_and_the_answer_comes_back)
{
	struct fx x;
	struct job j = { 0 };
	bool moved = false;

	REQUIRE(fx_up(&x));
	start(&j, two_calls, &moved);
	CHECK(moved);
	CHECK_INT(co_in_flight(), 1);
	CHECK_INT(evf_count(x.f), 0); /* nothing until the loop takes it */
	ev_run_pending(x.l);
	REQUIRE(evf_count(x.f) == 1);
	CHECK_INT(evf_answer(x.f, evf_nth(x.f, 0), 200, NULL, "{\"first\":1}"), ENR_OK);
	ev_run_pending(x.l);
	CHECK_STR(j.body, "{\"first\":1}");
	CHECK_INT(j.status[0], 200);
	REQUIRE(evf_count(x.f) == 1);
	CHECK(!j.ended);
	CHECK_INT(evf_answer(x.f, evf_nth(x.f, 0), 404, NULL, "{}"), ENR_OK);
	ev_run_pending(x.l);
	CHECK(j.ended);
	CHECK_INT(j.status[1], 404);
	CHECK_INT(j.steps, 2);
	CHECK(j.left_after > 0);
	CHECK_INT(co_in_flight(), 0);
	fx_down(&x);
}

TEST(a_cancelled_continuation_stops_waiting_and_a_late_answer_is_dropped)
{
	struct fx x;
	struct job j = { 0 };
	bool moved = false;
	uint64_t first;

	REQUIRE(fx_up(&x));
	start(&j, two_calls, &moved);
	REQUIRE(moved);
	ev_run_pending(x.l);
	REQUIRE(evf_count(x.f) == 1);
	first = evf_nth(x.f, 0);
	co_cancel(&j.t);
	/* The transfer was taken back, the rest of the body saw no time left
	 * and its second call ended at once, without being sent. */
	CHECK(j.ended);
	CHECK_INT(j.steps, 2);
	CHECK(j.timed_out[0] && j.timed_out[1]);
	CHECK_INT(j.status[0], 0);
	CHECK_INT(j.left_after, 0);
	CHECK_INT(evf_count(x.f), 0);
	CHECK_INT(evf_started(x.f), 1);
	CHECK_INT(co_in_flight(), 0);
	/* The provider's answer arrives after all: nobody is there for it. */
	CHECK_INT(evf_answer(x.f, first, 200, NULL, "{\"late\":1}"), ENR_OK);
	ev_run_pending(x.l);
	CHECK_STR(j.body, "");
	CHECK_INT(j.steps, 2);
	CHECK_INT(co_in_flight(), 0);
	co_cancel(&j.t); /* harmless twice */
	fx_down(&x);
}

static void naps(struct co_task *t)
{
	struct job *j = t->arg;

	co_sleep_ms(1000);
	j->steps++;
	co_sleep_ms(5000);
	j->steps++;
}

TEST(timers_end_a_pause_and_a_cancel_ends_it_early)
{
	struct fx x;
	struct job a = { 0 }, b = { 0 };
	bool moved = false;

	REQUIRE(fx_up(&x));
	start(&a, naps, &moved);
	CHECK(moved);
	start(&b, naps, &moved);
	CHECK(moved);
	ev_run_pending(x.l);
	evf_advance(x.f, 999);
	ev_run_pending(x.l);
	CHECK_INT(a.steps, 0);
	evf_advance(x.f, 1);
	ev_run_pending(x.l);
	CHECK_INT(a.steps, 1);
	CHECK_INT(b.steps, 1);
	co_cancel(&b.t);
	CHECK(b.ended);
	CHECK_INT(b.steps, 2);
	CHECK(!a.ended);
	evf_advance(x.f, 5000);
	ev_run_pending(x.l);
	CHECK(a.ended);
	CHECK_INT(co_in_flight(), 0);
	fx_down(&x);
}

/* ---- coalesced lookups: continuations and threads wait on one flight ------- */

static unsigned char flight_key[CACHE_KEY_LEN] = { 7, 7, 7 };

static void leader(struct co_task *t)
{
	struct job *j = t->arg;

	j->steps = cache_flight_begin(flight_key, 0) ? 1 : -1;
	co_sleep_ms(100); /* the lookup */
	cache_flight_end(flight_key);
}

static void follower(struct co_task *t)
{
	struct job *j = t->arg;

	j->steps = cache_flight_begin(flight_key, util_deadline_in(60000)) ? -1 : 1;
}

static atomic_int thread_woken;

static void *thread_follower(void *arg)
{
	(void)arg;
	if (!cache_flight_begin(flight_key, util_deadline_in(60000)))
		atomic_fetch_add(&thread_woken, 1);
	return NULL;
}

TEST(coalesced_waiters_all_wake)
{
	struct fx x;
	struct job a = { 0 }, w[3];
	bool moved = false;
	pthread_t th;

	REQUIRE(fx_up(&x));
	memset(w, 0, sizeof w);
	start(&a, leader, &moved);
	CHECK(moved);
	CHECK_INT(a.steps, 1);
	for (int i = 0; i < 3; i++) {
		start(&w[i], follower, &moved);
		CHECK(moved); /* it waits, and waiting is the loop's */
	}
	REQUIRE(pthread_create(&th, NULL, thread_follower, NULL) == 0);
	ev_run_pending(x.l);
	/* The leader and four waiters share the flight before it lands. */
	for (int64_t until = util_deadline_in(5000); cache_flight_refs(flight_key) < 5 &&
						     !util_deadline_passed(until);)
		util_sleep_ms(1);
	CHECK_INT(cache_flight_refs(flight_key), 5);
	for (int i = 0; i < 3; i++)
		CHECK(!w[i].ended);
	evf_advance(x.f, 100);
	ev_run_pending(x.l);
	CHECK(a.ended);
	for (int i = 0; i < 3; i++) {
		CHECK(w[i].ended);
		CHECK_INT(w[i].steps, 1);
	}
	pthread_join(th, NULL);
	CHECK_INT(atomic_load(&thread_woken), 1);
	CHECK_INT(co_in_flight(), 0);
	fx_down(&x);
}

TEST(a_cancelled_waiter_leaves_the_flight)
{
	struct fx x;
	struct job a = { 0 }, b = { 0 };
	bool moved = false;

	REQUIRE(fx_up(&x));
	flight_key[3] = 1;
	start(&a, leader, &moved);
	start(&b, follower, &moved);
	ev_run_pending(x.l);
	CHECK(!b.ended);
	co_cancel(&b.t);
	CHECK(b.ended);
	evf_advance(x.f, 100);
	ev_run_pending(x.l);
	CHECK(a.ended);
	CHECK_INT(co_in_flight(), 0);
	fx_down(&x);
}

/* ---- a lock held across waits ----------------------------------------------- */

static struct co_mutex lane;
static int in_lane, most_in_lane;

static void in_turn(struct co_task *t)
{
	struct job *j = t->arg;

	co_mutex_lock(&lane);
	if (++in_lane > most_in_lane)
		most_in_lane = in_lane;
	co_sleep_ms(100); /* a store round trip while holding it */
	j->steps = in_lane;
	in_lane--;
	co_mutex_unlock(&lane);
}

TEST(a_lock_held_across_waits_is_taken_in_turn_even_when_cancelled)
{
	struct fx x;
	struct job j[3];
	bool moved = false;

	REQUIRE(fx_up(&x));
	REQUIRE(co_mutex_init(&lane) == ENR_OK);
	memset(j, 0, sizeof j);
	for (int i = 0; i < 3; i++) {
		start(&j[i], in_turn, &moved);
		CHECK(moved);
	}
	ev_run_pending(x.l);
	/* The third is cancelled while it waits for its turn: it still takes
	 * it (its pause under the lock is cut short), never skips the lock. */
	co_cancel(&j[2].t);
	ev_run_pending(x.l);
	CHECK(!j[2].ended);
	for (int round = 0; round < 3; round++) {
		evf_advance(x.f, 100);
		ev_run_pending(x.l);
	}
	for (int i = 0; i < 3; i++) {
		CHECK(j[i].ended);
		CHECK_INT(j[i].steps, 1);
	}
	CHECK_INT(most_in_lane, 1);
	CHECK_INT(in_lane, 0);
	CHECK_INT(co_in_flight(), 0);
	fx_down(&x);
}

/* ---- calls that block run on the pool ------------------------------------- */

struct blocking {
	pthread_t ran_on;
	int value;
};

static void blocking_fn(void *arg)
{
	struct blocking *b = arg;

	b->ran_on = pthread_self();
	b->value = 42;
}

static struct blocking blk;

static void calls_the_store(struct co_task *t)
{
	struct job *j = t->arg;

	co_sleep_ms(1); /* onto the loop */
	j->ran_on = pthread_self();
	co_call(blocking_fn, &blk);
	j->steps = blk.value;
}

TEST(store_calls_from_the_loop_run_on_a_pool_thread)
{
	struct ev_loop *l = NULL;
	struct sp_pool *pool = NULL;
	struct sp_opts so = { .threads = 1 };
	struct job j = { 0 };
	bool moved = false;

	REQUIRE(ev_new(NULL, &l) == ENR_OK);
	REQUIRE(sp_new(&so, &pool) == ENR_OK);
	co_setup(l, pool);
	start(&j, calls_the_store, &moved);
	CHECK(moved);
	CHECK_INT(ev_run_until(l, &j.ended, 5000), ENR_OK);
	CHECK_INT(j.steps, 42);
	CHECK(pthread_equal(j.ran_on, pthread_self())); /* the loop ran here */
	CHECK(!pthread_equal(blk.ran_on, pthread_self()));
	/* Off a continuation the same call runs in place. */
	co_call(blocking_fn, &blk);
	CHECK(pthread_equal(blk.ran_on, pthread_self()));
	co_setup(NULL, NULL);
	sp_free(pool);
	ev_free(l);
}

struct off_stack {
	bool on_fiber;       /* what co_call's function saw */
	pthread_t ran_on;
	int calls;
};

static void where_am_i(void *arg)
{
	struct off_stack *o = arg;

	o->on_fiber = fib_current() != NULL;
	o->ran_on = pthread_self();
	o->calls++;
}

static struct off_stack before_move;

static void store_then_return(struct co_task *t)
{
	struct job *j = t->arg;

	co_call(where_am_i, &before_move);
	co_call(where_am_i, &before_move);
	j->steps = before_move.calls;
}

TEST(store_calls_before_the_move_run_on_the_starting_threads_own_stack)
{
	struct fx x;
	struct job j = { 0 };
	bool moved = true;

	REQUIRE(fx_up(&x));
	before_move.on_fiber = true;
	start(&j, store_then_return, &moved);
	CHECK(!moved);
	CHECK_INT(j.steps, 2); /* the body went on after each */
	CHECK(!before_move.on_fiber);
	CHECK(pthread_equal(before_move.ran_on, pthread_self()));
	fx_down(&x);
}

int main(void)
{
	RUN(quick_work_never_leaves_the_thread);
	RUN(a_wait_moves_to_the_loop_and_the_answer_comes_back);
	RUN(a_cancelled_continuation_stops_waiting_and_a_late_answer_is_dropped);
	RUN(timers_end_a_pause_and_a_cancel_ends_it_early);
	RUN(coalesced_waiters_all_wake);
	RUN(a_cancelled_waiter_leaves_the_flight);
	RUN(a_lock_held_across_waits_is_taken_in_turn_even_when_cancelled);
	RUN(store_calls_from_the_loop_run_on_a_pool_thread);
	RUN(store_calls_before_the_move_run_on_the_starting_threads_own_stack);
	return harness_done();
}
