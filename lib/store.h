/*
 * store.h - the persistent state of enrichd behind one interface.
 *
 * Prefix: st_.  Accounts and their client keys, rate-limit buckets and
 * quota windows, daily usage, the upstream key pool, the cache and batch
 * jobs all live here, so every thread, process and (with a shared
 * database) host sees the same state.  The embedded back end is SQLite
 * (lib/store_sqlite.c): WAL, a busy timeout, BEGIN IMMEDIATE for writes,
 * one connection per thread, schema migrations numbered in the code and
 * applied by st_open.  Callers never see SQL.
 *
 * Thread-safety: a struct store is shared by all threads; each thread gets
 * its own connection on first use.  Call st_thread_release() before a
 * thread that used the store exits.
 *
 * Errors: ENR_E_NOT_FOUND, ENR_E_CONFLICT (a unique name taken),
 * ENR_E_UNAVAILABLE (the database cannot be opened, is locked past the
 * busy timeout, is read-only or full, or fails I/O: try again later),
 * ENR_E_STORE (anything else; logged with the SQLite message).
 */
#ifndef ENR_STORE_H
#define ENR_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "err.h"
#include "keypool.h"
#include "limits.h"
#include "provider.h"

struct store;

/* Open (creating if needed) the store named by url ("sqlite:PATH") and
 * bring its schema to the current version.  *out is the caller's; free
 * with st_close. */
enum enr_err st_open(const char *url, struct store **out);
void st_close(struct store *s);

/* Open without migrating; st_migrate() then applies what is missing.
 * *from / *to report the versions before and after. */
enum enr_err st_open_raw(const char *url, struct store **out);

/* st_open (migrate true) or st_open_raw (false) that says why it failed:
 * on an error, why (whylen bytes) names the file and the reason, e.g.
 * "cannot open /x/var/enrichd.db: No such file or directory (directory
 * /x/var does not exist)", for the caller to print. */
enum enr_err st_open_why(const char *url, bool migrate, struct store **out, char *why,
			 size_t whylen);
enum enr_err st_migrate(struct store *s, int *from, int *to);
/* Migrate up to version target only (tests of upgrades from each
 * earlier version). */
enum enr_err st_migrate_to(struct store *s, int target, int *from, int *to);
int st_schema_latest(void);
enum enr_err st_schema_version(struct store *s, int *out);

/* Release the calling thread's connection. */
void st_thread_release(struct store *s);

/* A counter every process on this host sees, bumped after each change to
 * client keys or account limits (st_client_key_insert/revoke,
 * st_account_set_limits), so a process may keep authentication results in
 * memory and drop them the moment anything changed.  0 when the counter
 * file could not be mapped (callers then must not cache). */
uint64_t st_auth_generation(struct store *s);

/* A cheap round trip (for /health). */
enum enr_err st_ping(struct store *s);

/* A tiny write in its own transaction (one row no other code reads), so
 * /health can tell a store that answers reads but takes no writes.
 * ENR_E_UNAVAILABLE when it cannot be written right now. */
enum enr_err st_probe_write(struct store *s, int64_t now_ms);

/* ---- accounts ---------------------------------------------------------- */

#define ST_LIMIT_DEFAULT (-1)   /* an account limit that follows the config */

struct st_account {
	int64_t id;
	char name[LIM_NAME_MAX + 1];
	int64_t requests_per_minute;   /* ST_LIMIT_DEFAULT: from accounts_default */
	int64_t burst;
	int64_t records_per_hour;
	int64_t records_per_day;
	int64_t created_at;            /* seconds since the epoch */
};

enum enr_err st_account_create(struct store *s, const char *name, int64_t now_s, int64_t *id);
enum enr_err st_account_by_name(struct store *s, const char *name, struct st_account *out);
enum enr_err st_account_by_id(struct store *s, int64_t id, struct st_account *out);
/* Set the four limits (ST_LIMIT_DEFAULT resets one to the config default). */
enum enr_err st_account_set_limits(struct store *s, int64_t id, const struct st_account *limits);
/* Call fn for every account, by name; fn returns non-zero to stop. */
enum enr_err st_account_each(struct store *s, int (*fn)(void *arg, const struct st_account *a),
			     void *arg);

/* The limits that apply to a: its own, else cfg's defaults. */
void st_account_limits(const struct st_account *a, const struct cfg_account_limits *dflt,
		       struct cfg_account_limits *out);

/* ---- client keys ------------------------------------------------------- */

