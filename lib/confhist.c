/*
 * confhist.c - the history of applied configuration files (confhist.h).
 *
 * The index is small (at most LIM_CONF_HISTORY_MAX lines), so every change
 * reads it whole and writes it whole under a temporary name.  A copy is
 * written before the index names it, and removed only after the index no
 * longer does, so a crash in between leaves at worst an unnamed copy.
 */
#include "confhist.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ascii.h"
#include "digest.h"
#include "buf.h"
#include "util.h"

#define INDEX_LINE_MAX 96

/* Read a whole regular file of at most LIM_CONFIG_FILE_MAX bytes into
 * out: ENR_E_TOO_LARGE, ENR_E_NOMEM, or ENR_E_IO for anything else that
 * keeps it from being read (missing, not a regular file). */
static enum enr_err read_all(const char *path, struct buf *out)
{
	char *data = NULL;
	size_t len = 0;
	enum enr_err rc = util_read_file(path, LIM_CONFIG_FILE_MAX, UTIL_RF_REGULAR, &data, &len);

	if (rc == ENR_OK)
		rc = buf_append(out, data, len);
	else if (rc != ENR_E_TOO_LARGE && rc != ENR_E_NOMEM)
		rc = ENR_E_IO;
	free(data);
	return rc;
}

static void sha_hex(const void *p, size_t n, char sha[CH_SHA_HEX])
{
	unsigned char md[DG_SHA256_LEN];

	if (dg_sha256(p, n, md) != ENR_OK) {
		memset(sha, '0', CH_SHA_HEX - 1);
		sha[CH_SHA_HEX - 1] = '\0';
		return;
	}
	util_hex(md, DG_SHA256_LEN, sha);
}

enum enr_err ch_file_sha(const char *path, char sha[CH_SHA_HEX])
{
	struct buf b;
	enum enr_err rc;

	buf_init(&b, LIM_CONFIG_FILE_MAX + 1);
	rc = read_all(path, &b);
	if (rc == ENR_OK)
		sha_hex(b.data ? b.data : "", b.len, sha);
	buf_release(&b);
	return rc;
}

/* Write len bytes to path through a file beside it (path + suffix) and a
 * rename.  The file gets mode or, when like is not NULL, the mode and owner
 * of like (the owner only where the process may give a file away: only
 * root may, anyone else keeps ownership). */
static enum enr_err write_atomic(const char *path, const char *suffix, const void *data,
				 size_t len, mode_t mode, const struct stat *like)
{
	struct buf tmp;
	const char *p = data ? data : "";
	enum enr_err rc = ENR_E_IO;
	int fd = -1;

	buf_init(&tmp, 0);
	if (buf_printf(&tmp, "%s%s", path, suffix) != ENR_OK) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		goto out;
	if (like && (fchmod(fd, like->st_mode & 07777) != 0 ||
		     (fchown(fd, like->st_uid, like->st_gid) != 0 && errno != EPERM)))
		goto out;
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) != 0)
		goto out;
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(buf_cstr(&tmp), path) != 0)
		goto out;
	rc = ENR_OK;
out:
	if (fd >= 0)
		close(fd);
	if (rc != ENR_OK && tmp.data)
		unlink(buf_cstr(&tmp));
	buf_release(&tmp);
	return rc;
}

static enum enr_err ensure_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0750) == 0)
		return ENR_OK;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return ENR_OK;
	return ENR_E_IO;
}

static bool is_sha(const char *s, size_t n)
{
	if (n != CH_SHA_HEX - 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!ascii_is_lower_xdigit(s[i]))
			return false;
	}
	return true;
}

/* Parse the index text; lines that do not have the form are skipped (an
 * index is written only by ch_record, so such a line is damage). */
static size_t parse_index(const char *text, struct ch_entry *out, size_t max)
{
	size_t n = 0;

	while (text && *text && n < max) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);
		char line[INDEX_LINE_MAX];
		char *sp;
		int64_t t;

		if (len < sizeof line) {
			memcpy(line, text, len);
			line[len] = '\0';
			sp = strchr(line, ' ');
			if (sp) {
				*sp = '\0';
				if (util_parse_i64(line, 0, INT64_MAX, &t) == ENR_OK &&
				    is_sha(sp + 1, strlen(sp + 1))) {
					out[n].time_s = t;
					memcpy(out[n].sha, sp + 1, CH_SHA_HEX);
					n++;
				}
			}
		}
		text = nl ? nl + 1 : text + len;
	}
	return n;
}

