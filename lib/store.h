/*
 * store.h - the persistent state of enrichd behind one interface.
 *
 * Prefix: st_.  Accounts and their client keys, admission state (token
 * bucket and quota windows), daily usage, the upstream key pool, pacing
 * slots, the answers cache and batch jobs live here, so every thread,
 * process and (with PostgreSQL) host sees the same state.  Two back ends,
 * chosen by the URL's scheme:
 *   sqlite:PATH              embedded (WAL, busy timeout, BEGIN IMMEDIATE)
 *   postgresql://... or postgres://...   libpq, a bounded connection pool
 * Callers never see SQL.
 *
 * The store persists; it does not decide.  Admission arithmetic
 * (lib/admission.c), key state transitions and jitter (lib/keypool.c,
 * lib/rotation.c) and job ids (lib/jobs.c) live above it; the store offers
 * atomic primitives.  Each operation below says what it guarantees:
 *   atomic      all of it happens or none of it, and concurrent callers
 *               (threads, processes, hosts) see it whole;
 *   guarded     a conditional update: it changes the row only when the
 *               condition named holds, and says whether it did;
 *   read        a consistent read of committed data, no lock held after.
 * docs/architecture.md has the table of every operation.
 *
 * Thread-safety: a struct store is shared by all threads.  SQLite gives
 * each thread its own connection on first use (call st_thread_release()
 * before such a thread exits); PostgreSQL lends a pooled connection for
 * each operation.
 *
 * Errors: ENR_E_NOT_FOUND, ENR_E_CONFLICT (a unique constraint, or the
 * guarded state named by the operation), ENR_E_UNAVAILABLE (the database
 * cannot be reached, is locked past the busy timeout, the pool had no
 * connection in time, a statement timed out, or the disk refuses writes),
 * ENR_E_STORE (anything else; logged with the database's message),
 * ENR_E_NOMEM.  Out-parameters are written only on ENR_OK.
 */
#ifndef ENR_STORE_H
#define ENR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "err.h"
#include "keypool.h"
#include "limits.h"
#include "provider.h"
#include "ratelimit.h"

#ifndef ENR_MUST_CHECK
#define ENR_MUST_CHECK __attribute__((warn_unused_result))
#endif

struct store;

#define ST_POOL_DEFAULT 8                 /* PostgreSQL connections per process */
#define ST_POOL_WAIT_MS_DEFAULT 2000      /* then ENR_E_UNAVAILABLE */
#define ST_STATEMENT_TIMEOUT_MS_DEFAULT 5000
#define ST_BUSY_TIMEOUT_MS_DEFAULT 5000   /* SQLite: then ENR_E_UNAVAILABLE */

struct st_options {
	int pool_size;              /* PostgreSQL: connections at most (0: default) */
	int pool_wait_ms;           /* how long a caller waits for one (0: default) */
	int statement_timeout_ms;   /* PostgreSQL statement_timeout (0: default) */
	int busy_timeout_ms;        /* SQLite: wait for a lock held by another
				     * connection (0: default) */
	const char *password;       /* "env:NAME" or "file:PATH"; NULL: none (libpq
				     * may still use its passfile) */
	const char *state_dir;      /* host-local files (the authentication
				     * counter below); NULL: none */
};

/* The options of cfg (store_pool_size, store_password, ...). */
void st_options_from_cfg(const struct cfg *cfg, struct st_options *out);

/* True when url names a back end this program has ("sqlite:PATH",
 * "postgresql://...", "postgres://...") and carries no password. */
bool st_url_ok(const char *url);

/* Open the store named by url and bring its schema to the current
 * version.  o may be NULL (defaults).  *out is the caller's; free with
 * st_close.  ENR_E_INVALID for a URL no back end takes. */
enum enr_err st_open(const char *url, const struct st_options *o, struct store **out) ENR_MUST_CHECK;

/* st_open (migrate true) or st_open_raw (false) that says why it failed:
 * on an error, why (whylen bytes) names the store and the reason, e.g.
 * "cannot open /x/var/enrichd.db: No such file or directory (directory
 * /x/var does not exist)" or "cannot connect to postgresql://db/enrichd:
 * ...", for the caller to print (never a password). */
