/*
 * admin.c - admin operations shared by the admin API and enrichctl, and
 * the audit log they write.
 */
#include "admin.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "rotation.h"
#include "util.h"

const char *const ops_limit_names[OPS_LIMIT__MAX] = {
	[OPS_LIMIT_RPM] = "requests_per_minute",
	[OPS_LIMIT_BURST] = "burst",
	[OPS_LIMIT_RPH] = "records_per_hour",
	[OPS_LIMIT_RPD] = "records_per_day",
	[OPS_LIMIT_CPD] = "credits_per_day",
	[OPS_LIMIT_CPM] = "credits_per_month",
};

/* A bucket needs at least one token and a rate; quotas may be zero (no
 * records at all), budgets too (no budget). */
const int64_t ops_limit_min[OPS_LIMIT__MAX] = { 1, 1, 0, 0, 0, 0 };

/* Keep what an address header may hold: hex digits, '.', ':', ',', '[',
 * ']' and blanks; anything else becomes '?'. */
static void addr_copy(const char *in, char *out, size_t outsz)
{
	size_t o = 0;

	for (; in && *in && o + 1 < outsz; in++) {
		char c = *in;
		bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
			  c == '.' || c == ':' || c == ',' || c == ' ' || c == '[' || c == ']';

		out[o++] = ok ? c : '?';
	}
	out[o] = '\0';
}

void ops_actor_client(struct ops_actor *a, const char *account, int64_t key_id,
		      const char *remote_addr, const char *forwarded_for)
{
	char ra[64], ff[101];

	snprintf(a->who, sizeof a->who, "%s (key %lld)", account, (long long)key_id);
	if (remote_addr && *remote_addr)
		addr_copy(remote_addr, ra, sizeof ra);
	else
		snprintf(ra, sizeof ra, "unknown");
	if (forwarded_for && *forwarded_for) {
		addr_copy(forwarded_for, ff, sizeof ff);
		snprintf(a->from, sizeof a->from, "%s (X-Forwarded-For: %s)", ra, ff);
	} else {
		snprintf(a->from, sizeof a->from, "%s", ra);
	}
}

void ops_actor_local(struct ops_actor *a, const char *program)
{
	struct passwd pw, *found = NULL;
	char scratch[1024], user[LIM_NAME_MAX + 1];

	if (getpwuid_r(getuid(), &pw, scratch, sizeof scratch, &found) == 0 && found)
		util_strlcpy(user, found->pw_name, sizeof user);
	else
		snprintf(user, sizeof user, "uid %u", (unsigned)getuid());
	snprintf(a->who, sizeof a->who, "%s (%s)", program, user);
	snprintf(a->from, sizeof a->from, "local");
}

bool ops_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > LIM_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

bool ops_label_ok(const char *s, size_t len)
{
	if (len > LIM_NAME_MAX || !util_utf8_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	}
	return true;
}

static json_t *time_or_null(int64_t s)
{
	char t[21];

	if (s <= 0)
		return json_null();
	util_fmt_time_s(s, t);
	return json_string(t);
}

/* Write one audit entry (details stolen).  The action has happened: an
 * entry the store cannot take is logged with everything it holds, so it
 * is not lost. */
static void audit(struct store *s, const struct ops_actor *who, const char *action,
		  const char *target, json_t *details)
{
	char *d = details ? json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	struct st_audit e = { 0, util_now_ms(), who->who, who->from, action, target, d };
	enum enr_err rc = st_audit_add(s, &e, NULL);

	if (rc)
		log_error("audit", "audit entry not stored (%s): %s by %s from %s: %s%s%s",
			  enr_strerror(rc), action, who->who, who->from, target, d ? " " : "",
			  d ? d : "");
	else
		log_info("audit", "%s by %s from %s: %s%s%s", action, who->who, who->from, target,
			 d ? " " : "", d ? d : "");
	free(d);
	json_decref(details);
}

static json_t *limits_details(const struct ops_limits *l)
{
	json_t *o = json_object();

	for (int i = 0; o && i < OPS_LIMIT__MAX; i++) {
		if (!l->set[i])
			continue;
		json_object_set_new(o, ops_limit_names[i], l->v[i] == ST_LIMIT_DEFAULT
								? json_string("default")
								: json_integer(l->v[i]));
	}
	return o;
}

