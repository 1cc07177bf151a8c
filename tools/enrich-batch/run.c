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

#include "lib/co.h"
#include "lib/service.h"
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
		co_sleep_ms(left < TICK_MS ? left : TICK_MS);
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

/* Whether a provider makes bulk calls for batches (then workers take rows
 * in groups, so that their lookups share calls). */
static bool bulk_configured(const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->nproviders; i++) {
		if (cfg->providers[i].enabled && cfg->providers[i].bulk.enabled)
			return true;
	}
	return false;
}

/* Enrich the valid records of a group together.  A row that found its key
 * pool cooling waits for it to come back (job_decide's snooze), within
 * --max-key-wait in all, and runs again with the other waiting rows; any
 * other result that is no answer is recorded as failed: --retry-failed is
 * this tool's retry.  stopped[i] is set for a row left for the next run
 * (the run was stopped during a wait). */
static void enrich_rows(struct eb_run *r, struct eb_job **js, struct wf_result *res,
			struct verdict *v, bool *run, bool *stopped, size_t n)
{
	int64_t *waited = calloc(n ? n : 1, sizeof *waited);
	struct wf_job *wj = calloc(n ? n : 1, sizeof *wj);
	size_t *idx = calloc(n ? n : 1, sizeof *idx);

	if (waited == NULL || wj == NULL || idx == NULL) {
		for (size_t i = 0; i < n; i++) {
			if (!run[i])
				continue;
			v[i].state = CKPT_FAILED;
			util_strlcpy(v[i].code, "internal", sizeof v[i].code);
			snprintf(v[i].reason, sizeof v[i].reason, "out of memory");
		}
		goto out;
	}
	for (;;) {
		struct wf_ctx ctx;
		size_t m = 0;
		int64_t now, until_min = 0;
		enum enr_err rc;

		for (size_t i = 0; i < n; i++) {
			if (!run[i])
				continue;
			wf_result_release(&res[i]);
			wf_result_init(&res[i]);
			wj[m] = (struct wf_job){ &js[i]->rec, r->want, 0, &res[i] };
			idx[m++] = i;
		}
		if (m == 0)
			break;
		memset(&ctx, 0, sizeof ctx);
		ctx.store = r->store;
		ctx.cfg = r->cfg;
		ctx.pctx = &r->svc.pctx;
		ctx.endpoint = CFG_EP_ENQUEUE;
		ctx.deadline_mono_ms = util_deadline_in(r->o->deadline_ms);
		ctx.no_calls = r->o->dry_run;
		rc = wf_run_many(&ctx, wj, m);
		now = util_now_ms();
		for (size_t k = 0; k < m; k++) {
			size_t i = idx[k];
			int64_t until = 0;

			v[i].credits += res[i].credits;
			v[i].calls += res[i].calls;
			run[i] = false;
			if (rc) {
				v[i].state = CKPT_FAILED;
				util_strlcpy(v[i].code, "internal", sizeof v[i].code);
				snprintf(v[i].reason, sizeof v[i].reason, "%s", enr_strerror(rc));
				continue;
			}
			if (r->o->dry_run)
				continue;
			v[i].cached = res[i].cached;
			switch (job_decide(&res[i], 0, r->cfg, now, 0.0, &until)) {
			case JOB_ROW_DONE:
				v[i].state = answer_state(&res[i]);
				continue;
			case JOB_ROW_SNOOZE:
				if (until < now + KEY_WAIT_MIN_MS)
					until = now + KEY_WAIT_MIN_MS;
				if (waited[i] + (until - now) <= r->o->key_wait_ms) {
					run[i] = true;
					waited[i] += until - now;
					if (until_min == 0 || until < until_min)
						until_min = until;
					continue;
				}
				break;
			case JOB_ROW_RETRY:
			case JOB_ROW_FAIL:
				break;
			}
			v[i].state = CKPT_FAILED;
			job_not_done_reason(&res[i], r->o->deadline_ms, v[i].code, sizeof v[i].code,
					    v[i].reason, sizeof v[i].reason);
		}
		if (until_min && !wait_until(until_min)) {
			/* Stopped while waiting: those rows are left for the next run. */
			for (size_t i = 0; i < n; i++) {
				if (run[i])
					stopped[i] = true;
				run[i] = false;
			}
		}
	}
out:
	free(waited);
	free(wj);
	free(idx);
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

/* Record one finished row: the dry run's count, or its output row in the
 * checkpoint. */
static void record(struct eb_run *r, struct eb_job *j, const struct wf_result *res,
		   const struct verdict *v)
{
	struct ckpt_row row;
	enum enr_err rc;

	rc = build_out(r, j, res, v);
	if (rc) {
		fail_run(r, rc, "cannot build an output row");
		return;
	}
	memset(&row, 0, sizeof row);
	row.n = j->n;
	row.line = j->line;
	row.state = v->state;
	row.code = v->code;
	row.reason = v->reason;
	row.out = j->out.data;
	row.out_len = j->out.len;
	row.credits = v->credits;
	row.calls = v->calls;
	row.cached = v->cached;
	rc = ckpt_put(r->ckpt, &row, util_mono_ms());
	if (rc) {
		fail_run(r, rc, "cannot write the checkpoint");
		return;
	}
	pthread_mutex_lock(&r->mu);
	r->t.finished++;
	r->t.state[v->state]++;
	r->t.credits += v->credits;
	r->t.calls += v->calls;
	r->t.cached += v->cached;
	pthread_mutex_unlock(&r->mu);
}

/* A dry run's group: each valid row planned without calling anyone
 * (lib/estimate.h), counted; invalid ones counted by their code. */
static void dry_rows(struct eb_run *r, struct eb_job **js, struct verdict *v, const bool *run,
		     size_t n)
{
	struct wf_ctx ctx;

	memset(&ctx, 0, sizeof ctx);
	ctx.store = r->store;
	ctx.cfg = r->cfg;
	ctx.pctx = &r->svc.pctx;
	ctx.endpoint = CFG_EP_ENQUEUE;
	ctx.no_calls = true;
	for (size_t i = 0; i < n; i++) {
		struct est_row row;
		enum enr_err rc = ENR_OK;

		if (run[i])
			rc = est_row(&ctx, &js[i]->rec, r->want, &row);
		if (rc) {
			v[i].state = CKPT_FAILED;
			util_strlcpy(v[i].code, "internal", sizeof v[i].code);
			util_strlcpy(v[i].reason, enr_strerror(rc), sizeof v[i].reason);
		}
		pthread_mutex_lock(&r->mu);
		if (!run[i] || rc) {
			r->t.state[v[i].state]++;
			count_code(&r->t, v[i].code);
		} else {
			eb_dry_count(r, &row);
		}
		r->t.finished++;
		pthread_mutex_unlock(&r->mu);
	}
}

struct record_arg {
	struct eb_run *r;
	struct eb_job **js;
	const struct wf_result *res;
	const struct verdict *v;
	const bool *stopped;
	size_t n;
};

static void record_all(void *arg)
{
	struct record_arg *a = arg;

	for (size_t i = 0; i < a->n; i++) {
		if (!a->stopped[i])
			record(a->r, a->js[i], &a->res[i], &a->v[i]);
	}
}

/* A group of rows: read each (lenient), enrich the valid ones together,
 * record them in input-independent order (the output is ordered at the
 * end). */
static void process(struct eb_run *r, struct eb_job **js, size_t n)
{
	struct wf_result *res = calloc(n, sizeof *res);
	struct verdict *v = calloc(n, sizeof *v);
	bool *run = calloc(n, sizeof *run), *stopped = calloc(n, sizeof *stopped);

	if (res == NULL || v == NULL || run == NULL || stopped == NULL) {
		fail_run(r, ENR_E_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		wf_result_init(&res[i]);
		run[i] = validate(r, js[i], &v[i]);
	}
	if (r->o->dry_run) {
		dry_rows(r, js, v, run, n);
		goto out;
	}
	enrich_rows(r, js, res, v, run, stopped, n);
	{
		struct record_arg a = { r, js, res, v, stopped, n };

		/* The checkpoint and the tallies: file writes under the run's
		 * lock, where blocking is allowed (lib/co.h). */
		co_call(record_all, &a);
	}
out:
	for (size_t i = 0; res && i < n; i++)
		wf_result_release(&res[i]);
	free(res);
	free(v);
	free(run);
	free(stopped);
}

struct take_arg {
	struct eb_run *r;
	struct eb_job *jobs;
	int want, n;
	enum enr_err rc;
	bool stop;
};

/* The next rows of the input, under the run's lock (a file read: where
 * blocking is allowed). */
static void take_jobs(void *arg)
{
	struct take_arg *a = arg;
	struct eb_run *r = a->r;

	a->n = 0;
	a->rc = ENR_OK;
	pthread_mutex_lock(&r->mu);
	a->stop = eb_stopping() || r->fatal;
	while (!a->stop && a->n < a->want && (a->rc = eb_next_job(r, &a->jobs[a->n])) == ENR_OK) {
		r->t.inflight++;
		a->n++;
	}
	pthread_mutex_unlock(&r->mu);
}

/* One of --workers: a continuation (lib/co.h) that takes rows until the
 * input ends; it waits on the engine's loop, so a worker costs no thread. */
static void worker_main(struct co_task *t)
{
	struct eb_run *r = t->arg;
	int cap = bulk_configured(r->cfg) ? r->cfg->worker.batch_rows : 1;
	struct eb_job *jobs = calloc((size_t)cap, sizeof *jobs);
	struct eb_job **js = calloc((size_t)cap, sizeof *js);

	for (int i = 0; jobs && js && i < cap; i++) {
		rec_init(&jobs[i].rec);
		buf_init(&jobs[i].prefix, 0);
		buf_init(&jobs[i].out, 0);
		js[i] = &jobs[i];
	}
	if (jobs == NULL || js == NULL)
		fail_run(r, ENR_E_NOMEM, "out of memory");
	while (jobs && js) {
		/* A group fills a bulk call (batch_rows rows), or one row at a time. */
		struct take_arg a = { r, jobs, cap, 0, ENR_OK, false };
		enum enr_err rc;
		int n;

		co_call(take_jobs, &a);
		if (a.stop)
			break;
		rc = a.rc;
		n = a.n;
		if (rc != ENR_OK && rc != ENR_E_NOT_FOUND)
			fail_run(r, rc, "cannot read the input");
		if (n > 0)
			process(r, js, (size_t)n);
		pthread_mutex_lock(&r->mu);
		r->t.inflight -= n;
		pthread_mutex_unlock(&r->mu);
		if (n == 0 || (rc != ENR_OK && rc != ENR_E_NOT_FOUND))
			break;
	}
	for (int i = 0; jobs && i < cap; i++) {
		rec_release(&jobs[i].rec);
		buf_release(&jobs[i].prefix);
		buf_release(&jobs[i].out);
	}
	free(jobs);
	free(js);
}

static void worker_ended(struct co_task *t)
{
	struct eb_run *r = t->arg;

	pthread_mutex_lock(&r->mu);
	r->running--;
	pthread_mutex_unlock(&r->mu);
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
	struct co_task *ws = calloc((size_t)nworkers, sizeof *ws);
	sigset_t block, old;
	int64_t next_line, interval;
	bool announced = false;
	int started = 0, err = 0;

	if (ws == NULL) {
		eb_say("out of memory");
		return ENR_E_NOMEM;
	}
	/* The engine's threads (and those libcurl and lib/alert start) never
	 * see the signals: the main thread takes them and the workers read
	 * the flag, so no call in flight is cut short. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	err = svc_engine_start(&r->svc, r->cfg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		eb_say("cannot start the engine: %s", enr_strerror((enum enr_err)err));
		free(ws);
		return (enum enr_err)err;
	}
	/* Each worker runs here until its first wait, then on the loop. */
	pthread_mutex_lock(&r->mu);
	r->running = nworkers;
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < nworkers; i++) {
		bool moved = false;

		co_task_init(&ws[i], worker_main, worker_ended, r);
		if (co_start(&ws[i], &moved) != ENR_OK) {
			pthread_mutex_lock(&r->mu);
			r->running -= nworkers - i;
			pthread_mutex_unlock(&r->mu);
			break;
		}
		started++;
		if (!moved)
			worker_ended(&ws[i]);
	}
	if (started == 0) {
		eb_say("cannot start the workers: out of memory");
		svc_engine_stop(&r->svc);
		free(ws);
		return ENR_E_NOMEM;
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
	svc_engine_stop(&r->svc);
	free(ws);
	return ENR_OK;
}
