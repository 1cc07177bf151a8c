/*
 * config_load.c - read one libconfig file against the directive tables.
 *
 * Pass 1 walks every setting in the file and checks it against its row
 * (config_rules.c): unknown settings, wrong types, out-of-range values and
 * malformed strings are found wherever they are, before anything is
 * stored.  Pass 2 walks the rows and stores each value, or the row's
 * default, into a fresh struct cfg; setters and the tables' finish hooks
 * check what one row cannot see (references, duplicates, secrets that
 * must resolve).  Relative paths are resolved against the directory of
 * the file.
 */
#include "config_int.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "limits.h"
#include "util.h"

static const char *const type_names[CT__MAX] = {
	[CT_GROUP] = "a group { ... }",
	[CT_LIST] = "a list ( ... )",
	[CT_STR] = "a string",
	[CT_CHOICE] = "a string",
	[CT_INT] = "an integer",
	[CT_BOOL] = "true or false",
	[CT_STRS] = "an array of strings [ ... ]",
	[CT_INTS] = "an array of integers [ ... ]",
};

void cfg_ld_fail(struct cfg_ld *ld, const config_setting_t *s, const char *disp, const char *fmt,
		 ...)
{
	char msg[LIM_CONFIG_ERR_MAX];
	va_list ap;
	const char *file = ld->path;
	unsigned line = 0;

	if (ld->failed)
		return;
	ld->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (s) {
		line = config_setting_source_line(s);
		if (config_setting_source_file(s))
			file = config_setting_source_file(s);
	}
	if (line)
		snprintf(ld->err, ld->errlen, "%s:%u: %s: %s", file, line, disp, msg);
	else
		snprintf(ld->err, ld->errlen, "%s: %s: %s", file, disp, msg);
}

char *cfg_ld_strdup(struct cfg_ld *ld, const char *s)
{
	char *p = strdup(s ? s : "");

	if (p == NULL)
		ld->oom = true;
	return p;
}

/* "a" + "." + "b", or "b" when a is empty (truncated to outsz). */
static void join(char *out, size_t outsz, const char *a, const char *b)
{
	if (snprintf(out, outsz, "%s%s%s", a, a[0] ? "." : "", b) < 0)
		out[0] = '\0';
}

/* "a[i]" (truncated to outsz). */
static void elem(char *out, size_t outsz, const char *a, int i)
{
	if (snprintf(out, outsz, "%s[%d]", a, i) < 0)
		out[0] = '\0';
}

/* ---- pass 1: every setting in the file against its row ------------------ */

static const struct cfg_dir *dir_find(const struct cfg_table *t, const char *rel)
{
	const char *dot = strrchr(rel, '.');

	for (; t; t = t->also) {
		for (size_t i = 0; i < t->n; i++) {
			const struct cfg_dir *d = &t->dirs[i];
			size_t pl = strlen(d->path);

			if (strcmp(d->path, rel) == 0)
				return d;
			/* "x.*" is any member directly under x */
			if ((d->flags & CF_ANY_NAME) && dot && (size_t)(dot - rel) == pl - 2 &&
			    strncmp(d->path, rel, pl - 2) == 0)
				return d;
		}
	}
	return NULL;
}

static int choice_index(const struct cfg_dir *d, const char *v)
{
	for (int i = 0; i < d->nnames; i++) {
		if (strcmp(d->names[i], v) == 0)
			return i;
	}
	return -1;
}

