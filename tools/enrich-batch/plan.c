/*
 * plan.c - which rows an enrich-batch run does: the checkpoint it belongs
 * to (created, or checked against the input before a resume), the rows
 * left (--resume, --retry-failed, --limit), the command that continues a
 * run, and the dry run's count of calls and credits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/ascii.h"
#include "lib/jobs.h"
#include "lib/util.h"

#include "batch.h"

enum enr_err eb_checkpoint_path(struct eb_run *r)
{
	const struct eb_opts *o = r->o;

	if (o->checkpoint) {
		util_strlcpy(r->ckpt_path, o->checkpoint, sizeof r->ckpt_path);
	} else if ((size_t)snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s.checkpoint",
				    o->output) >= sizeof r->ckpt_path) {
		eb_say("--output: path too long");
		return ENR_E_INVALID;
	}
	if (eb_same_file(r->ckpt_path, o->input) || strcmp(r->ckpt_path, o->output) == 0) {
		eb_say("the checkpoint %s is the input or the output file", r->ckpt_path);
		return ENR_E_INVALID;
	}
	return ENR_OK;
}

/* " s" with s quoted for a POSIX shell when it has to be. */
static enum enr_err shell_word(struct buf *b, const char *s)
{
	bool plain = *s != '\0';
	enum enr_err rc;

	for (const char *p = s; *p && plain; p++)
		plain = ascii_is_alnum(*p) || strchr("_./,:=@%+-", *p) != NULL;
	rc = buf_putc(b, ' ');
	if (rc || plain)
		return rc ? rc : buf_puts(b, s);
	rc = buf_putc(b, '\'');
	for (const char *p = s; rc == ENR_OK && *p; p++)
		rc = *p == '\'' ? buf_puts(b, "'\\''") : buf_putc(b, *p);
	return rc ? rc : buf_putc(b, '\'');
}

/* An option and its value, as words of a command. */
static enum enr_err option(struct buf *b, const char *opt, const char *value)
{
	enum enr_err rc = buf_puts(b, opt);

	return rc ? rc : shell_word(b, value);
}

const char *eb_again_command(const struct eb_run *r, struct buf *b, const char *how,
			     bool with_limit)
{
	const struct eb_opts *o = r->o;
	enum enr_err rc;

	buf_reset(b);
	rc = option(b, PROG " --input", o->input);
	if (rc == ENR_OK)
		rc = option(b, " --output", o->output);
	if (rc == ENR_OK && o->fields)
		rc = option(b, " --fields", r->fields_canon);
	/* The added columns and the way cells are written are part of every
	 * row the checkpoint holds. */
	if (rc == ENR_OK && (o->extra & JOB_COL_SOURCE))
		rc = buf_puts(b, " --sources");
	if (rc == ENR_OK && (o->extra & JOB_COL_CONFIDENCE))
		rc = buf_puts(b, " --confidence");
	if (rc == ENR_OK && o->formulas_raw)
		rc = buf_puts(b, " --formulas=raw");
	if (rc == ENR_OK && with_limit && o->limit)
		rc = buf_printf(b, " --limit %lld", (long long)o->limit);
	if (rc == ENR_OK && o->checkpoint)
		rc = option(b, " --checkpoint", o->checkpoint);
	if (rc == ENR_OK && o->conf_given)
		rc = option(b, " -c", o->conf);
	if (rc == ENR_OK && o->report)
		rc = option(b, " --report", o->report);
	if (rc == ENR_OK && o->errors)
		rc = option(b, " --errors", o->errors);
	if (rc == ENR_OK)
		rc = buf_printf(b, " %s", how);
	return rc ? "(out of memory: the command could not be written)" : buf_cstr(b);
}

/* Last in what the checkpoint records as "the fields" when the rows it
 * holds were written with formula-like cells quoted.  A checkpoint without
 * it holds cells as they are (--formulas=raw, or made before the quoting
 * existed). */
#define QUOTED_MARK ",_formulas_quoted"

