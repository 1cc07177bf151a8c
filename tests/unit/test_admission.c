/*
 * test_admission.c - leased admission: exact for small limits, never over
 * the bucket for large ones, usage written on flush.
 */
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/admission.h"
#include "lib/co.h"
#include "lib/config.h"
#include "lib/engine.h"
#include "lib/log.h"
#include "lib/store.h"
#include "lib/store_int.h"
#include "lib/util.h"

#include "harness.h"

static char dir[] = "/tmp/enrichd-adm-XXXXXX";
static int dbn;

static struct store *fresh(int64_t *acc)
{
	char url[256];
	struct store *s = NULL;

	snprintf(url, sizeof url, "sqlite:%s/a%d.db", dir, dbn++);
	if (st_open(url, NULL, &s) != ENR_OK || st_account_create(s, "acme", 1, acc) != ENR_OK)
		return NULL;
	return s;
}

struct sum {
	int64_t requests, records, rejections;
};

static int add(void *arg, const struct st_usage *u)
{
	struct sum *x = arg;

	x->requests += u->requests;
	x->records += u->records;
	x->rejections += u->rejections;
	return 0;
}

TEST(small_limits_are_exact_without_leases)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, true, dir);
	struct cfg_account_limits l = { 60, 5, 1000, 10000 };
	struct adm_res r;
	int ok = 0;

	REQUIRE(s && a);
	for (int i = 0; i < 9; i++) {
		REQUIRE(adm_check(a, acc, &l, 1, 1, 1000000, &r) == ENR_OK);
		ok += r.verdict == ADM_OK;
	}
	CHECK_INT(ok, 5);
	CHECK_INT(r.verdict, ADM_RATE_LIMITED);
	CHECK_INT(r.retry_after_s, 1);
	adm_free(a);
	st_close(s);
}

TEST(leases_never_admit_more_than_the_bucket)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, true, dir);
	struct adm *b = adm_new(s, true, dir);   /* a second process sharing the store */
	struct cfg_account_limits l = { 60000, 300, 1000000, 10000000 };
	struct adm_res r;
	int ok = 0;
	struct sum u = { 0, 0, 0 };

	REQUIRE(s && a && b);
	/* One instant: nothing refills, so the total is the burst exactly or less. */
	for (int i = 0; i < 1000; i++) {
		REQUIRE(adm_check(i % 2 ? a : b, acc, &l, 1, 1, 5000000, &r) == ENR_OK);
		ok += r.verdict == ADM_OK;
	}
	CHECK(ok <= 300);
	CHECK(ok >= 300 - 2 * 30);    /* at most one unused lease per process */
	CHECK_INT(adm_flush(a, 5000000), ENR_OK);
	CHECK_INT(adm_flush(b, 5000000), ENR_OK);
	CHECK_INT(st_usage_each(s, acc, "1970-01-01", add, &u), ENR_OK);
	CHECK_INT(u.requests, ok);
	CHECK_INT(u.records, ok);
	adm_free(a);
	adm_free(b);
	st_close(s);
}

TEST(expired_lease_is_dropped)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, true, dir);
	struct cfg_account_limits l = { 60000, 1000, 1000000, 10000000 };
	struct adm_res r;

	REQUIRE(s && a);
	REQUIRE(adm_check(a, acc, &l, 1, 1, 1000, &r) == ENR_OK);
	CHECK_INT(r.verdict, ADM_OK);
	/* 100 tokens leased, bucket shows what is left beyond them. */
	CHECK_INT(r.bucket_remaining, 999);
	REQUIRE(adm_check(a, acc, &l, 1, 1, 1100, &r) == ENR_OK); /* from the lease */
	CHECK_INT(r.bucket_remaining, 998);
	REQUIRE(adm_check(a, acc, &l, 1, 1, 2000, &r) == ENR_OK); /* lease expired: store */
	CHECK_INT(r.verdict, ADM_OK);
	adm_free(a);
	st_close(s);
}

TEST(batches_of_records_go_to_the_store)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, true, dir);
	struct cfg_account_limits l = { 60000, 1000, 50, 10000000 };
	struct adm_res r;

	REQUIRE(s && a);
	REQUIRE(adm_check(a, acc, &l, 0, 51, 1000, &r) == ENR_OK);
	CHECK_INT(r.verdict, ADM_QUOTA);
	CHECK_INT(r.records_fit, 50);
	REQUIRE(adm_check(a, acc, &l, 0, 50, 1000, &r) == ENR_OK);
	CHECK_INT(r.verdict, ADM_OK);
	adm_free(a);
	st_close(s);
}

