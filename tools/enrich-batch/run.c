/*
 * run.c - enrich-batch's workers: each takes the next row it is to do,
 * normalises it (leniently, like a CSV job), runs it through the engine,
 * lets job_decide() - the batch worker's rule - say whether the result is
 * an answer, and records it in the checkpoint with the output row it
 * produced.  The main thread watches: progress, commits, signals.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/jobs.h"
#include "lib/upstream.h"
#include "lib/util.h"

#include "batch.h"

struct verdict {
	enum ckpt_state state;
	char code[CODE_MAX];
	char reason[REASON_MAX];
	int credits, calls;
	bool cached;
};

/* Wait until wall-clock time until_ms, waking for signals.  False when
 * the run is being stopped. */
static bool wait_until(int64_t until_ms)
{
	for (;;) {
		int64_t left = until_ms - util_now_ms();

		if (eb_stopping())
			return false;
		if (left <= 0)
			return true;
		util_sleep_ms(left < TICK_MS ? left : TICK_MS);
	}
}

static void count_code(struct eb_tally *t, const char *code)
{
	for (int i = 0; i < t->ncodes; i++) {
		if (strcmp(t->codes[i].code, code) == 0) {
			t->codes[i].n++;
			return;
		}
	}
	if (t->ncodes < ERROR_CODES_MAX) {
		util_strlcpy(t->codes[t->ncodes].code, code, sizeof t->codes[0].code);
		t->codes[t->ncodes++].n = 1;
	}
}

/* The state of a result job_decide() took as an answer. */
static enum ckpt_state answer_state(const struct wf_result *res)
{
	if (res->status == WF_COMPLETE)
		return CKPT_COMPLETE;
	if (res->status == WF_NOT_FOUND || res->found == 0)
		return CKPT_NOT_FOUND;
	return CKPT_PARTIAL;
}

/* Enrich one valid record.  A row that found its key pool cooling waits
 * for it to come back (job_decide's snooze), within --max-key-wait in
 * all; any other result that is no answer is recorded as failed:
 * --retry-failed is this tool's retry.  False when the run is stopped
 * during a wait: the row is then left for the next run. */
static bool enrich_row(struct eb_run *r, struct eb_job *j, struct wf_result *res,
		       struct verdict *v)
{
	int64_t waited = 0;

	for (;;) {
		struct wf_ctx ctx;
		int64_t now, until = 0;
		enum enr_err rc;

		memset(&ctx, 0, sizeof ctx);
		ctx.store = r->store;
		ctx.cfg = r->cfg;
		ctx.pctx = &r->pctx;
		ctx.endpoint = CFG_EP_ENQUEUE;
		ctx.deadline_mono_ms = util_deadline_in(r->o->deadline_ms);
		ctx.no_calls = r->o->dry_run;
		wf_result_release(res);
		wf_result_init(res);
		rc = wf_run(&ctx, &j->rec, r->want, res);
		v->credits += res->credits;
		v->calls += res->calls;
		if (rc) {
			v->state = CKPT_FAILED;
			util_strlcpy(v->code, "internal", sizeof v->code);
			snprintf(v->reason, sizeof v->reason, "%s", enr_strerror(rc));
			return true;
		}
		if (r->o->dry_run)
			return true;
		v->cached = res->cached;
		now = util_now_ms();
		switch (job_decide(res, 0, r->cfg, now, 0.0, &until)) {
		case JOB_ROW_DONE:
			v->state = answer_state(res);
			return true;
		case JOB_ROW_SNOOZE:
			if (until < now + KEY_WAIT_MIN_MS)
				until = now + KEY_WAIT_MIN_MS;
			if (waited + (until - now) <= r->o->key_wait_ms) {
				if (!wait_until(until))
					return false;
				waited += until - now;
				continue;
			}
			break;
		case JOB_ROW_RETRY:
		case JOB_ROW_FAIL:
			break;
		}
		v->state = CKPT_FAILED;
		job_not_done_reason(res, r->o->deadline_ms, v->code, sizeof v->code, v->reason,
				    sizeof v->reason);
		return true;
	}
}

static enum enr_err put_cell(const struct eb_run *r, struct buf *b, const char *s, size_t n)
{
	enum enr_err rc = buf_putc(b, ',');

	return rc ? rc : csv_write_field_flags(b, s, n, eb_csv_flags(r->o));
}

