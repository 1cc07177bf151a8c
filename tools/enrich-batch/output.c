/*
 * output.c - what enrich-batch shows and writes: messages and the progress
 * display on standard error, the output, errors and report files, the
 * summaries.
 *
 * On a terminal the progress is one line redrawn in place, fitted to the
 * terminal's width (lib/progress).  Every other line - our messages and
 * the engine's log lines, which come through a pipe instead of straight
 * to standard error - is printed above it: clear the line, print, draw
 * the bar again.  Only the main thread draws; eb_say may be called from
 * any thread (a mutex keeps lines whole).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/util.h"

#include "batch.h"

#define LINE_MAX_BYTES 1024
#define LOG_LINE_MAX 8192

static pthread_mutex_t term_mu = PTHREAD_MUTEX_INITIALIZER;
static bool bar_on;                 /* a bar is on the screen (no newline after it) */
static char bar_line[LINE_MAX_BYTES];
static size_t bar_len;
static char log_part[LOG_LINE_MAX]; /* a log line not complete yet */
static size_t log_part_len;

/* Write a whole line above the bar (term_mu held). */
static void line_above(const char *s, size_t n)
{
	if (bar_on)
		fputs("\r\033[K", stderr);
	fwrite(s, 1, n, stderr);
	fputc('\n', stderr);
	if (bar_on)
		fwrite(bar_line, 1, bar_len, stderr);
	fflush(stderr);
}

void eb_say(const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	va_list ap;
	int n;

	n = snprintf(msg, sizeof msg, PROG ": ");
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&term_mu);
	line_above(msg, strlen(msg));
	pthread_mutex_unlock(&term_mu);
}

void eb_display_init(struct eb_run *r)
{
	r->tty = isatty(STDERR_FILENO) == 1;
	/* Engine log lines that would go to the terminal go through a pipe
	 * the main thread reads, so they never land inside the bar. */
	if (!r->tty || r->cfg->log_file[0])
		return;
	if (pipe2(r->log_pipe, O_CLOEXEC) != 0) {
		r->log_pipe[0] = r->log_pipe[1] = -1;
		return;
	}
	fcntl(r->log_pipe[0], F_SETFL, O_NONBLOCK);
	log_set_fd(r->log_pipe[1]);
}

void eb_display_log_lines(struct eb_run *r)
{
	char buf[4096];
	ssize_t n;

	if (r->log_pipe[0] < 0)
		return;
	pthread_mutex_lock(&term_mu);
	while ((n = read(r->log_pipe[0], buf, sizeof buf)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' || log_part_len == sizeof log_part) {
				line_above(log_part, log_part_len);
				log_part_len = 0;
				if (buf[i] == '\n')
					continue;
			}
			log_part[log_part_len++] = buf[i];
		}
	}
	pthread_mutex_unlock(&term_mu);
}

void eb_display_done(struct eb_run *r)
{
	if (r->log_pipe[0] < 0)
		return;
	/* Every thread that logs has ended; what is left in the pipe is shown. */
	log_set_fd(STDERR_FILENO);
	eb_display_log_lines(r);
	if (log_part_len) {
		pthread_mutex_lock(&term_mu);
		line_above(log_part, log_part_len);
		log_part_len = 0;
		pthread_mutex_unlock(&term_mu);
	}
	close(r->log_pipe[0]);
	close(r->log_pipe[1]);
	r->log_pipe[0] = r->log_pipe[1] = -1;
}

static int term_width(void)
{
	struct winsize ws;
	const char *c = getenv("COLUMNS");
	int64_t v;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if (c && util_parse_i64(c, 1, 10000, &v) == ENR_OK)
		return (int)v;
	return 80;
}

