/*
 * confhist.h - the history of applied configuration files.
 *
 * Prefix: ch_.  Every file that was applied (loaded at start or accepted
 * by a reload) is kept in a state directory, so an operator can see what
 * ran when and go back to any of the last LIM_CONF_HISTORY_MAX files:
 *
 *   DIR/last-good.conf        the newest applied file
 *   DIR/history/index         one line per applied file, newest first:
 *                             "EPOCH-SECONDS SHA256-HEX"
 *   DIR/history/SHA256.conf   the bytes of each file the index names
 *
 * Files are written to a temporary name and renamed, so a reader never
 * sees half a file.  The functions are not safe against two processes
 * recording into one directory at the same instant (the responder is the
 * only writer; rollback is an operator command).
 */
#ifndef ENR_CONFHIST_H
#define ENR_CONFHIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "limits.h"

#define CH_SHA_HEX 65 /* 64 hex digits and the terminator */

struct ch_entry {
	int64_t time_s;          /* when it was applied (seconds since the epoch) */
	char sha[CH_SHA_HEX];    /* SHA-256 of the file's bytes */
};

/* SHA-256 of the file at path (at most LIM_CONFIG_FILE_MAX bytes) into
 * sha.  ENR_E_IO when it cannot be read, ENR_E_TOO_LARGE when too big. */
ENR_MUST_CHECK enum enr_err ch_file_sha(const char *path, char sha[CH_SHA_HEX])
	__attribute__((warn_unused_result));

/* Record the file at conf_path as applied at now_s: keep a copy of it,
 * put it first in the index unless it already is first (a restart on
 * the same file adds nothing), forget entries beyond
 * LIM_CONF_HISTORY_MAX (and the copies no entry names any more), and
 * refresh DIR/last-good.conf.  Creates DIR and DIR/history (mode 0750)
 * when missing.  On success sha holds the file's checksum and *added
 * says whether a new entry was written (either may be NULL). */
ENR_MUST_CHECK enum enr_err ch_record(const char *dir, const char *conf_path, int64_t now_s,
		       char sha[CH_SHA_HEX], bool *added)
	__attribute__((warn_unused_result));

/* The entries of DIR's index, newest first, at most max of them, into
 * out; *n says how many.  A directory without an index has none (ENR_OK
 * with *n = 0). */
ENR_MUST_CHECK enum enr_err ch_list(const char *dir, struct ch_entry *out, size_t max, size_t *n)
	__attribute__((warn_unused_result));

/* What ch_rollback did. */
struct ch_rollback {
	struct ch_entry to;             /* the entry written back to conf_path */
	bool kept_rejected;             /* the current file was never applied */
	char rejected[LIM_PATH_BYTES];  /* where it was kept (when kept_rejected) */
};

/* Write an applied configuration back to conf_path (it takes effect on
 * the next reload).  to == NULL picks "the previous one": when the
 * current file is the newest applied one, the newest entry with other
 * content; otherwise (the file was edited since) the newest entry, the
 * one that runs now.  to may also be a checksum prefix of at least 6 hex
 * digits naming one entry.  A current file whose checksum is in no entry
 * (never applied) is first kept as conf_path.rejected.YYYYMMDDTHHMMSSZ;
 * an applied one is in the history already.  The new file keeps the old
 * one's mode and owner.
 * Errors: ENR_E_NOT_FOUND when there is nothing to go back to or no entry
 * matches `to`, ENR_E_INVALID when `to` is too short, not hex or
 * ambiguous, ENR_E_IO when a file cannot be read or written. */
ENR_MUST_CHECK enum enr_err ch_rollback(const char *dir, const char *conf_path, const char *to,
			 int64_t now_s, struct ch_rollback *out)
	__attribute__((warn_unused_result));

#endif
