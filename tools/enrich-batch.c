/*
 * enrich-batch - enrich a CSV file on the engine of the service.
 *
 *   enrich-batch --input data.csv --output data_enriched.csv [--workers N] ...
 *
 * The same configuration, store (key pool and cache) and waterfall as
 * enrichd: every input row is normalised (lib/record) and run through
 * wf_run() by one of --workers threads, with the batch endpoint's
 * rotation switch.  Each finished row goes to a local checkpoint
 * (lib/checkpoint) with the output row it produced; the output file is
 * built from the checkpoint in input order once every row is done,
 * written to OUTPUT.tmp and renamed, so it is always complete and never
 * holds a row twice, however often the run was interrupted and resumed.
 * docs/enrich-batch.md describes the options, the output columns and
 * the files.
 *
 * Exit status: 0 every row processed (some may be not found, invalid or
 * failed: the summary says so), 1 a fatal error, 2 wrong usage,
 * 130 / 143 interrupted by SIGINT / SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "lib/alert.h"
#include "lib/buf.h"
#include "lib/checkpoint.h"
#include "lib/config.h"
#include "lib/csv.h"
#include "lib/domains.h"
#include "lib/enrich.h"
#include "lib/fields.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/record.h"
#include "lib/rotation.h"
#include "lib/store.h"
#include "lib/upstream.h"
#include "lib/util.h"
#include "lib/waterfall.h"

#define PROG "enrich-batch"
#define DEFAULT_CONF "/etc/enrichd/enrichd.conf"
#define EXIT_FATAL 1
#define EXIT_USAGE 2

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
#define BAR_WIDTH 24
#define CODE_MAX 48
#define REASON_MAX 256
#define ERROR_CODES_MAX 64

static const char usage_text[] =
	"usage: enrich-batch --input FILE --output FILE [options]\n"
	"\n"
	"  -i, --input FILE       the CSV to enrich (header row; identifier columns such as\n"
	"                         email, domain, company, linkedin url, first/last name, phone)\n"
	"  -o, --output FILE      the enriched CSV (written as FILE.tmp, renamed when complete)\n"
	"  -c, --config FILE      configuration (default: $ENRICHD_CONF or " DEFAULT_CONF ")\n"
	"  -f, --fields a,b,c     fields to enrich (default: all)\n"
	"  -w, --workers N        rows enriched at once (default: worker.concurrency)\n"
	"      --checkpoint FILE  progress file (default: OUTPUT.checkpoint)\n"
	"      --resume           continue the run the checkpoint belongs to\n"
	"      --retry-failed     continue it and run its failed rows again\n"
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
	"  -h, --help             this text\n"
	"\n"
	"Exit status: 0 every row processed, 1 fatal error, 2 wrong usage,\n"
	"130/143 interrupted (resume with --resume).\n";

struct opts {
	const char *input, *output, *conf, *fields, *checkpoint, *report, *errors;
	bool conf_given;
	int workers;        /* 0: from the configuration */
	bool resume, retry_failed, dry_run;
	int64_t deadline_ms;
	int64_t key_wait_ms;
	int64_t max_bytes;
	int64_t progress_ms;
};

struct code_count {
	char code[CODE_MAX];
	int64_t n;
};

/* What one run counts as it goes (under run.mu). */
struct tally {
	int64_t finished;                  /* rows finished by this run */
	int64_t state[CKPT_STATE__MAX];    /* this run's rows by state */
	int64_t credits, calls, cached;
	int64_t inflight;
	/* dry run */
	int64_t dry_cached, dry_local, dry_calls;
	int64_t *dry_provider_rows;        /* per configured provider */
	int64_t *dry_provider_lookups;     /* at most, per configured provider */
	int64_t dry_credits;
	struct code_count codes[ERROR_CODES_MAX];  /* dry run: invalid rows by code */
	int ncodes;
};

struct run {
	const struct opts *o;
	struct cfg *cfg;
	struct store *store;
	struct dom_lists *lists;
	struct prov_ctx pctx;
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
	int64_t rows;
	signed char *todo;              /* per row (1..rows): run it in this run */
	int64_t todo_count;
	int64_t base_done, base_failed; /* rows finished before, not run again */
	struct buf header_line;         /* the output's header row */

	/* shared by the workers */
	pthread_mutex_t mu;
	struct csv_reader *reader;      /* positioned after the header */
	bool input_over;
	int running;                    /* workers not finished */
	enum enr_err fatal;             /* stops the run */
	char fatal_what[REASON_MAX];
	struct tally t;

	int64_t start_mono_ms;
	bool tty;
	bool progress_shown;
};

/* Set by the signal handler, read by every thread (a lock-free atomic is
 * safe in a handler). */
static atomic_int stop_signal;

/* ---- messages ----------------------------------------------------------- */

__attribute__((format(printf, 1, 2)))
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

__attribute__((noreturn))
static void usage_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void usage_fail(const char *fmt, ...)
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
	exit(EXIT_USAGE);
}

/* First signal: stop taking rows.  Second: leave at once; the checkpoint
 * holds only committed rows, so it stays consistent. */
static void on_signal(int sig)
{
	static const char msg[] =
		"\n" PROG ": stopped at once; the checkpoint keeps every committed row\n";

	if (stop_signal) {
		ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);

		(void)w;
		_exit(128 + sig);
	}
	stop_signal = sig;
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
	O_PROGRESS
};