struct st_client_key {
	int64_t id;
	int64_t account_id;
	char account[LIM_NAME_MAX + 1];
	char name[LIM_NAME_MAX + 1];
	char last4[5];
	unsigned scopes;               /* AUTH_SCOPE_* bits */
	int64_t created_at;
	int64_t expires_at;            /* 0: never */
	int64_t revoked_at;            /* 0: not revoked */
	struct st_account account_row; /* st_client_key_by_hash only: the account's limits */
};

enum enr_err st_client_key_insert(struct store *s, int64_t account_id, const char *name,
				  const unsigned char hash[AUTH_HASH_LEN], const char *last4,
				  unsigned scopes, int64_t expires_at, int64_t now_s, int64_t *id);
/* The key whose SHA-256 is hash (revoked and expired ones included: the
 * caller decides). */
enum enr_err st_client_key_by_hash(struct store *s, const unsigned char hash[AUTH_HASH_LEN],
				   struct st_client_key *out);
enum enr_err st_client_key_revoke(struct store *s, int64_t id, int64_t now_s);
/* Every key (account_id < 0) or an account's keys, by id. */
enum enr_err st_client_key_each(struct store *s, int64_t account_id,
				int (*fn)(void *arg, const struct st_client_key *k), void *arg);

/* ---- admission: rate limit, quotas and usage in one step --------------- */

struct st_admit_req {
	int64_t account_id;
	struct cfg_account_limits limits;
	int64_t now_ms;
	int request_cost;      /* tokens to take from the request bucket (0 or 1) */
	int64_t records;       /* records to count against the hour and day quotas */
	/* Leases (lib/admission): when the request is admitted, also take up to
	 * this many more tokens / records, for the caller to hand out later. */
	int64_t extra_tokens;
	int64_t extra_records;
};

enum st_admit_verdict { ST_ADMIT_OK, ST_ADMIT_RATE_LIMITED, ST_ADMIT_QUOTA, ST_ADMIT__MAX };

struct st_admit_res {
	enum st_admit_verdict verdict;
	int64_t retry_after_s;     /* when denied */
	int64_t bucket_remaining;  /* whole tokens left */
	int64_t bucket_reset_s;    /* until the bucket is full */
	int64_t hour_remaining, hour_reset_s;
	int64_t day_remaining, day_reset_s;
	int64_t records_fit;       /* ST_ADMIT_QUOTA: how many records would fit now */
	int64_t granted_tokens;    /* extra tokens taken (<= extra_tokens) */
	int64_t granted_records;   /* extra records taken (<= extra_records) */
};

/* Atomically: take request_cost tokens and count records against both
 * quota windows, or take nothing when either says no; record the request,
 * the records or the rejection in the account's usage for the UTC day.
 * Holds across threads and processes (one write transaction). */
enum enr_err st_admit(struct store *s, const struct st_admit_req *req, struct st_admit_res *out);

/* ---- usage --------------------------------------------------------------- */

struct st_usage {
	int64_t account_id;
	char account[LIM_NAME_MAX + 1];
	char day[11];              /* YYYY-MM-DD (UTC) */
	int64_t requests;
	int64_t records;
	int64_t credits;
	int64_t rejections;
};

/* Add credits spent upstream to the account's usage of the day of now_s. */
enum enr_err st_usage_add_credits(struct store *s, int64_t account_id, int64_t now_s,
				  int64_t credits);
/* Add counts gathered in memory (requests, records, credits, rejections) to the
 * account's usage of the day of now_s. */
enum enr_err st_usage_add(struct store *s, int64_t account_id, int64_t now_s, int64_t requests,
			  int64_t records, int64_t credits, int64_t rejections);
/* Usage rows for one account (account_id < 0: all) from day `from`
 * (YYYY-MM-DD, inclusive), newest first. */
enum enr_err st_usage_each(struct store *s, int64_t account_id, const char *from,
			   int (*fn)(void *arg, const struct st_usage *u), void *arg);

/* The UTC day of now_s as YYYY-MM-DD. */
void st_day(int64_t now_s, char out[11]);

/* ---- upstream key pool (lib/keypool.h decides, the store keeps) --------- */

/* Make the pool match the configuration: add new keys, update provider,
 * account, position and last four characters of known ones (their state
 * and counters survive), hide keys no longer configured. */
enum enr_err st_ukey_sync(struct store *s, const struct cfg *cfg);