enum enr_err st_open_why(const char *url, const struct st_options *o, bool migrate,
			 struct store **out, char *why, size_t whylen) ENR_MUST_CHECK;

/* st_open_why with cfg's store and options (store_password, pool, ...). */
enum enr_err st_open_cfg(const struct cfg *cfg, struct store **out, char *why, size_t whylen) ENR_MUST_CHECK;
void st_close(struct store *s);

/* Open without migrating; st_migrate() then applies what is missing.
 * *from / *to report the versions before and after.  atomic: the
 * migrations run in one transaction under a lock, so two processes
 * starting at once apply each step once. */
enum enr_err st_open_raw(const char *url, const struct st_options *o, struct store **out) ENR_MUST_CHECK;
enum enr_err st_migrate(struct store *s, int *from, int *to) ENR_MUST_CHECK;
/* Migrate up to version target only (tests of upgrades from each
 * earlier version). */
enum enr_err st_migrate_to(struct store *s, int target, int *from, int *to) ENR_MUST_CHECK;
int st_schema_latest(const struct store *s);
enum enr_err st_schema_version(struct store *s, int *out) ENR_MUST_CHECK;

/* "sqlite" or "postgresql". */
const char *st_backend_name(const struct store *s);

/* A name for this store that is the same in every process that opens the
 * same URL: the SHA-256 of the URL in hex (65 bytes with the NUL). */
void st_identity(const struct store *s, char out[65]);

/* Release the calling thread's connection (SQLite; nothing for PostgreSQL). */
void st_thread_release(struct store *s);

/* A number that changes whenever client keys or account limits change
 * anywhere (st_client_key_insert/revoke, st_account_set_limits bump it in
 * the same transaction), so a process may keep authentication results in
 * memory and drop them when it moves.  Lock-free: the value is read from
 * the store at most every ST_AUTH_POLL_MS by one thread while the others
 * use the last one.  Processes on one host also share a counter in a
 * mapped file (in state_dir, and beside an SQLite database) that the
 * writer bumps right after its commit, so on the same host a change is
 * seen by the next request; from another host within ST_AUTH_POLL_MS plus
 * one round trip.  0 when it could not be read (callers then must not
 * cache). */
#define ST_AUTH_POLL_MS 250
uint64_t st_auth_generation(struct store *s);

/* A cheap round trip (for /health). */
enum enr_err st_ping(struct store *s) ENR_MUST_CHECK;

/* atomic (one upsert of a row no other code reads): a tiny write, so
 * /health can tell a store that answers reads but takes no writes.
 * ENR_E_UNAVAILABLE when it cannot be written right now. */
enum enr_err st_probe_write(struct store *s, int64_t now_ms) ENR_MUST_CHECK;

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
	/* Credit budgets (lib/budget.h): credits the account may spend upstream
	 * per UTC day and per calendar month (UTC); ST_LIMIT_DEFAULT follows
	 * accounts_default, 0 means no budget. */
	int64_t credits_per_day;
	int64_t credits_per_month;
};

/* atomic; ENR_E_CONFLICT when the name is taken. */
enum enr_err st_account_create(struct store *s, const char *name, int64_t now_s, int64_t *id) ENR_MUST_CHECK;
/* read */
enum enr_err st_account_by_name(struct store *s, const char *name, struct st_account *out) ENR_MUST_CHECK;
enum enr_err st_account_by_id(struct store *s, int64_t id, struct st_account *out) ENR_MUST_CHECK;
/* atomic, with the authentication generation: set the four limits and the
 * two credit budgets (ST_LIMIT_DEFAULT resets one to the config default). */
enum enr_err st_account_set_limits(struct store *s, int64_t id, const struct st_account *limits) ENR_MUST_CHECK;
/* atomic, with the authentication generation: set the account's credit
 * budgets (ST_LIMIT_DEFAULT: follow accounts_default; 0: none).
 * ENR_E_NOT_FOUND for an unknown account. */