static enum enr_err path_of(struct buf *b, const char *dir, const char *name, const char *sha)
{
	buf_reset(b);
	if (sha)
		return buf_printf(b, "%s/history/%s.conf", dir, sha);
	return buf_printf(b, "%s/%s", dir, name);
}

enum enr_err ch_list(const char *dir, struct ch_entry *out, size_t max, size_t *n)
{
	struct buf path, text;
	enum enr_err rc;

	buf_init(&path, 0);
	buf_init(&text, LIM_CONFIG_FILE_MAX + 1);
	rc = path_of(&path, dir, "history/index", NULL);
	if (rc != ENR_OK)
		goto out;
	if (access(buf_cstr(&path), F_OK) != 0 && errno == ENOENT) {
		*n = 0;
		goto out;
	}
	rc = read_all(buf_cstr(&path), &text);
	if (rc != ENR_OK)
		goto out;
	*n = parse_index(text.data, out, max);
out:
	buf_release(&path);
	buf_release(&text);
	return rc;
}

static bool named(const struct ch_entry *e, size_t n, const char *sha)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(e[i].sha, sha) == 0)
			return true;
	}
	return false;
}

enum enr_err ch_record(const char *dir, const char *conf_path, int64_t now_s,
		       char sha_out[CH_SHA_HEX], bool *added)
{
	struct ch_entry old[LIM_CONF_HISTORY_MAX + 1], keep[LIM_CONF_HISTORY_MAX];
	struct buf conf, path, index;
	char sha[CH_SHA_HEX];
	size_t nold = 0, nkeep = 0;
	enum enr_err rc;
	struct stat st;

	buf_init(&conf, LIM_CONFIG_FILE_MAX + 1);
	buf_init(&path, 0);
	buf_init(&index, 0);
	rc = read_all(conf_path, &conf);
	if (rc != ENR_OK)
		goto out;
	sha_hex(conf.data, conf.len, sha);
	if ((rc = ensure_dir(dir)) != ENR_OK || (rc = path_of(&path, dir, "history", NULL)) != ENR_OK ||
	    (rc = ensure_dir(buf_cstr(&path))) != ENR_OK)
		goto out;
	rc = ch_list(dir, old, LIM_CONF_HISTORY_MAX + 1, &nold);
	if (rc != ENR_OK)
		goto out;

	/* The copy first, then the index that names it. */
	if ((rc = path_of(&path, dir, NULL, sha)) != ENR_OK)
		goto out;
	if (stat(buf_cstr(&path), &st) != 0 &&
	    (rc = write_atomic(buf_cstr(&path), ".tmp", conf.data, conf.len, 0640, NULL)) != ENR_OK)
		goto out;
	if (nold > 0 && strcmp(old[0].sha, sha) == 0) {
		if (added)
			*added = false;
	} else {
		keep[nkeep].time_s = now_s;
		memcpy(keep[nkeep++].sha, sha, CH_SHA_HEX);
		for (size_t i = 0; i < nold && nkeep < LIM_CONF_HISTORY_MAX; i++)
			keep[nkeep++] = old[i];
		for (size_t i = 0; i < nkeep; i++) {
			rc = buf_printf(&index, "%lld %s\n", (long long)keep[i].time_s, keep[i].sha);
			if (rc != ENR_OK)
				goto out;
		}
		if ((rc = path_of(&path, dir, "history/index", NULL)) != ENR_OK ||
		    (rc = write_atomic(buf_cstr(&path), ".tmp", index.data, index.len, 0640, NULL)) != ENR_OK)
			goto out;
		/* Copies of the entries that fell off the end. */
		for (size_t i = 0; i < nold; i++) {
			if (!named(keep, nkeep, old[i].sha) && path_of(&path, dir, NULL, old[i].sha) == ENR_OK)
				unlink(buf_cstr(&path));
		}
		if (added)
			*added = true;
	}
	if ((rc = path_of(&path, dir, "last-good.conf", NULL)) != ENR_OK ||
	    (rc = write_atomic(buf_cstr(&path), ".tmp", conf.data, conf.len, 0640, NULL)) != ENR_OK)
		goto out;
	if (sha_out)
		memcpy(sha_out, sha, CH_SHA_HEX);
out:
	buf_release(&conf);
	buf_release(&path);
	buf_release(&index);
	return rc;
}