void eb_progress(struct eb_run *r, bool final)
{
	struct eb_tally t;
	struct prog_view v;
	int64_t now = util_mono_ms(), elapsed = now - r->start_mono_ms;
	char line[LINE_MAX_BYTES];

	pthread_mutex_lock(&r->mu);
	t = r->t;
	pthread_mutex_unlock(&r->mu);
	/* The rate counts this run's rows only: a resume starts from zero. */
	prog_rate_update(&r->rate, now, t.finished);
	memset(&v, 0, sizeof v);
	v.done = r->base_done + t.finished;
	v.total = r->target;
	v.failed = r->base_failed + t.state[CKPT_FAILED];
	v.credits = t.credits;
	v.elapsed_s = (double)elapsed / 1000.0;
	v.final = final;
	if (final)
		v.rate_per_min = elapsed > 0 ? (double)t.finished * 60000.0 / (double)elapsed : 0;
	else
		v.rate_per_min = prog_rate_per_s(&r->rate) * 60.0;
	v.eta_s = prog_eta_s(&r->rate, v.total - v.done);

	pthread_mutex_lock(&term_mu);
	if (r->tty) {
		bar_len = prog_line_tty(&v, term_width(), bar_line, sizeof bar_line);
		fputs("\r\033[K", stderr);
		fwrite(bar_line, 1, bar_len, stderr);
		bar_on = !final;
		if (final)
			fputc('\n', stderr);
	} else {
		prog_line_plain(&v, line, sizeof line);
		fprintf(stderr, PROG ": %s\n", line);
	}
	fflush(stderr);
	pthread_mutex_unlock(&term_mu);
}

/* ---- files at the end --------------------------------------------------------- */

/* Write a file through path.tmp and a rename, so it is whole or absent. */
struct out_file {
	char path[PATH_MAX];
	char tmp[PATH_MAX + 8];
	FILE *f;
};