/* What the checkpoint records as "the fields": the wanted fields, the
 * added columns and the way cells are written, which shape every output
 * row it holds. */
static void columns_ident(const struct eb_run *r, char *out, size_t outsz)
{
	/* Every field name joined takes under 256 bytes (CKPT_FIELDS_MAX). */
	if ((size_t)snprintf(out, outsz, "%s%s%s%s", r->fields_canon,
			     r->o->extra & JOB_COL_SOURCE ? ",_source" : "",
			     r->o->extra & JOB_COL_CONFIDENCE ? ",_confidence" : "",
			     r->o->formulas_raw ? "" : QUOTED_MARK) >= outsz)
		out[0] = '\0';
}

/* The length of the fields part of a columns_ident() string. */
static size_t fields_part(const char *s)
{
	const char *p = strstr(s, ",_");

	return p ? (size_t)(p - s) : strlen(s);
}

/* The length of a columns_ident() string without its QUOTED_MARK; *quoted
 * says whether it had one. */
static size_t columns_part(const char *s, bool *quoted)
{
	size_t n = strlen(s), m = sizeof QUOTED_MARK - 1;

	*quoted = n >= m && strcmp(s + n - m, QUOTED_MARK) == 0;
	return *quoted ? n - m : n;
}

/* An existing checkpoint may be continued only by the run it belongs to. */
static enum enr_err check_belongs(struct eb_run *r)
{
	const struct eb_opts *o = r->o;
	struct ckpt_ident had;
	struct ckpt_counts k;
	enum enr_err rc = ckpt_ident_get(r->ckpt, &had);

	if (rc == ENR_OK)
		rc = ckpt_counts(r->ckpt, &k);
	if (rc) {
		eb_say("the checkpoint %s cannot be read (%s); remove it to start over", r->ckpt_path,
		       enr_strerror(rc));
		return rc;
	}
	if (!o->resume && !o->retry_failed) {
		struct buf cmd;

		buf_init(&cmd, 0);
		eb_say("a checkpoint of an earlier run exists: %s (%lld of %lld rows done).\n"
		       "  continue it:   %s\n"
		       "  or remove it (rm %s) to start over",
		       r->ckpt_path, (long long)k.done, (long long)had.rows,
		       eb_again_command(r, &cmd, "--resume", false), r->ckpt_path);
		buf_release(&cmd);
		return ENR_E_CONFLICT;
	}
	if (had.size != r->ident.size || strcmp(had.sha256, r->ident.sha256) != 0) {
		eb_say("the checkpoint %s belongs to another input: it was made for %s (%lld bytes, "
		       "SHA-256 %.12s...), and %s is %lld bytes with SHA-256 %.12s...; "
		       "name another --checkpoint or remove it to start over",
		       r->ckpt_path, had.input, (long long)had.size, had.sha256, o->input,
		       (long long)r->ident.size, r->ident.sha256);
		return ENR_E_CONFLICT;
	}
	if (strcmp(had.fields, r->ident.fields) != 0) {
		size_t hl = fields_part(had.fields), tl = fields_part(r->ident.fields);
		const char *hx = had.fields + hl, *tx = r->ident.fields + tl;
		bool hq, tq;
		size_t hc = columns_part(had.fields, &hq), tc = columns_part(r->ident.fields, &tq);

		if (hc == tc && strncmp(had.fields, r->ident.fields, hc) == 0)
			eb_say("the checkpoint %s holds rows written with --formulas=%s, this run "
			       "writes --formulas=%s; give the same --formulas or remove the "
			       "checkpoint to start over", r->ckpt_path, hq ? "neutralise" : "raw",
			       tq ? "neutralise" : "raw");
		else if (hl == tl && strncmp(had.fields, r->ident.fields, hl) == 0)
			eb_say("the checkpoint %s was made with the added columns \"%.*s\", this run "
			       "asks for \"%.*s\"; give the same --sources / --confidence or remove "
			       "the checkpoint to start over", r->ckpt_path,
			       (int)(hc > hl ? hc - hl - 1 : 0), *hx ? hx + 1 : "",
			       (int)(tc > tl ? tc - tl - 1 : 0), *tx ? tx + 1 : "");
		else
			eb_say("the checkpoint %s was made with --fields %.*s, this run asks for "
			       "%.*s; run with the same --fields or remove the checkpoint to start "
			       "over", r->ckpt_path, (int)hl, had.fields, (int)tl, r->ident.fields);
		return ENR_E_CONFLICT;
	}
	if (strcmp(had.input, r->ident.input) != 0)
		eb_say("note: the checkpoint was made for %s; %s has the same content", had.input,
		       r->ident.input);
	return ENR_OK;
}

