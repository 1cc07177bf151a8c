/*
 * enrich-batch - enrich a CSV file on the engine of the service.
 *
 *   enrich-batch --input data.csv --output data_enriched.csv [--workers N] ...
 *
 * The same configuration, store (key pool and cache) and waterfall as
 * enrichd: every input row is normalised (lib/record, read leniently like
 * a CSV job: lib/jobs) and run through wf_run() by one of --workers
 * threads, with the batch endpoint's rotation switch; job_decide() (the
 * worker's rule) says whether the result is an answer.  Each finished
 * row goes to a local checkpoint (lib/checkpoint) with the output row it
 * produced; the output file is built from the checkpoint in input order
 * once every row is done, written to OUTPUT.tmp and renamed, so it is
 * always complete and never holds a row twice, however often the run was
 * interrupted and resumed.  docs/enrich-batch.md describes the options,
 * the output columns and the files.
 *
 * This file: options, set-up and the course of a run.  The other parts
 * are listed in batch.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cli.h"
#include "lib/enrich.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/util.h"

#include "batch.h"

static const char usage_text[] =
	"usage: enrich-batch --input FILE --output FILE [options]\n"
	"\n"
	"  -i, --input FILE       the CSV to enrich (header row; identifier columns such as\n"
	"                         email, domain, company, linkedin url, first/last name, phone)\n"
	"  -o, --output FILE      the enriched CSV (written as FILE.tmp, renamed when complete)\n"
	"  -c, --config FILE      configuration (default: $ENRICHD_CONF or " DEFAULT_CONF ")\n"
	"  -f, --fields a,b,c     fields to enrich (default: all)\n"
	"  -w, --workers N        rows enriched at once (default: worker.concurrency)\n"
	"  -n, --limit N          only the first N rows: try a file before the full run, which\n"
	"                         then continues with --resume\n"
	"      --sources          add a _source column (field=provider for each value found)\n"
	"      --confidence       add a _confidence column (lowest confidence of the values)\n"
	"      --formulas=raw     write cells as they are; by default a cell that starts with\n"
	"                         =, +, -, @, a tab or a CR gets a ' in front, so a spreadsheet\n"
	"                         shows it instead of running it (--formulas=neutralise)\n"
	"      --checkpoint FILE  progress file (default: OUTPUT.checkpoint)\n"
	"      --resume           continue the run the checkpoint belongs to\n"
	"      --retry-failed     continue it and run its failed rows again\n"
	"      --allow-failures   exit 0 even when rows failed\n"
	"      --dry-run          count the calls and credits it would take; call nobody,\n"
	"                         write no output\n"
	"      --report FILE      write a JSON report at the end\n"
	"      --errors FILE      write failed and invalid rows as CSV (row,line,status,code,reason)\n"
	"      --deadline-ms N    bound on one row's provider walk (default 30000)\n"
	"      --max-key-wait S   seconds a row may wait for a rate-limited key pool (default 60;\n"
	"                         0: record the row as failed at once)\n"
	"      --max-bytes N      largest input accepted (default 268435456)\n"
	"      --progress-interval S  seconds between progress lines when standard error is\n"
	"                         not a terminal (default 5)\n"
	"  -V, --version          print the version\n"
	"  -h, --help             this text\n"
	"\n"
	"Exit status: 0 every row processed and none failed, 1 fatal error, 2 wrong usage,\n"
	"3 some rows failed (retry them with --retry-failed; --allow-failures makes this 0),\n"
	"130/143 interrupted (resume with --resume).\n";

atomic_int eb_stop_signal;

/* Print what is wrong with the command line, then the usage.  Returns
 * ENR_E_INVALID, the "wrong usage" of every check below. */
