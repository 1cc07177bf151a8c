/*
 * test_progress.c - rate smoothing, ETA, durations, plurals and the
 * progress lines (lib/progress.c).
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/progress.h"
#include "tests/unit/harness.h"

/* Feed r a run that does rows_per_s from t0 to t1 (ms), sampled every
 * step ms, starting from *n rows. */
static void feed(struct prog_rate *r, int64_t t0, int64_t t1, int64_t step, double rows_per_s,
		 double *n)
{
	for (int64_t t = t0 + step; t <= t1; t += step) {
		*n += rows_per_s * (double)step / 1000.0;
		prog_rate_update(r, t, (int64_t)*n);
	}
}

TEST(plurals)
{
	CHECK_STR(prog_plural(1, "row", "rows"), "row");
	CHECK_STR(prog_plural(0, "row", "rows"), "rows");
	CHECK_STR(prog_plural(2, "row", "rows"), "rows");
	CHECK_STR(prog_plural(-1, "row", "rows"), "rows");
}

TEST(durations)
{
	char b[32];

	prog_fmt_duration(0, b, sizeof b);
	CHECK_STR(b, "0s");
	prog_fmt_duration(7.4, b, sizeof b);
	CHECK_STR(b, "7s");
	prog_fmt_duration(59.6, b, sizeof b);
	CHECK_STR(b, "1m00s");
	prog_fmt_duration(185, b, sizeof b);
	CHECK_STR(b, "3m05s");
	prog_fmt_duration(7800, b, sizeof b);
	CHECK_STR(b, "2h10m");
	prog_fmt_duration(-1, b, sizeof b);
	CHECK_STR(b, "--");
	prog_fmt_duration(NAN, b, sizeof b);
	CHECK_STR(b, "--");
}

TEST(steady_rate_gives_the_true_eta)
{
	struct prog_rate r;
	double n = 0;

	prog_rate_init(&r, 0, 0);
	feed(&r, 0, 5000, 250, 10.0, &n);
	CHECK_DBL(prog_rate_per_s(&r), 10.0, 0.5);
	CHECK_DBL(prog_eta_s(&r, 100), 10.0, 0.5);
	CHECK_DBL(prog_eta_s(&r, 0), 0.0, 1e-9);
}

TEST(no_eta_before_enough_rows_and_time)
{
	struct prog_rate r;

	prog_rate_init(&r, 0, 0);
	CHECK(prog_eta_s(&r, 10) < 0);
	prog_rate_update(&r, 250, 0);
	prog_rate_update(&r, 500, 1);     /* the first row: measuring starts */
	prog_rate_update(&r, 750, 2);
	CHECK(prog_eta_s(&r, 10) < 0);    /* one row and 250 ms since */
	prog_rate_update(&r, 1000, 10);
	CHECK(prog_eta_s(&r, 10) < 0);    /* enough rows, not enough time */
	prog_rate_update(&r, 1600, 12);
	CHECK(prog_eta_s(&r, 10) > 0);
	/* Sampling twice at one time (or going back) changes nothing. */
	{
		double before = prog_rate_per_s(&r);

		prog_rate_update(&r, 1600, 50);
		prog_rate_update(&r, 1500, 60);
		CHECK_DBL(prog_rate_per_s(&r), before, 1e-9);
	}
}

/* A resumed run: 900 of 1000 rows were done before.  This run spends
 * 1.5 s starting up (store handles, connections) and then does 10 rows a
 * second, so 100 rows take 10 s.  An average over the run's whole time
 * said 20 s at the 3 s mark; the smoothed rate, measured from the first
 * row, is close to the truth at once. */
TEST(resume_start_up_does_not_make_a_wild_eta)
{
	struct prog_rate r;
	double n = 0;
	int64_t left;
	double naive;

	prog_rate_init(&r, 0, 0);
	for (int64_t t = 250; t <= 1500; t += 250)
		prog_rate_update(&r, t, 0);
	feed(&r, 1500, 3000, 250, 10.0, &n);
	left = 1000 - (900 + (int64_t)n);
	naive = (double)left / (n / 3.0);
	CHECK(naive > 1.8 * (double)left / 10.0);
	CHECK_DBL(prog_eta_s(&r, left), (double)left / 10.0, 0.15 * (double)left / 10.0);
}

/* A stall moves the ETA gradually, and the rate recovers when rows flow
 * again. */
TEST(eta_moves_smoothly_through_a_stall)
{
	struct prog_rate r;
	double n = 0, prev, eta;

	prog_rate_init(&r, 0, 0);
	prog_rate_update(&r, 100, 1);
	feed(&r, 100, 20100, 250, 10.0, &n);
	prev = prog_eta_s(&r, 500);
	CHECK_DBL(prev, 50.0, 2.5);
	for (int64_t t = 20350; t <= 23100; t += 250) {
		prog_rate_update(&r, t, (int64_t)n);
		eta = prog_eta_s(&r, 500);
		/* Each quarter second without rows adds a few percent, never a jump. */
		CHECK(eta >= prev && eta <= prev * 1.05);
		prev = eta;
	}
	CHECK(prev > 60.0);
	feed(&r, 23100, 63100, 250, 10.0, &n);
	CHECK_DBL(prog_eta_s(&r, 500), 50.0, 3.0);
}

/* True when every part is in s, in this order, with space between. */
static bool in_order(const char *s, const char *const *parts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = strstr(s, parts[i]);

		if (p == NULL || (i > 0 && p == s) || (i > 0 && p[-1] != ' '))
			return false;
		s = p + strlen(parts[i]);
	}
	return true;
}

static void view(struct prog_view *v)
{
	memset(v, 0, sizeof *v);
	v->done = 1234;
	v->total = 3000;
	v->failed = 3;
	v->credits = 1180;
	v->rate_per_min = 5120;
	v->elapsed_s = 12;
	v->eta_s = 20;
}