static const struct option long_opts[] = {
	{ "input", required_argument, NULL, 'i' },
	{ "output", required_argument, NULL, 'o' },
	{ "config", required_argument, NULL, 'c' },
	{ "fields", required_argument, NULL, 'f' },
	{ "workers", required_argument, NULL, 'w' },
	{ "checkpoint", required_argument, NULL, O_CHECKPOINT },
	{ "resume", no_argument, NULL, O_RESUME },
	{ "retry-failed", no_argument, NULL, O_RETRY_FAILED },
	{ "dry-run", no_argument, NULL, O_DRY_RUN },
	{ "report", required_argument, NULL, O_REPORT },
	{ "errors", required_argument, NULL, O_ERRORS },
	{ "deadline-ms", required_argument, NULL, O_DEADLINE_MS },
	{ "max-key-wait", required_argument, NULL, O_KEY_WAIT },
	{ "max-bytes", required_argument, NULL, O_MAX_BYTES },
	{ "progress-interval", required_argument, NULL, O_PROGRESS },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int64_t num_arg(const char *opt, const char *s, int64_t min, int64_t max)
{
	int64_t v;

	if (util_parse_i64(s, min, max, &v) != ENR_OK)
		usage_fail("%s: \"%s\" is not a whole number in %lld..%lld", opt, s, (long long)min,
			   (long long)max);
	return v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	int c;

	memset(o, 0, sizeof *o);
	o->deadline_ms = DEFAULT_DEADLINE_MS;
	o->key_wait_ms = DEFAULT_KEY_WAIT_S * 1000;
	o->max_bytes = LIM_BODY_MAX_CEILING;
	o->progress_ms = PROGRESS_S_DEFAULT * 1000;
	o->conf = getenv("ENRICHD_CONF");
	while ((c = getopt_long(argc, argv, "i:o:c:f:w:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'i': o->input = optarg; break;
		case 'o': o->output = optarg; break;
		case 'c': o->conf = optarg; o->conf_given = true; break;
		case 'f': o->fields = optarg; break;
		case 'w': o->workers = (int)num_arg("--workers", optarg, 1, WORKERS_MAX); break;
		case O_CHECKPOINT: o->checkpoint = optarg; break;
		case O_RESUME: o->resume = true; break;
		case O_RETRY_FAILED: o->retry_failed = true; break;
		case O_DRY_RUN: o->dry_run = true; break;
		case O_REPORT: o->report = optarg; break;
		case O_ERRORS: o->errors = optarg; break;
		case O_DEADLINE_MS:
			o->deadline_ms = num_arg("--deadline-ms", optarg, DEADLINE_MS_MIN,
						 DEADLINE_MS_MAX);
			break;
		case O_KEY_WAIT:
			o->key_wait_ms = 1000 * num_arg("--max-key-wait", optarg, 0, KEY_WAIT_S_MAX);
			break;
		case O_MAX_BYTES:
			o->max_bytes = num_arg("--max-bytes", optarg, 1, LIM_BODY_MAX_CEILING);
			break;
		case O_PROGRESS:
			o->progress_ms = 1000 * num_arg("--progress-interval", optarg, 1,
							PROGRESS_S_MAX);
			break;
		case 'h': fputs(usage_text, stdout); exit(0);
		default: usage_fail(NULL);
		}
	}
	if (optind < argc)
		usage_fail("unexpected argument \"%s\"", argv[optind]);
	if (o->input == NULL || o->input[0] == '\0')
		usage_fail("--input is required");
	if (!o->dry_run && (o->output == NULL || o->output[0] == '\0'))
		usage_fail("--output is required");
	if (o->dry_run && (o->resume || o->retry_failed))
		usage_fail("--dry-run reads no checkpoint: drop --resume / --retry-failed");
	if (o->conf == NULL || o->conf[0] == '\0')
		o->conf = DEFAULT_CONF;
}

/* --fields: names separated by commas, spaces around them allowed. */
static void parse_fields(struct run *r)
{
	const char *bad = NULL;
	size_t badlen = 0, n = 0;
	char tight[1024];
	fld_set set;

	if (r->o->fields == NULL) {
		set = FLD_ALL;
	} else {
		for (const char *p = r->o->fields; *p; p++) {
			if (*p == ' ' || *p == '\t')
				continue;
			if (n + 1 >= sizeof tight)
				usage_fail("--fields: too long");
			tight[n++] = *p;
		}
		tight[n] = '\0';
		if (strspn(tight, ",") == n)
			usage_fail("--fields: no field named (fields: %s, ...)", fld_names[0]);
		if (en_parse_fields_csv(tight, &set, &bad, &badlen) != ENR_OK) {
			struct buf all;

			buf_init(&all, 0);
			for (int f = 0; f < FLD__MAX; f++)
				buf_printf(&all, "%s%s", f ? ", " : "", fld_names[f]);
			say("--fields: unknown field \"%.*s\"; the fields are: %s", (int)badlen, bad,
			    buf_cstr(&all));
			buf_release(&all);
			exit(EXIT_USAGE);
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
}

/* ---- the input ------------------------------------------------------------- */

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	util_hex(md, n > 32 ? 32 : n, out);
}

static bool has_ident_column(const struct run *r)
{
	for (size_t i = 0; i < r->ncols; i++) {
		if (r->cols[i] >= 0)
			return true;
	}
	return false;
}

/* True when an input column is called name (ASCII case ignored) or, for
 * a field that is also an identifier, holds that identifier under one of
 * its spellings ("Company" for company_name). */
static bool column_taken(const struct csv_row *hdr, const char *name, size_t nlen)
{
	enum fld_ident id;
	bool is_ident = fld_ident_parse(name, &id);

	for (size_t i = 0; i < hdr->n; i++) {
		if (hdr->lens[i] == nlen && strncasecmp(hdr->fields[i], name, nlen) == 0)
			return true;
		if (is_ident && csv_header_ident(hdr->fields[i], hdr->lens[i]) == (int)id)
			return true;
	}
	return false;
}

/* Append an added column's name: name itself, or name_enriched (then
 * name_enriched2, ...) when the input already has such a column. */
static enum enr_err add_column(struct buf *b, const struct csv_row *hdr, struct buf *added,
			       const char *name)
{
	char cand[LIM_NAME_MAX * 2];
	enum enr_err rc;

	util_strlcpy(cand, name, sizeof cand);
	for (int k = 1;; k++) {
		bool taken = column_taken(hdr, cand, strlen(cand));
		const char *p = buf_cstr(added);

		/* added holds the names chosen so far, each followed by '\n'. */
		while (!taken && *p) {
			size_t l = strcspn(p, "\n");

			taken = l == strlen(cand) && strncasecmp(p, cand, l) == 0;
			p += l + (p[l] == '\n');
		}
		if (!taken)
			break;
		if (k == 1)
			snprintf(cand, sizeof cand, "%s_enriched", name);
		else
			snprintf(cand, sizeof cand, "%s_enriched%d", name, k);
	}
	rc = buf_printf(added, "%s\n", cand);
	if (rc == ENR_OK)
		rc = buf_putc(b, ',');
	if (rc == ENR_OK)
		rc = csv_write_field(b, cand, strlen(cand));
	return rc;
}

static enum enr_err build_header(struct run *r, const struct csv_row *hdr)
{
	struct buf added;
	enum enr_err rc = ENR_OK;

	buf_init(&r->header_line, 0);
	buf_init(&added, 0);
	if (r->bom)
		rc = buf_append(&r->header_line, "\xEF\xBB\xBF", 3);
	for (size_t i = 0; i < hdr->n && rc == ENR_OK; i++) {
		if (i)
			rc = buf_putc(&r->header_line, ',');
		if (rc == ENR_OK)
			rc = csv_write_field(&r->header_line, hdr->fields[i], hdr->lens[i]);
	}
	for (int f = 0; f < FLD__MAX && rc == ENR_OK; f++) {
		if (r->want & FLD_BIT(f))
			rc = add_column(&r->header_line, hdr, &added, fld_names[f]);
	}
	if (rc == ENR_OK)
		rc = add_column(&r->header_line, hdr, &added, "_status");
	if (rc == ENR_OK)
		rc = add_column(&r->header_line, hdr, &added, "_error");
	if (rc == ENR_OK)
		rc = buf_puts(&r->header_line, "\r\n");
	buf_release(&added);
	return rc;
}

/* Read the whole input, check it is a CSV with an identifier column and
 * no fatal error, count its rows.  Exits with a message on bad input. */
static void load_input(struct run *r)
{
	const struct opts *o = r->o;
	struct csv_reader *rd = NULL;
	struct csv_row row;
	struct stat st;
	enum enr_err rc;
	char *abs;

	if (stat(o->input, &st) != 0) {
		say("cannot read the input %s: %s", o->input, strerror(errno));
		exit(EXIT_FATAL);
	}
	if (S_ISDIR(st.st_mode)) {
		say("the input %s is a directory, not a CSV file", o->input);
		exit(EXIT_FATAL);
	}
	errno = 0;
	rc = csv_load_file(o->input, (size_t)o->max_bytes, &r->data, &r->len);
	if (rc == ENR_E_TOO_LARGE) {
		say("the input %s is larger than %lld bytes (raise the cap with --max-bytes, at most %u)",
		    o->input, (long long)o->max_bytes, LIM_BODY_MAX_CEILING);
		exit(EXIT_FATAL);
	}
	if (rc) {
		say("cannot read the input %s: %s", o->input,
		    rc == ENR_E_IO && errno ? strerror(errno) : enr_strerror(rc));
		exit(EXIT_FATAL);
	}
	r->bom = r->len >= 3 && memcmp(r->data, "\xEF\xBB\xBF", 3) == 0;

	rd = csv_reader_new(r->data, r->len);
	if (rd == NULL) {
		say("out of memory");
		exit(EXIT_FATAL);
	}
	rc = csv_next(rd, &row);
	if (rc == ENR_E_NOT_FOUND) {
		say("the input %s is empty: a CSV file with a header row is expected", o->input);
		exit(EXIT_FATAL);
	}
	if (rc == ENR_E_INVALID) {
		const struct csv_error *e = csv_reader_error(rd);

		say("the input %s is not a readable CSV file: line %zu: header: %s", o->input,
		    e->line, e->reason);
		exit(EXIT_FATAL);
	}
	if (rc) {
		say("cannot read the input %s: %s", o->input, enr_strerror(rc));
		exit(EXIT_FATAL);
	}
	r->ncols = row.n;
	r->cols = calloc(row.n, sizeof *r->cols);
	if (r->cols == NULL) {
		say("out of memory");
		exit(EXIT_FATAL);
	}
	csv_header_map(&row, r->cols, NULL);
	if (!has_ident_column(r)) {
		say("the input %s has no identifier column: the header must name at least one of "
		    "email, domain, company_name, linkedin_url, first_name, last_name, phone "
		    "(or a usual spelling such as \"E-mail\", \"Company\", \"LinkedIn URL\")",
		    o->input);
		exit(EXIT_FATAL);
	}
	if (build_header(r, &row) != ENR_OK) {
		say("out of memory");
		exit(EXIT_FATAL);
	}
	for (;;) {
		rc = csv_next(rd, &row);
		if (rc == ENR_E_NOT_FOUND)
			break;
		if (rc == ENR_E_INVALID) {
			const struct csv_error *e = csv_reader_error(rd);

			if (e->fatal) {
				say("the input %s cannot be read past line %zu: %s", o->input, e->line,
				    e->reason);
				exit(EXIT_FATAL);
			}
		} else if (rc) {
			say("cannot read the input %s: %s", o->input, enr_strerror(rc));
			exit(EXIT_FATAL);
		}
		r->rows++;
	}
	csv_reader_free(rd);
	if (r->rows == 0) {
		say("the input %s has a header but no rows", o->input);
		exit(EXIT_FATAL);
	}

	memset(&r->ident, 0, sizeof r->ident);
	abs = realpath(o->input, NULL);
	util_strlcpy(r->ident.input, abs ? abs : o->input, sizeof r->ident.input);
	free(abs);
	r->ident.size = (int64_t)r->len;
	sha256_hex(r->data, r->len, r->ident.sha256);
	util_strlcpy(r->ident.fields, r->fields_canon, sizeof r->ident.fields);
	r->ident.rows = r->rows;
}

/* ---- the checkpoint ---------------------------------------------------------- */

static void shell_word(struct buf *b, const char *s)
{
	bool plain = *s != '\0';

	for (const char *p = s; *p && plain; p++)
		plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./,:=@%+-",
			       *p) != NULL;
	buf_putc(b, ' ');
	if (plain) {
		buf_puts(b, s);
		return;
	}
	buf_putc(b, '\'');
	for (const char *p = s; *p; p++) {
		if (*p == '\'')
			buf_puts(b, "'\\''");
		else
			buf_putc(b, *p);
	}
	buf_putc(b, '\'');
}

/* The command that continues this run ("--resume" or "--retry-failed"). */
static void again_command(const struct run *r, struct buf *b, const char *how)
{
	const struct opts *o = r->o;

	buf_puts(b, PROG);
	buf_puts(b, " --input");
	shell_word(b, o->input);
	buf_puts(b, " --output");
	shell_word(b, o->output);
	if (o->fields) {
		buf_puts(b, " --fields");
		shell_word(b, r->fields_canon);
	}
	if (o->checkpoint) {
		buf_puts(b, " --checkpoint");
		shell_word(b, o->checkpoint);
	}
	if (o->conf_given) {
		buf_puts(b, " -c");
		shell_word(b, o->conf);
	}
	if (o->report) {
		buf_puts(b, " --report");
		shell_word(b, o->report);
	}
	if (o->errors) {
		buf_puts(b, " --errors");
		shell_word(b, o->errors);
	}
	buf_printf(b, " %s", how);
}

static void open_checkpoint(struct run *r)
{
	const struct opts *o = r->o;
	struct ckpt_ident had;
	struct ckpt_counts k;
	struct stat st;
	bool exists;
	enum enr_err rc;

	if (o->checkpoint)
		util_strlcpy(r->ckpt_path, o->checkpoint, sizeof r->ckpt_path);
	else if ((size_t)snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s.checkpoint", o->output) >=
		 sizeof r->ckpt_path)
		usage_fail("--output: path too long");
	if (same_file(r->ckpt_path, o->input) || strcmp(r->ckpt_path, o->output) == 0)
		usage_fail("the checkpoint %s is the input or the output file", r->ckpt_path);
	exists = lstat(r->ckpt_path, &st) == 0;
	if (!exists && (o->resume || o->retry_failed)) {
		say("nothing to resume: there is no checkpoint %s (run without --resume to start)",
		    r->ckpt_path);
		exit(EXIT_FATAL);
	}
	rc = ckpt_open(r->ckpt_path, exists ? 0 : CKPT_CREATE, &r->ckpt);
	if (rc == ENR_E_CONFLICT) {
		say("the checkpoint %s is in use by another enrich-batch run", r->ckpt_path);
		exit(EXIT_FATAL);
	}
	if (rc == ENR_E_INVALID) {
		say("%s is not an enrich-batch checkpoint; move it away or name another file with "
		    "--checkpoint", r->ckpt_path);
		exit(EXIT_FATAL);
	}
	if (rc) {
		say("cannot open the checkpoint %s: %s", r->ckpt_path,
		    rc == ENR_E_IO ? strerror(errno) : enr_strerror(rc));
		exit(EXIT_FATAL);
	}
	if (!exists) {
		rc = ckpt_ident_set(r->ckpt, &r->ident);
		if (rc) {
			say("cannot write the checkpoint %s: %s", r->ckpt_path, enr_strerror(rc));
			ckpt_close(r->ckpt);
			ckpt_remove(r->ckpt_path);
			exit(EXIT_FATAL);
		}
		return;
	}
	rc = ckpt_ident_get(r->ckpt, &had);
	if (rc == ENR_OK)
		rc = ckpt_counts(r->ckpt, &k);
	if (rc) {
		say("the checkpoint %s cannot be read (%s); remove it to start over", r->ckpt_path,
		    enr_strerror(rc));
		exit(EXIT_FATAL);
	}
	if (!o->resume && !o->retry_failed) {
		struct buf cmd;

		buf_init(&cmd, 0);
		again_command(r, &cmd, "--resume");
		say("a checkpoint of an earlier run exists: %s (%lld of %lld rows done).\n"
		    "  continue it:   %s\n"
		    "  or remove it (rm %s) to start over",
		    r->ckpt_path, (long long)k.done, (long long)had.rows, buf_cstr(&cmd),
		    r->ckpt_path);
		buf_release(&cmd);
		exit(EXIT_FATAL);
	}
	if (had.size != r->ident.size || strcmp(had.sha256, r->ident.sha256) != 0) {
		say("the checkpoint %s belongs to another input: it was made for %s (%lld bytes, "
		    "SHA-256 %.12s...), and %s is %lld bytes with SHA-256 %.12s...; "
		    "name another --checkpoint or remove it to start over",
		    r->ckpt_path, had.input, (long long)had.size, had.sha256, o->input,
		    (long long)r->ident.size, r->ident.sha256);
		exit(EXIT_FATAL);
	}
	if (strcmp(had.fields, r->ident.fields) != 0) {
		say("the checkpoint %s was made with --fields %s, this run asks for %s; run with the "
		    "same --fields or remove the checkpoint to start over",
		    r->ckpt_path, had.fields, r->ident.fields);
		exit(EXIT_FATAL);
	}
	if (strcmp(had.input, r->ident.input) != 0)
		say("note: the checkpoint was made for %s; %s has the same content", had.input,
		    r->ident.input);
}

/* Which rows this run processes. */
static void plan_rows(struct run *r)
{
	size_t n = (size_t)r->rows + 1;

	r->todo = malloc(n);
	if (r->todo == NULL) {
		say("out of memory");
		exit(EXIT_FATAL);
	}
	if (r->ckpt == NULL) {
		memset(r->todo, 1, n);
	} else {
		if (ckpt_states(r->ckpt, r->todo, n) != ENR_OK) {
			say("the checkpoint %s cannot be read", r->ckpt_path);
			exit(EXIT_FATAL);
		}
		for (size_t i = 1; i < n; i++) {
			signed char s = r->todo[i];

			if (s < 0 || (r->o->retry_failed && s == CKPT_FAILED)) {
				r->todo[i] = 1;
				continue;
			}
			r->todo[i] = 0;
			r->base_done++;
			if (s == CKPT_FAILED)
				r->base_failed++;
		}
	}
	r->todo[0] = 0;
	r->todo_count = r->rows - r->base_done;
}

/* ---- one row ----------------------------------------------------------------- */

struct job {
	int64_t n, line;
	bool csv_bad;
	char csv_reason[LIM_CSV_REASON_MAX];
	struct rec rec;
	struct buf prefix;   /* the input columns as CSV */
	struct buf out;      /* the output row */
};

struct verdict {
	enum ckpt_state state;
	char code[CODE_MAX];
	char reason[REASON_MAX];
	int credits, calls;
	bool cached;
};

/* Take the next row this run processes (under r->mu).  ENR_E_NOT_FOUND
 * when the input is over. */
static enum enr_err next_job(struct run *r, struct job *j)
{
	struct csv_row row;
	enum enr_err rc;

	for (;;) {
		if (r->input_over)
			return ENR_E_NOT_FOUND;
		rc = csv_next(r->reader, &row);
		if (rc == ENR_E_NOT_FOUND) {
			r->input_over = true;
			return rc;
		}
		if (rc == ENR_E_INVALID) {
			const struct csv_error *e = csv_reader_error(r->reader);

			if (e->fatal || e->row < 1 || e->row > (size_t)r->rows)
				return ENR_E_INTERNAL;
			if (!r->todo[e->row])
				continue;
			j->n = (int64_t)e->row;
			j->line = (int64_t)e->line;
			j->csv_bad = true;
			util_strlcpy(j->csv_reason, e->reason, sizeof j->csv_reason);
			buf_reset(&j->prefix);
			/* The reader hands out nothing of a bad row: its columns stay empty. */
			for (size_t i = 1; i < r->ncols; i++) {
				rc = buf_putc(&j->prefix, ',');
				if (rc)
					return rc;
			}
			return ENR_OK;
		}
		if (rc)
			return rc;
		if (row.row < 1 || row.row > (size_t)r->rows)
			return ENR_E_INTERNAL;
		if (!r->todo[row.row])
			continue;
		j->n = (int64_t)row.row;
		j->line = (int64_t)row.line;
		j->csv_bad = false;
		buf_reset(&j->prefix);
		rec_release(&j->rec);
		j->rec.lists = r->lists;
		for (size_t i = 0; i < row.n; i++) {
			if (i)
				rc = buf_putc(&j->prefix, ',');
			if (rc == ENR_OK)
				rc = csv_write_field(&j->prefix, row.fields[i], row.lens[i]);
			if (rc == ENR_OK && r->cols[i] >= 0)
				rc = rec_set(&j->rec, (enum fld_ident)r->cols[i], row.fields[i],
					     row.lens[i]);
			if (rc)
				return rc;
		}
		return ENR_OK;
	}
}

static void list_names(char *out, size_t outsz, const char (*names)[LIM_NAME_MAX + 1], int n)
{
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; i < n && len < outsz; i++)
		len += (size_t)snprintf(out + len, outsz - len, "%s%s", i ? ", " : "", names[i]);
}

/* A result is failed, not an answer, when it is incomplete because a
 * paid provider could not be asked or did not answer: running the row
 * again may find more.  A provider that answered "not found" is an
 * answer (DESIGN section 5). */
static void classify(const struct run *r, const struct wf_result *res, struct verdict *v)
{
	char names[REASON_MAX - 64];

	v->code[0] = v->reason[0] = '\0';
	if (res->found == res->want) {
		v->state = CKPT_COMPLETE;
		return;
	}
	if (res->paid_failed > 0) {
		v->state = CKPT_FAILED;
		util_strlcpy(v->code, "upstream_failed", sizeof v->code);
		util_strlcpy(v->reason, "a provider failed on every key tried (errors, timeouts or refusals)",
			     sizeof v->reason);
		return;
	}
	if (res->deadline_passed) {
		v->state = CKPT_FAILED;
		util_strlcpy(v->code, "deadline", sizeof v->code);
		snprintf(v->reason, sizeof v->reason, "the deadline of %lld ms passed",
			 (long long)r->o->deadline_ms);
		return;
	}
	if (res->paid_unavailable > 0) {
		v->state = CKPT_FAILED;
		util_strlcpy(v->code, "no_key", sizeof v->code);
		list_names(names, sizeof names, (const char (*)[LIM_NAME_MAX + 1])res->skipped,
			   res->nskipped);
		snprintf(v->reason, sizeof v->reason, "no usable key for %s", names);
		return;
	}
	v->state = res->found == 0 ? CKPT_NOT_FOUND : CKPT_PARTIAL;
}

static bool stopping(void)
{
	return stop_signal != 0;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/* Wait until wall-clock time until_ms, waking for signals.  False when
 * the run is being stopped. */
static bool wait_until(int64_t until_ms)
{
	for (;;) {
		int64_t left = until_ms - util_now_ms();

		if (stopping())
			return false;
		if (left <= 0)
			return true;
		sleep_ms(left < TICK_MS ? left : TICK_MS);
	}
}

static bool in_list(const struct cfg_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], name) == 0)
			return true;
	}
	return false;
}

