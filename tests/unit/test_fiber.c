/*
 * test_fiber.c - fibers (lib/fiber.c): run, yield, carry on on another
 * thread, keep their stack across a trim, reuse stacks.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/fiber.h"
#include "lib/limits.h"

#include "harness.h"

/* pthread_self is declared const: the compiler may reuse one call's answer
 * across a yield, which is exactly what a fiber that changes threads must
 * not do.  This one is asked afresh each time. */
static __attribute__((noinline)) pthread_t self_now(void)
{
	pthread_t t = pthread_self();

	__asm__ volatile("" ::: "memory");
	return t;
}

struct steps {
	int n;
	pthread_t where[4];
};

static void three_steps(void *arg)
{
	struct steps *s = arg;

	for (int i = 0; i < 3; i++) {
		s->where[s->n++] = self_now();
		fib_yield();
	}
	s->where[s->n++] = self_now();
}

struct resumer {
	struct fib *f;
	bool ended;
	pthread_t self;
};

static void *resume_there(void *arg)
{
	struct resumer *r = arg;

	r->self = pthread_self();
	r->ended = fib_resume(r->f);
	return NULL;
}

TEST(runs_yields_and_carries_on_on_another_thread)
{
	struct steps s = { 0 };
	struct fib *f = NULL;
	struct resumer r;
	pthread_t th;

	CHECK(fib_current() == NULL);
	REQUIRE(fib_new(three_steps, &s, &f) == ENR_OK);
	CHECK(!fib_resume(f));
	CHECK_INT(s.n, 1);
	CHECK(pthread_equal(s.where[0], pthread_self()));
	CHECK(fib_current() == NULL); /* back on the thread's own stack */

	/* The second step on another thread, the third back here. */
	r.f = f;
	r.ended = true;
	REQUIRE(pthread_create(&th, NULL, resume_there, &r) == 0);
	pthread_join(th, NULL);
	CHECK(!r.ended);
	CHECK_INT(s.n, 2);
	CHECK(pthread_equal(s.where[1], r.self));
	CHECK(!pthread_equal(s.where[1], pthread_self()));
	CHECK(!fib_resume(f));
	CHECK_INT(s.n, 3);
	CHECK(fib_resume(f));
	CHECK_INT(s.n, 4);
	CHECK(pthread_equal(s.where[3], pthread_self()));
	fib_free(f);
}

/* Touch a lot of stack, then return: what it touched is below us. */
static __attribute__((noinline)) unsigned deep(int kb)
{
	volatile unsigned char a[1024];
	unsigned sum = 0;

	memset((unsigned char *)a, kb & 0xff, sizeof a);
	if (kb > 1)
		sum = deep(kb - 1);
	return sum + a[kb % (int)sizeof a];
}

struct kept {
	unsigned before[256];
	bool same;
	unsigned deep_sum;
};

static void trims_and_keeps(void *arg)
{
	struct kept *k = arg;
	unsigned mine[256];

	for (unsigned i = 0; i < 256; i++)
		mine[i] = i * 2654435761u;
	k->deep_sum = deep(128);
	fib_trim();
	fib_yield();
	/* The frames above the trim point are untouched. */
	k->same = true;
	for (unsigned i = 0; i < 256; i++)
		if (mine[i] != i * 2654435761u)
			k->same = false;
	/* And the stack below it works again. */
	k->deep_sum += deep(128);
}

TEST(trim_keeps_the_live_frames_and_the_stack_still_works)
{
	struct kept k = { { 0 }, false, 0 };
	struct fib *f = NULL;
	unsigned want = deep(128);

	REQUIRE(fib_new(trims_and_keeps, &k, &f) == ENR_OK);
	CHECK(!fib_resume(f));
	CHECK(fib_resume(f));
	CHECK(k.same);
	CHECK_INT(k.deep_sum, 2u * want);
	fib_free(f);
}

