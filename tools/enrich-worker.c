/*
 * enrich-worker - the batch daemon: claims rows of queued jobs under a
 * lease, enriches them through the same waterfall, cache and key pool as
 * the responder, writes each result as soon as it has it, and sends the
 * signed completion webhooks.
 *
 * Any number of workers, on any host sharing the store, may run at once:
 * a row is claimed by one worker under a lease that a heartbeat renews; a
 * row whose worker died is claimed again when its lease expires; every
 * change a worker makes is guarded by state and owner.  Provider pacing
 * lives in the store, so all workers together stay under each key's limit.
 *
 * Signals: SIGTERM/SIGINT stop claiming, let rows in flight finish within
 * worker.grace_s, give every row still held back to the queue, exit 0.
 * SIGHUP reloads the configuration.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/admission.h"
#include "lib/cli.h"
#include "lib/co.h"
#include "lib/config.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/service.h"
#include "lib/store.h"
#include "lib/upstream.h"
#include "lib/util.h"
#include "lib/waterfall.h"
#include "lib/webhook.h"

#define DEFAULT_CONF CLI_DEFAULT_CONF
#define QUEUE_MAX 1024
#define JOB_CACHE 32
#define HOOK_LEASE_MS 60000
#define HOOK_JOIN_S 5         /* how long stopping waits for a webhook being sent */

static struct svc svc;
static struct store *store; /* svc.store, for short */
static struct adm *credits; /* svc.adm: credits spent, journalled */
static char owner[128];
/* Set by the main thread at SIGTERM/SIGINT (taken with sigtimedwait, not
 * in a handler), read by every thread. */
static atomic_bool stopping;

/* Rows claimed and not yet started.  qcond's timed waits are on the
 * monotonic clock (util_cond_init in main). */
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond;
static struct st_claim queue[QUEUE_MAX];
static int qhead, qlen, busy;        /* busy: rows being processed */
static int busy_groups, concurrency_total; /* groups of rows in flight; rows at once */

/* Rows this worker holds: claimed and neither finished nor given back.  The
 * heartbeat renews exactly these leases, so a row dropped here (its result
 * could not be written) is not kept "running" by a heartbeat. */
static pthread_mutex_t hlock = PTHREAD_MUTEX_INITIALIZER;
static struct st_row_ref *held;
static int nheld, aheld;

/* Rows whose result could not be written and whose give-back failed too
 * (the store is down): the main loop tries to give them back again until
 * their lease has run out, after which any worker claims them anyway. */
#define GIVEBACK_MAX 1024
static struct giveback {
	struct st_row_ref ref;
	int64_t lease_until_ms;
} giveback[GIVEBACK_MAX];
static int ngiveback;

/* A few jobs' descriptions, so a row does not cost a job lookup. */
static pthread_mutex_t jlock = PTHREAD_MUTEX_INITIALIZER;
static struct st_job jobs[JOB_CACHE];
static int njobs, jnext;

static const char usage_text[] =
	"usage: enrich-worker [-c FILE] [--concurrency N]\n"
	"  -c, --config FILE  configuration (default: $ENRICHD_CONF or " DEFAULT_CONF ")\n"
	"  --concurrency N    rows processed at once (default: worker.concurrency)\n"
	"  -V, --version      print the version and exit\n"
	"  -h, --help         this text\n";

static enum enr_err option(void *arg, int opt, const char *val, char *why, size_t whylen)
{
	if (opt != 'n')
		return ENR_E_INVALID;
	if (util_parse_i64(val, 1, 1024, arg) != ENR_OK) {
		snprintf(why, whylen, "--concurrency takes 1 to 1024");
		return ENR_E_INVALID;
	}
	return ENR_OK;
}

static enum enr_err job_of(int64_t seq, struct st_job *out)
{
	enum enr_err rc;