static bool limits_ok(const struct ops_limits *l)
{
	for (int i = 0; i < OPS_LIMIT__MAX; i++) {
		if (l->set[i] && l->v[i] != ST_LIMIT_DEFAULT &&
		    (l->v[i] < ops_limit_min[i] || l->v[i] > OPS_LIMIT_VALUE_MAX))
			return false;
	}
	return true;
}

static void limits_apply(const struct ops_limits *l, struct st_account *a)
{
	int64_t *dst[OPS_LIMIT__MAX] = { &a->requests_per_minute, &a->burst, &a->records_per_hour,
					 &a->records_per_day, &a->credits_per_day,
					 &a->credits_per_month };

	for (int i = 0; i < OPS_LIMIT__MAX; i++) {
		if (l->set[i])
			*dst[i] = l->v[i];
	}
}

static bool limits_any(const struct ops_limits *l)
{
	for (int i = 0; i < OPS_LIMIT__MAX; i++) {
		if (l->set[i])
			return true;
	}
	return false;
}

enum enr_err ops_account_create(struct store *s, const struct ops_actor *who, const char *name,
				const struct ops_limits *limits, int64_t now_s,
				struct st_account *out)
{
	struct st_account a;
	int64_t id;
	enum enr_err rc;

	if (!ops_name_ok(name) || (limits && !limits_ok(limits)))
		return ENR_E_INVALID;
	rc = st_account_create(s, name, now_s, &id);
	if (rc)
		return rc;
	rc = st_account_by_id(s, id, &a);
	if (rc)
		return rc;
	if (limits && limits_any(limits)) {
		limits_apply(limits, &a);
		rc = st_account_set_limits(s, id, &a);
		if (rc)
			return rc;
	}
	audit(s, who, "account.create", name, limits ? limits_details(limits) : NULL);
	*out = a;
	return ENR_OK;
}

enum enr_err ops_account_update(struct store *s, const struct ops_actor *who, const char *name,
				const struct ops_limits *limits, struct st_account *out)
{
	struct st_account a;
	enum enr_err rc;

	if (!limits_any(limits) || !limits_ok(limits))
		return ENR_E_INVALID;
	rc = st_account_by_name(s, name, &a);
	if (rc)
		return rc;
	limits_apply(limits, &a);
	rc = st_account_set_limits(s, a.id, &a);
	if (rc)
		return rc;
	rc = st_account_by_id(s, a.id, &a);
	if (rc)
		return rc;
	audit(s, who, "account.update", name, limits_details(limits));
	*out = a;
	return ENR_OK;
}

struct key_find {
	int64_t id;
	struct st_client_key k;
	bool found;
};

static int key_match(void *arg, const struct st_client_key *k)
{
	struct key_find *f = arg;

	if (k->id != f->id)
		return 0;
	f->k = *k;
	f->found = true;
	return 1;
}

enum enr_err ops_key_get(struct store *s, int64_t id, struct st_client_key *out)
{
	struct key_find f = { .id = id };
	enum enr_err rc = st_client_key_each(s, -1, key_match, &f);

	if (rc)
		return rc;
	if (!f.found)
		return ENR_E_NOT_FOUND;
	*out = f.k;
	return ENR_OK;
}