__attribute__((format(printf, 1, 2)))
static enum enr_err usage_error(const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fputs(PROG ": ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fputs(usage_text, stderr);
	return ENR_E_INVALID;
}

/* First signal: stop taking rows.  Second: leave at once; the checkpoint
 * holds only committed rows, so it stays consistent. */
static void on_signal(int sig)
{
	static const char msg[] =
		"\n" PROG ": stopped at once; the checkpoint keeps every committed row\n";

	if (eb_stop_signal) {
		ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);

		(void)w;
		_exit(128 + sig);
	}
	eb_stop_signal = sig;
}

/* ---- options -------------------------------------------------------------- */

enum {
	O_CHECKPOINT = 256,
	O_RESUME,
	O_RETRY_FAILED,
	O_DRY_RUN,
	O_REPORT,
	O_ERRORS,
	O_DEADLINE_MS,
	O_KEY_WAIT,
	O_MAX_BYTES,
	O_PROGRESS,
	O_ALLOW_FAILURES,
	O_SOURCES,
	O_CONFIDENCE,
	O_FORMULAS
};

static const struct option long_opts[] = {
	{ "input", required_argument, NULL, 'i' },
	{ "output", required_argument, NULL, 'o' },
	{ "fields", required_argument, NULL, 'f' },
	{ "workers", required_argument, NULL, 'w' },
	{ "limit", required_argument, NULL, 'n' },
	{ "sources", no_argument, NULL, O_SOURCES },
	{ "confidence", no_argument, NULL, O_CONFIDENCE },
	{ "formulas", required_argument, NULL, O_FORMULAS },
	{ "checkpoint", required_argument, NULL, O_CHECKPOINT },
	{ "resume", no_argument, NULL, O_RESUME },
	{ "retry-failed", no_argument, NULL, O_RETRY_FAILED },
	{ "allow-failures", no_argument, NULL, O_ALLOW_FAILURES },
	{ "dry-run", no_argument, NULL, O_DRY_RUN },
	{ "report", required_argument, NULL, O_REPORT },
	{ "errors", required_argument, NULL, O_ERRORS },
	{ "deadline-ms", required_argument, NULL, O_DEADLINE_MS },
	{ "max-key-wait", required_argument, NULL, O_KEY_WAIT },
	{ "max-bytes", required_argument, NULL, O_MAX_BYTES },
	{ "progress-interval", required_argument, NULL, O_PROGRESS },
	{ NULL, 0, NULL, 0 },
};

static enum enr_err num_arg(const char *opt, const char *s, int64_t min, int64_t max,
			    int64_t *out, char *why, size_t whylen)
{
	if (util_parse_i64(s, min, max, out) == ENR_OK)
		return ENR_OK;
	snprintf(why, whylen, "%s: \"%.64s\" is not a whole number in %lld..%lld", opt, s,
		 (long long)min, (long long)max);
	return ENR_E_INVALID;
}

/* One option of enrich-batch's own (lib/cli.h reads -c, -h and -V). */
static enum enr_err option(void *arg, int c, const char *val, char *why, size_t whylen)
{
	struct eb_opts *o = arg;
	enum enr_err rc = ENR_OK;
	int64_t v = 0;