enum enr_err st_account_set_budgets(struct store *s, int64_t id, int64_t credits_per_day,
				    int64_t credits_per_month) ENR_MUST_CHECK;
/* read: every account, by name; fn returns non-zero to stop. */
enum enr_err st_account_each(struct store *s, int (*fn)(void *arg, const struct st_account *a),
			     void *arg) ENR_MUST_CHECK;

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

/* atomic, with the authentication generation. */
enum enr_err st_client_key_insert(struct store *s, int64_t account_id, const char *name,
				  const unsigned char hash[AUTH_HASH_LEN], const char *last4,
				  unsigned scopes, int64_t expires_at, int64_t now_s, int64_t *id) ENR_MUST_CHECK;
/* read: the key whose SHA-256 is hash (revoked and expired ones included:
 * the caller decides). */
enum enr_err st_client_key_by_hash(struct store *s, const unsigned char hash[AUTH_HASH_LEN],
				   struct st_client_key *out) ENR_MUST_CHECK;
/* guarded (not yet revoked), with the authentication generation;
 * ENR_E_NOT_FOUND for an unknown or already revoked key. */
enum enr_err st_client_key_revoke(struct store *s, int64_t id, int64_t now_s) ENR_MUST_CHECK;
/* read: every key (account_id < 0) or an account's keys, by id. */
enum enr_err st_client_key_each(struct store *s, int64_t account_id,
				int (*fn)(void *arg, const struct st_client_key *k), void *arg) ENR_MUST_CHECK;

/* ---- admission state and usage ------------------------------------------ */

/* What the store keeps per account for admission (lib/admission decides). */
struct st_adm_state {
	struct rl_bucket bucket;
	struct rl_window hour, day;
};

/* Counts added to an account's usage of one UTC day. */
struct st_usage_delta {
	int64_t requests, records, credits, rejections;
};

/* Decide on the account's admission state: fn gets the stored state (a new
 * account's is all zero) and writes the new state and the usage to count;
 * it returns true to store them, false to leave everything as it was.
 * fn is policy only: no I/O, and it may be called again when the
 * transaction is retried.
 * atomic: read, fn and write happen under the account row's write lock
 * (SQLite: one BEGIN IMMEDIATE transaction; PostgreSQL: the row locked by
 * an upsert in one transaction), with the usage in the same transaction,
 * so concurrent callers on any host are serialised and none is lost. */
typedef bool (*st_adm_fn)(void *arg, struct st_adm_state *state, struct st_usage_delta *usage);
enum enr_err st_adm_update(struct store *s, int64_t account_id, int64_t now_s, st_adm_fn fn,
			   void *arg) ENR_MUST_CHECK;

struct st_usage {
	int64_t account_id;
	char account[LIM_NAME_MAX + 1];
	char day[11];              /* YYYY-MM-DD (UTC) */
	int64_t requests;
	int64_t records;
	int64_t credits;
	int64_t rejections;
};

/* atomic (one upsert that adds): add d to the usage of the day of now_s. */
enum enr_err st_usage_add(struct store *s, int64_t account_id, int64_t now_s,
			  const struct st_usage_delta *d) ENR_MUST_CHECK;
/* read: usage rows for one account (account_id < 0: all) from day `from`
 * (YYYY-MM-DD, inclusive), newest first. */
enum enr_err st_usage_each(struct store *s, int64_t account_id, const char *from,
			   int (*fn)(void *arg, const struct st_usage *u), void *arg) ENR_MUST_CHECK;

/* One line of a usage journal (lib/usage_journal): cumulative counts of
 * one account and day since the journal was created. */
struct st_journal_line {
	int64_t account_id;
	char day[11];
	struct st_usage_delta total;
};

/* Bring usage up to the journal's cumulative counts: for each line, add
 * (total - what was flushed from this journal before) and remember total
 * as flushed.  atomic and exactly-once: the usage and the journal's
 * flushed-up-to marks change in one transaction, so a flush repeated after
 * a crash adds nothing twice and a failed flush loses nothing. */