	pthread_mutex_lock(&jlock);
	for (int i = 0; i < njobs; i++) {
		if (jobs[i].seq == seq) {
			*out = jobs[i];
			out->columns = strdup(jobs[i].columns);
			pthread_mutex_unlock(&jlock);
			return out->columns ? ENR_OK : ENR_E_NOMEM;
		}
	}
	pthread_mutex_unlock(&jlock);
	rc = st_job_by_seq(store, seq, out);
	if (rc)
		return rc;
	pthread_mutex_lock(&jlock);
	{
		struct st_job *slot = &jobs[jnext];

		if (njobs == JOB_CACHE)
			st_job_release(slot);
		else
			njobs++;
		*slot = *out;
		slot->columns = strdup(out->columns);
		if (slot->columns == NULL)
			slot->seq = -1;
		jnext = (jnext + 1) % JOB_CACHE;
	}
	pthread_mutex_unlock(&jlock);
	return ENR_OK;
}

static bool held_add(int64_t seq, int64_t rownum)
{
	bool ok = true;

	pthread_mutex_lock(&hlock);
	if (nheld == aheld) {
		int n = aheld ? aheld * 2 : 64;
		struct st_row_ref *p = realloc(held, (size_t)n * sizeof *p);

		if (p) {
			held = p;
			aheld = n;
		}
	}
	if (nheld < aheld)
		held[nheld++] = (struct st_row_ref){ seq, rownum };
	else
		ok = false;
	pthread_mutex_unlock(&hlock);
	return ok;
}

static void held_drop(int64_t seq, int64_t rownum)
{
	pthread_mutex_lock(&hlock);
	for (int i = 0; i < nheld; i++) {
		if (held[i].seq == seq && held[i].rownum == rownum) {
			held[i] = held[--nheld];
			break;
		}
	}
	pthread_mutex_unlock(&hlock);
}

/* Renew the leases of the rows still held. */
static void heartbeat(const struct cfg *cfg, int64_t now)
{
	struct st_row_ref *rows = NULL;
	int n, renewed = 0;
	enum enr_err rc;

	pthread_mutex_lock(&hlock);
	n = nheld;
	if (n > 0 && (rows = malloc((size_t)n * sizeof *rows)) != NULL)
		memcpy(rows, held, (size_t)n * sizeof *rows);
	pthread_mutex_unlock(&hlock);
	if (n > 0 && rows == NULL) {
		log_error("worker", "heartbeat: out of memory; leases of %d rows not renewed", n);
		return;
	}
	rc = st_rows_heartbeat(store, owner, now + (int64_t)cfg->worker.lease_s * 1000, rows, n,
			       &renewed);
	if (rc)
		log_warn("worker", "heartbeat of %d rows failed (%s): their leases run out in %d s "
			 "unless the next one succeeds", n, enr_strerror(rc), cfg->worker.lease_s);
	free(rows);
}

/* The row's result could not be written: it is no longer held (no more
 * heartbeats) and goes back to the queue after a back-off, spending an
 * attempt so a row that can never be stored ends failed.  When the store
 * refuses that too, the main loop tries again while the lease lasts. */
static void give_back(const struct cfg *cfg, const struct st_claim *cl, enum enr_err why)
{
	int64_t now = util_now_ms();
	int64_t backoff = (int64_t)cfg->worker.backoff_base_ms << (cl->attempts < 10 ? cl->attempts : 10);
	enum enr_err rc;

	held_drop(cl->seq, cl->rownum);
	if (backoff > cfg->worker.backoff_max_ms || backoff <= 0)
		backoff = cfg->worker.backoff_max_ms;
	rc = st_row_requeue(store, cl->seq, cl->rownum, owner, now + backoff, true, "unavailable",
			    "the result could not be stored; given back to the queue");
	if (rc == ENR_OK) {
		log_warn("worker", "job %lld row %lld: %s; given back to the queue",
			 (long long)cl->seq, (long long)cl->rownum, enr_strerror(why));
		return;
	}
	if (rc == ENR_E_CONFLICT)
		return; /* no longer ours: its lease ran out and someone else has it */
	log_error("worker", "job %lld row %lld: %s, and it could not be given back (%s); "
		  "retrying while its lease lasts", (long long)cl->seq, (long long)cl->rownum,
		  enr_strerror(why), enr_strerror(rc));
	pthread_mutex_lock(&hlock);
	if (ngiveback < GIVEBACK_MAX)
		giveback[ngiveback++] = (struct giveback){ { cl->seq, cl->rownum },
							   now + (int64_t)cfg->worker.lease_s * 1000 };
	pthread_mutex_unlock(&hlock);
}