static bool is_int(const config_setting_t *s)
{
	int t = config_setting_type(s);

	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

static void check_string(struct cfg_ld *ld, const config_setting_t *s, const char *disp,
			 const struct cfg_dir *d)
{
	const char *v = config_setting_get_string(s);
	char why[LIM_CONFIG_ERR_MAX];
	size_t l;

	if (v == NULL || config_setting_type(s) != CONFIG_TYPE_STRING) {
		cfg_ld_fail(ld, s, disp, "must be a string");
		return;
	}
	l = strlen(v);
	if (d->type == CT_STR && ((int64_t)l < d->min || (int64_t)l > d->max)) {
		cfg_ld_fail(ld, s, disp, "length %zu is outside %lld..%lld", l, (long long)d->min,
			    (long long)d->max);
		return;
	}
	if (!util_utf8_valid(v, l)) {
		cfg_ld_fail(ld, s, disp, "is not valid UTF-8");
		return;
	}
	if (d->names && choice_index(d, v) < 0) {
		char list[256] = "";
		size_t used = 0;

		for (int i = 0; i < d->nnames && used < sizeof list; i++) {
			int w = snprintf(list + used, sizeof list - used, "%s%s", i ? "|" : "",
					 d->names[i]);
			if (w > 0)
				used += (size_t)w;
		}
		cfg_ld_fail(ld, s, disp, "\"%s\" is not one of %s", v, list);
		return;
	}
	if (d->check && !(d->flags & CF_ANY_NAME) && !d->check(d, v, why, sizeof why))
		cfg_ld_fail(ld, s, disp, "%s", why);
}

static void check_int(struct cfg_ld *ld, const config_setting_t *s, const char *disp,
		      const struct cfg_dir *d)
{
	long long v;

	if (!is_int(s)) {
		cfg_ld_fail(ld, s, disp, "must be an integer");
		return;
	}
	v = config_setting_get_int64(s);
	if (v < d->min || v > d->max)
		cfg_ld_fail(ld, s, disp, "%lld is outside %lld..%lld", v, (long long)d->min,
			    (long long)d->max);
}

static void walk(struct cfg_ld *ld, const config_setting_t *grp, const struct cfg_table *t,
		 const char *rel, const char *disp);

static void check_setting(struct cfg_ld *ld, const config_setting_t *s, const struct cfg_dir *d,
			  const struct cfg_table *t, const char *rel, const char *disp)
{
	int type = config_setting_type(s);
	bool ok;
	int n;

	switch (d->type) {
	case CT_GROUP: ok = type == CONFIG_TYPE_GROUP; break;
	case CT_LIST: ok = type == CONFIG_TYPE_LIST; break;
	case CT_BOOL: ok = type == CONFIG_TYPE_BOOL; break;
	case CT_STR:
	case CT_CHOICE: ok = type == CONFIG_TYPE_STRING; break;
	case CT_INT: ok = is_int(s); break;
	default: ok = type == CONFIG_TYPE_ARRAY || type == CONFIG_TYPE_LIST; break;
	}
	if (!ok) {
		cfg_ld_fail(ld, s, disp, "must be %s", type_names[d->type]);
		return;
	}
	if (d->type == CT_STR || d->type == CT_CHOICE) {
		check_string(ld, s, disp, d);
	} else if (d->type == CT_INT) {
		check_int(ld, s, disp, d);
	} else if (d->type == CT_GROUP) {
		walk(ld, s, t, rel, disp);
	} else if (d->type != CT_BOOL) {
		n = config_setting_length(s);
		for (int i = 0; i < n && !ld->failed; i++) {
			const config_setting_t *el = config_setting_get_elem(s, (unsigned)i);
			char ed[300];

			elem(ed, sizeof ed, disp, i);
			if (d->type == CT_LIST && config_setting_type(el) != CONFIG_TYPE_GROUP)
				cfg_ld_fail(ld, el, ed, "must be %s", type_names[CT_GROUP]);
			else if (d->type == CT_LIST)
				walk(ld, el, d->sub, "", ed);
			else if (d->type == CT_STRS)
				check_string(ld, el, ed, d);
			else
				check_int(ld, el, ed, d);
		}
	}
}

static void walk(struct cfg_ld *ld, const config_setting_t *grp, const struct cfg_table *t,
		 const char *rel, const char *disp)
{
	int n = config_setting_length(grp);

	for (int i = 0; i < n && !ld->failed; i++) {
		const config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct cfg_dir *d;
		char mrel[256], mdisp[300], why[LIM_CONFIG_ERR_MAX];

		join(mrel, sizeof mrel, rel, name ? name : "");
		join(mdisp, sizeof mdisp, disp, name ? name : "");
		d = dir_find(t, mrel);
		if (d == NULL) {
			cfg_ld_fail(ld, s, mdisp, "unknown setting");
			return;
		}
		if ((d->flags & CF_ANY_NAME) && d->check && !d->check(d, name, why, sizeof why)) {
			cfg_ld_fail(ld, s, mdisp, "%s", why);
			return;
		}
		check_setting(ld, s, d, t, mrel, mdisp);
	}
}

/* ---- pass 2: rows into struct cfg --------------------------------------- */

/* The member at a dotted path under blk, or NULL. */
static const config_setting_t *member(const config_setting_t *blk, const char *path)
{
	char seg[128];

	while (blk && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof seg)
			return NULL;
		memcpy(seg, path, n);
		seg[n] = '\0';
		blk = config_setting_get_member(blk, seg);
		path += n + (path[n] == '.');
	}
	return blk;
}