static bool out_open(struct out_file *of, const char *path)
{
	int fd;

	if ((size_t)snprintf(of->path, sizeof of->path, "%s", path) >= sizeof of->path ||
	    (size_t)snprintf(of->tmp, sizeof of->tmp, "%s.tmp", path) >= sizeof of->tmp) {
		errno = ENAMETOOLONG;
		return false;
	}
	fd = open(of->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return false;
	of->f = fdopen(fd, "w");
	if (of->f == NULL) {
		close(fd);
		unlink(of->tmp);
		return false;
	}
	return true;
}

static void out_abandon(struct out_file *of)
{
	if (of->f)
		fclose(of->f);
	of->f = NULL;
	unlink(of->tmp);
}

/* Flush, sync and rename into place; false (errno set) on failure. */
static bool out_commit(struct out_file *of)
{
	int saved;

	if (fflush(of->f) != 0 || ferror(of->f) || fsync(fileno(of->f)) != 0)
		goto fail;
	if (fclose(of->f) != 0) {
		of->f = NULL;
		goto fail;
	}
	of->f = NULL;
	if (rename(of->tmp, of->path) != 0)
		goto fail;
	return true;
fail:
	saved = errno;
	out_abandon(of);
	errno = saved;
	return false;
}

struct each_out {
	const struct eb_run *r;
	FILE *f;
	struct buf *b;
};

/* Rows come in order; a limited run's output ends at --limit. */
static int write_out_row(void *arg, const struct ckpt_row *row)
{
	struct each_out *e = arg;

	if (row->n > e->r->target)
		return 2;
	return fwrite(row->out, 1, row->out_len, e->f) == row->out_len ? 0 : 1;
}

enum enr_err eb_write_output(struct eb_run *r)
{
	struct out_file of;
	struct each_out e = { r, NULL, NULL };
	enum enr_err rc;

	memset(&of, 0, sizeof of);
	if (!out_open(&of, r->o->output)) {
		eb_say("cannot write the output %s.tmp: %s", r->o->output, strerror(errno));
		return ENR_E_IO;
	}
	e.f = of.f;
	fwrite(r->header_line.data, 1, r->header_line.len, of.f);
	rc = ckpt_each(r->ckpt, 0, write_out_row, &e);
	if (rc) {
		eb_say("cannot read the checkpoint %s: %s", r->ckpt_path, enr_strerror(rc));
		out_abandon(&of);
		return rc;
	}
	if (!out_commit(&of)) {
		eb_say("cannot write the output %s: %s", r->o->output, strerror(errno));
		return ENR_E_IO;
	}
	return ENR_OK;
}

static int write_error_row(void *arg, const struct ckpt_row *row)
{
	struct each_out *e = arg;
	char n[24], line[24];
	const char *f[5] = { n, line, ckpt_state_names[row->state], row->code, row->reason };

	if (row->n > e->r->target)
		return 2;
	snprintf(n, sizeof n, "%lld", (long long)row->n);
	snprintf(line, sizeof line, "%lld", (long long)row->line);
	return csv_write_row_flags(e->b, f, NULL, 5, eb_csv_flags(e->r->o)) == ENR_OK ? 0 : 1;
}

enum enr_err eb_write_errors(struct eb_run *r)
{
	static const char *const head[5] = { "row", "line", "status", "code", "reason" };
	struct out_file of;
	struct buf b;
	struct each_out e = { r, NULL, &b };
	enum enr_err rc = ENR_E_IO;

	memset(&of, 0, sizeof of);
	buf_init(&b, LIM_BODY_MAX_CEILING);
	if (!out_open(&of, r->o->errors)) {
		eb_say("cannot write the errors file %s: %s", r->o->errors, strerror(errno));
		goto out;
	}
	rc = csv_write_row_flags(&b, head, NULL, 5, eb_csv_flags(r->o));
	if (rc == ENR_OK)
		rc = ckpt_each(r->ckpt, 1u << CKPT_FAILED | 1u << CKPT_INVALID, write_error_row, &e);
	if (rc) {
		eb_say("cannot write the errors file %s: %s", r->o->errors, enr_strerror(rc));
		out_abandon(&of);
		goto out;
	}
	fwrite(b.data, 1, b.len, of.f);
	if (!out_commit(&of)) {
		eb_say("cannot write the errors file %s: %s", r->o->errors, strerror(errno));
		rc = ENR_E_IO;
	}
out:
	buf_release(&b);
	return rc;
}

static int code_json(void *arg, const char *code, int64_t n)
{
	json_object_set_new((json_t *)arg, code[0] ? code : "unknown", json_integer(n));
	return 0;
}

static json_t *options_json(const struct eb_run *r, int nworkers)
{
	const struct eb_opts *o = r->o;
	json_t *fields = json_array(), *j;

	for (int f = 0; f < FLD__MAX; f++) {
		if (r->want & FLD_BIT(f))
			json_array_append_new(fields, json_string(fld_names[f]));
	}
	j = json_pack("{s:o, s:i, s:b, s:b, s:b, s:I, s:I, s:s, s:s?, s:I}", "fields", fields,
		      "workers", nworkers, "resume", o->resume, "retry_failed", o->retry_failed,
		      "dry_run", o->dry_run, "deadline_ms", (json_int_t)o->deadline_ms,
		      "max_key_wait_s", (json_int_t)(o->key_wait_ms / 1000), "config", o->conf,
		      "checkpoint", r->ckpt ? r->ckpt_path : NULL, "max_bytes",
		      (json_int_t)o->max_bytes);
	json_object_set_new(j, "limit", o->limit ? json_integer(o->limit) : json_null());
	json_object_set_new(j, "allow_failures", json_boolean(o->allow_failures));
	json_object_set_new(j, "formulas", json_string(o->formulas_raw ? "raw" : "neutralise"));
	json_object_set_new(j, "sources", json_boolean(o->extra & JOB_COL_SOURCE));
	json_object_set_new(j, "confidence", json_boolean(o->extra & JOB_COL_CONFIDENCE));
	return j;
}

static enum enr_err write_json(const char *path, json_t *j)
{
	struct out_file of;

	memset(&of, 0, sizeof of);
	if (j == NULL) {
		eb_say("cannot write the report %s: out of memory", path);
		return ENR_E_NOMEM;
	}
	if (!out_open(&of, path)) {
		eb_say("cannot write the report %s: %s", path, strerror(errno));
		json_decref(j);
		return ENR_E_IO;
	}
	if (json_dumpf(j, of.f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) != 0)
		errno = EIO;
	else
		fputc('\n', of.f);
	json_decref(j);
	if (!out_commit(&of)) {
		eb_say("cannot write the report %s: %s", path, strerror(errno));
		return ENR_E_IO;
	}
	return ENR_OK;
}

enum enr_err eb_write_report(struct eb_run *r, const struct ckpt_counts *k, int nworkers,
			     bool interrupted, int status, bool kept, double secs)
{
	json_t *errors = json_object(), *j;
	struct eb_tally t = r->t;
	enum enr_err rc = errors ? ckpt_codes(r->ckpt, code_json, errors) : ENR_E_NOMEM;

	if (rc) {
		eb_say("cannot write the report %s: the error counts cannot be read: %s",
		       r->o->report, enr_strerror(rc));
		json_decref(errors);
		return rc;
	}
	j = json_pack("{s:b, s:s, s:s, s:s, s:b, s:b, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
		      " s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:f, s:o, s:o}",
		      "dry_run", 0, "input", r->o->input, "output", r->o->output, "checkpoint",
		      r->ckpt_path, "checkpoint_kept", kept, "interrupted", interrupted,
		      "exit_status", status, "rows", (json_int_t)r->rows, "done",
		      (json_int_t)k->done, "complete", (json_int_t)k->state[CKPT_COMPLETE], "partial",
		      (json_int_t)k->state[CKPT_PARTIAL], "not_found",
		      (json_int_t)k->state[CKPT_NOT_FOUND], "failed",
		      (json_int_t)k->state[CKPT_FAILED], "invalid",
		      (json_int_t)k->state[CKPT_INVALID], "credits", (json_int_t)k->credits,
		      "upstream_calls", (json_int_t)k->calls, "cached_rows", (json_int_t)k->cached,
		      "duration_s", secs, "rows_this_run", (json_int_t)t.finished,
		      "credits_this_run", (json_int_t)t.credits, "upstream_calls_this_run",
		      (json_int_t)t.calls, "cached_rows_this_run", (json_int_t)t.cached,
		      "rate_per_min", secs > 0 ? (double)t.finished * 60.0 / secs : 0.0, "errors",
		      errors, "options", options_json(r, nworkers));
	return write_json(r->o->report, j);
}

/* ---- summaries ---------------------------------------------------------------- */

static int code_text(void *arg, const char *code, int64_t n)
{
	struct buf *b = arg;

	/* Out of memory: stop; the summary shows the codes it has. */
	return buf_printf(b, "%s%s %lld", b->len ? ", " : "", code, (long long)n) == ENR_OK ? 0 : 1;
}

void eb_summary(struct eb_run *r, const struct ckpt_counts *k, double secs)
{
	const struct eb_tally *t = &r->t;
	struct buf codes;
	char of[64] = "";

	if (r->target < r->rows)
		snprintf(of, sizeof of, " (the first %lld of %lld)", (long long)r->target,
			 (long long)r->rows);
	eb_say("%lld %s%s: %lld complete, %lld partial, %lld not found, %lld failed, %lld invalid",
	       (long long)r->target, prog_plural(r->target, "row", "rows"), of,
	       (long long)k->state[CKPT_COMPLETE], (long long)k->state[CKPT_PARTIAL],
	       (long long)k->state[CKPT_NOT_FOUND], (long long)k->state[CKPT_FAILED],
	       (long long)k->state[CKPT_INVALID]);
	eb_say("this run: %lld %s in %.1f s (%.0f rows/min), %lld %s, %lld upstream %s, "
	       "%lld %s from the cache",
	       (long long)t->finished, prog_plural(t->finished, "row", "rows"), secs,
	       secs > 0 ? (double)t->finished * 60.0 / secs : 0.0, (long long)t->credits,
	       prog_plural(t->credits, "credit", "credits"), (long long)t->calls,
	       prog_plural(t->calls, "call", "calls"), (long long)t->cached,
	       prog_plural(t->cached, "row", "rows"));
	if (r->base_done)
		eb_say("%lld %s done by an earlier run (%lld %s in all)", (long long)r->base_done,
		       r->base_done == 1 ? "row was" : "rows were", (long long)k->credits,
		       prog_plural(k->credits, "credit", "credits"));
	if (k->state[CKPT_FAILED] + k->state[CKPT_INVALID] > 0) {
		enum enr_err rc;

		buf_init(&codes, 0);
		rc = ckpt_codes(r->ckpt, code_text, &codes);
		eb_say("rows not enriched, by reason: %s%s%s", rc ? "(cannot be read)" : buf_cstr(&codes),
		       r->o->errors ? "; listed in " : "", r->o->errors ? r->o->errors : "");
		buf_release(&codes);
	}
}

/* ---- dry run ------------------------------------------------------------------- */

static void eta_text(int64_t s, char *out, size_t outsz)
{
	if (s < 0)
		snprintf(out, outsz, "unpaced");
	else if (s < 120)
		snprintf(out, outsz, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(out, outsz, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(out, outsz, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
}

enum enr_err eb_dry_run_report(struct eb_run *r, int nworkers, double secs)
{
	struct eb_tally *t = &r->t;
	const struct est *e = &t->est;
	json_t *providers = json_object(), *errors = json_object(), *j;
	int64_t invalid = t->state[CKPT_INVALID], failed = t->state[CKPT_FAILED];
	char eta[32];

	est_finish(&t->est, r->store, util_now_ms());
	printf("dry run over %s: %lld %s, no provider called\n", r->o->input, (long long)r->target,
	       prog_plural(r->target, "row", "rows"));
	printf("  %-34s %8lld\n", "invalid rows", (long long)invalid);
	if (failed)
		printf("  %-34s %8lld\n", "rows that could not be looked up", (long long)failed);
	printf("  %-34s %8lld\n", "answered from the cache", (long long)e->cached);
	printf("  %-34s %8lld\n", "answered by the free local provider", (long long)e->local_only);
	printf("  %-34s %8lld\n", "would call a provider", (long long)e->needing_calls);
	printf("\n  %-20s %8s %18s %16s %18s %16s %10s\n", "provider", "rows", "lookups (at most)",
	       "credits per hit", "credits (at most)", "calls (at most)", "time");
	for (int i = 0; i < e->nprov; i++) {
		const struct est_provider *ep = &e->prov[i];
		int64_t l = ep->person + ep->company;

		if (l == 0)
			continue;
		eta_text(ep->eta_s, eta, sizeof eta);
		printf("  %-20s %8lld %18lld %16d %18lld %16lld %10s\n", ep->p->name,
		       (long long)ep->rows, (long long)l, ep->p->credits_per_hit,
		       (long long)ep->credits, (long long)ep->calls, eta);
		json_object_set_new(providers, ep->p->name,
				    json_pack("{s:I, s:I, s:i, s:I}", "rows", (json_int_t)ep->rows,
					      "lookups_max", (json_int_t)l, "credits_per_hit",
					      ep->p->credits_per_hit, "credits_max",
					      (json_int_t)ep->credits));
	}
	eta_text(e->eta_s, eta, sizeof eta);
	printf("  %-20s %8s %18s %16s %18lld %16lld %10s\n", "total", "", "", "",
	       (long long)e->credits, (long long)e->calls, eta);
	printf("\nAt most %lld %s in at most %lld upstream %s (bulk calls counted as one); hits "
	       "only are paid, so a run usually spends less.",
	       (long long)e->credits, prog_plural(e->credits, "credit", "credits"), (long long)e->calls,
	       prog_plural(e->calls, "call", "calls"));
	if (e->eta_s >= 0)
		printf("  The key pool's pacing allows it in %s.", eta);
	printf("\n");
	fflush(stdout);
	if (r->o->report == NULL) {
		json_decref(providers);
		json_decref(errors);
		return ENR_OK;
	}
	for (int i = 0; i < t->ncodes; i++)
		json_object_set_new(errors, t->codes[i].code, json_integer(t->codes[i].n));
	j = json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:i, s:f, s:o, s:o, s:o}",
		      "dry_run", 1, "input", r->o->input, "rows", (json_int_t)r->target, "invalid",
		      (json_int_t)invalid, "failed", (json_int_t)failed, "cached_rows",
		      (json_int_t)e->cached, "local_only_rows", (json_int_t)e->local_only,
		      "rows_needing_calls", (json_int_t)e->needing_calls, "credits_max",
		      (json_int_t)e->credits, "providers", providers, "upstream_calls", 0,
		      "duration_s", secs, "errors", errors, "options", options_json(r, nworkers),
		      "estimate", est_json(e));
	return write_json(r->o->report, j);
}