enum enr_err ops_key_create(struct store *s, const struct ops_actor *who, const char *account,
			    const char *label, unsigned scopes, int64_t expires_at, int64_t now_s,
			    char key[AUTH_KEY_LEN + 1], struct st_client_key *out)
{
	struct st_account a;
	struct st_client_key k;
	unsigned char hash[AUTH_HASH_LEN];
	char secret[AUTH_KEY_LEN + 1], target[LIM_NAME_MAX + 32], scopes_s[64];
	int64_t id;
	enum enr_err rc;

	if (scopes == 0 || (scopes & ~AUTH_SCOPE_ALL) || (expires_at != 0 && expires_at <= now_s) ||
	    (label && !ops_label_ok(label, strlen(label))))
		return ENR_E_INVALID;
	rc = st_account_by_name(s, account, &a);
	if (rc)
		return rc;
	rc = auth_key_generate(secret);
	if (rc)
		return rc;
	auth_key_hash(secret, AUTH_KEY_LEN, hash);
	rc = st_client_key_insert(s, a.id, label, hash, secret + AUTH_KEY_LEN - 4, scopes,
				  expires_at, now_s, &id);
	if (rc == ENR_OK)
		rc = ops_key_get(s, id, &k);
	if (rc) {
		explicit_bzero(secret, sizeof secret);
		return rc;
	}
	auth_scopes_format(scopes, scopes_s, sizeof scopes_s);
	snprintf(target, sizeof target, "key %lld of %s", (long long)id, a.name);
	audit(s, who, "client_key.create", target,
	      json_pack("{s:s, s:s, s:s?, s:o}", "last4", k.last4, "scopes", scopes_s, "name",
			k.name[0] ? k.name : NULL, "expires_at",
			time_or_null(expires_at)));
	memcpy(key, secret, sizeof secret);
	explicit_bzero(secret, sizeof secret);
	*out = k;
	return ENR_OK;
}

enum enr_err ops_key_revoke(struct store *s, const struct ops_actor *who, int64_t id,
			    int64_t now_s, struct st_client_key *out)
{
	struct st_client_key k;
	char target[LIM_NAME_MAX + 32];
	enum enr_err rc = ops_key_get(s, id, &k);

	if (rc)
		return rc;
	if (k.revoked_at)
		return ENR_E_CONFLICT;
	rc = st_client_key_revoke(s, id, now_s);
	if (rc == ENR_E_NOT_FOUND)
		return ENR_E_CONFLICT; /* revoked meanwhile */
	if (rc)
		return rc;
	rc = ops_key_get(s, id, &k);
	if (rc)
		return rc;
	snprintf(target, sizeof target, "key %lld of %s", (long long)id, k.account);
	audit(s, who, "client_key.revoke", target, json_pack("{s:s}", "last4", k.last4));
	*out = k;
	return ENR_OK;
}

enum enr_err ops_ukey_revive(struct store *s, const struct ops_actor *who, const char *id,
			     struct kp_key *out)
{
	struct kp_key k;
	char target[LIM_NAME_MAX * 2 + 32];
	enum enr_err rc = rot_revive(s, id, &k);

	if (rc)
		return rc;
	snprintf(target, sizeof target, "upstream key %s of %s", k.id, k.provider);
	audit(s, who, "upstream_key.revive", target, json_pack("{s:s}", "last4", k.last4));
	*out = k;
	return ENR_OK;
}

static json_t *limit_json(int64_t v)
{
	return v == ST_LIMIT_DEFAULT ? json_string("default") : json_integer(v);
}

json_t *ops_account_json(const struct st_account *a, const struct cfg *cfg)
{
	struct cfg_account_limits eff;
	struct bud_limits bud;

	st_account_limits(a, &cfg->accounts_default, &eff);
	bud_account_limits(a, cfg, &bud);
	return json_pack("{s:I, s:s, s:o, s:{s:o, s:o, s:o, s:o, s:o, s:o},"
			 " s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
			 "id", (json_int_t)a->id, "name", a->name, "created_at",
			 time_or_null(a->created_at), "limits", "requests_per_minute",
			 limit_json(a->requests_per_minute), "burst", limit_json(a->burst),
			 "records_per_hour", limit_json(a->records_per_hour), "records_per_day",
			 limit_json(a->records_per_day), "credits_per_day",
			 limit_json(a->credits_per_day), "credits_per_month",
			 limit_json(a->credits_per_month), "effective", "requests_per_minute",
			 (json_int_t)eff.requests_per_minute, "burst", (json_int_t)eff.burst,
			 "records_per_hour", (json_int_t)eff.records_per_hour, "records_per_day",
			 (json_int_t)eff.records_per_day, "credits_per_day", (json_int_t)bud.per_day,
			 "credits_per_month", (json_int_t)bud.per_month);
}

json_t *ops_budget_json(const struct bud_state *b)
{
	char resets[21];

	util_fmt_time_s(b->resets_ms / 1000, resets);
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "budget", b->scope, "period",
			 bud_period_names[b->period], "limit", (json_int_t)b->limit, "spent",
			 (json_int_t)b->spent, "held", (json_int_t)b->held, "left",
			 (json_int_t)b->left, "resets", resets);
}