static enum enr_err build_out(struct eb_run *r, struct eb_job *j, const struct wf_result *res,
			      const struct verdict *v)
{
	struct buf *b = &j->out, cell;
	enum enr_err rc;

	buf_reset(b);
	buf_init(&cell, 0);
	rc = buf_append(b, j->prefix.data ? j->prefix.data : "", j->prefix.len);
	for (int f = 0; f < FLD__MAX && rc == ENR_OK; f++) {
		const char *val = res->value[f] ? res->value[f] : "";

		if (r->want & FLD_BIT(f))
			rc = put_cell(r, b, val, strlen(val));
	}
	if (rc == ENR_OK && (r->o->extra & JOB_COL_SOURCE)) {
		rc = job_source_cell(res, r->want, &cell);
		if (rc == ENR_OK)
			rc = put_cell(r, b, cell.data ? cell.data : "", cell.len);
	}
	if (rc == ENR_OK && (r->o->extra & JOB_COL_CONFIDENCE)) {
		char c[16];

		job_confidence_cell(res, r->want, c, sizeof c);
		rc = put_cell(r, b, c, strlen(c));
	}
	if (rc == ENR_OK)
		rc = buf_printf(b, ",%s", ckpt_state_names[v->state]);
	if (rc == ENR_OK) {
		buf_reset(&cell);
		if (v->code[0])
			rc = buf_printf(&cell, "%s%s%s", v->code, v->reason[0] ? ": " : "", v->reason);
		if (rc == ENR_OK && j->warn[0])
			rc = buf_printf(&cell, "%s%s", cell.len ? "; " : "", j->warn);
		if (rc == ENR_OK)
			rc = put_cell(r, b, cell.data ? cell.data : "", cell.len);
	}
	if (rc == ENR_OK)
		rc = buf_puts(b, "\r\n");
	buf_release(&cell);
	return rc;
}

static void fail_run(struct eb_run *r, enum enr_err rc, const char *what)
{
	pthread_mutex_lock(&r->mu);
	if (r->fatal == ENR_OK) {
		r->fatal = rc;
		util_strlcpy(r->fatal_what, what, sizeof r->fatal_what);
	}
	pthread_mutex_unlock(&r->mu);
}

/* Read the row (lenient), or say why it is invalid. */
static bool validate(struct eb_run *r, struct eb_job *j, struct verdict *v)
{
	struct rec_problem prob;
	enum enr_err rc;

	j->warn[0] = '\0';
	if (j->csv_bad) {
		v->state = CKPT_INVALID;
		util_strlcpy(v->code, "csv_row", sizeof v->code);
		snprintf(v->reason, sizeof v->reason, "%s (line %lld)", j->csv_reason,
			 (long long)j->line);
		return false;
	}
	rc = job_normalise_row(&j->rec, (size_t)r->cfg->limits.field_max_bytes, j->warn,
			       sizeof j->warn, &prob);
	if (rc == ENR_OK)
		return true;
	j->warn[0] = '\0';
	if (rc == ENR_E_INVALID && prob.field < ID__MAX) {
		v->state = CKPT_INVALID;
		snprintf(v->code, sizeof v->code, "invalid_%s", fld_ident_names[prob.field]);
		util_strlcpy(v->reason, prob.reason ? prob.reason : "not valid", sizeof v->reason);
	} else if (rc == ENR_E_INVALID) {
		v->state = CKPT_INVALID;
		util_strlcpy(v->code, "no_identifier", sizeof v->code);
		util_strlcpy(v->reason, prob.reason ? prob.reason : "no identifier",
			     sizeof v->reason);
	} else {
		v->state = CKPT_FAILED;
		util_strlcpy(v->code, "internal", sizeof v->code);
		util_strlcpy(v->reason, enr_strerror(rc), sizeof v->reason);
	}
	return false;
}

static void process(struct eb_run *r, struct eb_job *j)
{
	struct wf_result res;
	struct verdict v;
	struct ckpt_row row;
	enum enr_err rc;

	wf_result_init(&res);
	memset(&v, 0, sizeof v);
	if (validate(r, j, &v) && !enrich_row(r, j, &res, &v))
		goto out; /* stopped while waiting for a key: not recorded */

	if (r->o->dry_run) {
		pthread_mutex_lock(&r->mu);
		if (v.state == CKPT_INVALID || v.state == CKPT_FAILED) {
			r->t.state[v.state]++;
			count_code(&r->t, v.code);
		} else {
			eb_dry_count(r, &res);
		}
		r->t.finished++;
		pthread_mutex_unlock(&r->mu);
		goto out;
	}

	rc = build_out(r, j, &res, &v);
	if (rc) {
		fail_run(r, rc, "cannot build an output row");
		goto out;
	}
	memset(&row, 0, sizeof row);
	row.n = j->n;
	row.line = j->line;
	row.state = v.state;
	row.code = v.code;
	row.reason = v.reason;
	row.out = j->out.data;
	row.out_len = j->out.len;
	row.credits = v.credits;
	row.calls = v.calls;
	row.cached = v.cached;
	rc = ckpt_put(r->ckpt, &row, util_mono_ms());
	if (rc) {
		fail_run(r, rc, "cannot write the checkpoint");
		goto out;
	}
	pthread_mutex_lock(&r->mu);
	r->t.finished++;
	r->t.state[v.state]++;
	r->t.credits += v.credits;
	r->t.calls += v.calls;
	r->t.cached += v.cached;
	pthread_mutex_unlock(&r->mu);
out:
	wf_result_release(&res);
}