static void dry_count(struct run *r, const struct wf_result *res)
{
	struct tally *t = &r->t;
	fld_set company = fld_group_set(CFG_GROUP_COMPANY);

	if (res->nwould_call == 0) {
		if (res->cache_hits > 0)
			t->dry_cached++;
		else
			t->dry_local++;
		return;
	}
	t->dry_calls++;
	for (int i = 0; i < res->nwould_call; i++) {
		const struct cfg_provider *p = cfg_provider_find(r->cfg, res->would_call[i]);
		int lookups = 1;

		if (p == NULL)
			continue;
		/* The engine asks a provider once for the person and, when company
		 * fields are still missing, once more for the company; a dry run
		 * cannot tell whether the first answer will leave them missing. */
		if (r->want & ~company && r->want & company &&
		    in_list(&r->cfg->waterfall[CFG_GROUP_COMPANY], p->name))
			lookups = 2;
		t->dry_provider_rows[p - r->cfg->providers]++;
		t->dry_provider_lookups[p - r->cfg->providers] += lookups;
		t->dry_credits += (int64_t)lookups * p->credits_per_hit;
	}
}

static void count_code(struct tally *t, const char *code)
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

/* Enrich one valid record; the row may wait for a rate-limited pool to
 * come back (--max-key-wait).  False when the run is stopped during such
 * a wait: the row is then left for the next run. */