enum enr_err st_usage_journal_flush(struct store *s, const char *journal,
				    const struct st_journal_line *lines, size_t n) ENR_MUST_CHECK;
/* atomic: forget a journal's marks (after its file is gone). */
enum enr_err st_usage_journal_forget(struct store *s, const char *journal) ENR_MUST_CHECK;

/* read: each account's usage summed over every day, by account name. */
enum enr_err st_usage_totals(struct store *s,
			     int (*fn)(void *arg, const struct st_usage *total), void *arg) ENR_MUST_CHECK;

/* The UTC day of now_s as YYYY-MM-DD. */
void st_day(int64_t now_s, char out[11]);

/* ---- upstream key pool (lib/keypool decides, the store keeps) ----------- */

/* What the configuration says of a key (never the secret itself). */
struct st_ukey_cfg {
	char id[LIM_NAME_MAX + 1];
	char provider[LIM_NAME_MAX + 1];
	char account[LIM_NAME_MAX + 1];
	char last4[5];              /* "" keeps what is stored */
	int ord;
};

/* atomic: make the pool hold exactly these keys: add new ones, update
 * provider, account, position and last four characters of known ones
 * (their state and counters survive), hide the others. */
enum enr_err st_ukey_sync(struct store *s, const struct st_ukey_cfg *keys, size_t n) ENR_MUST_CHECK;

/* read: the configured keys of a provider in configuration order (at most max). */
enum enr_err st_ukeys_of(struct store *s, const char *provider, struct kp_key *keys, int max,
			 int *n) ENR_MUST_CHECK;
/* read: the same, into an array on the heap no larger than the keys found
 * (*keys NULL when there are none; the caller frees it). */
enum enr_err st_ukeys_load(struct store *s, const char *provider, int max, struct kp_key **keys,
			   int *n) ENR_MUST_CHECK;
/* read: every configured key, by provider and position. */
enum enr_err st_ukey_each(struct store *s, int (*fn)(void *arg, const struct kp_key *k),
			  void *arg) ENR_MUST_CHECK;
/* read: one configured key (with its version); ENR_E_NOT_FOUND otherwise. */
enum enr_err st_ukey_get(struct store *s, const char *id, struct kp_key *out) ENR_MUST_CHECK;

/* guarded (compare-and-set on before->version): store after's state,
 * deadline, breaker and back-off, and add after's counters minus
 * before's.  *stored false (ENR_OK) when the key changed since `before`
 * was read: the caller reads it again and re-applies.  On success the
 * stored version is before->version + 1. */
enum enr_err st_ukey_put(struct store *s, const struct kp_key *before, const struct kp_key *after,
			 bool *stored) ENR_MUST_CHECK;

/* guarded, one statement: cool every other configured key of the upstream
 * account until until_ms where that is later than what it has (active
 * keys, cooling keys with an earlier deadline, and exhausted keys whose
 * deadline passed; invalid ones keep their state).  *n (may be NULL): how
 * many moved. */
enum enr_err st_ukey_cool_account(struct store *s, const char *provider, const char *account,
				  const char *except_id, int64_t until_ms, int64_t now_ms, int *n) ENR_MUST_CHECK;

/* atomic (one update that adds): call counters gathered in memory. */
enum enr_err st_ukey_add_counts(struct store *s, const char *id, int64_t calls, int64_t hits,
				int64_t misses, int64_t credits, int64_t last_used_ms) ENR_MUST_CHECK;

/* atomic (one upsert that adds): calls and credits of one key and outcome
 * (enum prov_outcome), gathered in memory by any process. */
enum enr_err st_ukey_outcome_add(struct store *s, const char *id, int outcome, int64_t calls,
				 int64_t credits) ENR_MUST_CHECK;
/* read: the outcome counters of every configured key, by provider, key
 * and outcome. */
enum enr_err st_ukey_outcome_each(struct store *s,
				  int (*fn)(void *arg, const char *provider, const char *id,
					    int outcome, int64_t calls, int64_t credits),
				  void *arg) ENR_MUST_CHECK;