/* Main loop: give back what could not be given back before. */
static void retry_givebacks(const struct cfg *cfg)
{
	struct giveback todo[GIVEBACK_MAX];
	int n;

	pthread_mutex_lock(&hlock);
	n = ngiveback;
	memcpy(todo, giveback, (size_t)n * sizeof todo[0]);
	ngiveback = 0;
	pthread_mutex_unlock(&hlock);
	for (int i = 0; i < n; i++) {
		int64_t now = util_now_ms();
		enum enr_err rc;

		/* A second before the lease ends, stop: the row is anyone's then,
		 * ours included, and a late give-back must not take it from a
		 * thread that claimed it again. */
		if (now + 1000 >= todo[i].lease_until_ms)
			continue;
		rc = st_row_requeue(store, todo[i].ref.seq, todo[i].ref.rownum, owner,
				    now + cfg->worker.backoff_base_ms, true, "unavailable",
				    "the result could not be stored; given back to the queue");
		if (rc == ENR_OK)
			log_notice("worker", "job %lld row %lld given back to the queue",
				   (long long)todo[i].ref.seq, (long long)todo[i].ref.rownum);
		if (rc == ENR_OK || rc == ENR_E_CONFLICT)
			continue;
		pthread_mutex_lock(&hlock);
		if (ngiveback < GIVEBACK_MAX)
			giveback[ngiveback++] = todo[i];
		pthread_mutex_unlock(&hlock);
	}
}

/* Whether a provider of cfg makes bulk calls for batches: then threads
 * take rows in groups and the worker claims enough to fill them. */
static bool bulk_configured(const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->nproviders; i++) {
		if (cfg->providers[i].enabled && cfg->providers[i].bulk.enabled)
			return true;
	}
	return false;
}

/* Rows the worker keeps in hand: one per thread, or a group each. */
static int capacity(const struct cfg *cfg, int nthreads)
{
	int64_t c = nthreads;

	if (bulk_configured(cfg))
		c *= cfg->worker.batch_rows;
	return c < QUEUE_MAX ? (int)c : QUEUE_MAX;
}

/* One claimed row while its group runs. */
struct row {
	struct st_claim cl;
	struct st_job job;
	bool have_job;
	bool run;                /* goes through the waterfall */
	struct rec rec;
	struct wf_result res;
	char why[256];
	enum enr_err rc;         /* the row's outcome so far */
	bool ended;
};

/* Before the waterfall: the row's job and record; rows that end here
 * (out of attempts, invalid) are finished at once. */
static void row_prepare(const struct cfg *cfg, struct row *w)
{
	w->rc = job_of(w->cl.seq, &w->job);
	if (w->rc) {
		log_error("worker", "job %lld: %s", (long long)w->cl.seq, enr_strerror(w->rc));
		return;
	}
	w->have_job = true;
	if (w->cl.attempts >= cfg->worker.max_attempts) {
		/* Only give-backs take a row this far: its result could not be
		 * stored on any attempt.  It ends failed (and retryable). */
		snprintf(w->why, sizeof w->why, "the result could not be stored (%d attempts)",
			 w->cl.attempts);
		w->rc = st_row_finish(store, w->cl.seq, w->cl.rownum, owner, ST_ROW_FAILED, 0, NULL,
				      "unavailable", w->why, 0, util_now_ms(), &w->ended);
		return;
	}
	w->rc = job_row_record(&w->job, w->cl.input, cfg, svc.lists, &w->rec, w->why, sizeof w->why);
	if (w->rc == ENR_E_INVALID) {
		w->rc = st_row_finish(store, w->cl.seq, w->cl.rownum, owner, ST_ROW_INVALID, 0, NULL,
				      "invalid_request", w->why, 0, util_now_ms(), &w->ended);
		return;
	}
	w->run = w->rc == ENR_OK;
}