/* Pick the entry to go back to (see confhist.h). */
static enum enr_err pick(const struct ch_entry *e, size_t n, const char *cur, const char *to,
			 size_t *which)
{
	size_t tl, found = n;

	if (n == 0)
		return ENR_E_NOT_FOUND;
	if (to == NULL) {
		if (cur == NULL || strcmp(cur, e[0].sha) != 0) {
			*which = 0;
			return ENR_OK;
		}
		for (size_t i = 1; i < n; i++) {
			if (strcmp(e[i].sha, cur) != 0) {
				*which = i;
				return ENR_OK;
			}
		}
		return ENR_E_NOT_FOUND;
	}
	tl = strlen(to);
	if (tl < 6 || tl > CH_SHA_HEX - 1)
		return ENR_E_INVALID;
	for (size_t i = 0; i < tl; i++) {
		if (!ascii_is_lower_xdigit(to[i]))
			return ENR_E_INVALID;
	}
	for (size_t i = 0; i < n; i++) {
		if (strncmp(e[i].sha, to, tl) != 0)
			continue;
		if (found < n && strcmp(e[found].sha, e[i].sha) != 0)
			return ENR_E_INVALID; /* two different files share the prefix */
		if (found == n)
			found = i;
	}
	if (found == n)
		return ENR_E_NOT_FOUND;
	*which = found;
	return ENR_OK;
}

static void compact_time(int64_t now_s, char out[17])
{
	char iso[21];
	size_t o = 0;

	util_fmt_time_s(now_s, iso);
	for (size_t i = 0; iso[i] && o < 16; i++) {
		if (iso[i] != '-' && iso[i] != ':')
			out[o++] = iso[i];
	}
	out[o] = '\0';
}

enum enr_err ch_rollback(const char *dir, const char *conf_path, const char *to, int64_t now_s,
			 struct ch_rollback *out)
{
	struct ch_entry e[LIM_CONF_HISTORY_MAX];
	struct ch_rollback res;
	struct buf path, target;
	char cur[CH_SHA_HEX], stamp[17];
	bool have_cur;
	size_t n = 0, which = 0;
	struct stat st;
	bool have_st;
	enum enr_err rc;

	memset(&res, 0, sizeof res);
	buf_init(&path, 0);
	buf_init(&target, LIM_CONFIG_FILE_MAX + 1);
	have_cur = ch_file_sha(conf_path, cur) == ENR_OK;
	have_st = stat(conf_path, &st) == 0;
	rc = ch_list(dir, e, LIM_CONF_HISTORY_MAX, &n);
	if (rc != ENR_OK)
		goto out;
	rc = pick(e, n, have_cur ? cur : NULL, to, &which);
	if (rc != ENR_OK)
		goto out;
	res.to = e[which];
	if ((rc = path_of(&path, dir, NULL, e[which].sha)) != ENR_OK ||
	    (rc = read_all(buf_cstr(&path), &target)) != ENR_OK)
		goto out;

	if (have_cur && !named(e, n, cur)) {
		struct buf old;

		compact_time(now_s, stamp);
		buf_init(&old, LIM_CONFIG_FILE_MAX + 1);
		rc = read_all(conf_path, &old);
		if (rc == ENR_OK) {
			int w = snprintf(res.rejected, sizeof res.rejected, "%s.rejected.%s",
					 conf_path, stamp);

			rc = (w < 0 || (size_t)w >= sizeof res.rejected)
				     ? ENR_E_INVALID
				     : write_atomic(res.rejected, ".tmp", old.data, old.len, 0640, NULL);
		}
		buf_release(&old);
		if (rc != ENR_OK)
			goto out;
		res.kept_rejected = true;
	}

	/* The target takes the old file's mode and owner. */
	rc = write_atomic(conf_path, ".rollback.tmp", target.data, target.len, 0640,
			  have_st ? &st : NULL);
	if (rc == ENR_OK)
		*out = res;
out:
	buf_release(&path);
	buf_release(&target);
	return rc;
}
