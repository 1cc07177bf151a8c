/*
 * checkpoint.h - the local checkpoint of an enrich-batch run.
 *
 * Prefix: ckpt_.  A checkpoint is a small SQLite file beside the output
 * (WAL journal) that remembers which input it belongs to (path, size,
 * SHA-256 of the content, the fields asked for) and one row per finished
 * input record: its state, its error code and reason, and the output row
 * it produced, serialised as it goes into the output file.  The output
 * file is rebuilt from it in row order, so a row can be written at most
 * once however often a run is interrupted and resumed.
 *
 * Commits are batched: ckpt_put() opens a write transaction on the first
 * pending row and commits it after CKPT_BATCH_ROWS rows, or when
 * ckpt_tick() sees the oldest pending row CKPT_BATCH_MS old, or on
 * ckpt_flush() and ckpt_close().  A crash loses at most the rows of the
 * open transaction; a committed row survives a crash of the process (a
 * power cut may lose the last commits: synchronous=NORMAL) and a row
 * number is a primary key, so nothing is ever held twice.
 *
 * One process at a time: ckpt_open() takes an exclusive flock(2) on the
 * file and keeps it until ckpt_close().  Other programs may read the file
 * (sqlite3) while it is in use.
 *
 * Ownership: ckpt_open() returns a handle the caller frees with
 * ckpt_close().  Thread-safety: every function may be called from any
 * thread on one handle (an internal mutex serialises them).
 */
#ifndef ENR_CHECKPOINT_H
#define ENR_CHECKPOINT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Commit after this many pending rows, or when the oldest pending row is
 * this old (milliseconds). */
#define CKPT_BATCH_ROWS 32
#define CKPT_BATCH_MS 200

/* Room for the canonical field list ("first_name,title,..."; every field
 * name joined takes under 256 bytes). */
#define CKPT_FIELDS_MAX 512

/* The state of a finished row.  The names are what the output's _status
 * column and the file hold. */
enum ckpt_state {
	CKPT_COMPLETE,   /* every requested field found */
	CKPT_PARTIAL,    /* some found, the rest not known to any provider asked */
	CKPT_NOT_FOUND,  /* nothing found: an answer, not a failure */
	CKPT_FAILED,     /* a transient failure (no usable key, provider errors,
			  * deadline): --retry-failed runs it again */
	CKPT_INVALID,    /* the row could not be read or failed validation */
	CKPT_STATE__MAX
};

extern const char *const ckpt_state_names[CKPT_STATE__MAX];

/* Parse a state name; false when unknown. */
bool ckpt_state_parse(const char *s, enum ckpt_state *out);

/* What a checkpoint belongs to. */
struct ckpt_ident {
	char input[PATH_MAX];          /* the input file's absolute path */
	int64_t size;                  /* its size in bytes */
	char sha256[65];               /* lower-case hex SHA-256 of its content */
	char fields[CKPT_FIELDS_MAX];  /* requested fields, canonical comma list */
	int64_t rows;                  /* data rows in the input */
};

/* One finished row.  For ckpt_put() every pointer is borrowed for the
 * call; ckpt_each() hands out pointers valid during the callback only. */
struct ckpt_row {
	int64_t n;             /* data row number, from 1 */
	int64_t line;          /* physical line of the input the row starts on */
	enum ckpt_state state;
	const char *code;      /* short error code ("" when none) */
	const char *reason;    /* short English reason ("" when none) */
	const char *out;       /* the output row (CSV, CRLF included) */
	size_t out_len;
	int credits;           /* credits spent on the row (all attempts) */
	int calls;             /* upstream calls made for it (all attempts) */
	bool cached;           /* answered from the cache without a call */
	int attempts;          /* ckpt_each(): times the row was processed */
};

struct ckpt;

#define CKPT_CREATE 1u  /* ckpt_open: create the file when it is absent */

/* Open the checkpoint at path and lock it.  Returns ENR_OK with *out;
 * ENR_E_NOT_FOUND when the file is absent and CKPT_CREATE was not given;
 * ENR_E_CONFLICT when another handle (this process or another) holds it;
 * ENR_E_INVALID when the file is not a checkpoint (another SQLite
 * database, not SQLite at all, or a newer format); ENR_E_IO when it
 * cannot be opened or created (errno tells why); ENR_E_STORE, ENR_E_NOMEM.
 * A file this call created is removed again when it fails. */
ENR_MUST_CHECK enum enr_err ckpt_open(const char *path, unsigned flags, struct ckpt **out);

/* Commit what is pending, close and unlock.  ckpt_close(NULL) does
 * nothing. */
void ckpt_close(struct ckpt *c);

/* Remove the checkpoint file at path and its -wal and -shm companions
 * (none of them existing is fine).  Not while a handle is open on it.
 * ENR_E_IO when one cannot be removed. */
ENR_MUST_CHECK enum enr_err ckpt_remove(const char *path);

/* The recorded identity: ENR_OK with *out, ENR_E_NOT_FOUND when none was
 * recorded yet. */
ENR_MUST_CHECK enum enr_err ckpt_ident_get(struct ckpt *c, struct ckpt_ident *out);

/* Record the identity (replacing any) and commit it at once. */
ENR_MUST_CHECK enum enr_err ckpt_ident_set(struct ckpt *c, const struct ckpt_ident *id);

/* Record a finished row, replacing an earlier result of the same row
 * number (credits and calls add up, attempts count).  now_ms is any
 * monotonic clock in milliseconds; it only decides when to commit (see
 * the header comment).  ENR_E_INVALID for n < 1 or a bad state. */
ENR_MUST_CHECK enum enr_err ckpt_put(struct ckpt *c, const struct ckpt_row *r, int64_t now_ms);

/* Commit the pending rows when the oldest is CKPT_BATCH_MS old at now_ms
 * (same clock as ckpt_put). */
ENR_MUST_CHECK enum enr_err ckpt_tick(struct ckpt *c, int64_t now_ms);

/* Commit the pending rows now. */
ENR_MUST_CHECK enum enr_err ckpt_flush(struct ckpt *c);

/* Rows recorded but not committed yet. */
int ckpt_pending(struct ckpt *c);

/* For every recorded row n with 1 <= n < nstates, states[n] = its enum
 * ckpt_state; every other entry of states (caller-owned, nstates bytes)
 * is set to -1.  On an error the contents of states are unspecified. */
ENR_MUST_CHECK enum enr_err ckpt_states(struct ckpt *c, signed char *states, size_t nstates);

struct ckpt_counts {
	int64_t done;                      /* rows recorded */
	int64_t state[CKPT_STATE__MAX];    /* by state */
	int64_t credits, calls, cached;
};

ENR_MUST_CHECK enum enr_err ckpt_counts(struct ckpt *c, struct ckpt_counts *out);

/* Call fn for every recorded row whose state is in mask (bit 1u << state;
 * 0: every row), in row order; fn returns non-zero to stop (that value is
 * not an error).  fn must not call back into c. */
ENR_MUST_CHECK enum enr_err ckpt_each(struct ckpt *c, unsigned mask,
		       int (*fn)(void *arg, const struct ckpt_row *r), void *arg);

/* Call fn for every error code of failed and invalid rows with the
 * number of rows that carry it, by code. */
ENR_MUST_CHECK enum enr_err ckpt_codes(struct ckpt *c, int (*fn)(void *arg, const char *code, int64_t n),
			void *arg);

#endif