/* After the waterfall: credits, then the row's result, requeue or
 * failure. */
static void row_finish(const struct cfg *cfg, struct row *w)
{
	struct wf_result *res = &w->res;
	int64_t now = util_now_ms(), not_before = 0;
	enum enr_err rc;

	/* Credits go to the journal first (a crash from here on loses
	 * nothing); the group flushes them to the store before its rows are
	 * finished, so a finished job's usage is complete. */
	if (res->credits > 0 &&
	    (rc = adm_add_credits(credits, w->job.account_id, res->credits, now)) != ENR_OK)
		log_error("worker", "job %s row %lld: %d credits spent could not be counted: %s",
			  w->job.id, (long long)w->cl.rownum, res->credits, enr_strerror(rc));
	switch (job_decide(res, w->cl.attempts, cfg, now, util_jitter(), &not_before)) {
	case JOB_ROW_DONE: {
		char *result = job_result_json(res);

		/* A leniently read CSV row says what it ignored in _error. */
		w->rc = st_row_finish(store, w->cl.seq, w->cl.rownum, owner, ST_ROW_DONE,
				      (int)res->status + 1, result, NULL, w->why[0] ? w->why : NULL,
				      res->credits, now, &w->ended);
		free(result);
		break;
	}
	case JOB_ROW_SNOOZE:
		w->rc = st_row_requeue(store, w->cl.seq, w->cl.rownum, owner, not_before, false,
				       "unavailable", res->budget_exceeded
						      ? "the account's credit budget is spent; "
							"waiting for its reset"
						      : "no provider key usable; waiting for one");
		break;
	case JOB_ROW_RETRY:
		job_error_text(res, w->cl.attempts + 1, w->why, sizeof w->why);
		w->rc = st_row_requeue(store, w->cl.seq, w->cl.rownum, owner, not_before, true,
				       job_error_code(res), w->why);
		break;
	case JOB_ROW_FAIL: {
		/* What was found is kept; the row is incomplete and retryable. */
		char *result = job_result_json(res);

		job_error_text(res, w->cl.attempts + 1, w->why, sizeof w->why);
		w->rc = st_row_finish(store, w->cl.seq, w->cl.rownum, owner, ST_ROW_FAILED,
				      (int)res->status + 1, result, job_error_code(res), w->why,
				      res->credits, now, &w->ended);
		free(result);
		break;
	}
	}
}

/* What happened to the row is settled: it is no longer held, or it goes
 * back to the queue when its state could not be written. */
static void row_close(const struct cfg *cfg, struct row *w)
{
	const char *id = w->have_job ? w->job.id : "?";

	if (w->rc == ENR_OK) {
		held_drop(w->cl.seq, w->cl.rownum);
	} else if (w->rc == ENR_E_CONFLICT) {
		held_drop(w->cl.seq, w->cl.rownum);
		log_warn("worker", "job %s row %lld: lease lost, result dropped", id,
			 (long long)w->cl.rownum);
	} else {
		/* The store (or memory) failed: never leave the row running. */
		log_error("worker", "job %s row %lld: %s", id, (long long)w->cl.rownum,
			  enr_strerror(w->rc));
		give_back(cfg, &w->cl, w->rc);
	}
	if (w->ended)
		log_notice("worker", "job %s finished", id);
}

