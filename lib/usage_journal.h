/*
 * usage_journal.h - usage counted in memory that survives a crash of the
 * process.
 *
 * Prefix: uj_.  A process that serves requests from an in-memory lease
 * (lib/admission) counts their usage in a journal: a small file in the
 * state directory, mapped MAP_SHARED, holding cumulative counts per
 * (account, UTC day).  A count is an atomic add to mapped memory (no
 * system call per request), so when the process dies the counts are
 * still in the kernel's page cache and the file.  uj_flush() brings the
 * store up to the journal's totals (st_usage_journal_flush: exactly once,
 * the journal's flushed-up-to marks move in the same transaction).  The
 * owner holds an exclusive flock on its journal; uj_replay() flushes and
 * removes every journal of the same store whose owner is gone.
 *
 * What a crash can cost: a crash of the process loses nothing (the next
 * process on the host replays the journal).  A crash of the machine
 * (power cut, kernel panic) loses what was counted since the last flush
 * (about a second) unless the page had been written back.
 *
 * Thread-safety: uj_add may be called from any thread; uj_flush and
 * uj_close by one thread at a time (lib/admission serialises them).
 */
#ifndef ENR_USAGE_JOURNAL_H
#define ENR_USAGE_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

struct uj;

/* A new journal for store s in dir (created 0700 when missing).  NULL
 * when the directory cannot be used; *err says why. */
struct uj *uj_open(struct store *s, const char *dir, enum enr_err *err);

/* Flush what is left, remove the file and forget it in the store (a
 * clean shutdown).  When the flush fails the file stays for a later
 * replay.  uj_close(NULL) does nothing. */
void uj_close(struct uj *j);

/* Count usage for account_id on the UTC day of now_s.  false when the
 * journal is full (the caller writes to the store directly). */
bool uj_add(struct uj *j, int64_t account_id, int64_t now_s, const struct st_usage_delta *d);

/* Write the totals that changed since the last flush; on failure nothing
 * is lost (the next flush writes them).  When the journal is three
 * quarters full a fresh one takes its place. */
enum enr_err uj_flush(struct uj *j) ENR_MUST_CHECK;

/* Flush and remove the journals in dir whose owner died (their flock is
 * free) and that belong to store s.  *n (may be NULL): how many. */
enum enr_err uj_replay(struct store *s, const char *dir, int *n) ENR_MUST_CHECK;

/* The journal's file name (for logs and tests). */
const char *uj_path(const struct uj *j);

#endif