static void put_int(void *field, size_t size, int64_t v)
{
	if (size == sizeof(int64_t)) {
		memcpy(field, &v, sizeof v);
	} else {
		int i = (int)v;

		assert(size == sizeof(int));
		memcpy(field, &i, sizeof i);
	}
}

/* Room for the n elements of a list setting (NULL when n <= 0, or when
 * memory ran out, which ld notes). */
static void *list_room(struct cfg_ld *ld, int n, size_t size)
{
	void *v = n > 0 ? calloc((size_t)n, size) : NULL;

	if (n > 0 && v == NULL)
		ld->oom = true;
	return v;
}

static bool str_list(struct cfg_ld *ld, const config_setting_t *arr, const char *dflt,
		     struct cfg_list *out)
{
	int n = arr ? config_setting_length(arr) : dflt ? 1 : 0;

	out->n = 0;
	out->v = list_room(ld, n, sizeof *out->v);
	if (out->v == NULL)
		return n <= 0;
	for (int i = 0; i < n; i++) {
		const char *s = arr ? config_setting_get_string_elem(arr, i) : dflt;

		out->v[i] = cfg_ld_strdup(ld, s);
		if (out->v[i] == NULL)
			return false;
		out->n++;
	}
	return true;
}

static bool int_list(struct cfg_ld *ld, const config_setting_t *arr, struct cfg_int_list *out)
{
	int n = arr ? config_setting_length(arr) : 0;

	out->n = 0;
	out->v = list_room(ld, n, sizeof *out->v);
	if (out->v == NULL)
		return n <= 0;
	for (int i = 0; i < n; i++)
		out->v[i] = config_setting_get_int_elem(arr, i);
	out->n = (size_t)n;
	return true;
}

/* Read a secret reference: "env:NAME" or "file:PATH".  The file must not
 * be readable by others (it holds a credential). */
static bool resolve_secret(struct cfg_ld *ld, const config_setting_t *s, const char *disp,
			   const char *ref, char **out)
{
	char *path, *text = NULL;
	size_t n = 0;
	enum enr_err rc;

	if ((ld->flags & CFG_LOAD_NO_SECRETS) &&
	    ((strncmp(ref, "env:", 4) == 0 && ref[4]) || (strncmp(ref, "file:", 5) == 0 && ref[5]))) {
		*out = cfg_ld_strdup(ld, "");
		return *out != NULL;
	}
	if (strncmp(ref, "env:", 4) == 0) {
		const char *v = getenv(ref + 4);

		if (ref[4] == '\0' || v == NULL || *v == '\0') {
			cfg_ld_fail(ld, s, disp, "environment variable %s is not set", ref + 4);
			return false;
		}
		*out = cfg_ld_strdup(ld, v);
		return *out != NULL;
	}
	if (strncmp(ref, "file:", 5) != 0) {
		cfg_ld_fail(ld, s, disp,
			    "must be \"env:NAME\" or \"file:PATH\" (secrets are never written in the file)");
		return false;
	}
	path = cfg_ld_path(ld, ref + 5);
	if (path == NULL)
		return false;
	rc = util_secret_file(path, &text);
	if (rc == ENR_E_FORBIDDEN)
		cfg_ld_fail(ld, s, disp, "secret file %s is readable by others (chmod o-r)", path);
	else if (rc == ENR_E_TOO_LARGE)
		cfg_ld_fail(ld, s, disp, "secret file %s is larger than %u bytes", path,
			    LIM_SECRET_FILE_MAX);
	else if (rc == ENR_E_NOMEM)
		cfg_ld_fail(ld, s, disp, "out of memory reading secret file %s", path);
	else if (rc)
		cfg_ld_fail(ld, s, disp, "cannot open secret file %s: %s", path, strerror(errno));
	if (rc == ENR_OK) {
		n = strlen(text);
		if (n == 0)
			cfg_ld_fail(ld, s, disp, "secret file %s is empty", path);
		else
			*out = cfg_ld_strdup(ld, text);
		explicit_bzero(text, n);
	}
	free(text);
	free(path);
	return rc == ENR_OK && n > 0 && *out != NULL;
}