/* The configured keys of a provider in configuration order (at most max). */
enum enr_err st_ukeys_of(struct store *s, const char *provider, struct kp_key *keys, int max,
			 int *n);

/* Every configured key, by provider and position. */
enum enr_err st_ukey_each(struct store *s, int (*fn)(void *arg, const struct kp_key *k),
			  void *arg);

/* Record one call's outcome for key id atomically (kp_apply); a rate
 * limit also cools the other keys of the same upstream account
 * (*account_cooled says how many).  after/ch/account_cooled may be NULL. */
enum enr_err st_ukey_apply(struct store *s, const char *id, enum prov_outcome o,
			   int64_t hint_until_ms, int credits, int64_t now_ms,
			   const struct kp_params *p, struct kp_key *after, struct kp_change *ch,
			   int *account_cooled);

/* An admin's revive; ENR_E_NOT_FOUND for an unknown id. */
enum enr_err st_ukey_revive(struct store *s, const char *id, struct kp_key *after);

/* Add call counters gathered in memory to a key (no state change). */
enum enr_err st_ukey_add_counts(struct store *s, const char *id, int64_t calls, int64_t hits,
				int64_t misses, int64_t credits, int64_t last_used_ms);

/* Reserve the next call slot of a paced scope ("key:ID", "account:P/A"):
 * slots are interval_ms apart; *start_ms is when this call may go (now_ms
 * or later).  Shared by every thread, process and host. */
enum enr_err st_pace_reserve(struct store *s, const char *scope, int64_t interval_ms,
			     int64_t now_ms, int64_t *start_ms);

/* ---- cache of provider answers (lib/cache.h owns the format) ------------ */

/* The unexpired entry under key (a SHA-256): *hit and *body (caller frees)
 * on ENR_OK; ENR_E_NOT_FOUND when absent or expired. */
enum enr_err st_cache_get(struct store *s, const unsigned char key[32], int64_t now_ms, bool *hit,
			  char **body, int64_t *expires_ms);
enum enr_err st_cache_put(struct store *s, const unsigned char key[32], const char *provider,
			  bool hit, const char *body, int64_t expires_ms);
/* Delete at most limit expired entries. */
enum enr_err st_cache_purge(struct store *s, int64_t now_ms, int limit, int *removed);

/* ---- batch jobs (lib/jobs.h owns the meaning of inputs and results) ----- */

enum st_job_status { ST_JOB_QUEUED, ST_JOB_RUNNING, ST_JOB_COMPLETED, ST_JOB_FAILED,
		     ST_JOB_CANCELLED, ST_JOB__MAX };
enum st_row_state { ST_ROW_PENDING, ST_ROW_RUNNING, ST_ROW_DONE, ST_ROW_FAILED, ST_ROW_INVALID,
		    ST_ROW_CANCELLED, ST_ROW__MAX };
enum st_hook_state { ST_HOOK_NONE, ST_HOOK_PENDING, ST_HOOK_SENT, ST_HOOK_GAVE_UP };

extern const char *const st_job_status_names[ST_JOB__MAX];

#define ST_JOB_ID_LEN 28     /* "job_" + 24 hex */

struct st_job {
	int64_t seq;
	char id[ST_JOB_ID_LEN + 1];
	int64_t account_id;
	enum st_job_status status;
	uint32_t want;           /* fld_set */
	int format;              /* lib/jobs: JSON records or CSV */
	char *columns;           /* JSON array of input column names (owned; st_job_release) */
	int64_t total, rejected, pending, done, found, not_found, failed, credits;
	char webhook_url[2049];
	enum st_hook_state webhook_state;
	int webhook_attempts;
	int64_t webhook_next_ms;
	int64_t created_ms, started_ms, finished_ms;
};

void st_job_release(struct st_job *j);

/* One input row for st_job_create: accepted rows are pending, refused ones
 * are stored invalid with their reason (they show in the results). */
struct st_job_row {
	const char *input;       /* JSON text */
	bool invalid;
	const char *error;       /* invalid: the reason */
};

/* Create a job and all its rows in one transaction.  j carries account_id,
 * want, format, columns, webhook_url, total and rejected; seq and id are
 * filled.  With an idempotency key already used by the account:
 * ENR_E_CONFLICT, and *existing (may be NULL) gets that job's id. */
enum enr_err st_job_create(struct store *s, struct st_job *j, const char *idempotency_key,
			   const struct st_job_row *rows, size_t nrows, int64_t now_ms,
			   char existing[ST_JOB_ID_LEN + 1]);