static bool enrich_row(struct run *r, struct job *j, struct wf_result *res, struct verdict *v)
{
	int64_t waited = 0;

	for (;;) {
		struct wf_ctx ctx;
		enum enr_err rc;

		memset(&ctx, 0, sizeof ctx);
		ctx.store = r->store;
		ctx.cfg = r->cfg;
		ctx.pctx = &r->pctx;
		ctx.endpoint = CFG_EP_ENQUEUE;
		ctx.deadline_mono_ms = util_mono_ms() + r->o->deadline_ms;
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
		classify(r, res, v);
		/* Only a dry pool that says when it comes back is worth waiting for;
		 * errors and invalid keys are not. */
		if (v->state == CKPT_FAILED && strcmp(v->code, "no_key") == 0 &&
		    res->comes_back_ms > 0) {
			int64_t until = res->comes_back_ms, now = util_now_ms();

			if (until < now + KEY_WAIT_MIN_MS)
				until = now + KEY_WAIT_MIN_MS;
			if (waited + (until - now) <= r->o->key_wait_ms) {
				if (!wait_until(until))
					return false;
				waited += until - now;
				continue;
			}
		}
		return true;
	}
}

static enum enr_err build_out(struct run *r, struct job *j, const struct wf_result *res,
			      const struct verdict *v)
{
	struct buf *b = &j->out;
	enum enr_err rc;

	buf_reset(b);
	rc = buf_append(b, j->prefix.data ? j->prefix.data : "", j->prefix.len);
	for (int f = 0; f < FLD__MAX && rc == ENR_OK; f++) {
		const char *val;

		if (!(r->want & FLD_BIT(f)))
			continue;
		val = res->value[f] ? res->value[f] : "";
		rc = buf_putc(b, ',');
		if (rc == ENR_OK)
			rc = csv_write_field(b, val, strlen(val));
	}
	if (rc == ENR_OK)
		rc = buf_printf(b, ",%s,", ckpt_state_names[v->state]);
	if (rc == ENR_OK && v->code[0]) {
		char text[CODE_MAX + REASON_MAX + 2];

		snprintf(text, sizeof text, "%s%s%s", v->code, v->reason[0] ? ": " : "", v->reason);
		rc = csv_write_field(b, text, strlen(text));
	}
	if (rc == ENR_OK)
		rc = buf_puts(b, "\r\n");
	return rc;
}