/* guarded (one statement: only meters read later than the stored ones
 * win): the provider's meters as its answer at at_ms gave them (-1:
 * unknown, keeps the stored value). */
enum enr_err st_ukey_meters_put(struct store *s, const char *id, int64_t requests_left,
				int64_t credits_left, int64_t at_ms) ENR_MUST_CHECK;

/* atomic (one upsert): reserve the next call slot of a paced scope
 * ("key:ID", "account:P/A"): slots are interval_ms apart; *start_ms is
 * when this call may go (now_ms or later).  Shared by every thread,
 * process and host. */
enum enr_err st_pace_reserve(struct store *s, const char *scope, int64_t interval_ms,
			     int64_t now_ms, int64_t *start_ms) ENR_MUST_CHECK;

/* ---- cache of provider answers (lib/cache.h owns the format) ------------ */

/* read: the unexpired entry under key (a SHA-256): *hit and *body (caller
 * frees) on ENR_OK; ENR_E_NOT_FOUND when absent or expired. */
enum enr_err st_cache_get(struct store *s, const unsigned char key[32], int64_t now_ms, bool *hit,
			  char **body, int64_t *expires_ms) ENR_MUST_CHECK;
/* atomic (one upsert; the last writer wins). */
enum enr_err st_cache_put(struct store *s, const unsigned char key[32], const char *provider,
			  bool hit, const char *body, int64_t expires_ms) ENR_MUST_CHECK;

/* atomic: several entries in one transaction, all or none, each as
 * st_cache_put (the engine's group commit of cache writes). */
struct st_cache_row {
	const unsigned char *key;   /* 32 bytes */
	const char *provider;
	bool hit;
	const char *body;
	int64_t expires_ms;
};

enum enr_err st_cache_put_many(struct store *s, const struct st_cache_row *rows,
			       size_t n) ENR_MUST_CHECK;
/* atomic: delete at most limit expired entries. */
enum enr_err st_cache_purge(struct store *s, int64_t now_ms, int limit, int *removed) ENR_MUST_CHECK;

/* ---- lookups in flight across processes (lib/cache.h) -------------------- */

/* atomic (one upsert, guarded by the holder's expiry): claim key for owner
 * until until_ms.  *mine true when owner holds it now (it was free, had
 * expired, or was owner's already); else *holder_until is when the other
 * holder's claim runs out. */
enum enr_err st_flight_claim(struct store *s, const unsigned char key[32], const char *owner,
			     int64_t now_ms, int64_t until_ms, bool *mine,
			     int64_t *holder_until) ENR_MUST_CHECK;
/* guarded (owner's): drop the claim. */
enum enr_err st_flight_release(struct store *s, const unsigned char key[32], const char *owner) ENR_MUST_CHECK;
/* read: whether an unexpired claim on key exists (and until when). */
enum enr_err st_flight_get(struct store *s, const unsigned char key[32], int64_t now_ms,
			   bool *held, int64_t *until_ms) ENR_MUST_CHECK;
/* atomic: delete at most limit expired claims. */
enum enr_err st_flight_purge(struct store *s, int64_t now_ms, int limit, int *removed) ENR_MUST_CHECK;

/* ---- credit budgets (lib/budget.h decides the scopes and limits) -------- */

/* One budget a hold is taken from: a scope ("account:7:day", "key:pdl-1",
 * "upstream:pdl/acme", lib/budget.h names them), the start of its current
 * period (seconds since the epoch) and the credits the period allows. */
struct st_budget_scope {
	char scope[2 * LIM_NAME_MAX + 32];
	int64_t period_start;
	int64_t limit;
};

/* atomic, all or nothing: hold amount credits on every scope of sc[0..n)
 * under hold_id until expires_ms.  A scope whose spent + unexpired holds +
 * amount would pass its limit refuses the whole hold: *ok false, *refused
 * its index and *available what it can still take (0 at least); nothing
 * is written then.  Concurrent reservers on any host are serialised by
 * each scope's ledger row (locked by an upsert), so together they never
 * hold more than a limit.  Holds whose expiry passed count for nothing
 * (a process that died leaks no credits) and are dropped. */