static json_t *budgets_array(const struct bud_state *st, int n)
{
	json_t *arr = json_array();

	for (int i = 0; arr && i < n; i++)
		json_array_append_new(arr, ops_budget_json(&st[i]));
	return arr;
}

enum enr_err ops_account_budgets(struct store *s, const struct cfg *cfg,
				 const struct st_account *a, int64_t now_ms, json_t **out)
{
	struct bud_state st[2];
	int n = 0;
	json_t *arr;
	enum enr_err rc = bud_account_state(s, cfg, a, now_ms, st, &n);

	if (rc)
		return rc;
	arr = budgets_array(st, n);
	if (arr == NULL)
		return ENR_E_NOMEM;
	*out = arr;
	return ENR_OK;
}

enum enr_err ops_ukey_budgets(struct store *s, const struct cfg *cfg, const struct kp_key *k,
			      int64_t now_ms, json_t *j)
{
	struct bud_state st[2];
	int n = 0, spent = -1;
	int64_t least = -1;
	const char *state;
	json_t *arr;
	enum enr_err rc = bud_key_state(s, cfg, k->provider, k->id, now_ms, st, &n);

	if (rc)
		return rc;
	arr = budgets_array(st, n);
	if (arr == NULL)
		return ENR_E_NOMEM;
	for (int i = 0; i < n; i++) {
		if (least < 0 || st[i].left < least)
			least = st[i].left;
		if (st[i].left == 0 && spent < 0)
			spent = i;
	}
	json_object_set_new(j, "budgets", arr);
	json_object_set_new(j, "budget_left", least >= 0 ? json_integer(least) : json_null());
	/* A key parked by its budget comes back at the budget's reset, not
	 * the provider's: say which it is. */
	state = json_string_value(json_object_get(j, "state"));
	if (spent >= 0 && state && strcmp(state, "exhausted") == 0) {
		char why[320], resets[21];

		util_fmt_time_s(st[spent].resets_ms / 1000, resets);
		snprintf(why, sizeof why, "its credit budget (%s, %lld credits a %s) is spent; it "
			 "comes back when the budget resets at %s, or when revived",
			 st[spent].scope, (long long)st[spent].limit,
			 bud_period_names[st[spent].period], resets);
		json_object_set_new(j, "why", json_string(why));
	}
	return ENR_OK;
}

const char *ops_key_state(const struct st_client_key *k, int64_t now_s)
{
	if (k->revoked_at)
		return "revoked";
	if (k->expires_at && k->expires_at <= now_s)
		return "expired";
	return "active";
}

json_t *ops_key_json(const struct st_client_key *k, int64_t now_s)
{
	char scopes[64];
	json_t *arr = json_array();

	auth_scopes_format(k->scopes, scopes, sizeof scopes);
	for (unsigned bit = 1; arr && bit <= AUTH_SCOPE_ALL; bit <<= 1) {
		char one[32];

		if (!(k->scopes & bit))
			continue;
		auth_scopes_format(bit, one, sizeof one);
		json_array_append_new(arr, json_string(one));
	}
	return json_pack("{s:I, s:s, s:s?, s:s, s:o, s:o, s:o, s:o, s:s}", "id", (json_int_t)k->id,
			 "account", k->account, "name", k->name[0] ? k->name : NULL, "last4",
			 k->last4, "scopes", arr, "created_at", time_or_null(k->created_at),
			 "expires_at", time_or_null(k->expires_at), "revoked_at",
			 time_or_null(k->revoked_at), "state", ops_key_state(k, now_s));
}

json_t *ops_audit_json(const struct st_audit *e)
{
	char at[25];
	json_t *details = NULL;

	util_fmt_time_ms(e->at_ms, at);
	if (e->details) {
		details = json_loads(e->details, JSON_REJECT_DUPLICATES, NULL);
		if (details && !json_is_object(details)) {
			json_decref(details);
			details = NULL;
		}
	}
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o}", "id", (json_int_t)e->id, "at", at,
			 "who", e->who, "from", e->from, "action", e->action, "target", e->target,
			 "details", details ? details : json_null());
}
