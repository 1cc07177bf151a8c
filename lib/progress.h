/*
 * progress.h - what a command-line progress display shows: a smoothed
 * rate and ETA, durations, plurals, and the progress line itself, fitted
 * to a terminal's width or written as a plain log line.
 *
 * Prefix: prog_.  Pure functions over caller-owned structs: no I/O, no
 * clock (times are passed in), no allocation.  Not thread-safe on one
 * struct; use it from the thread that draws.
 */
#ifndef ENR_PROGRESS_H
#define ENR_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The rate is measured from the moment the first row of this run is done,
 * so the time workers take to start (store handles, connections) does not
 * count as slowness, and the rows that finish together at the start do
 * not count as speed.  No ETA is given before this many more rows are
 * done, or before this much time has passed since then. */
#define PROG_ETA_MIN_ROWS 3
#define PROG_ETA_MIN_MS 1000

/* Time constant of the smoothed rate: older samples weigh e^-t/tau. */
#define PROG_RATE_TAU_S 10.0

/* The rate of a run, as an exponentially weighted moving average of the
 * rows finished per second, bias-corrected so that it is the plain
 * average while less than a few time constants have passed.  It counts
 * only what the caller reports for this run: after a resume the rows of
 * earlier runs are not in it, so they cannot make the first rate wild. */
struct prog_rate {
	double tau_s;
	bool measuring;  /* the first row is done */
	int64_t start_ms, last_ms;
	int64_t base_n, last_n;
	double ewma;     /* rows per second, weighted */
	double weight;   /* total weight of the samples so far, 0..1 */
};

/* Start a run at now_ms with nothing done in it; tau_s <= 0 means
 * PROG_RATE_TAU_S. */
void prog_rate_init(struct prog_rate *r, double tau_s, int64_t now_ms);

/* n rows are done in this run at now_ms (n never decreases).  Calls at the
 * same or an earlier time than the last one are ignored. */
void prog_rate_update(struct prog_rate *r, int64_t now_ms, int64_t n);

/* The smoothed rate in rows per second; 0 before anything was measured. */
double prog_rate_per_s(const struct prog_rate *r);

/* Seconds until `left` more rows are done at the smoothed rate; -1 when
 * not known yet (see PROG_ETA_MIN_ROWS and PROG_ETA_MIN_MS) or when the
 * rate is 0; 0 when nothing is left. */
double prog_eta_s(const struct prog_rate *r, int64_t left);

/* one when n is 1, else many ("1 row", "0 rows", "2 rows"). */
const char *prog_plural(int64_t n, const char *one, const char *many);

/* A duration for people: "7s", "3m05s", "2h10m"; "--" when s < 0.
 * Rounded to the second. */
void prog_fmt_duration(double s, char *out, size_t outsz);

/* What one progress line shows. */
struct prog_view {
	int64_t done, total;     /* rows done (earlier runs included) of total */
	int64_t failed;          /* failed rows among done */
	int64_t credits;         /* credits spent by this run */
	double rate_per_min;     /* rows per minute of this run */
	double elapsed_s;        /* this run's time so far */
	double eta_s;            /* < 0: unknown */
	bool final;              /* the last line: no ETA */
};

/* The bar widths the terminal line uses, in columns. */
#define PROG_BAR_MIN 10
#define PROG_BAR_MAX 40

/* Write the terminal line for v into out (NUL-terminated) so that it takes
 * at most width - 1 columns: the cursor never reaches the last column, so
 * no terminal wraps it.  Parts that do not fit are left out, least useful
 * first (credits, "0 failed", rate, elapsed, failures, ETA, percentage;
 * the count always stays); numbers are padded so the layout does not
 * move from one redraw to the next; the bar
 * takes what is left, PROG_BAR_MIN..PROG_BAR_MAX columns, and goes when
 * even that does not fit.  Plain ASCII, so bytes are columns.  Returns the
 * length written (less than outsz). */
size_t prog_line_tty(const struct prog_view *v, int width, char *out, size_t outsz);

/* Write the plain line for a log (no control characters, no width):
 * "progress 12/60 rows (20.0%), 0 failed, 300 rows/min, elapsed 2s,
 * ETA 8s, 12 credits".  Returns the length written (less than outsz). */
size_t prog_line_plain(const struct prog_view *v, char *out, size_t outsz);

#endif