enum enr_err st_budget_reserve(struct store *s, const char *hold_id, const struct st_budget_scope *sc,
			       int n, int64_t amount, int64_t now_ms, int64_t expires_ms, bool *ok,
			       int *refused, int64_t *available) ENR_MUST_CHECK;
/* atomic: add spent to every scope's period ledger and drop hold_id's
 * holds (whether or not they expired meanwhile).  spent may pass the
 * limit: it is what the provider charged. */
enum enr_err st_budget_settle(struct store *s, const char *hold_id, const struct st_budget_scope *sc,
			      int n, int64_t spent) ENR_MUST_CHECK;
/* read: a scope's period: credits spent and held (unexpired holds). */
enum enr_err st_budget_get(struct store *s, const char *scope, int64_t period_start,
			   int64_t now_ms, int64_t *spent, int64_t *held) ENR_MUST_CHECK;

/* ---- savings (lib/cache.h counts them) ------------------------------------- */

struct st_savings {
	char provider[LIM_NAME_MAX + 1];
	char day[11];               /* YYYY-MM-DD (UTC) */
	int64_t cache_calls, cache_credits;    /* answered by the cache */
	int64_t flight_calls, flight_credits;  /* answered by another caller's lookup in flight */
};

/* atomic (one upsert that adds). */
enum enr_err st_savings_add(struct store *s, const struct st_savings *d) ENR_MUST_CHECK;
/* read: from day `from` (inclusive), newest first, by provider. */
enum enr_err st_savings_each(struct store *s, const char *from,
			     int (*fn)(void *arg, const struct st_savings *v), void *arg) ENR_MUST_CHECK;

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

/* Create a job and all its rows.  j carries id (lib/jobs: job_new_id),
 * account_id, want, format, columns, webhook_url; seq, total, rejected,
 * pending and created_ms are filled.
 * atomic, and idempotent per (account, idempotency_key): one insert that
 * does nothing when the key was used (no read-then-insert race).  Then
 * *created is false, nothing was written, and existing gets the first
 * job's id.  ENR_E_CONFLICT only for a constraint (an id already taken). */
enum enr_err st_job_create(struct store *s, struct st_job *j, const char *idempotency_key,
			   const struct st_job_row *rows, size_t nrows, int64_t now_ms,
			   bool *created, char existing[ST_JOB_ID_LEN + 1]) ENR_MUST_CHECK;

/* read: the id of the account's job submitted with this idempotency key;
 * ENR_E_NOT_FOUND when there is none. */
enum enr_err st_job_find_idempotent(struct store *s, int64_t account_id, const char *key,
				    char id[ST_JOB_ID_LEN + 1]) ENR_MUST_CHECK;

/* read: the job with this id of this account (account_id < 0: any account). */
enum enr_err st_job_get(struct store *s, const char *id, int64_t account_id, struct st_job *out) ENR_MUST_CHECK;
enum enr_err st_job_by_seq(struct store *s, int64_t seq, struct st_job *out) ENR_MUST_CHECK;

/* read: rows finished since since_ms (for the rate). */
enum enr_err st_job_finished_since(struct store *s, int64_t seq, int64_t since_ms, int64_t *n) ENR_MUST_CHECK;

/* read: the most frequent error codes of failed and invalid rows. */
enum enr_err st_job_errors(struct store *s, int64_t seq,
			   int (*fn)(void *arg, const char *code, int64_t count), void *arg) ENR_MUST_CHECK;

struct st_job_row_out {
	int64_t rownum;
	const char *input;       /* borrowed for the call */
	enum st_row_state state;
	int status;              /* ST_ROW_DONE: 1 complete, 2 partial, 3 not_found */
	const char *result;      /* JSON or NULL */
	const char *error_code, *error;
};

/* read: finished rows (done, failed, invalid) in input order, streamed; fn
 * returns non-zero to stop (e.g. the client went away) and must not call
 * the store. */