TEST(cgi_mode_always_asks_the_store)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, false, NULL);
	struct cfg_account_limits l = { 60000, 1000, 1000000, 10000000 };
	struct adm_res r;
	struct sum u = { 0, 0, 0 };

	REQUIRE(s && a);
	for (int i = 0; i < 3; i++)
		REQUIRE(adm_check(a, acc, &l, 1, 1, 1000, &r) == ENR_OK);
	CHECK_INT(st_usage_each(s, acc, "1970-01-01", add, &u), ENR_OK);
	CHECK_INT(u.requests, 3); /* written at once, nothing held in memory */
	adm_free(a);
	st_close(s);
}

static int count_journals(void)
{
	char cmd[400];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof cmd, "ls %s | grep -c '^usage-.*\\.journal$'", dir);
	f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	pclose(f);
	return n;
}

/* A process that serves 500 requests from leases, counts credits and dies
 * by SIGKILL before any flush: the next process finds every count. */
TEST(usage_of_leased_requests_survives_kill_9)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct cfg_account_limits l = { 600000, 10000, 100000000, 1000000000 };
	struct sum u = { 0, 0, 0 };
	struct adm *a;
	int status = 0, served = 0;
	pid_t pid;
	int p[2];

	REQUIRE(s != NULL);
	REQUIRE(pipe(p) == 0);
	st_close(s);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct store *cs = NULL;
		struct adm *ca;
		struct adm_res r;
		char url[256];
		int ok = 0;

		snprintf(url, sizeof url, "sqlite:%s/a%d.db", dir, dbn - 1);
		if (st_open(url, NULL, &cs) != ENR_OK || (ca = adm_new(cs, true, dir)) == NULL)
			_exit(3);
		for (int i = 0; i < 500; i++) {
			if (adm_check(ca, acc, &l, 1, 1, 7000000, &r) == ENR_OK && r.verdict == ADM_OK)
				ok++;
		}
		if (adm_add_credits(ca, acc, 42, 7000000) != ENR_OK)
			_exit(6);
		if (write(p[1], &ok, sizeof ok) != (ssize_t)sizeof ok)
			_exit(4);
		raise(SIGKILL);
		_exit(5);
	}
	close(p[1]);
	CHECK(read(p[0], &served, sizeof served) == (ssize_t)sizeof served);
	close(p[0]);
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK_INT(served, 500);
	CHECK_INT(count_journals(), 1);
	{
		char url[256];

		snprintf(url, sizeof url, "sqlite:%s/a%d.db", dir, dbn - 1);
		REQUIRE(st_open(url, NULL, &s) == ENR_OK);
	}
	/* Before the replay the store has only what leases were taken with. */
	CHECK_INT(st_usage_each(s, acc, "1970-01-01", add, &u), ENR_OK);
	CHECK(u.requests < 500);
	a = adm_new(s, true, dir);   /* replays journals whose owner is gone */
	REQUIRE(a != NULL);
	memset(&u, 0, sizeof u);
	CHECK_INT(st_usage_each(s, acc, "1970-01-01", add, &u), ENR_OK);
	CHECK_INT(u.requests, 500);
	CHECK_INT(u.records, 500);
	CHECK_INT(count_journals(), 1); /* the dead one gone, our own there */
	adm_free(a);
	CHECK_INT(count_journals(), 0);
	st_close(s);
}

static int add_credits(void *arg, const struct st_usage *u)
{
	*(int64_t *)arg += u->credits;
	return 0;
}

TEST(journal_rolls_over_when_full_and_loses_nothing)
{
	int64_t acc, credits = 0;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, true, dir);
	int days = 3300;

	REQUIRE(s && a);
	/* One slot per (account, day): more days than three quarters of the
	 * journal holds. */
	for (int d = 0; d < days; d++)
		CHECK_INT(adm_add_credits(a, acc, 1, (int64_t)d * 86400000LL), ENR_OK);
	CHECK_INT(adm_flush(a, 0), ENR_OK);     /* writes, then rolls over */
	for (int d = 0; d < days; d++)
		CHECK_INT(adm_add_credits(a, acc, 1, (int64_t)d * 86400000LL), ENR_OK);
	adm_free(a);                             /* flushes both */
	CHECK_INT(st_usage_each(s, acc, "1970-01-01", add_credits, &credits), ENR_OK);
	CHECK_INT(credits, 2 * days);
	CHECK_INT(count_journals(), 0);
	st_close(s);
}

/* The store refuses writes for a while (a full or read-only disk): what
 * was counted stays (in the journal, or in memory without one) and is
 * written once the store takes writes again, exactly once. */