/* A group of claimed rows, run together: their lookups go out in rounds,
 * so rows of one company share its lookup and person lookups of a bulk
 * provider share bulk calls. */
static void process(const struct cfg *cfg, struct st_claim *claims, int n)
{
	struct row *rows = calloc((size_t)n, sizeof *rows);
	struct wf_job *wj = calloc((size_t)n, sizeof *wj);
	struct wf_ctx ctx;
	size_t nj = 0;
	enum enr_err rc;

	if (rows == NULL || wj == NULL) {
		log_error("worker", "out of memory for %d rows: given back", n);
		for (int i = 0; i < n; i++)
			give_back(cfg, &claims[i], ENR_E_NOMEM);
		free(rows);
		free(wj);
		return;
	}
	for (int i = 0; i < n; i++) {
		rows[i].cl = claims[i];
		rec_init(&rows[i].rec);
		wf_result_init(&rows[i].res);
		row_prepare(cfg, &rows[i]);
		if (rows[i].run)
			wj[nj++] = (struct wf_job){ &rows[i].rec, rows[i].job.want,
						    rows[i].job.account_id, &rows[i].res };
	}
	memset(&ctx, 0, sizeof ctx);
	ctx.store = store;
	ctx.cfg = cfg;
	ctx.pctx = &svc.pctx;
	ctx.endpoint = CFG_EP_ENQUEUE;
	/* Rows may wait for paced keys, but must end well inside their lease. */
	ctx.deadline_mono_ms = util_deadline_in((int64_t)cfg->worker.lease_s * 500);
	rc = nj ? wf_run_many(&ctx, wj, nj) : ENR_OK;
	for (int i = 0; i < n; i++) {
		if (!rows[i].run)
			continue;
		if (rc)
			rows[i].rc = rc;
		else
			row_finish(cfg, &rows[i]);
	}
	/* The group's credits reach the store before anyone reads the rows. */
	if (nj && (rc = adm_flush(credits, util_now_ms())) != ENR_OK)
		log_warn("worker", "credits not written yet (%s); the journal keeps them",
			 enr_strerror(rc));
	for (int i = 0; i < n; i++) {
		row_close(cfg, &rows[i]);
		wf_result_release(&rows[i].res);
		rec_release(&rows[i].rec);
		if (rows[i].have_job)
			st_job_release(&rows[i].job);
	}
	free(rows);
	free(wj);
}

/* Rows a thread takes at once: one, unless a provider makes bulk calls;
 * then the queue's rows spread over the idle threads, at most
 * worker.batch_rows each. */
static int group_size(const struct cfg *cfg, int idle)
{
	int k;

	if (!bulk_configured(cfg))
		return 1;
	k = idle > 0 ? (qlen + idle - 1) / idle : qlen;
	if (k < 1)
		k = 1;
	return k < cfg->worker.batch_rows ? k : cfg->worker.batch_rows;
}

/* A group of rows in flight: a continuation (lib/co.h) that starts on the
 * main thread and waits on the engine's loop, so rows in flight cost no
 * thread each. */
struct group {
	struct co_task co;
	struct cfg *cfg;
	struct st_claim *cl;
	int n;
};

static void group_body(struct co_task *t)
{
	struct group *g = t->arg;

	process(g->cfg, g->cl, g->n);
}

static void group_free(struct group *g)
{
	cfg_release(g->cfg);
	for (int i = 0; i < g->n; i++)
		free(g->cl[i].input);
	pthread_mutex_lock(&qlock);
	busy -= g->n;
	busy_groups--;
	pthread_cond_broadcast(&qcond);
	pthread_mutex_unlock(&qlock);
	free(g->cl);
	free(g);
}

static void group_ended(struct co_task *t)
{
	group_free(t->arg);
}

/* Start groups of queued rows while fewer than the concurrency are in
 * flight (main thread). */