	switch (c) {
	case 'i': o->input = val; break;
	case 'o': o->output = val; break;
	case 'f': o->fields = val; break;
	case 'w':
		rc = num_arg("--workers", val, 1, WORKERS_MAX, &v, why, whylen);
		o->workers = (int)v;
		break;
	case 'n': rc = num_arg("--limit", val, 1, INT64_MAX, &o->limit, why, whylen); break;
	case O_SOURCES: o->extra |= JOB_COL_SOURCE; break;
	case O_CONFIDENCE: o->extra |= JOB_COL_CONFIDENCE; break;
	case O_FORMULAS:
		/* The words of the job results' ?formulas=. */
		if (strcmp(val, "raw") != 0 && strcmp(val, "neutralise") != 0) {
			snprintf(why, whylen, "--formulas: \"%.64s\" is not neutralise or raw", val);
			return ENR_E_INVALID;
		}
		o->formulas_raw = val[0] == 'r';
		break;
	case O_CHECKPOINT: o->checkpoint = val; break;
	case O_RESUME: o->resume = true; break;
	case O_RETRY_FAILED: o->retry_failed = true; break;
	case O_ALLOW_FAILURES: o->allow_failures = true; break;
	case O_DRY_RUN: o->dry_run = true; break;
	case O_REPORT: o->report = val; break;
	case O_ERRORS: o->errors = val; break;
	case O_DEADLINE_MS:
		rc = num_arg("--deadline-ms", val, DEADLINE_MS_MIN, DEADLINE_MS_MAX, &o->deadline_ms,
			     why, whylen);
		break;
	case O_KEY_WAIT:
		rc = num_arg("--max-key-wait", val, 0, KEY_WAIT_S_MAX, &v, why, whylen);
		o->key_wait_ms = 1000 * v;
		break;
	case O_MAX_BYTES:
		rc = num_arg("--max-bytes", val, 1, LIM_BODY_MAX_CEILING, &o->max_bytes, why, whylen);
		break;
	case O_PROGRESS:
		rc = num_arg("--progress-interval", val, 1, PROGRESS_S_MAX, &v, why, whylen);
		o->progress_ms = 1000 * v;
		break;
	default: return ENR_E_INVALID;
	}
	return rc;
}

/* The options, checked: CLI_RUN, CLI_EXIT_OK (--help, --version: cl->text
 * is to be printed) or CLI_EXIT_USAGE (the usage has been printed). */
static enum cli_next parse_args(int argc, char **argv, struct eb_opts *o, struct cli *cl)
{
	const struct cli_spec spec = { PROG, usage_text, "i:o:f:w:n:", long_opts, false, option, o };
	const char *why = NULL;
	enum cli_next next;

	memset(o, 0, sizeof *o);
	o->deadline_ms = DEFAULT_DEADLINE_MS;
	o->key_wait_ms = DEFAULT_KEY_WAIT_S * 1000;
	o->max_bytes = LIM_BODY_MAX_CEILING;
	o->progress_ms = PROGRESS_S_DEFAULT * 1000;
	next = cli_parse(&spec, argc, argv, cl);
	if (next == CLI_EXIT_USAGE)
		fprintf(stderr, "%s%s", cl->error, cl->text);
	if (next != CLI_RUN)
		return next;
	o->conf = cl->config;
	o->conf_given = cl->config_given;
	if (o->input == NULL || o->input[0] == '\0')
		why = "--input is required";
	else if (!o->dry_run && (o->output == NULL || o->output[0] == '\0'))
		why = "--output is required";
	else if (o->dry_run && (o->resume || o->retry_failed))
		why = "--dry-run reads no checkpoint: drop --resume / --retry-failed";
	if (why == NULL)
		return CLI_RUN;
	usage_error("%s", why);
	return CLI_EXIT_USAGE;
}

/* --fields: names separated by commas, spaces around them allowed. */
static enum enr_err parse_fields(struct eb_run *r)
{
	size_t n = 0;
	char tight[1024], why[160];
	fld_set set;

	if (r->o->fields == NULL) {
		set = FLD_ALL;
	} else {
		for (const char *p = r->o->fields; *p; p++) {
			if (*p == ' ' || *p == '\t')
				continue;
			if (n + 1 >= sizeof tight)
				return usage_error("--fields: too long");
			tight[n++] = *p;
		}
		tight[n] = '\0';
		if (strspn(tight, ",") == n)
			return usage_error("--fields: no field named (fields: %s, ...)", fld_names[0]);
		if (fld_list_parse(tight, n, &set, why, sizeof why) != ENR_OK) {
			struct buf all;
			enum enr_err rc = ENR_OK;

			buf_init(&all, 0);
			for (int f = 0; rc == ENR_OK && f < FLD__MAX; f++)
				rc = buf_printf(&all, "%s%s", f ? ", " : "", fld_names[f]);
			eb_say("--fields: %s; the fields are: %s", why,
			       rc ? "(out of memory)" : buf_cstr(&all));
			buf_release(&all);
			return ENR_E_INVALID;
		}
	}
	r->want = set;
	n = 0;
	r->fields_canon[0] = '\0';
	for (int f = 0; f < FLD__MAX; f++) {
		if (!(set & FLD_BIT(f)))
			continue;
		n += (size_t)snprintf(r->fields_canon + n, sizeof r->fields_canon - n, "%s%s",
				      n ? "," : "", fld_names[f]);
	}
	return ENR_OK;
}