static void survives_a_failed_flush(const char *state_dir)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, true, state_dir);
	struct cfg_account_limits l = { 60000, 1000, 1000000, 10000000 };
	struct adm_res r;
	struct sum u = { 0, 0, 0 };

	REQUIRE(s && a);
	/* The first admission takes a lease from the store; the next ten
	 * come from memory and are counted there. */
	for (int i = 0; i < 11; i++) {
		REQUIRE(adm_check(a, acc, &l, 1, 1, 1000, &r) == ENR_OK);
		REQUIRE(r.verdict == ADM_OK);
	}
	REQUIRE(st_sqlite_query_only(s, true) == ENR_OK);
	log_set_level(LOG_LVL_ERROR); /* the refused writes are expected */
	CHECK_INT(adm_flush(a, 1000), ENR_E_UNAVAILABLE);
	CHECK_INT(adm_add_credits(a, acc, 7, 1000), ENR_OK);
	for (int i = 0; i < 5; i++)
		REQUIRE(adm_check(a, acc, &l, 1, 1, 1100, &r) == ENR_OK);
	CHECK_INT(adm_flush(a, 1100), ENR_E_UNAVAILABLE);
	log_set_level(LOG_LVL_WARN);
	REQUIRE(st_sqlite_query_only(s, false) == ENR_OK);
	CHECK_INT(adm_flush(a, 1200), ENR_OK);
	CHECK_INT(st_usage_each(s, acc, "1970-01-01", add, &u), ENR_OK);
	CHECK_INT(u.requests, 16);
	CHECK_INT(u.records, 16);
	/* Written once, not again. */
	CHECK_INT(adm_flush(a, 1300), ENR_OK);
	u = (struct sum){ 0, 0, 0 };
	CHECK_INT(st_usage_each(s, acc, "1970-01-01", add, &u), ENR_OK);
	CHECK_INT(u.requests, 16);
	adm_free(a);
	st_close(s);
}

TEST(usage_survives_a_failed_flush_with_a_journal)
{
	survives_a_failed_flush(dir);
}

TEST(usage_survives_a_failed_flush_in_memory)
{
	survives_a_failed_flush(NULL);
}

/* ---- a store call in progress holds nobody else up ------------------------------- */

static pthread_mutex_t gate_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_on, gate_open;
static int gate_entered;
static const struct store_ops *real_ops;
static struct store_ops gated_ops;

/* Every write transaction begun while the gate is on waits for it to open. */
static enum enr_err gated_begin(struct db_conn *c)
{
	pthread_mutex_lock(&gate_m);
	if (gate_on) {
		gate_entered++;
		pthread_cond_broadcast(&gate_cv);
		while (!gate_open)
			pthread_cond_wait(&gate_cv, &gate_m);
	}
	pthread_mutex_unlock(&gate_m);
	return real_ops->begin(c);
}

/* Waits until *n reaches want (5 s at most); returns whether it did. */
static bool gate_wait_count(int *n, int want)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&gate_m);
	while (*n < want && pthread_cond_timedwait(&gate_cv, &gate_m, &ts) == 0)
		;
	ok = *n >= want;
	pthread_mutex_unlock(&gate_m);
	return ok;
}

struct admit_arg {
	struct adm *a;
	int64_t acc;
	const struct cfg_account_limits *l;
	struct adm_res r;
	enum enr_err rc;
};

static int admits_done;

static void *admit_thread(void *arg)
{
	struct admit_arg *x = arg;

	x->rc = adm_check(x->a, x->acc, x->l, 1, 1, 5000000, &x->r);
	pthread_mutex_lock(&gate_m);
	admits_done++;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_m);
	return NULL;
}

TEST(a_lease_renewal_at_the_store_holds_up_no_other_account)
{
	int64_t acme, beta;
	struct store *s = fresh(&acme);
	struct adm *a;
	struct cfg_account_limits l = { 60000, 1000, 1000000, 10000000 };
	struct admit_arg ra, rb, ra2;
	pthread_t ta, tb, ta2;
	int entered;

	REQUIRE(s);
	REQUIRE(st_account_create(s, "beta", 1, &beta) == ENR_OK);
	REQUIRE((a = adm_new(s, true, dir)) != NULL);
	real_ops = s->ops;
	gated_ops = *s->ops;
	gated_ops.begin = gated_begin;
	s->ops = &gated_ops;
	/* beta holds a lease; acme has none yet. */
	ra = (struct admit_arg){ a, beta, &l, { 0 }, ENR_E_INTERNAL };
	REQUIRE(adm_check(a, beta, &l, 1, 1, 5000000, &ra.r) == ENR_OK);
	CHECK_INT(ra.r.verdict, ADM_OK);

	admits_done = 0;
	gate_on = true;
	ra = (struct admit_arg){ a, acme, &l, { 0 }, ENR_E_INTERNAL };
	REQUIRE(pthread_create(&ta, NULL, admit_thread, &ra) == 0);
	CHECK(gate_wait_count(&gate_entered, 1)); /* acme's renewal is at the store */
	/* beta is admitted from its lease meanwhile. */
	rb = (struct admit_arg){ a, beta, &l, { 0 }, ENR_E_INTERNAL };
	REQUIRE(pthread_create(&tb, NULL, admit_thread, &rb) == 0);
	CHECK(gate_wait_count(&admits_done, 1));
	pthread_mutex_lock(&gate_m);
	CHECK_INT(admits_done, 1);
	pthread_mutex_unlock(&gate_m);
	CHECK_INT(rb.rc, ENR_OK);
	CHECK_INT(rb.r.verdict, ADM_OK);
	/* A second acme caller waits for the renewal rather than going to the
	 * store beside it, and is admitted from the lease it brings. */
	ra2 = (struct admit_arg){ a, acme, &l, { 0 }, ENR_E_INTERNAL };
	REQUIRE(pthread_create(&ta2, NULL, admit_thread, &ra2) == 0);
	pthread_mutex_lock(&gate_m);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_m);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_join(ta2, NULL);
	pthread_mutex_lock(&gate_m);
	entered = gate_entered;
	gate_on = false;
	pthread_mutex_unlock(&gate_m);
	CHECK_INT(ra.rc, ENR_OK);
	CHECK_INT(ra.r.verdict, ADM_OK);
	CHECK_INT(ra2.rc, ENR_OK);
	CHECK_INT(ra2.r.verdict, ADM_OK);
	CHECK_INT(entered, 1);
	s->ops = real_ops;
	adm_free(a);
	st_close(s);
}