char *cfg_ld_path(struct cfg_ld *ld, const char *p)
{
	size_t dl = strlen(ld->dir), n;
	char *out;

	if (p[0] == '/' || p[0] == '\0')
		return cfg_ld_strdup(ld, p);
	/* Fold leading "./" and "../" into the directory: it is a realpath
	 * (no symbolic links), so this is what the kernel would do. */
	for (;;) {
		if (p[0] == '.' && (p[1] == '/' || p[1] == '\0')) {
			p += 1;
		} else if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == '\0')) {
			p += 2;
			while (dl > 1 && ld->dir[dl - 1] != '/')
				dl--;
			if (dl > 1)
				dl--;
		} else {
			break;
		}
		while (*p == '/')
			p++;
	}
	n = dl + 1 + strlen(p) + 1;
	out = malloc(n);
	if (out == NULL) {
		ld->oom = true;
		return NULL;
	}
	if (*p == '\0')
		snprintf(out, n, "%.*s", (int)dl, ld->dir);
	else
		snprintf(out, n, "%.*s%s%s", (int)dl, ld->dir, dl == 1 ? "" : "/", p);
	return out;
}

static bool load_list(struct cfg_ld *ld, const struct cfg_dir *d, const config_setting_t *s,
		      const char *disp, void *base)
{
	const struct cfg_table *t = d->sub;
	int n = s ? config_setting_length(s) : 0;
	void *saved = ld->parent;
	char *arr;
	size_t count;
	bool ok = true;

	if (n <= 0)
		return true;
	arr = calloc((size_t)n, t->size);
	if (arr == NULL) {
		ld->oom = true;
		return false;
	}
	/* The whole (zeroed) array is owned at once, so cfg_free frees what
	 * a failure leaves half loaded. */
	count = (size_t)n;
	memcpy((char *)base + d->off, &arr, sizeof arr);
	memcpy((char *)base + d->off_n, &count, sizeof count);
	ld->parent = base;
	for (int i = 0; i < n && ok; i++) {
		char ed[300];

		elem(ed, sizeof ed, disp, i);
		ok = cfg_ld_block(ld, t, config_setting_get_elem(s, (unsigned)i),
				  arr + (size_t)i * t->size, ed);
	}
	ld->parent = saved;
	return ok;
}

bool cfg_ld_store(struct cfg_ld *ld, const struct cfg_dir *d, const config_setting_t *s,
		  const char *disp, void *base)
{
	void *field = (char *)base + d->off;

	switch (d->type) {
	case CT_GROUP:
		return true;
	case CT_LIST:
		return load_list(ld, d, s, disp, base);
	case CT_STR: {
		const char *v = s ? config_setting_get_string(s) : d->dflt_s;
		char *out;

		if (v == NULL)
			v = "";
		if ((d->flags & CF_SECRET) && v[0])
			return resolve_secret(ld, s, disp, v, (char **)field);
		out = (d->flags & CF_PATH) ? cfg_ld_path(ld, v) : cfg_ld_strdup(ld, v);
		*(char **)field = out;
		return out != NULL;
	}
	case CT_CHOICE:
		put_int(field, d->size,
			s ? choice_index(d, config_setting_get_string(s)) : d->dflt);
		return true;
	case CT_INT:
		put_int(field, d->size, s ? (int64_t)config_setting_get_int64(s) : d->dflt);
		return true;
	case CT_BOOL:
		*(bool *)field = s ? config_setting_get_bool(s) != 0 : d->dflt != 0;
		return true;
	case CT_STRS:
		return str_list(ld, s, d->dflt_s, field);
	case CT_INTS:
		return int_list(ld, s, field);
	default:
		return false;
	}
}

