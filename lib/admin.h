/*
 * admin.h - the operations admins run, once for every front end.
 *
 * Prefix: ops_.  Accounts (create, limits), client keys (create: the key
 * is returned once and never stored; revoke), reviving an upstream key,
 * and the audit log every one of them writes to.  The admin API
 * (cgi/h_admin.c) and enrichctl call these same functions, so a rule (a
 * name's spelling, a limit's range, what the audit log records) is written
 * once.
 *
 * Every successful action is written to the audit log: who (the client
 * account and key id, or "enrichctl (unix user)"), what (an action name,
 * its target and details such as the limits set), when, and from where
 * (the client address nginx saw, or "local").  Secrets never go there: a
 * created key appears by id and last four characters.  The log line at
 * notice level says the same, so an entry the store could not take is not
 * lost.
 *
 * Ownership: structs are the caller's; JSON builders return new
 * references (NULL when out of memory).  Thread-safe.
 */
#ifndef ENR_ADMIN_H
#define ENR_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "budget.h"
#include "config.h"
#include "err.h"
#include "keypool.h"
#include "limits.h"
#include "store.h"

/* Who acts, and from where. */
struct ops_actor {
	char who[160];        /* "acme (key 3)" or "enrichctl (root)" */
	char from[192];       /* "127.0.0.1", "203.0.113.9 (X-Forwarded-For: ...)" or "local" */
};

/* A client of the admin API: account name, key id, the address nginx
 * passed (REMOTE_ADDR) and, when present, the X-Forwarded-For header
 * (kept to its address characters, up to 100 bytes). */
void ops_actor_client(struct ops_actor *a, const char *account, int64_t key_id,
		      const char *remote_addr, const char *forwarded_for);

/* A local program run by the current unix user: "PROGRAM (user)", "local". */
void ops_actor_local(struct ops_actor *a, const char *program);

/* The account limits and credit budgets an admin may set, in the order
 * enrichctl's options and the API's members name them.  A budget of 0
 * means none (lib/budget.h). */
enum ops_limit {
	OPS_LIMIT_RPM,           /* requests_per_minute */
	OPS_LIMIT_BURST,         /* burst */
	OPS_LIMIT_RPH,           /* records_per_hour */
	OPS_LIMIT_RPD,           /* records_per_day */
	OPS_LIMIT_CPD,           /* credits_per_day: the credit budget per UTC day */
	OPS_LIMIT_CPM,           /* credits_per_month: per calendar month (UTC) */
	OPS_LIMIT__MAX
};

extern const char *const ops_limit_names[OPS_LIMIT__MAX];
extern const int64_t ops_limit_min[OPS_LIMIT__MAX];
#define OPS_LIMIT_VALUE_MAX 1000000000000LL

/* A subset of the limits: set[i] says limit i is given; v[i] is its value
 * or ST_LIMIT_DEFAULT (follow accounts_default). */
struct ops_limits {
	bool set[OPS_LIMIT__MAX];
	int64_t v[OPS_LIMIT__MAX];
};

/* True for an account name: 1..LIM_NAME_MAX of [A-Za-z0-9._-]. */
bool ops_name_ok(const char *s);

/* True for a client key's label: at most LIM_NAME_MAX bytes of UTF-8
 * without control characters. */
bool ops_label_ok(const char *s, size_t len);

/* Create account name (limits may be NULL: all default).  ENR_E_INVALID
 * for a bad name, ENR_E_CONFLICT when it exists.  *out is the new row. */
ENR_MUST_CHECK enum enr_err ops_account_create(struct store *s, const struct ops_actor *who,
					       const char *name, const struct ops_limits *limits,
					       int64_t now_s, struct st_account *out);

/* Set the given limits of account name, leave the others.  ENR_E_NOT_FOUND,
 * ENR_E_INVALID when nothing is given. */
ENR_MUST_CHECK enum enr_err ops_account_update(struct store *s, const struct ops_actor *who,
					       const char *name, const struct ops_limits *limits,
					       struct st_account *out);

/* A new client key for account: key (AUTH_KEY_LEN + 1 bytes) is the secret,
 * for the caller to show once and then wipe; *out is its stored row.
 * scopes must be non-zero; expires_at 0 means never.  label may be NULL. */
ENR_MUST_CHECK enum enr_err ops_key_create(struct store *s, const struct ops_actor *who,
					   const char *account, const char *label, unsigned scopes,
					   int64_t expires_at, int64_t now_s,
					   char key[AUTH_KEY_LEN + 1], struct st_client_key *out);

/* The client key with this id; ENR_E_NOT_FOUND. */
ENR_MUST_CHECK enum enr_err ops_key_get(struct store *s, int64_t id, struct st_client_key *out);

/* Revoke client key id: ENR_E_NOT_FOUND when there is no such key,
 * ENR_E_CONFLICT when it is revoked already.  *out is the row after. */
ENR_MUST_CHECK enum enr_err ops_key_revoke(struct store *s, const struct ops_actor *who,
					   int64_t id, int64_t now_s, struct st_client_key *out);

/* Put an upstream key back in service; ENR_E_NOT_FOUND for an unknown id. */
ENR_MUST_CHECK enum enr_err ops_ukey_revive(struct store *s, const struct ops_actor *who,
					    const char *id, struct kp_key *out);

/* An account as admins see it: id, name, created_at, limits (own value or
 * "default") and effective (what applies, accounts_default filled in),
 * each with the four rate limits and quotas and the two credit budgets. */
json_t *ops_account_json(const struct st_account *a, const struct cfg *cfg);

/* A credit budget's state as admins see it: budget (its scope), period,
 * limit, spent, held (by calls in flight), left, resets (ISO 8601). */
json_t *ops_budget_json(const struct bud_state *b);

/* The credit budgets that apply to account a now, as a new JSON array in
 * *out (empty when it has none). */
ENR_MUST_CHECK enum enr_err ops_account_budgets(struct store *s, const struct cfg *cfg,
						const struct st_account *a, int64_t now_ms,
						json_t **out);

/* Add to j, the listing of upstream key k (kp_key_json), "budgets" (the
 * key's own and its upstream account's, [] when none) and "budget_left"
 * (the least credits left of them, null when none); when k is exhausted
 * and one of them is spent, "why" says the budget parked it. */
ENR_MUST_CHECK enum enr_err ops_ukey_budgets(struct store *s, const struct cfg *cfg,
					     const struct kp_key *k, int64_t now_ms, json_t *j);

/* A client key as admins see it (never the key): id, account, name, last4,
 * scopes, created_at, expires_at, revoked_at, state (active, expired,
 * revoked as of now_s). */
json_t *ops_key_json(const struct st_client_key *k, int64_t now_s);

/* An audit entry as admins see it: id, at (ISO 8601 with milliseconds),
 * who, from, action, target, details (an object, or null). */
json_t *ops_audit_json(const struct st_audit *e);

/* "active", "expired" or "revoked" as of now_s. */
const char *ops_key_state(const struct st_client_key *k, int64_t now_s);

#endif