/* ---- flushes from continuations on the loop ----------------------------------- */

static struct adm *flush_adm;
static int64_t flush_acc;
static int flushes_done;

static void flush_body(struct co_task *t)
{
	(void)t;
	co_sleep_ms(1); /* on the loop from here */
	if (adm_add_credits(flush_adm, flush_acc, 1, util_now_ms()) == ENR_OK &&
	    adm_flush(flush_adm, util_now_ms()) == ENR_OK)
		__atomic_add_fetch(&flushes_done, 1, __ATOMIC_SEQ_CST);
}

static void flush_ended(struct co_task *t)
{
	(void)t;
}

TEST(flushes_from_continuations_on_the_loop_wait_their_turn_without_blocking_it)
{
	enum { N = 4 };
	struct cfg c;
	struct eng *e = NULL;
	struct co_task ts[N];
	int64_t credits = 0;
	struct store *s = fresh(&flush_acc);

	REQUIRE(s);
	/* No journal: what is counted waits in memory for a flush to the store. */
	REQUIRE((flush_adm = adm_new(s, true, "")) != NULL);
	memset(&c, 0, sizeof c);
	c.max_in_flight = 16;
	c.store_threads = 1;
	REQUIRE(eng_start(&c, s, &e) == ENR_OK);
	for (int i = 0; i < N; i++) {
		bool moved = false;

		co_task_init(&ts[i], flush_body, flush_ended, NULL);
		REQUIRE(co_start(&ts[i], &moved) == ENR_OK);
	}
	/* A flush that holds its lock across a store call used to block the
	 * loop thread for the next one, and the first never got its answer. */
	if (!eng_drain(e, util_deadline_in(10000))) {
		HARNESS_FAIL("the loop is stuck: %d continuations still in flight", co_in_flight());
		fprintf(stdout, "FAIL tests/unit/test_admission.c:"
				"flushes_from_continuations_on_the_loop_wait_their_turn_without_"
				"blocking_it\n");
		fflush(stdout);
		_exit(1); /* a stuck loop cannot be stopped */
	}
	CHECK_INT(__atomic_load_n(&flushes_done, __ATOMIC_SEQ_CST), N);
	eng_stop(e);
	CHECK_INT(adm_flush(flush_adm, util_now_ms()), ENR_OK);
	CHECK_INT(st_usage_each(s, flush_acc, "1970-01-01", add_credits, &credits), ENR_OK);
	CHECK_INT(credits, N);
	adm_free(flush_adm);
	st_close(s);
}

int main(void)
{
	char cmd[300];

	if (mkdtemp(dir) == NULL)
		return 1;
	log_set_level(LOG_LVL_WARN);
	RUN(small_limits_are_exact_without_leases);
	RUN(leases_never_admit_more_than_the_bucket);
	RUN(expired_lease_is_dropped);
	RUN(batches_of_records_go_to_the_store);
	RUN(cgi_mode_always_asks_the_store);
	RUN(usage_of_leased_requests_survives_kill_9);
	RUN(journal_rolls_over_when_full_and_loses_nothing);
	RUN(usage_survives_a_failed_flush_with_a_journal);
	RUN(usage_survives_a_failed_flush_in_memory);
	RUN(a_lease_renewal_at_the_store_holds_up_no_other_account);
	RUN(flushes_from_continuations_on_the_loop_wait_their_turn_without_blocking_it);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return harness_done();
}