static void fail_run(struct run *r, enum enr_err rc, const char *what)
{
	pthread_mutex_lock(&r->mu);
	if (r->fatal == ENR_OK) {
		r->fatal = rc;
		util_strlcpy(r->fatal_what, what, sizeof r->fatal_what);
	}
	pthread_mutex_unlock(&r->mu);
}

static void process(struct run *r, struct job *j)
{
	struct wf_result res;
	struct verdict v;
	struct rec_problem prob;
	struct ckpt_row row;
	enum enr_err rc;

	wf_result_init(&res);
	memset(&v, 0, sizeof v);
	if (j->csv_bad) {
		v.state = CKPT_INVALID;
		util_strlcpy(v.code, "csv_row", sizeof v.code);
		snprintf(v.reason, sizeof v.reason, "%s (line %lld)", j->csv_reason,
			 (long long)j->line);
	} else if ((rc = rec_normalise(&j->rec, (size_t)r->cfg->limits.field_max_bytes, &prob)) !=
		   ENR_OK) {
		if (rc == ENR_E_INVALID && prob.field < ID__MAX) {
			v.state = CKPT_INVALID;
			snprintf(v.code, sizeof v.code, "invalid_%s", fld_ident_names[prob.field]);
			util_strlcpy(v.reason, prob.reason ? prob.reason : "not valid", sizeof v.reason);
		} else if (rc == ENR_E_INVALID) {
			v.state = CKPT_INVALID;
			util_strlcpy(v.code, "no_identifier", sizeof v.code);
			util_strlcpy(v.reason, prob.reason ? prob.reason : "no identifier",
				     sizeof v.reason);
		} else {
			v.state = CKPT_FAILED;
			util_strlcpy(v.code, "internal", sizeof v.code);
			util_strlcpy(v.reason, enr_strerror(rc), sizeof v.reason);
		}
	} else if (!enrich_row(r, j, &res, &v)) {
		goto out; /* stopped while waiting for a key: not recorded */
	}

	if (r->o->dry_run) {
		pthread_mutex_lock(&r->mu);
		if (v.state == CKPT_INVALID || v.state == CKPT_FAILED) {
			r->t.state[v.state]++;
			count_code(&r->t, v.code);
		} else {
			dry_count(r, &res);
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
	struct run *r = arg;
	struct job j;

	memset(&j, 0, sizeof j);
	rec_init(&j.rec);
	buf_init(&j.prefix, 0);
	buf_init(&j.out, 0);
	for (;;) {
		enum enr_err rc;

		pthread_mutex_lock(&r->mu);
		if (stopping() || r->fatal) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		rc = next_job(r, &j);
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

/* ---- progress -------------------------------------------------------------- */

static void fmt_duration(char *out, size_t n, double s)
{
	long long t = (long long)(s + 0.5);

	if (s < 0)
		snprintf(out, n, "--");
	else if (t >= 3600)
		snprintf(out, n, "%lldh%02lldm", t / 3600, t / 60 % 60);
	else if (t >= 60)
		snprintf(out, n, "%lldm%02llds", t / 60, t % 60);
	else
		snprintf(out, n, "%llds", t);
}

static void progress(struct run *r, bool final)
{
	struct tally t;
	int64_t done, failed, elapsed = util_mono_ms() - r->start_mono_ms;
	double rate = 0, pct, eta = -1;
	char etas[32];

	pthread_mutex_lock(&r->mu);
	t = r->t;
	pthread_mutex_unlock(&r->mu);
	done = r->base_done + t.finished;
	failed = r->base_failed + t.state[CKPT_FAILED];
	if (elapsed > 0)
		rate = (double)t.finished * 60000.0 / (double)elapsed;
	if (rate > 0)
		eta = (double)(r->rows - done) * 60.0 / rate;
	pct = r->rows ? 100.0 * (double)done / (double)r->rows : 100.0;
	/* The last line of an unfinished run has no ETA to give. */
	fmt_duration(etas, sizeof etas, final && done < r->rows ? -1 : final ? 0 : eta);
	if (r->tty) {
		char bar[BAR_WIDTH + 1];
		int fill = (int)(pct * BAR_WIDTH / 100.0);

		for (int i = 0; i < BAR_WIDTH; i++)
			bar[i] = i < fill ? '#' : '-';
		bar[BAR_WIDTH] = '\0';
		fprintf(stderr, "\r\033[K[%s] %lld/%lld %5.1f%%  failed %lld  %.0f rows/min  ETA %s  "
				"credits %lld%s",
			bar, (long long)done, (long long)r->rows, pct, (long long)failed, rate, etas,
			(long long)t.credits, final ? "\n" : "");
	} else {
		fprintf(stderr, PROG ": progress %lld/%lld rows (%.1f%%), %lld failed, %.0f rows/min, "
				"ETA %s, %lld credits\n",
			(long long)done, (long long)r->rows, pct, (long long)failed, rate, etas,
			(long long)t.credits);
	}
	fflush(stderr);
	r->progress_shown = true;
}

/* Run the workers and watch them: progress, commits, signals. */
static void run_workers(struct run *r, int nworkers)
{
	pthread_t *tids = calloc((size_t)nworkers, sizeof *tids);
	sigset_t block, old;
	int64_t next_line, interval;
	bool announced = false;
	int started = 0, err = 0;

	if (tids == NULL) {
		say("out of memory");
		exit(EXIT_FATAL);
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
			say("cannot start worker threads: %s", strerror(err));
			exit(EXIT_FATAL);
		}
	}
	/* A terminal gets a line that updates in place; a log gets a line
	 * every --progress-interval. */
	interval = r->tty ? 250 : r->o->progress_ms;
	next_line = util_mono_ms() + interval;
	for (;;) {
		int running;
		int64_t now;

		pthread_mutex_lock(&r->mu);
		running = r->running;
		pthread_mutex_unlock(&r->mu);
		if (running == 0)
			break;
		sleep_ms(TICK_MS);
		now = util_mono_ms();
		if (stopping() && !announced) {
			int64_t inflight;

			pthread_mutex_lock(&r->mu);
			inflight = r->t.inflight;
			pthread_mutex_unlock(&r->mu);
			if (r->tty && r->progress_shown)
				fputc('\n', stderr);
			say("interrupted: finishing %lld row%s in flight (press Ctrl-C again to stop at "
			    "once)",
			    (long long)inflight, inflight == 1 ? "" : "s");
			announced = true;
		}
		if (r->ckpt) {
			enum enr_err rc = ckpt_tick(r->ckpt, now);

			if (rc)
				fail_run(r, rc, "cannot write the checkpoint");
		}
		if (now >= next_line) {
			progress(r, false);
			next_line = now + interval;
		}
	}
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	free(tids);
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

static int write_out_row(void *arg, const struct ckpt_row *row)
{
	FILE *f = arg;

	return fwrite(row->out, 1, row->out_len, f) == row->out_len ? 0 : 1;
}

static bool write_output(struct run *r)
{
	struct out_file of;
	enum enr_err rc;

	memset(&of, 0, sizeof of);
	if (!out_open(&of, r->o->output)) {
		say("cannot write the output %s.tmp: %s", r->o->output, strerror(errno));
		return false;
	}
	fwrite(r->header_line.data, 1, r->header_line.len, of.f);
	rc = ckpt_each(r->ckpt, 0, write_out_row, of.f);
	if (rc) {
		say("cannot read the checkpoint %s: %s", r->ckpt_path, enr_strerror(rc));
		out_abandon(&of);
		return false;
	}
	if (!out_commit(&of)) {
		say("cannot write the output %s: %s", r->o->output, strerror(errno));
		return false;
	}
	return true;
}

static int write_error_row(void *arg, const struct ckpt_row *row)
{
	struct buf *b = arg;
	char n[24], line[24];
	const char *f[5] = { n, line, ckpt_state_names[row->state], row->code, row->reason };

	snprintf(n, sizeof n, "%lld", (long long)row->n);
	snprintf(line, sizeof line, "%lld", (long long)row->line);
	return csv_write_row(b, f, NULL, 5) == ENR_OK ? 0 : 1;
}

static bool write_errors(struct run *r)
{
	static const char *const head[5] = { "row", "line", "status", "code", "reason" };
	struct out_file of;
	struct buf b;
	enum enr_err rc;
	bool ok = false;

	memset(&of, 0, sizeof of);
	buf_init(&b, LIM_BODY_MAX_CEILING);
	if (!out_open(&of, r->o->errors)) {
		say("cannot write the errors file %s: %s", r->o->errors, strerror(errno));
		goto out;
	}
	rc = csv_write_row(&b, head, NULL, 5);
	if (rc == ENR_OK)
		rc = ckpt_each(r->ckpt, 1u << CKPT_FAILED | 1u << CKPT_INVALID, write_error_row, &b);
	if (rc) {
		say("cannot write the errors file %s: %s", r->o->errors, enr_strerror(rc));
		out_abandon(&of);
		goto out;
	}
	fwrite(b.data, 1, b.len, of.f);
	if (!out_commit(&of)) {
		say("cannot write the errors file %s: %s", r->o->errors, strerror(errno));
		goto out;
	}
	ok = true;
out:
	buf_release(&b);
	return ok;
}

static int code_json(void *arg, const char *code, int64_t n)
{
	json_object_set_new((json_t *)arg, code[0] ? code : "unknown", json_integer(n));
	return 0;
}

static json_t *options_json(const struct run *r, int nworkers)
{
	const struct opts *o = r->o;
	json_t *fields = json_array();

	for (int f = 0; f < FLD__MAX; f++) {
		if (r->want & FLD_BIT(f))
			json_array_append_new(fields, json_string(fld_names[f]));
	}
	return json_pack("{s:o, s:i, s:b, s:b, s:b, s:I, s:I, s:s, s:s?, s:I}", "fields", fields,
			 "workers", nworkers, "resume", o->resume, "retry_failed", o->retry_failed,
			 "dry_run", o->dry_run, "deadline_ms", (json_int_t)o->deadline_ms,
			 "max_key_wait_s", (json_int_t)(o->key_wait_ms / 1000), "config", o->conf,
			 "checkpoint", r->ckpt ? r->ckpt_path : NULL, "max_bytes",
			 (json_int_t)o->max_bytes);
}

static bool write_json(const char *path, json_t *j)
{
	struct out_file of;

	memset(&of, 0, sizeof of);
	if (j == NULL) {
		say("cannot write the report %s: out of memory", path);
		return false;
	}
	if (!out_open(&of, path)) {
		say("cannot write the report %s: %s", path, strerror(errno));
		json_decref(j);
		return false;
	}
	if (json_dumpf(j, of.f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) != 0)
		errno = EIO;
	else
		fputc('\n', of.f);
	json_decref(j);
	if (!out_commit(&of)) {
		say("cannot write the report %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

static bool write_report(struct run *r, const struct ckpt_counts *k, int nworkers,
			 bool interrupted, int status, bool kept, double secs)
{
	json_t *errors = json_object(), *j;
	struct tally t = r->t;

	ckpt_codes(r->ckpt, code_json, errors);
	j = json_pack("{s:b, s:s, s:s, s:s, s:b, s:b, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
		      " s:I, s:f, s:I, s:I, s:I, s:I, s:f, s:o, s:o}",
		      "dry_run", 0, "input", r->o->input, "output", r->o->output, "checkpoint",
		      r->ckpt_path, "checkpoint_kept", kept, "interrupted", interrupted, "exit_status", status, "rows",
		      (json_int_t)r->rows, "done", (json_int_t)k->done, "complete",
		      (json_int_t)k->state[CKPT_COMPLETE], "partial",
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

	buf_printf(b, "%s%s %lld", b->len ? ", " : "", code, (long long)n);
	return 0;
}

static void summary(struct run *r, const struct ckpt_counts *k, double secs)
{
	const struct tally *t = &r->t;
	struct buf codes;

	say("%lld rows: %lld complete, %lld partial, %lld not found, %lld failed, %lld invalid",
	    (long long)r->rows, (long long)k->state[CKPT_COMPLETE],
	    (long long)k->state[CKPT_PARTIAL], (long long)k->state[CKPT_NOT_FOUND],
	    (long long)k->state[CKPT_FAILED], (long long)k->state[CKPT_INVALID]);
	say("this run: %lld rows in %.1f s (%.0f rows/min), %lld credits, %lld upstream calls, "
	    "%lld rows from the cache",
	    (long long)t->finished, secs, secs > 0 ? (double)t->finished * 60.0 / secs : 0.0,
	    (long long)t->credits, (long long)t->calls, (long long)t->cached);
	if (r->base_done)
		say("%lld rows were done by an earlier run (%lld credits in all)",
		    (long long)r->base_done, (long long)k->credits);
	if (k->state[CKPT_FAILED] + k->state[CKPT_INVALID] > 0) {
		buf_init(&codes, 0);
		ckpt_codes(r->ckpt, code_text, &codes);
		say("rows not enriched, by reason: %s%s%s", buf_cstr(&codes),
		    r->o->errors ? "; listed in " : "", r->o->errors ? r->o->errors : "");
		buf_release(&codes);
	}
}

/* ---- dry run ------------------------------------------------------------------- */

static int dry_run_report(struct run *r, int nworkers, double secs)
{
	const struct tally *t = &r->t;
	json_t *providers = json_object(), *errors = json_object(), *j;
	int64_t invalid = t->state[CKPT_INVALID], failed = t->state[CKPT_FAILED];

	printf("dry run over %s: %lld rows, no provider called\n", r->o->input, (long long)r->rows);
	printf("  %-34s %8lld\n", "invalid rows", (long long)invalid);
	if (failed)
		printf("  %-34s %8lld\n", "rows that could not be looked up", (long long)failed);
	printf("  %-34s %8lld\n", "answered from the cache", (long long)t->dry_cached);
	printf("  %-34s %8lld\n", "answered by the free local provider", (long long)t->dry_local);
	printf("  %-34s %8lld\n", "would call a provider", (long long)t->dry_calls);
	printf("\n  %-20s %8s %18s %16s %18s\n", "provider", "rows", "lookups (at most)",
	       "credits per hit", "credits (at most)");
	for (size_t i = 0; i < r->cfg->nproviders; i++) {
		const struct cfg_provider *p = &r->cfg->providers[i];
		int64_t n = t->dry_provider_rows[i], l = t->dry_provider_lookups[i];

		if (n == 0)
			continue;
		printf("  %-20s %8lld %18lld %16d %18lld\n", p->name, (long long)n, (long long)l,
		       p->credits_per_hit, (long long)(l * p->credits_per_hit));
		json_object_set_new(providers, p->name,
				    json_pack("{s:I, s:I, s:i, s:I}", "rows", (json_int_t)n,
					      "lookups_max", (json_int_t)l, "credits_per_hit",
					      p->credits_per_hit, "credits_max",
					      (json_int_t)(l * p->credits_per_hit)));
	}
	printf("  %-20s %8s %18s %16s %18lld\n", "total", "", "", "", (long long)t->dry_credits);
	printf("\nAt most %lld credits; hits only are paid, so a run usually spends less.\n",
	       (long long)t->dry_credits);
	fflush(stdout);
	if (r->o->report == NULL) {
		json_decref(providers);
		json_decref(errors);
		return 0;
	}
	for (int i = 0; i < t->ncodes; i++)
		json_object_set_new(errors, t->codes[i].code, json_integer(t->codes[i].n));
	j = json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:i, s:f, s:o, s:o}",
		      "dry_run", 1, "input", r->o->input, "rows", (json_int_t)r->rows, "invalid",
		      (json_int_t)invalid, "failed", (json_int_t)failed, "cached_rows",
		      (json_int_t)t->dry_cached, "local_only_rows", (json_int_t)t->dry_local,
		      "rows_needing_calls", (json_int_t)t->dry_calls, "credits_max",
		      (json_int_t)t->dry_credits, "providers", providers, "upstream_calls", 0, "duration_s", secs, "errors",
		      errors, "options", options_json(r, nworkers));
	return write_json(r->o->report, j) ? 0 : EXIT_FATAL;
}

/* ---- set-up -------------------------------------------------------------------- */

static void setup_logging(const struct cfg *cfg)
{
	if (cfg->log_file[0]) {
		int fd = open(cfg->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

		if (fd < 0) {
			say("cannot open the log file %s: %s", cfg->log_file, strerror(errno));
			exit(EXIT_FATAL);
		}
		log_set_fd(fd);
		log_set_level(cfg->log_level);
		return;
	}
	/* Standard error carries the progress: only what needs attention. */
	log_set_level(cfg->log_level > LOG_LVL_WARN ? cfg->log_level : LOG_LVL_WARN);
}

static void open_engine(struct run *r)
{
	enum enr_err rc = st_open(r->cfg->store, &r->store);

	if (rc) {
		say("cannot open the store %s: %s", r->cfg->store, enr_strerror(rc));
		exit(EXIT_FATAL);
	}
	/* A dry run loads no secrets, so it must not touch the key pool. */
	if (!r->o->dry_run) {
		rc = st_ukey_sync(r->store, r->cfg);
		if (rc) {
			say("cannot record the configured provider keys in the store: %s",
			    enr_strerror(rc));
			exit(EXIT_FATAL);
		}
		rc = up_global_init();
		if (rc) {
			say("cannot start the HTTP client: %s", enr_strerror(rc));
			exit(EXIT_FATAL);
		}
	}
	r->lists = dom_lists_load(r->cfg->data_dir, &rc);
	if (r->lists == NULL)
		say("warning: domain lists not loaded from %s (%s): e-mail types will not be derived",
		    r->cfg->data_dir, enr_strerror(rc));
	r->pctx.domains = r->lists;
	rot_init();
	wf_init();
}

/* Two options naming one file would overwrite each other. */
static void check_distinct(const struct opts *o)
{
	const char *names[] = { "--input", "--output", "--checkpoint", "--report", "--errors" };
	const char *paths[] = { o->input, o->output, o->checkpoint, o->report, o->errors };

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		for (size_t k = i + 1; k < sizeof paths / sizeof paths[0]; k++) {
			if (paths[i] && paths[k] &&
			    (strcmp(paths[i], paths[k]) == 0 || same_file(paths[i], paths[k])))
				usage_fail("%s names the same file as %s", names[k], names[i]);
		}
	}
}

/* Fail early when the output cannot be written, before paying for rows. */
static void check_output_writable(const struct run *r)
{
	char tmp[PATH_MAX + 8];
	struct stat st;
	int fd;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", r->o->output) >= sizeof tmp)
		usage_fail("--output: path too long");
	if (stat(r->o->output, &st) == 0 && S_ISDIR(st.st_mode)) {
		say("cannot write the output %s: it is a directory", r->o->output);
		exit(EXIT_FATAL);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		say("cannot write the output %s: %s", tmp, strerror(errno));
		exit(EXIT_FATAL);
	}
	close(fd);
	unlink(tmp);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct run r;
	struct ckpt_counts k;
	char err[LIM_CONFIG_ERR_MAX];
	struct sigaction sa;
	struct csv_row header;
	int nworkers, status = 0;
	bool interrupted, keep;
	double secs;

	parse_args(argc, argv, &o);
	check_distinct(&o);
	memset(&r, 0, sizeof r);
	r.o = &o;
	pthread_mutex_init(&r.mu, NULL);
	parse_fields(&r);
	if (cfg_load_flags(o.conf, o.dry_run ? CFG_LOAD_NO_SECRETS : 0, &r.cfg, err, sizeof err) !=
	    ENR_OK) {
		say("%s", err);
		return EXIT_FATAL;
	}
	setup_logging(r.cfg);
	nworkers = o.workers ? o.workers : r.cfg->worker.concurrency;

	load_input(&r);
	if (!o.dry_run)
		check_output_writable(&r);
	open_engine(&r);
	if (!o.dry_run)
		open_checkpoint(&r);
	plan_rows(&r);
	r.t.dry_provider_rows = calloc(r.cfg->nproviders + 1, sizeof *r.t.dry_provider_rows);
	r.t.dry_provider_lookups = calloc(r.cfg->nproviders + 1, sizeof *r.t.dry_provider_lookups);
	if (r.t.dry_provider_rows == NULL || r.t.dry_provider_lookups == NULL) {
		say("out of memory");
		return EXIT_FATAL;
	}

	r.reader = csv_reader_new(r.data, r.len);
	/* The workers share one reader, placed past the header. */
	if (r.reader == NULL || csv_next(r.reader, &header) != ENR_OK) {
		say("cannot read the input %s", o.input);
		return EXIT_FATAL;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	r.tty = isatty(STDERR_FILENO) == 1;
	if (r.base_done)
		say("resuming: %lld of %lld rows done by an earlier run, %lld to go", (long long)r.base_done,
		    (long long)r.rows, (long long)r.todo_count);
	else if (!r.tty)
		say("%s %lld rows with %d worker%s", o.dry_run ? "dry run over" : "enriching",
		    (long long)r.rows, nworkers, nworkers == 1 ? "" : "s");
	r.start_mono_ms = util_mono_ms();
	if (r.todo_count > 0)
		run_workers(&r, nworkers < r.todo_count ? nworkers : (int)r.todo_count);
	secs = (double)(util_mono_ms() - r.start_mono_ms) / 1000.0;
	interrupted = stopping();
	if (r.todo_count > 0)
		progress(&r, true);
	csv_reader_free(r.reader);
	r.reader = NULL;

	if (o.dry_run) {
		status = dry_run_report(&r, nworkers, secs);
		if (interrupted) {
			say("interrupted: the dry run counted %lld of %lld rows", (long long)r.t.finished,
			    (long long)r.rows);
			status = 128 + stop_signal;
		}
		goto out;
	}

	if (ckpt_flush(r.ckpt) != ENR_OK || ckpt_counts(r.ckpt, &k) != ENR_OK) {
		say("cannot write the checkpoint %s", r.ckpt_path);
		status = EXIT_FATAL;
		goto out;
	}
	if (r.fatal) {
		say("stopped: %s: %s; %lld of %lld rows are in the checkpoint %s", r.fatal_what,
		    enr_strerror(r.fatal), (long long)k.done, (long long)r.rows, r.ckpt_path);
		status = EXIT_FATAL;
		goto report;
	}
	/* A signal that came after the last row changes nothing. */
	if (k.done < r.rows) {
		struct buf cmd;

		buf_init(&cmd, 0);
		again_command(&r, &cmd, "--resume");
		say("%s: %lld of %lld rows done; resume with: %s",
		    interrupted ? "interrupted" : "stopped early", (long long)k.done,
		    (long long)r.rows, buf_cstr(&cmd));
		buf_release(&cmd);
		status = interrupted ? 128 + stop_signal : EXIT_FATAL;
		goto report;
	}
	interrupted = false;
	if (!write_output(&r)) {
		status = EXIT_FATAL;
		goto report;
	}
	if (o.errors && !write_errors(&r))
		status = EXIT_FATAL;
	summary(&r, &k, secs);
	say("output: %s", o.output);
	if (k.state[CKPT_FAILED] > 0) {
		struct buf cmd;

		buf_init(&cmd, 0);
		again_command(&r, &cmd, "--retry-failed");
		say("%lld row%s failed for reasons that may pass; run %s again with: %s",
		    (long long)k.state[CKPT_FAILED], k.state[CKPT_FAILED] == 1 ? "" : "s",
		    k.state[CKPT_FAILED] == 1 ? "it" : "them", buf_cstr(&cmd));
		buf_release(&cmd);
	}
report:
	/* A finished run without failures needs no checkpoint; one with
	 * failed rows keeps it for --retry-failed. */
	keep = !(status == 0 && k.state[CKPT_FAILED] == 0);
	if (o.report && !write_report(&r, &k, nworkers, interrupted && status != EXIT_FATAL, status,
				      keep, secs)) {
		status = status ? status : EXIT_FATAL;
		keep = true;
	}
	ckpt_close(r.ckpt);
	r.ckpt = NULL;
	if (!keep)
		ckpt_remove(r.ckpt_path);
out:
	ckpt_close(r.ckpt);
	if (!o.dry_run)
		alert_shutdown(2000);
	up_thread_cleanup();
	if (r.store)
		rot_flush(r.store); /* key call counters kept in memory */
	st_close(r.store);
	dom_lists_free(r.lists);
	cfg_release(r.cfg);
	buf_release(&r.header_line);
	free(r.t.dry_provider_rows);
	free(r.t.dry_provider_lookups);
	free(r.todo);
	free(r.cols);
	free(r.data);
	pthread_mutex_destroy(&r.mu);
	return status;
}