/* The id of the account's job submitted with this idempotency key:
 * ENR_E_NOT_FOUND when there is none. */
enum enr_err st_job_find_idempotent(struct store *s, int64_t account_id, const char *key,
				    char id[ST_JOB_ID_LEN + 1]);

/* The job with this id of this account (account_id < 0: any account). */
enum enr_err st_job_get(struct store *s, const char *id, int64_t account_id, struct st_job *out);
enum enr_err st_job_by_seq(struct store *s, int64_t seq, struct st_job *out);

/* Rows finished since since_ms (for the rate). */
enum enr_err st_job_finished_since(struct store *s, int64_t seq, int64_t since_ms, int64_t *n);

/* The most frequent error codes of failed and invalid rows. */
enum enr_err st_job_errors(struct store *s, int64_t seq,
			   int (*fn)(void *arg, const char *code, int64_t count), void *arg);

struct st_job_row_out {
	int64_t rownum;
	const char *input;       /* borrowed for the call */
	enum st_row_state state;
	int status;              /* ST_ROW_DONE: 1 complete, 2 partial, 3 not_found */
	const char *result;      /* JSON or NULL */
	const char *error_code, *error;
};

/* Finished rows (done, failed, invalid) in input order; fn returns
 * non-zero to stop (e.g. the client went away). */
enum enr_err st_job_rows_each(struct store *s, int64_t seq,
			      int (*fn)(void *arg, const struct st_job_row_out *r), void *arg);

/* Cancel: pending rows become cancelled; rows being processed finish.
 * ENR_E_CONFLICT when the job already ended. */
enum enr_err st_job_cancel(struct store *s, int64_t seq, int64_t now_ms);

/* Put failed rows back in the queue; *n says how many. */
enum enr_err st_job_retry(struct store *s, int64_t seq, int64_t now_ms, int64_t *n);

/* Worker side.  Claim up to max rows that are pending and due, or whose
 * lease expired (their worker died), for owner until now_ms + lease_ms. */
struct st_claim {
	int64_t seq, rownum;
	char *input;             /* owned (free) */
	int attempts;
};
enum enr_err st_rows_claim(struct store *s, const char *owner, int64_t now_ms, int64_t lease_ms,
			   int max, struct st_claim *out, int *n);
/* A row of a job. */
struct st_row_ref {
	int64_t seq, rownum;
};
/* Extend to until_ms the leases of the n rows given, each only while it is
 * still running and owner's (one transaction).  A worker names the rows it
 * really holds, so a row it gave up on (its result could not be written)
 * is not kept alive by the heartbeat.  *renewed (may be NULL) gets how many
 * leases were extended. */
enum enr_err st_rows_heartbeat(struct store *s, const char *owner, int64_t until_ms,
			       const struct st_row_ref *rows, int n, int *renewed);
/* Give back every row owner holds (clean shutdown). */
enum enr_err st_rows_release(struct store *s, const char *owner, int *n);

/* Finish a row owned by owner: done with a result status (1 complete, 2
 * partial, 3 not_found) or failed/invalid with an error.  Guarded by state
 * and owner: ENR_E_CONFLICT when the row is no longer this owner's.  The
 * job's counters move in the same transaction; *job_ended says the job
 * just ended. */
enum enr_err st_row_finish(struct store *s, int64_t seq, int64_t rownum, const char *owner,
			   enum st_row_state state, int status, const char *result,
			   const char *error_code, const char *error, int64_t credits,
			   int64_t now_ms, bool *job_ended);
/* Back to the queue, not before not_before_ms: a snooze (rate limits: no
 * attempt spent) or a retry (attempt counted). */
enum enr_err st_row_requeue(struct store *s, int64_t seq, int64_t rownum, const char *owner,
			    int64_t not_before_ms, bool count_attempt, const char *error_code,
			    const char *error);

/* Webhooks due at now_ms. */
enum enr_err st_webhooks_due(struct store *s, int64_t now_ms, int max, int64_t *seqs, int *n);
/* Take the job's due webhook for this caller until lease_until_ms (so
 * two workers do not both send it): false when someone else took it. */
enum enr_err st_webhook_claim(struct store *s, int64_t seq, int64_t now_ms, int64_t lease_until_ms,
			      bool *mine);
/* Record a delivery attempt: sent, or retry at next_ms, or give up. */
enum enr_err st_webhook_result(struct store *s, int64_t seq, enum st_hook_state state,
			       int64_t next_ms);

#endif