/* Two options naming one file would overwrite each other. */
static enum enr_err check_distinct(const struct eb_opts *o)
{
	const char *names[] = { "--input", "--output", "--checkpoint", "--report", "--errors" };
	const char *paths[] = { o->input, o->output, o->checkpoint, o->report, o->errors };

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		for (size_t k = i + 1; k < sizeof paths / sizeof paths[0]; k++) {
			if (paths[i] && paths[k] &&
			    (strcmp(paths[i], paths[k]) == 0 || eb_same_file(paths[i], paths[k])))
				return usage_error("%s names the same file as %s", names[k], names[i]);
		}
	}
	return ENR_OK;
}

/* ---- set-up -------------------------------------------------------------------- */

static enum enr_err setup_logging(const struct cfg *cfg)
{
	log_set_format(cfg->log_format);
	if (cfg->log_file[0]) {
		int fd = open(cfg->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

		if (fd < 0) {
			eb_say("cannot open the log file %s: %s", cfg->log_file, strerror(errno));
			return ENR_E_IO;
		}
		log_set_fd(fd);
		log_set_level(cfg->log_level);
		return ENR_OK;
	}
	/* Standard error carries the progress: only what needs attention. */
	log_set_level(cfg->log_level > LOG_LVL_WARN ? cfg->log_level : LOG_LVL_WARN);
	return ENR_OK;
}

static enum enr_err open_engine(struct eb_run *r)
{
	/* A dry run loads no secrets, so it must not touch the key pool, and
	 * calls no provider. */
	const struct svc_opts o = { .keys = !r->o->dry_run, .http = !r->o->dry_run };
	char why[1024];
	enum enr_err rc = svc_open(r->cfg, &o, &r->svc, why, sizeof why);

	if (rc) {
		eb_say("%s", why);
		return rc;
	}
	r->store = r->svc.store; /* svc_open warned already when the domain lists did not load */
	return ENR_OK;
}

/* The output's temporary file must have a name. */
static enum enr_err check_output_path(const struct eb_opts *o)
{
	char tmp[PATH_MAX + 8];

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", o->output) >= sizeof tmp)
		return usage_error("--output: path too long");
	return ENR_OK;
}

/* Fail early when the output cannot be written, before paying for rows. */
static enum enr_err check_output_writable(const struct eb_run *r)
{
	char tmp[PATH_MAX + 8];
	struct stat st;
	int fd;

