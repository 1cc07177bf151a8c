/*
 * harness.h - the unit tests' tiny assertion harness.
 *
 * A test is a void function; checks record failures and carry on, so one
 * run shows every broken expectation.  Each test prints one line,
 * "PASS <file>:<test>", "FAIL <file>:<test>" or, for a test that could not
 * check anything here, "SKIP <file>:<test> (reason)" (see SKIP), which
 * tests/run.sh counts; a skipped test is counted neither passed nor failed.
 * The process exits non-zero when any test failed.
 *
 *   TEST(parses_numbers) { CHECK_INT(parse("12"), 12); }
 *   int main(void) { RUN(parses_numbers); return harness_done(); }
 */
#ifndef ENR_TEST_HARNESS_H
#define ENR_TEST_HARNESS_H

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int harness_failed_checks;
static int harness_tests_passed;
static int harness_tests_failed;
static int harness_tests_skipped;
static int harness_skipping;
static char harness_skip_reason[256];

#define TEST(name) static void name(void)

#define HARNESS_FAIL(...)                                                        \
	do {                                                                     \
		harness_failed_checks++;                                         \
		fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                \
		fprintf(stderr, __VA_ARGS__);                                    \
		fputc('\n', stderr);                                             \
	} while (0)

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond))                                                     \
			HARNESS_FAIL("CHECK(%s) failed", #cond);                 \
	} while (0)

#define CHECK_INT(got, want)                                                     \
	do {                                                                     \
		long long g_ = (long long)(got), w_ = (long long)(want);        \
		if (g_ != w_)                                                    \
			HARNESS_FAIL("%s == %lld, want %lld", #got, g_, w_);     \
	} while (0)

#define CHECK_STR(got, want)                                                     \
	do {                                                                     \
		const char *g_ = (got), *w_ = (want);                            \
		if (g_ == NULL || w_ == NULL ? g_ != w_ : strcmp(g_, w_) != 0)   \
			HARNESS_FAIL("%s == \"%s\", want \"%s\"", #got,          \
				     g_ ? g_ : "(null)", w_ ? w_ : "(null)");    \
	} while (0)

#define CHECK_DBL(got, want, eps)                                                \
	do {                                                                     \
		double g_ = (got), w_ = (want);                                  \
		if (g_ < w_ - (eps) || g_ > w_ + (eps))                          \
			HARNESS_FAIL("%s == %g, want %g", #got, g_, w_);         \
	} while (0)

/* Stop the current test when a precondition fails (e.g. an allocation
 * the rest of the test needs). */
#define REQUIRE(cond)                                                            \
	do {                                                                     \
		if (!(cond)) {                                                   \
			HARNESS_FAIL("REQUIRE(%s) failed", #cond);               \
			return;                                                  \
		}                                                                \
	} while (0)

/* End the current test as skipped: it cannot check anything on this
 * machine (a resource it lacks); printf-style reason.  A test that already
 * failed a check stays failed. */
#define SKIP(...)                                                               \
	do {                                                                    \
		harness_skipping = 1;                                           \
		snprintf(harness_skip_reason, sizeof harness_skip_reason, __VA_ARGS__); \
		return;                                                         \
	} while (0)

#define RUN(name)                                                               \
	do {                                                                    \
		int before_ = harness_failed_checks;                            \
		harness_skipping = 0;                                           \
		name();                                                         \
		if (harness_failed_checks != before_) {                         \
			harness_tests_failed++;                                 \
			printf("FAIL %s:%s\n", __FILE__, #name);                \
		} else if (harness_skipping) {                                  \
			harness_tests_skipped++;                                \
			printf("SKIP %s:%s (%s)\n", __FILE__, #name, harness_skip_reason); \
		} else {                                                        \
			harness_tests_passed++;                                 \
			printf("PASS %s:%s\n", __FILE__, #name);                \
		}                                                               \
		fflush(stdout);                                                 \
	} while (0)

/* Run fn(arg) on a new thread with a stack of stack bytes and wait for it:
 * code that a responder thread runs is tested with the stack it gets
 * there (an overflow crashes the test program, which counts as a failure).
 * Returns 0, or the pthread error when the thread could not start. */
static inline int harness_on_stack(void *(*fn)(void *), void *arg, size_t stack)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	pthread_attr_init(&attr);
	rc = pthread_attr_setstacksize(&attr, stack);
	if (rc == 0)
		rc = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (rc == 0)
		rc = pthread_join(t, NULL);
	return rc;
}

static inline int harness_done(void)
{
	printf("# %d passed, %d failed, %d skipped\n", harness_tests_passed, harness_tests_failed,
	       harness_tests_skipped);
	return harness_tests_failed ? 1 : 0;
}

#endif