enum enr_err st_job_rows_each(struct store *s, int64_t seq,
			      int (*fn)(void *arg, const struct st_job_row_out *r), void *arg) ENR_MUST_CHECK;

/* atomic, guarded (the job is queued or running): pending rows become
 * cancelled; rows being processed finish.  ENR_E_CONFLICT when the job
 * already ended. */
enum enr_err st_job_cancel(struct store *s, int64_t seq, int64_t now_ms) ENR_MUST_CHECK;

/* atomic: put failed rows back in the queue; *n says how many. */
enum enr_err st_job_retry(struct store *s, int64_t seq, int64_t now_ms, int64_t *n) ENR_MUST_CHECK;

/* Worker side.  atomic claim: take up to max rows that are pending and
 * due, or whose lease expired (their worker died), for owner until
 * now_ms + lease_ms, and mark their jobs running.  Concurrent claimers
 * never get the same row (SQLite: one state-guarded UPDATE in BEGIN
 * IMMEDIATE; PostgreSQL: FOR UPDATE SKIP LOCKED plus the state guard). */
struct st_claim {
	int64_t seq, rownum;
	char *input;             /* owned (free) */
	int attempts;
};
enum enr_err st_rows_claim(struct store *s, const char *owner, int64_t now_ms, int64_t lease_ms,
			   int max, struct st_claim *out, int *n) ENR_MUST_CHECK;
/* A row of a job. */
struct st_row_ref {
	int64_t seq, rownum;
};
/* atomic (one transaction), each row guarded (still running and owner's):
 * extend to until_ms the leases of the n rows given.  A worker names the
 * rows it really holds, so a row it gave up on (its result could not be
 * written) is not kept alive by the heartbeat.  *renewed (may be NULL)
 * gets how many leases were extended. */
enum enr_err st_rows_heartbeat(struct store *s, const char *owner, int64_t until_ms,
			       const struct st_row_ref *rows, int n, int *renewed) ENR_MUST_CHECK;
/* guarded: give back every row owner holds (clean shutdown). */
enum enr_err st_rows_release(struct store *s, const char *owner, int *n) ENR_MUST_CHECK;
/* guarded: give back one row owner holds (its result could not be
 * written), without spending an attempt.  ENR_E_CONFLICT when it is no
 * longer this owner's. */
enum enr_err st_row_release(struct store *s, int64_t seq, int64_t rownum, const char *owner) ENR_MUST_CHECK;

/* Finish a row owned by owner: done with a result status (1 complete, 2
 * partial, 3 not_found) or failed/invalid with an error.
 * atomic and guarded (state running and owner): ENR_E_CONFLICT when the
 * row is no longer this owner's (its lease expired and another worker
 * took it); nothing is written then.  The job's counters move in the same
 * transaction; *job_ended says the job just ended. */
enum enr_err st_row_finish(struct store *s, int64_t seq, int64_t rownum, const char *owner,
			   enum st_row_state state, int status, const char *result,
			   const char *error_code, const char *error, int64_t credits,
			   int64_t now_ms, bool *job_ended) ENR_MUST_CHECK;
/* guarded like st_row_finish: back to the queue, not before
 * not_before_ms: a snooze (rate limits: no attempt spent) or a retry
 * (attempt counted). */
enum enr_err st_row_requeue(struct store *s, int64_t seq, int64_t rownum, const char *owner,
			    int64_t not_before_ms, bool count_attempt, const char *error_code,
			    const char *error) ENR_MUST_CHECK;

/* A place in the newest-first listing of jobs: (created_ms, seq) of the
 * last job of a page.  The order is total and a job's place never moves,
 * so pages read while jobs are added neither repeat nor skip a job that
 * existed when the first page was read. */
struct st_job_cursor {
	int64_t created_ms, seq;
};

/* read: up to limit jobs of an account (account_id < 0: every account),
 * newest first (created_ms, then seq, descending), strictly after *after
 * (NULL: from the newest).  fn gets each job (borrowed for the call) and
 * its account's name; it returns non-zero to stop. */