bool cfg_ld_block(struct cfg_ld *ld, const struct cfg_table *t, const config_setting_t *blk,
		  void *base, const char *disp)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct cfg_dir *d = &t->dirs[i];
		const config_setting_t *s;
		char rd[300];

		if (d->flags & CF_ANY_NAME)
			continue; /* stored by its group's setter */
		s = member(blk, d->path);
		join(rd, sizeof rd, disp, d->path);
		if (s == NULL && (d->flags & CF_REQUIRED)) {
			/* Point at the nearest group that is there. */
			const config_setting_t *at = blk;
			const char *dot = strrchr(d->path, '.');

			if (dot) {
				char up[128];

				snprintf(up, sizeof up, "%.*s", (int)(dot - d->path), d->path);
				if (member(blk, up))
					at = member(blk, up);
			}
			cfg_ld_fail(ld, at, disp[0] ? disp : d->path, "%s is required", d->path);
			return false;
		}
		if (!(d->set ? d->set(ld, d, s, rd, base) : cfg_ld_store(ld, d, s, rd, base)))
			return false;
		if (ld->oom)
			return false;
	}
	return t->finish ? t->finish(ld, blk, base, disp) : true;
}

/* ---- entry points --------------------------------------------------------- */

/* The absolute directory of path, for resolving relative paths in it. */
static bool config_dir(const char *path, char out[PATH_MAX])
{
	const char *slash = strrchr(path, '/');
	char d[PATH_MAX];

	if (slash == NULL)
		snprintf(d, sizeof d, ".");
	else if (slash == path)
		snprintf(d, sizeof d, "/");
	else if ((size_t)(slash - path) < sizeof d)
		snprintf(d, sizeof d, "%.*s", (int)(slash - path), path);
	else
		return false;
	return realpath(d, out) != NULL;
}

enum enr_err cfg_load(const char *path, struct cfg **out, char *err, size_t errlen)
{
	return cfg_load_flags(path, 0, out, err, errlen);
}

enum enr_err cfg_load_flags(const char *path, unsigned flags, struct cfg **out, char *err,
			    size_t errlen)
{
	config_t lc;
	struct cfg_ld ld = { .path = path, .err = err, .errlen = errlen, .flags = flags };
	struct cfg *c = NULL;
	enum enr_err rc = ENR_E_CONFIG;
	struct stat st;

	if (errlen)
		err[0] = '\0';
	config_init(&lc);
	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)LIM_CONFIG_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %u bytes", path,
			 LIM_CONFIG_FILE_MAX);
		goto out;
	}
	if (!config_dir(path, ld.dir)) {
		snprintf(err, errlen, "%s: cannot resolve the file's directory: %s", path,
			 strerror(errno));
		goto out;
	}
	/* @include "x" is relative to the file too. */
	config_set_include_dir(&lc, ld.dir);
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		else
			snprintf(err, errlen, "%s:%d: syntax error: %s",
				 config_error_file(&lc) ? config_error_file(&lc) : path,
				 config_error_line(&lc), config_error_text(&lc));
		goto out;
	}
	walk(&ld, config_root_setting(&lc), &cfg_root_table, "", "");
	if (ld.failed)
		goto out;
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		ld.oom = true;
		goto out;
	}
	c->refs = 1;
	ld.cfg = c;
	c->path = cfg_ld_strdup(&ld, path);
	if (c->path == NULL ||
	    !cfg_ld_block(&ld, &cfg_root_table, config_root_setting(&lc), c, ""))
		goto out;
	*out = c;
	c = NULL;
	rc = ENR_OK;
out:
	if (ld.oom && !ld.failed) {
		rc = ENR_E_NOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
	} else if (rc == ENR_E_CONFIG && err[0] == '\0') {
		snprintf(err, errlen, "%s: invalid", path);
	}
	cfg_free(c);
	config_destroy(&lc);
	return rc;
}