static void start_rows(void)
{
	for (;;) {
		struct group *g;
		bool moved = false;
		int n;

		pthread_mutex_lock(&qlock);
		if (qlen == 0 || busy_groups >= concurrency_total || stopping) {
			pthread_mutex_unlock(&qlock);
			return;
		}
		g = calloc(1, sizeof *g);
		if (g == NULL) {
			pthread_mutex_unlock(&qlock);
			log_error("worker", "out of memory for a group of rows: trying again shortly");
			return;
		}
		g->cfg = cfg_acquire();
		n = group_size(g->cfg, concurrency_total - busy_groups);
		g->cl = calloc((size_t)n, sizeof *g->cl);
		if (g->cl == NULL) {
			pthread_mutex_unlock(&qlock);
			cfg_release(g->cfg);
			free(g);
			log_error("worker", "out of memory for a group of rows: trying again shortly");
			return;
		}
		for (int i = 0; i < n; i++) {
			g->cl[i] = queue[qhead];
			qhead = (qhead + 1) % QUEUE_MAX;
			qlen--;
		}
		g->n = n;
		busy += n;
		busy_groups++;
		pthread_mutex_unlock(&qlock);

		co_task_init(&g->co, group_body, group_ended, g);
		if (co_start(&g->co, &moved) != ENR_OK) {
			/* No fiber for it: the rows run here, waits and all. */
			process(g->cfg, g->cl, g->n);
			moved = false;
		}
		if (!moved)
			group_free(g);
	}
}

/* Record a delivery attempt, trying a few times: when it cannot be written,
 * the claim's lease runs out and the webhook is sent again (a receiver may
 * see it twice, it is signed and carries the job id). */
static void hook_state(const struct st_job *job, enum st_hook_state state, int64_t next_ms)
{
	enum enr_err rc = ENR_OK;

	for (int i = 0; i < 3; i++) {
		rc = st_webhook_result(store, job->seq, state, next_ms);
		if (rc == ENR_OK || !util_sleep_ms_unless(200 << i, &stopping))
			break;
	}
	if (rc == ENR_OK)
		return;
	log_error("worker", "job %s: the webhook's state could not be recorded (%s); it will be "
		  "sent again when its claim runs out", job->id, enr_strerror(rc));
}

static void deliver_webhooks(const struct cfg *cfg)
{
	int64_t seqs[8];
	int n = 0;

	if (st_webhooks_due(store, util_now_ms(), 8, seqs, &n) != ENR_OK)
		return;
	for (int i = 0; i < n; i++) {
		struct st_job job;
		json_t *body;
		char *text, why[160] = "";
		int status = 0;
		enum enr_err rc;
		bool mine = false;
		int64_t now = util_now_ms();

		if (st_webhook_claim(store, seqs[i], now, now + HOOK_LEASE_MS, &mine) != ENR_OK || !mine)
			continue;
		if (st_job_by_seq(store, seqs[i], &job) != ENR_OK)
			continue;
		body = job_status_json(store, &job, now);
		text = body ? json_dumps(body, JSON_COMPACT) : NULL;
		json_decref(body);
		rc = text ? wh_post(cfg, job.webhook_url, text, "job.finished", &status, why, sizeof why)
			  : ENR_E_NOMEM;
		if (rc == ENR_OK) {
			hook_state(&job, ST_HOOK_SENT, 0);
			log_info("worker", "job %s: webhook delivered (%d)", job.id, status);
		} else if (rc == ENR_E_INVALID || job.webhook_attempts + 1 >= cfg->webhooks.max_attempts) {
			/* A refused URL or address will not get better by waiting. */
			hook_state(&job, ST_HOOK_GAVE_UP, 0);
			log_warn("worker", "job %s: webhook given up after %d attempts: %s", job.id,
				 job.webhook_attempts + 1, why);
		} else {
			hook_state(&job, ST_HOOK_PENDING,
				   now + wh_backoff_ms(job.webhook_attempts + 1, util_jitter()));
			log_warn("worker", "job %s: webhook attempt %d failed: %s", job.id,
				 job.webhook_attempts + 1, why);
		}
		free(text);
		st_job_release(&job);
	}
}