TEST(terminal_line_fits_every_width)
{
	struct prog_view v;
	char out[512];

	view(&v);
	for (int w = 1; w <= 300; w++) {
		size_t n = prog_line_tty(&v, w, out, sizeof out);

		CHECK(n == strlen(out));
		if (n > (size_t)(w > 1 ? w - 1 : 0)) {
			HARNESS_FAIL("width %d: %zu columns: %s", w, n, out);
			break;
		}
		CHECK(strchr(out, '\n') == NULL && strchr(out, '\r') == NULL);
		if (w >= 12 && strstr(out, "1234/3000") == NULL)
			HARNESS_FAIL("width %d: no count: %s", w, out);
	}
	/* The bar keeps its width while the numbers change. */
	{
		struct prog_view w;
		char a[512];
		size_t bar0;

		view(&w);
		prog_line_tty(&w, 100, a, sizeof a);
		bar0 = strcspn(a, "]");
		for (int i = 0; i < 3000; i += 7) {
			w.done = i;
			w.rate_per_min = 100 + i;
			w.elapsed_s = i / 10;
			w.eta_s = i % 400;
			prog_line_tty(&w, 100, a, sizeof a);
			if (strcspn(a, "]") != bar0) {
				HARNESS_FAIL("bar width changed at %d: %s", i, a);
				break;
			}
		}
	}
	/* A small buffer is never overrun. */
	CHECK_INT(prog_line_tty(&v, 120, out, 8), 7);
	CHECK_INT(strlen(out), 7);
}

TEST(terminal_line_at_120_and_60_columns)
{
	struct prog_view v;
	char out[512];

	view(&v);
	prog_line_tty(&v, 120, out, sizeof out);
	CHECK(strncmp(out, "[", 1) == 0);
	{
		static const char *const all[] = { "] 1234/3000", "41.1%", "3 failed",
						    "5120 rows/min", "elapsed 12s", "ETA 20s",
						    "1180 credits" };

		CHECK(in_order(out, all, 7));
		CHECK(out[strlen(out) - 1] != ' ');
	}
	CHECK(strlen(out) <= 119);
	/* 41% of the bar is filled. */
	{
		size_t bar = strcspn(out, "]") - 1, fill = strspn(out + 1, "#");

		CHECK(bar >= PROG_BAR_MIN && bar <= PROG_BAR_MAX);
		CHECK_INT(fill, (int)((double)bar * 1234 / 3000));
	}

	prog_line_tty(&v, 60, out, sizeof out);
	CHECK(strlen(out) <= 59);
	{
		static const char *const some[] = { "] 1234/3000", "41.1%", "3 failed", "ETA 20s" };

		CHECK(out[0] == '[' && in_order(out, some, 4));
	}
	CHECK(strstr(out, "credits") == NULL);

	/* Without failures, "0 failed" gives way to the elapsed time. */
	v.failed = 0;
	prog_line_tty(&v, 60, out, sizeof out);
	{
		static const char *const some[] = { "] 1234/3000", "41.1%", "elapsed 12s", "ETA 20s" };

		CHECK(in_order(out, some, 4) && strstr(out, "failed") == NULL && strlen(out) <= 59);
	}
	v.failed = 3;

	/* 30 columns: no room for a bar beside the essentials. */
	prog_line_tty(&v, 30, out, sizeof out);
	CHECK(strlen(out) <= 29 && strstr(out, "1234/3000") != NULL);
}

TEST(final_line_has_no_eta_and_a_full_bar)
{
	struct prog_view v;
	char out[512];

	view(&v);
	v.done = v.total = 1;
	v.failed = 0;
	v.credits = 1;
	v.rate_per_min = 1;
	v.final = true;
	prog_line_tty(&v, 100, out, sizeof out);
	CHECK(strstr(out, "ETA") == NULL);
	{
		static const char *const all[] = { "] 1/1", "100.0%", "0 failed", "1 row/min",
						    "elapsed 12s", "1 credit" };

		CHECK(in_order(out, all, 6));
	}
	CHECK(strchr(out, '-') == NULL);
}

TEST(plain_line)
{
	struct prog_view v;
	char out[512];

	view(&v);
	prog_line_plain(&v, out, sizeof out);
	CHECK_STR(out, "progress 1234/3000 rows (41.1%), 3 failed, 5120 rows/min, elapsed 12s, "
		       "ETA 20s, 1180 credits");
	v.done = v.total = 1;
	v.credits = 1;
	v.rate_per_min = 1;
	v.eta_s = -1;
	prog_line_plain(&v, out, sizeof out);
	CHECK_STR(out, "progress 1/1 row (100.0%), 3 failed, 1 row/min, elapsed 12s, ETA --, "
		       "1 credit");
	v.final = true;
	prog_line_plain(&v, out, sizeof out);
	CHECK(strstr(out, "ETA 0s") != NULL);
	v.done = 0;
	prog_line_plain(&v, out, sizeof out);
	CHECK(strstr(out, "ETA --") != NULL);
	CHECK_INT(prog_line_plain(&v, out, 10), 9);
}

int main(void)
{
	RUN(plurals);
	RUN(durations);
	RUN(steady_rate_gives_the_true_eta);
	RUN(no_eta_before_enough_rows_and_time);
	RUN(resume_start_up_does_not_make_a_wild_eta);
	RUN(eta_moves_smoothly_through_a_stall);
	RUN(terminal_line_fits_every_width);
	RUN(terminal_line_at_120_and_60_columns);
	RUN(final_line_has_no_eta_and_a_full_bar);
	RUN(plain_line);
	return harness_done();
}
