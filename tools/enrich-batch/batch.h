/*
 * batch.h - the parts of enrich-batch and what they share.
 *
 *   main.c    options, set-up, the run's course and its exit status
 *   input.c   reading and checking the input, the output's header, rows
 *   plan.c    the checkpoint: which rows this run does; the resume command
 *   run.c     the workers: one row through the engine, the watch loop
 *   output.c  messages and the progress display, the output, errors and
 *             report files, summaries
 *
 * Functions are prefixed eb_.  The ones that can fail print what went
 * wrong (through eb_say) and return an enum enr_err; main.c alone turns
 * that into an exit status, and nothing here calls exit().  One struct
 * eb_run holds the run; its members are written by the main thread
 * before the workers start, except those under mu.
 */
#ifndef ENR_TOOLS_BATCH_H
#define ENR_TOOLS_BATCH_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/checkpoint.h"
#include "lib/cli.h"
#include "lib/config.h"
#include "lib/csv.h"
#include "lib/domains.h"
#include "lib/estimate.h"
#include "lib/fields.h"
#include "lib/limits.h"
#include "lib/progress.h"
#include "lib/provider.h"
#include "lib/record.h"
#include "lib/service.h"
#include "lib/store.h"
#include "lib/waterfall.h"

#define PROG "enrich-batch"
#define DEFAULT_CONF CLI_DEFAULT_CONF

/* Exit statuses (docs/enrich-batch.md). */
#define EXIT_FATAL 1
#define EXIT_USAGE 2
#define EXIT_ROWS_FAILED 3

/* A batch row has no client waiting: a generous deadline lets paced keys
 * wait for their slot instead of failing the row. */
#define DEFAULT_DEADLINE_MS 30000
#define DEADLINE_MS_MIN 50
#define DEADLINE_MS_MAX 600000
/* How long a row may wait, in total, for a key of a dry pool to come back
 * (rate-limit cool-downs) before it is recorded as failed. */
#define DEFAULT_KEY_WAIT_S 60
#define KEY_WAIT_S_MAX 3600
#define KEY_WAIT_MIN_MS 100
#define WORKERS_MAX 1024
#define PROGRESS_S_DEFAULT 5
#define PROGRESS_S_MAX 3600
#define TICK_MS 100
#define TTY_REDRAW_MS 250
#define CODE_MAX 48
#define REASON_MAX 256
#define ERROR_CODES_MAX 64

struct eb_opts {
	const char *input, *output, *conf, *fields, *checkpoint, *report, *errors;
	bool conf_given;
	int workers;        /* 0: from the configuration */
	bool resume, retry_failed, dry_run, allow_failures;
	bool formulas_raw;  /* --formulas=raw: cells as they are, for machine consumers */
	unsigned extra;     /* JOB_COL_SOURCE | JOB_COL_CONFIDENCE */
	int64_t limit;      /* 0: every row */
	int64_t deadline_ms;
	int64_t key_wait_ms;
	int64_t max_bytes;
	int64_t progress_ms;
};

struct eb_code_count {
	char code[CODE_MAX];
	int64_t n;
};

/* What one run counts as it goes (under run.mu). */
struct eb_tally {
	int64_t finished;                  /* rows finished by this run */
	int64_t state[CKPT_STATE__MAX];    /* this run's rows by state */
	int64_t credits, calls, cached;
	int64_t inflight;
	/* dry run */
	struct est est;                    /* lib/estimate.h: lookups, calls, credits */
	struct eb_code_count codes[ERROR_CODES_MAX];  /* dry run: invalid rows by code */
	int ncodes;
};

struct eb_run {
	const struct eb_opts *o;
	struct cfg *cfg;
	struct svc svc;                 /* the process (lib/service.h) */
	struct store *store;            /* svc.store, for short */
	struct ckpt *ckpt;              /* NULL in a dry run */
	char ckpt_path[PATH_MAX];
	fld_set want;
	char fields_canon[CKPT_FIELDS_MAX];
	struct ckpt_ident ident;

	/* the input */
	char *data;
	size_t len;
	bool bom;
	size_t ncols;
	int *cols;                      /* per column: enum fld_ident or -1 */
	int64_t rows;                   /* data rows in the input */
	int64_t target;                 /* rows this run covers: rows, or --limit */
	signed char *todo;              /* per row (1..rows): run it in this run */
	int64_t todo_count;
	int64_t base_done, base_failed; /* rows of 1..target finished before */
	struct buf header_line;         /* the output's header row */

	/* shared by the workers */
	pthread_mutex_t mu;
	struct csv_reader *reader;      /* positioned after the header */
	bool input_over;
	int running;                    /* workers not finished */
	enum enr_err fatal;             /* stops the run */
	char fatal_what[REASON_MAX];
	struct eb_tally t;

	/* the display (main thread) */
	int64_t start_mono_ms;
	bool tty;
	bool bar_shown;                 /* a bar line is on the screen now */
	struct prog_rate rate;
	int log_pipe[2];                /* engine log lines on a terminal; -1 */
};

/* One row a worker is on. */
struct eb_job {
	int64_t n, line;
	bool csv_bad;
	char csv_reason[LIM_CSV_REASON_MAX];
	char warn[LIM_JOB_WARN_MAX];    /* identifiers ignored (lenient reading) */
	struct rec rec;
	struct buf prefix;   /* the input columns as CSV */
	struct buf out;      /* the output row */
};

/* How the CSV files are written: cells that a spreadsheet would run as a
 * formula get a quote in front (lib/csv.h CSV_W_NEUTRALISE_FORMULAS), as
 * in the job results, unless --formulas=raw. */
static inline unsigned eb_csv_flags(const struct eb_opts *o)
{
	return o->formulas_raw ? 0 : CSV_W_NEUTRALISE_FORMULAS;
}

/* Set by the signal handler, read by every thread. */
extern atomic_int eb_stop_signal;

static inline bool eb_stopping(void)
{
	return eb_stop_signal != 0;
}

/* output.c: messages, progress and files */
void eb_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void eb_display_init(struct eb_run *r);
void eb_display_log_lines(struct eb_run *r);
void eb_display_done(struct eb_run *r);
void eb_progress(struct eb_run *r, bool final);
enum enr_err eb_write_output(struct eb_run *r);
enum enr_err eb_write_errors(struct eb_run *r);
enum enr_err eb_write_report(struct eb_run *r, const struct ckpt_counts *k, int nworkers,
			     bool interrupted, int status, bool kept, double secs);
enum enr_err eb_dry_run_report(struct eb_run *r, int nworkers, double secs);
void eb_summary(struct eb_run *r, const struct ckpt_counts *k, double secs);

/* input.c */
bool eb_same_file(const char *a, const char *b);
enum enr_err eb_load_input(struct eb_run *r);
enum enr_err eb_next_job(struct eb_run *r, struct eb_job *j);

/* plan.c */
enum enr_err eb_checkpoint_path(struct eb_run *r);
enum enr_err eb_open_checkpoint(struct eb_run *r);
enum enr_err eb_plan_rows(struct eb_run *r);
/* The command that continues this run ("--resume" or "--retry-failed"),
 * written into b; with_limit repeats --limit.  Returns the command (in
 * b), or a fixed note when memory ran out. */
const char *eb_again_command(const struct eb_run *r, struct buf *b, const char *how,
			     bool with_limit);
/* A dry run's valid row, counted (under r->mu) in r->t.est. */
void eb_dry_count(struct eb_run *r, const struct est_row *row);

/* run.c */
enum enr_err eb_run_workers(struct eb_run *r, int nworkers);

#endif