static void *worker_main(void *arg)
{
	struct eb_run *r = arg;
	struct eb_job j;

	memset(&j, 0, sizeof j);
	rec_init(&j.rec);
	buf_init(&j.prefix, 0);
	buf_init(&j.out, 0);
	for (;;) {
		enum enr_err rc;

		pthread_mutex_lock(&r->mu);
		if (eb_stopping() || r->fatal) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		rc = eb_next_job(r, &j);
		if (rc == ENR_OK)
			r->t.inflight++;
		pthread_mutex_unlock(&r->mu);
		if (rc == ENR_E_NOT_FOUND)
			break;
		if (rc) {
			fail_run(r, rc, "cannot read the input");
			break;
		}
		process(r, &j);
		pthread_mutex_lock(&r->mu);
		r->t.inflight--;
		pthread_mutex_unlock(&r->mu);
	}
	rec_release(&j.rec);
	buf_release(&j.prefix);
	buf_release(&j.out);
	up_thread_cleanup();
	st_thread_release(r->store);
	pthread_mutex_lock(&r->mu);
	r->running--;
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* Sleep one tick, or less when an engine log line arrives for the
 * terminal: it is shown above the bar at once. */
static void tick(struct eb_run *r)
{
	struct pollfd p = { .fd = r->log_pipe[0], .events = POLLIN, .revents = 0 };

	if (p.fd < 0) {
		util_sleep_ms(TICK_MS);
		return;
	}
	if (poll(&p, 1, TICK_MS) > 0)
		eb_display_log_lines(r);
}

/* Start the workers and watch them until they are done: progress,
 * commits, signals. */
enum enr_err eb_run_workers(struct eb_run *r, int nworkers)
{
	pthread_t *tids = calloc((size_t)nworkers, sizeof *tids);
	sigset_t block, old;
	int64_t next_line, interval;
	bool announced = false;
	int started = 0, err = 0;

	if (tids == NULL) {
		eb_say("out of memory");
		return ENR_E_NOMEM;
	}
	/* Workers (and the threads libcurl and lib/alert start from them) never
	 * see the signals: the main thread takes them and the workers read
	 * the flag, so no call in flight is cut short. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	r->running = nworkers;
	for (int i = 0; i < nworkers; i++) {
		err = pthread_create(&tids[i], NULL, worker_main, r);
		if (err)
			break;
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started < nworkers) {
		pthread_mutex_lock(&r->mu);
		r->running -= nworkers - started;
		pthread_mutex_unlock(&r->mu);
		if (started == 0) {
			eb_say("cannot start worker threads: %s", strerror(err));
			free(tids);
			return ENR_E_INTERNAL;
		}
	}
	/* A terminal gets a line that updates in place; a log gets a line
	 * every --progress-interval. */
	interval = r->tty ? TTY_REDRAW_MS : r->o->progress_ms;
	next_line = util_mono_ms() + interval;
	for (;;) {
		int running;
		int64_t now;

		pthread_mutex_lock(&r->mu);
		running = r->running;
		pthread_mutex_unlock(&r->mu);
		if (running == 0)
			break;
		tick(r);
		now = util_mono_ms();
		if (eb_stopping() && !announced) {
			int64_t inflight;

			pthread_mutex_lock(&r->mu);
			inflight = r->t.inflight;
			pthread_mutex_unlock(&r->mu);
			eb_say("interrupted: finishing %lld %s in flight (press Ctrl-C again to stop "
			       "at once)", (long long)inflight, prog_plural(inflight, "row", "rows"));
			announced = true;
		}
		if (r->ckpt) {
			enum enr_err rc = ckpt_tick(r->ckpt, now);

			if (rc)
				fail_run(r, rc, "cannot write the checkpoint");
		}
		if (now >= next_line) {
			eb_progress(r, false);
			next_line = now + interval;
		}
	}
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	free(tids);
	return ENR_OK;
}