static void *hook_thread(void *arg)
{
	(void)arg;
	while (!stopping) {
		struct cfg *cfg = cfg_acquire();

		deliver_webhooks(cfg);
		cfg_release(cfg);
		util_sleep_ms_unless(500, &stopping);
	}
	up_thread_cleanup();
	st_thread_release(store);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "concurrency", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t concurrency = 0;
	const struct cli_spec spec = { "enrich-worker", usage_text, "", longopts, false, option,
				       &concurrency };
	struct cli cl;
	const char *path;
	char err[LIM_CONFIG_ERR_MAX], why[512], host[64] = "host";
	struct cfg *cfg = NULL;
	pthread_t hooks;
	sigset_t set;
	int64_t last_beat = 0, poll = 500;
	int c, sig, nthreads;
	enum enr_err rc;
	unsigned char rnd[4];

	switch (cli_parse(&spec, argc, argv, &cl)) {
	case CLI_RUN: break;
	case CLI_EXIT_OK: fputs(cl.text, stdout); return 0;
	default: fprintf(stderr, "%s%s", cl.error, cl.text); return 2;
	}
	path = cl.config;
	if (cfg_load(path, &cfg, err, sizeof err) != ENR_OK) {
		fprintf(stderr, "enrich-worker: %s\n", err);
		return 1;
	}
	log_set_level(cfg->log_level);
	log_set_format(cfg->log_format);
	signal(SIGPIPE, SIG_IGN);
	{
		const struct svc_opts o = { .keys = true, .http = true, .admission = true,
					    .leases = true };

		if (svc_open(cfg, &o, &svc, why, sizeof why) != ENR_OK) {
			fprintf(stderr, "enrich-worker: %s\n", why);
			return 1;
		}
	}
	store = svc.store;
	credits = svc.adm;
	gethostname(host, sizeof host - 1);
	if (util_random(rnd, sizeof rnd) != ENR_OK) {
		/* host:pid already tells running workers apart; the random part
		 * only tells a restarted one with a reused pid from its
		 * predecessor, which the start time does as well. */
		uint64_t t = (uint64_t)util_now_ms();

		memcpy(rnd, &t, sizeof rnd);
	}
	snprintf(owner, sizeof owner, "%s:%d:%02x%02x%02x%02x", host, (int)getpid(), rnd[0], rnd[1],
		 rnd[2], rnd[3]);
	nthreads = concurrency ? (int)concurrency : cfg->worker.concurrency;
	concurrency_total = nthreads;
	/* Signals go to the main thread only: blocked before any thread starts. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* Rows in flight wait on the engine's loop, not on threads of their own. */
	rc = svc_engine_start(&svc, cfg);
	if (rc) {
		log_error("worker", "cannot start the engine: %s", enr_strerror(rc));
		_exit(1);
	}
	cfg_publish(cfg);

	if (util_cond_init(&qcond) != ENR_OK) {
		log_error("worker", "out of memory at start");
		return 1;
	}
	if ((c = pthread_create(&hooks, NULL, hook_thread, NULL)) != 0) {
		log_error("worker", "cannot start the webhook thread: %s", strerror(c));
		_exit(1);
	}
	log_notice("worker", "enrich-worker %s started with %d rows at a time", owner, nthreads);

	for (;;) {
		struct st_claim got[QUEUE_MAX];
		int want, n = 0;
		int64_t now = util_now_ms();

		cfg = cfg_acquire();
		if (now - last_beat >= (int64_t)cfg->worker.heartbeat_s * 1000) {
			heartbeat(cfg, now);
			retry_givebacks(cfg);
			svc_flush(&svc);
			last_beat = now;
		}
		pthread_mutex_lock(&qlock);
		want = capacity(cfg, nthreads) - qlen - busy;
		if (want > QUEUE_MAX - qlen)
			want = QUEUE_MAX - qlen;
		pthread_mutex_unlock(&qlock);
		if (want > cfg->worker.claim_batch)
			want = cfg->worker.claim_batch;
		if (want > 0 && st_rows_claim(store, owner, now, (int64_t)cfg->worker.lease_s * 1000,
					      want, got, &n) == ENR_OK && n > 0) {
			/* Held before queued: a thread may finish a row at once. */
			for (int i = 0; i < n; i++) {
				if (!held_add(got[i].seq, got[i].rownum))
					log_error("worker", "out of memory: row %lld of job %lld "
						  "will not be heartbeated", (long long)got[i].rownum,
						  (long long)got[i].seq);
			}
			pthread_mutex_lock(&qlock);
			for (int i = 0; i < n; i++)
				queue[(qhead + qlen++) % QUEUE_MAX] = got[i];
			pthread_mutex_unlock(&qlock);
		}
		start_rows();
		poll = cfg->worker.poll_ms;
		cfg_release(cfg);
		if (want <= 0) {
			/* Every thread has a row: wait until one is free (woken or
			 * timed out alike, the loop looks again). */
			pthread_mutex_lock(&qlock);
			if (qlen + busy >= capacity(cfg, nthreads) || qlen >= QUEUE_MAX)
				(void)util_cond_wait_ms(&qcond, &qlock, 100);
			pthread_mutex_unlock(&qlock);
			start_rows();
			sig = sigtimedwait(&set, NULL, &(struct timespec){ 0, 0 });
		} else if (n > 0) {
			sig = sigtimedwait(&set, NULL, &(struct timespec){ 0, 0 });
		} else {
			sig = sigtimedwait(&set, NULL,
					   &(struct timespec){ poll / 1000, (long)(poll % 1000) * 1000000L });
		}
		if (sig == SIGHUP) {
			enr_ignore(svc_reload(&svc, path));
		} else if (sig == SIGTERM || sig == SIGINT) {
			break;
		}
	}

	log_notice("worker", "stopping on signal %d: finishing rows in flight", sig);
	cfg = cfg_acquire();
	{
		int64_t deadline = util_deadline_in((int64_t)cfg->worker.grace_s * 1000);
		int released = 0, stuck;
		struct timespec until;

		atomic_store(&stopping, true);
		pthread_mutex_lock(&qlock);
		pthread_cond_broadcast(&qcond);
		while (busy > 0 && !util_deadline_passed(deadline)) {
			pthread_mutex_unlock(&qlock);
			util_sleep_ms(20);
			pthread_mutex_lock(&qlock);
		}
		pthread_mutex_unlock(&qlock);
		/* Rows never started and rows still running go back to the queue;
		 * if the store will not take that, their leases run out instead. */
		for (int i = 0; i < 3; i++) {
			rc = st_rows_release(store, owner, &released);
			if (rc == ENR_OK)
				break;
			util_sleep_ms(200 << i);
		}
		if (rc)
			log_error("worker", "rows held could not be given back (%s): they are claimed "
				  "again when their leases run out (%d s)", enr_strerror(rc),
				  cfg->worker.lease_s);
		/* Rows still running after the grace keep the engine, and a
		 * webhook being sent keeps the store: then only what is counted
		 * in memory is written before _exit. */
		pthread_mutex_lock(&qlock);
		stuck = busy;
		pthread_mutex_unlock(&qlock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += HOOK_JOIN_S;
		if (stuck == 0 && pthread_timedjoin_np(hooks, NULL, &until) == 0) {
			svc_close(&svc);
			credits = NULL;
			store = NULL;
		} else {
			svc_flush(&svc);
		}
		log_notice("worker", "stopped; %d rows given back to the queue", released);
	}
	cfg_release(cfg);
	_exit(0);
}