enum enr_err st_job_page(struct store *s, int64_t account_id, const struct st_job_cursor *after,
			 int limit,
			 int (*fn)(void *arg, const struct st_job *j, const char *account),
			 void *arg) ENR_MUST_CHECK;

/* The queue as gauges: rows pending, running and failed (of every job),
 * jobs per status, and when the oldest job with pending rows was created
 * (0: none). */
struct st_queue_stats {
	int64_t rows_pending, rows_running, rows_failed;
	int64_t jobs[ST_JOB__MAX];
	int64_t oldest_pending_ms;
};
/* read */
enum enr_err st_queue_stats(struct store *s, struct st_queue_stats *out) ENR_MUST_CHECK;

/* read: webhooks due at now_ms. */
enum enr_err st_webhooks_due(struct store *s, int64_t now_ms, int max, int64_t *seqs, int *n) ENR_MUST_CHECK;
/* guarded (pending and due): take the job's webhook for this caller until
 * lease_until_ms, so two workers do not both send it; *mine false when
 * someone else took it. */
enum enr_err st_webhook_claim(struct store *s, int64_t seq, int64_t now_ms, int64_t lease_until_ms,
			      bool *mine) ENR_MUST_CHECK;
/* atomic: record a delivery attempt: sent, or retry at next_ms, or give up. */
enum enr_err st_webhook_result(struct store *s, int64_t seq, enum st_hook_state state,
			       int64_t next_ms) ENR_MUST_CHECK;

/* ---- moving a deployment --------------------------------------------------- */

/* Copy accounts, client keys, admission state, usage, the key pool, pacing
 * slots, the cache and jobs with their rows from `from` into `to`, with
 * upserts (safe to run again; ids are kept).  fn (may be NULL) is told
 * each table's count as it finishes.  Each table is copied in one
 * transaction of the target. */
enum enr_err st_copy(struct store *from, struct store *to,
		     void (*fn)(void *arg, const char *table, int64_t rows), void *arg) ENR_MUST_CHECK;

/* ---- audit log and alerts ------------------------------------------------ */

/* One admin action (lib/admin writes them; no secrets).  Strings are
 * borrowed: for st_audit_add from the caller, for callbacks during the
 * call. */
struct st_audit {
	int64_t id;              /* assigned by the store, increasing */
	int64_t at_ms;
	const char *who;         /* "acme (key 3)", "enrichctl (root)" */
	const char *from;        /* the client address, or "local" */
	const char *action;      /* "account.create", "client_key.revoke", ... */
	const char *target;
	const char *details;     /* a JSON object, or NULL */
};

/* atomic (one insert); *id (may be NULL) gets the entry's id. */
enum enr_err st_audit_add(struct store *s, const struct st_audit *e, int64_t *id) ENR_MUST_CHECK;
/* read: up to limit entries with an id below before_id (0: from the
 * newest), newest first. */
enum enr_err st_audit_page(struct store *s, int64_t before_id, int limit,
			   int (*fn)(void *arg, const struct st_audit *e), void *arg) ENR_MUST_CHECK;

/* One alert (lib/alert): a key died or a pool ran dry.  Strings as for
 * struct st_audit; key_id, last4 and state may be NULL. */
struct st_alert {
	int64_t id;
	int64_t at_ms;
	const char *event;       /* "key_state", "pool_dry" */
	const char *provider;
	const char *key_id, *last4, *state;
	int64_t until_ms;        /* 0: none */
	const char *message;
};

/* atomic (one insert). */
enum enr_err st_alert_add(struct store *s, const struct st_alert *a) ENR_MUST_CHECK;
/* read: up to limit alerts with an id below before_id (0: newest), newest first. */
enum enr_err st_alert_page(struct store *s, int64_t before_id, int limit,
			   int (*fn)(void *arg, const struct st_alert *a), void *arg) ENR_MUST_CHECK;
/* atomic: delete alerts older than before_ms; *removed (may be NULL). */
enum enr_err st_alert_purge(struct store *s, int64_t before_ms, int *removed) ENR_MUST_CHECK;

#endif