/* Resident pages of the 96 KiB that start 8 KiB below here. */
static __attribute__((noinline)) int resident_below(void)
{
	unsigned char vec[24];
	char here;
	uintptr_t hi = ((uintptr_t)&here & ~(uintptr_t)4095) - 8192, lo = hi - sizeof vec * 4096;
	int n = 0;

	if (mincore((void *)lo, hi - lo, vec) != 0)
		return -1;
	for (size_t i = 0; i < sizeof vec; i++)
		n += vec[i] & 1;
	return n;
}

struct trimmed {
	int before, after;
};

static void touches_deep_then_trims(void *arg)
{
	struct trimmed *t = arg;

	(void)deep(100);
	t->before = resident_below();
	fib_trim();
	t->after = resident_below();
}

TEST(a_trim_gives_back_the_pages_deeper_calls_touched)
{
	struct trimmed t = { -1, -1 };
	struct fib *f = NULL;

	REQUIRE(fib_new(touches_deep_then_trims, &t, &f) == ENR_OK);
	CHECK(fib_resume(f));
	CHECK(t.before >= 20); /* 100 KiB of frames went through them */
	CHECK_INT(t.after, 0);
	fib_free(f);
}

static void nothing(void *arg)
{
	(*(int *)arg)++;
}

TEST(stacks_are_reused)
{
	struct fib *f[8];
	int ran = 0;
	size_t before;

	/* Warm: one stack kept. */
	REQUIRE(fib_new(nothing, &ran, &f[0]) == ENR_OK);
	fib_free(f[0]);
	before = fib_stacks();
	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < 8; i++)
			REQUIRE(fib_new(nothing, &ran, &f[i]) == ENR_OK);
		for (int i = 0; i < 8; i++) {
			CHECK(fib_resume(f[i]));
			fib_free(f[i]);
		}
	}
	CHECK_INT(ran, 800);
	/* 800 fibers, at most 8 alive at once: at most 8 stacks ever. */
	CHECK(fib_stacks() <= before + 7);
	CHECK(fib_stacks() >= 8);
}

/* A fiber made from a kept one starts afresh: its own function and
 * argument, no data, yields and ends as a new one does, on another thread
 * too. */
TEST(a_kept_fiber_starts_afresh)
{
	struct fib *f;
	struct steps s = { 0 };
	struct resumer r;
	pthread_t t;
	int ran = 0;
	size_t before;

	REQUIRE(fib_new(three_steps, &s, &f) == ENR_OK);
	fib_set_data(f, &ran);
	while (!fib_resume(f))
		;
	CHECK_INT(s.n, 4);
	fib_free(f);
	before = fib_stacks();
	REQUIRE(fib_new(nothing, &ran, &f) == ENR_OK);
	CHECK(fib_data(f) == NULL);
	CHECK(fib_resume(f));
	CHECK_INT(ran, 1);
	fib_free(f);
	memset(&s, 0, sizeof s);
	REQUIRE(fib_new(three_steps, &s, &f) == ENR_OK);
	CHECK(!fib_resume(f));
	CHECK(!fib_resume(f));
	r.f = f;
	r.ended = false;
	REQUIRE(pthread_create(&t, NULL, resume_there, &r) == 0);
	pthread_join(t, NULL);
	CHECK(!r.ended);
	CHECK(fib_resume(f));
	CHECK_INT(s.n, 4);
	CHECK(pthread_equal(s.where[2], r.self));
	fib_free(f);
	CHECK(fib_stacks() == before);  /* no stack mapped for them */
}

int main(void)
{
	RUN(runs_yields_and_carries_on_on_another_thread);
	RUN(trim_keeps_the_live_frames_and_the_stack_still_works);
	RUN(a_trim_gives_back_the_pages_deeper_calls_touched);
	RUN(stacks_are_reused);
	RUN(a_kept_fiber_starts_afresh);
	return harness_done();
}