enum enr_err eb_open_checkpoint(struct eb_run *r)
{
	const struct eb_opts *o = r->o;
	struct stat st;
	bool exists;
	enum enr_err rc;

	columns_ident(r, r->ident.fields, sizeof r->ident.fields);
	exists = lstat(r->ckpt_path, &st) == 0;
	if (!exists && (o->resume || o->retry_failed)) {
		eb_say("nothing to resume: there is no checkpoint %s (run without --resume to start)",
		       r->ckpt_path);
		return ENR_E_NOT_FOUND;
	}
	rc = ckpt_open(r->ckpt_path, exists ? 0 : CKPT_CREATE, &r->ckpt);
	if (rc == ENR_E_CONFLICT) {
		eb_say("the checkpoint %s is in use by another enrich-batch run", r->ckpt_path);
		return rc;
	}
	if (rc == ENR_E_INVALID) {
		eb_say("%s is not an enrich-batch checkpoint; move it away or name another file "
		       "with --checkpoint", r->ckpt_path);
		return rc;
	}
	if (rc) {
		eb_say("cannot open the checkpoint %s: %s", r->ckpt_path,
		       rc == ENR_E_IO ? strerror(errno) : enr_strerror(rc));
		return rc;
	}
	if (exists)
		return check_belongs(r);
	rc = ckpt_ident_set(r->ckpt, &r->ident);
	if (rc) {
		eb_say("cannot write the checkpoint %s: %s", r->ckpt_path, enr_strerror(rc));
		ckpt_close(r->ckpt);
		r->ckpt = NULL;
		if (ckpt_remove(r->ckpt_path) != ENR_OK)
			eb_say("note: the half-made checkpoint %s could not be removed (%s); remove "
			       "it before the next run", r->ckpt_path, strerror(errno));
	}
	return rc;
}

enum enr_err eb_plan_rows(struct eb_run *r)
{
	size_t n = (size_t)r->rows + 1;

	r->todo = malloc(n);
	if (r->todo == NULL) {
		eb_say("out of memory");
		return ENR_E_NOMEM;
	}
	if (r->ckpt == NULL) {
		memset(r->todo, 1, n);
	} else if (ckpt_states(r->ckpt, r->todo, n) != ENR_OK) {
		eb_say("the checkpoint %s cannot be read", r->ckpt_path);
		return ENR_E_STORE;
	}
	r->todo[0] = 0;
	for (size_t i = 1; i < n; i++) {
		signed char s = r->todo[i];

		if ((int64_t)i > r->target) {
			r->todo[i] = 0;      /* beyond --limit */
			continue;
		}
		if (r->ckpt == NULL)
			continue;
		if (s < 0 || (r->o->retry_failed && s == CKPT_FAILED)) {
			r->todo[i] = 1;
			continue;
		}
		r->todo[i] = 0;
		r->base_done++;
		if (s == CKPT_FAILED)
			r->base_failed++;
	}
	r->todo_count = r->target - r->base_done;
	return ENR_OK;
}

void eb_dry_count(struct eb_run *r, const struct est_row *row)
{
	if (est_add(&r->t.est, row) != ENR_OK && r->fatal == ENR_OK) {
		r->fatal = ENR_E_NOMEM;
		util_strlcpy(r->fatal_what, "out of memory", sizeof r->fatal_what);
	}
}