	snprintf(tmp, sizeof tmp, "%s.tmp", r->o->output);
	if (stat(r->o->output, &st) == 0 && S_ISDIR(st.st_mode)) {
		eb_say("cannot write the output %s: it is a directory", r->o->output);
		return ENR_E_IO;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		eb_say("cannot write the output %s: %s", tmp, strerror(errno));
		return ENR_E_IO;
	}
	close(fd);
	unlink(tmp);
	return ENR_OK;
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Everything up to the first row: 0, or the exit status. */
static int prepare(struct eb_run *r, int *nworkers)
{
	const struct eb_opts *o = r->o;
	char err[LIM_CONFIG_ERR_MAX];
	struct csv_row header;

	if (check_distinct(o) || parse_fields(r))
		return EXIT_USAGE;
	if (!o->dry_run && (check_output_path(o) || eb_checkpoint_path(r)))
		return EXIT_USAGE;
	if (cfg_load_flags(o->conf, o->dry_run ? CFG_LOAD_NO_SECRETS : 0, &r->cfg, err,
			   sizeof err) != ENR_OK) {
		eb_say("%s", err);
		return EXIT_FATAL;
	}
	if (setup_logging(r->cfg))
		return EXIT_FATAL;
	*nworkers = o->workers ? o->workers : r->cfg->worker.concurrency;
	if (eb_load_input(r))
		return EXIT_FATAL;
	if (!o->dry_run && check_output_writable(r))
		return EXIT_FATAL;
	if (open_engine(r))
		return EXIT_FATAL;
	if (!o->dry_run && eb_open_checkpoint(r))
		return EXIT_FATAL;
	if (eb_plan_rows(r))
		return EXIT_FATAL;
	est_init(&r->t.est, r->cfg, CFG_EP_ENQUEUE);
	r->reader = csv_reader_new(r->data, r->len);
	if (r->reader == NULL) {
		eb_say("out of memory");
		return EXIT_FATAL;
	}
	/* The workers share one reader, placed past the header. */
	csv_reader_set_pad(r->reader, true);
	if (csv_next(r->reader, &header) != ENR_OK) {
		eb_say("cannot read the input %s", o->input);
		return EXIT_FATAL;
	}
	return 0;
}

/* The end of a dry run: its table and report. */
static int finish_dry_run(struct eb_run *r, int nworkers, double secs, bool interrupted)
{
	int status = eb_dry_run_report(r, nworkers, secs) == ENR_OK ? 0 : EXIT_FATAL;

	if (interrupted) {
		eb_say("interrupted: the dry run counted %lld of %lld %s", (long long)r->t.finished,
		       (long long)r->target, prog_plural(r->target, "row", "rows"));
		status = 128 + eb_stop_signal;
	}
	return status;
}

/* The end of a run: the files, the summary, the checkpoint's fate.
 * Returns the exit status. */
static int finish_run(struct eb_run *r, int nworkers, double secs, bool interrupted)
{
	const struct eb_opts *o = r->o;
	struct ckpt_counts k;
	int64_t left = r->todo_count - r->t.finished;
	int status = 0;
	struct buf cmd;
	bool keep;

	memset(&k, 0, sizeof k);
	buf_init(&cmd, 0);
	if (ckpt_flush(r->ckpt) != ENR_OK || ckpt_counts(r->ckpt, &k) != ENR_OK) {
		eb_say("cannot write the checkpoint %s", r->ckpt_path);
		buf_release(&cmd);
		return EXIT_FATAL;
	}
	if (r->fatal) {
		eb_say("stopped: %s: %s; %lld of %lld rows are in the checkpoint %s", r->fatal_what,
		       enr_strerror(r->fatal), (long long)k.done, (long long)r->rows, r->ckpt_path);
		status = EXIT_FATAL;
		goto report;
	}
	/* A signal that came after the last row changes nothing. */
	if (left > 0) {
		eb_say("%s: %lld of %lld rows done; resume with: %s",
		       interrupted ? "interrupted" : "stopped early",
		       (long long)(r->target - left), (long long)r->target,
		       eb_again_command(r, &cmd, "--resume", true));
		status = interrupted ? 128 + eb_stop_signal : EXIT_FATAL;
		goto report;
	}
	interrupted = false;
	if (eb_write_output(r)) {
		status = EXIT_FATAL;
		goto report;
	}
	if (o->errors && eb_write_errors(r))
		status = EXIT_FATAL;
	eb_summary(r, &k, secs);
	eb_say("output: %s", o->output);
	if (r->target < r->rows) {
		eb_say("--limit: the output holds the first %lld of %lld rows; continue the run with: "
		       "%s", (long long)r->target, (long long)r->rows,
		       eb_again_command(r, &cmd, "--resume", false));
	}
	if (k.state[CKPT_FAILED] > 0) {
		int64_t f = k.state[CKPT_FAILED];

		eb_say("%lld %s for reasons that may pass; run %s again with: %s", (long long)f,
		       f == 1 ? "row failed" : "rows failed", f == 1 ? "it" : "them",
		       eb_again_command(r, &cmd, "--retry-failed", true));
		if (status == 0 && !o->allow_failures)
			status = EXIT_ROWS_FAILED;
	}
report:
	/* A finished run without failures needs no checkpoint; one with
	 * failed rows keeps it for --retry-failed, a limited one for the
	 * rest of the rows. */
	keep = status != 0 || k.state[CKPT_FAILED] > 0 || r->target < r->rows;
	if (o->report && eb_write_report(r, &k, nworkers, interrupted && status != EXIT_FATAL,
					 status, keep, secs)) {
		status = status ? status : EXIT_FATAL;
		keep = true;
	}
	ckpt_close(r->ckpt);
	r->ckpt = NULL;
	if (!keep && ckpt_remove(r->ckpt_path) != ENR_OK)
		eb_say("note: the checkpoint %s of this finished run could not be removed (%s); "
		       "remove it before the next run of this file", r->ckpt_path, strerror(errno));
	buf_release(&cmd);
	return status;
}

int main(int argc, char **argv)
{
	struct eb_opts o;
	struct eb_run r;
	struct cli cl;
	enum cli_next next;
	int nworkers = 1, status;
	bool interrupted;
	double secs;

	next = parse_args(argc, argv, &o, &cl);
	if (next == CLI_EXIT_OK)
		fputs(cl.text, stdout);
	if (next != CLI_RUN)
		return next == CLI_EXIT_OK ? 0 : EXIT_USAGE;
	memset(&r, 0, sizeof r);
	r.o = &o;
	r.log_pipe[0] = r.log_pipe[1] = -1;
	pthread_mutex_init(&r.mu, NULL);
	buf_init(&r.header_line, 0);

	status = prepare(&r, &nworkers);
	if (status)
		goto out;
	catch_signals();
	eb_display_init(&r);
	if (r.base_done)
		eb_say("resuming: %lld of %lld rows done by an earlier run, %lld to go",
		       (long long)r.base_done, (long long)r.target, (long long)r.todo_count);
	else if (!r.tty)
		eb_say("%s %lld %s with %d %s", o.dry_run ? "dry run over" : "enriching",
		       (long long)r.target, prog_plural(r.target, "row", "rows"), nworkers,
		       prog_plural(nworkers, "worker", "workers"));
	r.start_mono_ms = util_mono_ms();
	prog_rate_init(&r.rate, 0, r.start_mono_ms);
	if (r.todo_count > 0 &&
	    eb_run_workers(&r, nworkers < r.todo_count ? nworkers : (int)r.todo_count)) {
		status = EXIT_FATAL;
		goto out;
	}
	secs = (double)(util_mono_ms() - r.start_mono_ms) / 1000.0;
	interrupted = eb_stopping();
	if (r.todo_count > 0)
		eb_progress(&r, true);
	csv_reader_free(r.reader);
	r.reader = NULL;
	if (o.dry_run)
		status = finish_dry_run(&r, nworkers, secs, interrupted);
	else
		status = finish_run(&r, nworkers, secs, interrupted);
out:
	ckpt_close(r.ckpt);
	eb_display_done(&r);
	svc_close(&r.svc); /* key call counters and savings kept in memory are written */
	r.store = NULL;
	cfg_release(r.cfg);
	csv_reader_free(r.reader);
	buf_release(&r.header_line);
	est_release(&r.t.est);
	free(r.todo);
	free(r.cols);
	free(r.data);
	pthread_mutex_destroy(&r.mu);
	return status;
}
