/*
 * h_admin.c - the admin API: the upstream key pool (GET /admin/keys, POST
 * /admin/keys/{id}/revive), accounts (/admin/accounts...) and client keys
 * (/admin/client-keys...).  The operations themselves are lib/admin's,
 * shared with enrichctl; this file reads requests and writes answers.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "app.h"
#include "lib/admin.h"
#include "lib/jbody.h"
#include "lib/keypool.h"
#include "lib/log.h"
#include "lib/rotation.h"
#include "lib/util.h"
#include "routes.h"

/* Who makes this request, for the audit log. */
static void actor_of(const struct http_req *r, struct ops_actor *a)
{
	ops_actor_client(a, r->account_name, r->key_id, http_param(r, "REMOTE_ADDR"),
			 http_param(r, "HTTP_X_FORWARDED_FOR"));
}

struct list_ctx {
	const struct cfg *cfg;
	json_t *arr;
	int64_t now;
	enum enr_err rc;
};

static int key_row(void *arg, const struct kp_key *k)
{
	struct list_ctx *c = arg;
	struct kp_key shown = *k;
	json_t *j;

	/* Calls this process counted and could not write yet count too. */
	rot_pending_apply(&shown, 1);
	j = kp_key_json(&shown, c->now);
	if (j == NULL) {
		c->rc = ENR_E_NOMEM;
		return 1;
	}
	c->rc = ops_ukey_budgets(app_store(), c->cfg, &shown, c->now, j);
	if (c->rc) {
		json_decref(j);
		return 1;
	}
	json_array_append_new(c->arr, j);
	return 0;
}

enum enr_err h_admin_keys(struct http_req *r)
{
	struct list_ctx c = { r->cfg, json_array(), util_now_ms(), ENR_OK };
	enum enr_err rc;

	if (c.arr == NULL)
		return ENR_E_NOMEM;
	rot_flush(app_store()); /* counts this process holds in memory first (kept on failure) */
	rc = st_ukey_each(app_store(), key_row, &c);
	if (rc == ENR_OK)
		rc = c.rc;
	if (rc) {
		json_decref(c.arr);
		return rc;
	}
	http_json(r, 200, json_pack("{s:o}", "keys", c.arr));
	return ENR_OK;
}

enum enr_err h_admin_key_revive(struct http_req *r)
{
	struct ops_actor who;
	struct kp_key k;
	json_t *j;
	int64_t now = util_now_ms();
	enum enr_err rc;

	actor_of(r, &who);
	rc = ops_ukey_revive(app_store(), &who, r->params[0], &k);
	if (rc == ENR_E_NOT_FOUND) {
		http_error(r, rc, "no configured upstream key has this id", NULL);
		return ENR_OK;
	}
	if (rc)
		return rc;
	log_notice("keypool", "key %s (...%s) of provider %s revived by account %s", k.id, k.last4,
		   k.provider, r->account_name);
	j = kp_key_json(&k, now);
	if (j == NULL)
		return ENR_E_NOMEM;
	rc = ops_ukey_budgets(app_store(), r->cfg, &k, now, j);
	if (rc) {
		json_decref(j);
		return rc;
	}
	http_json(r, 200, j);
	return ENR_OK;
}

/* ---- accounts ------------------------------------------------------------ */

/* The account as admins see it, with its credit budgets' state now. */
static enum enr_err account_out(const struct http_req *r, const struct st_account *a,
				json_t **out)
{
	json_t *j = ops_account_json(a, r->cfg), *budgets = NULL;
	enum enr_err rc;

	if (j == NULL)
		return ENR_E_NOMEM;
	rc = ops_account_budgets(app_store(), r->cfg, a, util_now_ms(), &budgets);
	if (rc) {
		json_decref(j);
		return rc;
	}
	json_object_set_new(j, "budgets", budgets);
	*out = j;
	return ENR_OK;
}

/* The account named in the path; answers 404 itself (returns false). */
static bool load_account(struct http_req *r, struct st_account *a, enum enr_err *rc)
{
	*rc = ops_name_ok(r->params[0]) ? st_account_by_name(app_store(), r->params[0], a)
					: ENR_E_NOT_FOUND;
	if (*rc == ENR_E_NOT_FOUND) {
		http_error(r, ENR_E_NOT_FOUND, "no such account", NULL);
		*rc = ENR_OK;
		return false;
	}
	return *rc == ENR_OK;
}

/* Members for the limits, from lib/admin's table; name first when asked. */
static size_t limit_fields(struct jb_field *f, bool with_name)
{
	size_t n = 0;

	if (with_name)
		f[n++] = (struct jb_field){ "name", JB_STRING, 1, LIM_NAME_MAX, true };
	for (int i = 0; i < OPS_LIMIT__MAX; i++)
		f[n++] = (struct jb_field){ ops_limit_names[i], JB_LIMIT, ops_limit_min[i],
					    OPS_LIMIT_VALUE_MAX, false };
	return n;
}

static void limits_from(const struct jb_value *v, struct ops_limits *l)
{
	memset(l, 0, sizeof *l);
	for (int i = 0; i < OPS_LIMIT__MAX; i++) {
		l->set[i] = v[i].present;
		l->v[i] = v[i].is_default ? ST_LIMIT_DEFAULT : v[i].i;
	}
}

/* Read the JSON body of r against fields; answers 400/413/415 itself. */
static bool read_body(struct http_req *r, const struct jb_field *f, size_t n, json_t **doc,
		      struct jb_value *v)
{
	json_t *details = NULL;
	enum enr_err rc;

	if (!h_read_json_body(r))
		return false;
	rc = jb_parse(r->body.data, r->body.len, f, n, doc, v, &details);
	if (rc == ENR_E_INVALID) {
		http_error(r, rc, "the request body is not valid; see details", details);
		return false;
	}
	if (rc) {
		http_error(r, rc, NULL, NULL);
		return false;
	}
	return true;
}

struct accounts_ctx {
	const struct http_req *r;
	json_t *arr;
	enum enr_err rc;
};

static int account_row(void *arg, const struct st_account *a)
{
	struct accounts_ctx *c = arg;
	json_t *j = NULL;

	c->rc = account_out(c->r, a, &j);
	if (c->rc)
		return 1;
	json_array_append_new(c->arr, j);
	return 0;
}

enum enr_err h_admin_accounts(struct http_req *r)
{
	json_t *arr = json_array();
	struct accounts_ctx c = { r, arr, ENR_OK };
	enum enr_err rc;

	if (arr == NULL)
		return ENR_E_NOMEM;
	rc = st_account_each(app_store(), account_row, &c);
	if (rc == ENR_OK)
		rc = c.rc;
	if (rc) {
		json_decref(arr);
		return rc;
	}
	http_json(r, 200, json_pack("{s:o}", "accounts", arr));
	return ENR_OK;
}

enum enr_err h_admin_account_create(struct http_req *r)
{
	struct jb_field f[OPS_LIMIT__MAX + 1];
	struct jb_value v[OPS_LIMIT__MAX + 1];
	struct ops_limits l;
	struct ops_actor who;
	struct st_account a;
	size_t n = limit_fields(f, true);
	json_t *doc = NULL;
	char loc[LIM_NAME_MAX + 32];
	enum enr_err rc;

	if (!read_body(r, f, n, &doc, v))
		return ENR_OK;
	if (!ops_name_ok(v[0].s)) {
		json_decref(doc);
		http_error(r, ENR_E_INVALID, "the request body is not valid; see details",
			   json_pack("[{s:s, s:s}]", "field", "name", "problem",
				     "1 to 64 of A-Z a-z 0-9 . _ -"));
		return ENR_OK;
	}
	limits_from(v + 1, &l);
	actor_of(r, &who);
	rc = ops_account_create(app_store(), &who, v[0].s, &l, util_now_ms() / 1000, &a);
	json_decref(doc);
	if (rc == ENR_E_CONFLICT) {
		http_error(r, rc, "an account with this name exists", NULL);
		return ENR_OK;
	}
	if (rc)
		return rc;
	rc = account_out(r, &a, &doc);
	if (rc)
		return rc;
	snprintf(loc, sizeof loc, "/admin/accounts/%s", a.name);
	http_set_header(r, "Location", loc);
	http_json(r, 201, doc);
	return ENR_OK;
}

static int client_key_row(void *arg, const struct st_client_key *k)
{
	json_array_append_new((json_t *)arg, ops_key_json(k, util_now_ms() / 1000));
	return 0;
}

enum enr_err h_admin_account_show(struct http_req *r)
{
	struct st_account a;
	json_t *keys, *j;
	enum enr_err rc;

	if (!load_account(r, &a, &rc))
		return rc;
	keys = json_array();
	if (keys == NULL)
		return ENR_E_NOMEM;
	rc = st_client_key_each(app_store(), a.id, client_key_row, keys);
	if (rc) {
		json_decref(keys);
		return rc;
	}
	rc = account_out(r, &a, &j);
	if (rc) {
		json_decref(keys);
		return rc;
	}
	json_object_set_new(j, "keys", keys);
	http_json(r, 200, j);
	return ENR_OK;
}

enum enr_err h_admin_account_update(struct http_req *r)
{
	struct jb_field f[OPS_LIMIT__MAX];
	struct jb_value v[OPS_LIMIT__MAX];
	struct ops_limits l;
	struct ops_actor who;
	struct st_account a;
	size_t n = limit_fields(f, false);
	json_t *doc = NULL;
	enum enr_err rc;

	if (!load_account(r, &a, &rc))
		return rc;
	if (!read_body(r, f, n, &doc, v))
		return ENR_OK;
	json_decref(doc); /* limits are numbers: nothing borrowed */
	limits_from(v, &l);
	actor_of(r, &who);
	rc = ops_account_update(app_store(), &who, a.name, &l, &a);
	if (rc == ENR_E_INVALID) {
		http_error(r, rc, "give at least one limit to change",
			   json_pack("[{s:s, s:s}]", "field", "body", "problem",
				     "names no limit (requests_per_minute, burst, records_per_hour, "
				     "records_per_day, credits_per_day, credits_per_month)"));
		return ENR_OK;
	}
	if (rc == ENR_E_NOT_FOUND) {
		http_error(r, rc, "no such account", NULL);
		return ENR_OK;
	}
	if (rc)
		return rc;
	rc = account_out(r, &a, &doc);
	if (rc)
		return rc;
	http_json(r, 200, doc);
	return ENR_OK;
}

/* ---- client keys ----------------------------------------------------------- */

enum { KF_SCOPES, KF_NAME, KF_EXPIRES, KF__MAX };

enum enr_err h_admin_client_key_create(struct http_req *r)
{
	static const struct jb_field f[KF__MAX] = {
		[KF_SCOPES] = { "scopes", JB_WORDS, 1, 5, false },
		[KF_NAME] = { "name", JB_STRING, 0, LIM_NAME_MAX, false },
		[KF_EXPIRES] = { "expires_in_days", JB_INT, 1, 36500, false },
	};
	struct jb_value v[KF__MAX];
	struct st_account a;
	struct st_client_key k;
	struct ops_actor who;
	char key[AUTH_KEY_LEN + 1];
	unsigned scopes = AUTH_SCOPE_ENRICH | AUTH_SCOPE_ENQUEUE;
	int64_t now_s = util_now_ms() / 1000, expires = 0;
	json_t *doc = NULL, *j;
	enum enr_err rc;

	if (!load_account(r, &a, &rc))
		return rc;
	if (!read_body(r, f, KF__MAX, &doc, v))
		return ENR_OK;
	if (v[KF_SCOPES].present) {
		size_t i;
		json_t *e;

		scopes = 0;
		json_array_foreach(v[KF_SCOPES].arr, i, e) {
			unsigned one;

			if (auth_scopes_parse(json_string_value(e), &one) != ENR_OK ||
			    strchr(json_string_value(e), ',')) {
				json_decref(doc);
				http_error(r, ENR_E_INVALID, "the request body is not valid; see details",
					   json_pack("[{s:s, s:s}]", "field", "scopes", "problem",
						     "each entry is one of enrich, enqueue, admin, "
						     "metrics, search"));
				return ENR_OK;
			}
			scopes |= one;
		}
	}
	if (v[KF_NAME].present && !ops_label_ok(v[KF_NAME].s, v[KF_NAME].len)) {
		json_decref(doc);
		http_error(r, ENR_E_INVALID, "the request body is not valid; see details",
			   json_pack("[{s:s, s:s}]", "field", "name", "problem",
				     "must not contain control characters"));
		return ENR_OK;
	}
	if (v[KF_EXPIRES].present)
		expires = now_s + v[KF_EXPIRES].i * 86400;
	actor_of(r, &who);
	rc = ops_key_create(app_store(), &who, a.name,
			    v[KF_NAME].present && v[KF_NAME].len ? v[KF_NAME].s : NULL, scopes,
			    expires, now_s, key, &k);
	json_decref(doc);
	if (rc == ENR_E_NOT_FOUND) {
		http_error(r, rc, "no such account", NULL);
		return ENR_OK;
	}
	if (rc)
		return rc;
	j = ops_key_json(&k, now_s);
	if (j)
		json_object_set_new(j, "key", json_string(key));
	explicit_bzero(key, sizeof key);
	{
		char loc[64];

		snprintf(loc, sizeof loc, "/admin/client-keys/%lld", (long long)k.id);
		http_set_header(r, "Location", loc);
	}
	http_json(r, 201, j);
	return ENR_OK;
}

enum enr_err h_admin_client_keys(struct http_req *r)
{
	const char *name = qs_get(&r->qs, "account");
	int64_t account_id = -1;
	json_t *arr;
	enum enr_err rc;

	if (name) {
		struct st_account a;

		rc = st_account_by_name(app_store(), name, &a);
		if (rc == ENR_E_NOT_FOUND) {
			http_error(r, rc, "no such account", NULL);
			return ENR_OK;
		}
		if (rc)
			return rc;
		account_id = a.id;
	}
	arr = json_array();
	if (arr == NULL)
		return ENR_E_NOMEM;
	rc = st_client_key_each(app_store(), account_id, client_key_row, arr);
	if (rc) {
		json_decref(arr);
		return rc;
	}
	http_json(r, 200, json_pack("{s:o}", "keys", arr));
	return ENR_OK;
}

enum enr_err h_admin_client_key_revoke(struct http_req *r)
{
	struct st_client_key k;
	struct ops_actor who;
	int64_t id;
	enum enr_err rc;

	if (util_parse_i64(r->params[0], 1, INT64_MAX, &id) != ENR_OK) {
		http_error(r, ENR_E_NOT_FOUND, "no such client key", NULL);
		return ENR_OK;
	}
	actor_of(r, &who);
	rc = ops_key_revoke(app_store(), &who, id, util_now_ms() / 1000, &k);
	if (rc == ENR_E_NOT_FOUND) {
		http_error(r, rc, "no such client key", NULL);
		return ENR_OK;
	}
	if (rc == ENR_E_CONFLICT) {
		http_error(r, rc, "the key is revoked already", NULL);
		return ENR_OK;
	}
	if (rc)
		return rc;
	http_json(r, 200, ops_key_json(&k, util_now_ms() / 1000));
	return ENR_OK;
}

/* ---- the audit log and alerts ------------------------------------------------------ */

#define LOG_PAGE_DEFAULT 50

struct log_page {
	json_t *arr;
	int limit, n;
	int64_t last_id;
	bool more;
};

static bool log_take(struct log_page *c, int64_t id, json_t *o)
{
	if (c->n == c->limit) {
		json_decref(o);
		c->more = true;
		return false;
	}
	json_array_append_new(c->arr, o);
	c->last_id = id;
	c->n++;
	return true;
}

static int audit_row(void *arg, const struct st_audit *e)
{
	return log_take(arg, e->id, ops_audit_json(e)) ? 0 : 1;
}

static json_t *alert_json(const struct st_alert *a)
{
	char at[25], until[21] = "";

	util_fmt_time_ms(a->at_ms, at);
	if (a->until_ms > 0)
		util_fmt_time_s(a->until_ms / 1000, until);
	return json_pack("{s:I, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s}", "id",
			 (json_int_t)a->id, "at", at, "event", a->event, "provider", a->provider,
			 "key", a->key_id, "last4", a->last4, "state", a->state, "until",
			 until[0] ? until : NULL, "message", a->message);
}

static int alert_row(void *arg, const struct st_alert *a)
{
	return log_take(arg, a->id, alert_json(a)) ? 0 : 1;
}

/* ?limit= and ?cursor= (an id: entries older than it) of a log listing. */
static void log_params(const struct http_req *r, struct log_page *c, int64_t *before)
{
	const char *lim = qs_get(&r->qs, "limit"), *cur = qs_get(&r->qs, "cursor");
	int64_t v;

	c->limit = LOG_PAGE_DEFAULT;
	if (lim && util_parse_i64(lim, 1, 200, &v) == ENR_OK)
		c->limit = (int)v;
	*before = 0;
	if (cur && util_parse_i64(cur, 1, INT64_MAX, &v) == ENR_OK)
		*before = v;
}

static enum enr_err log_answer(struct http_req *r, struct log_page *c, const char *member,
			       enum enr_err rc)
{
	char next[24];

	if (rc) {
		json_decref(c->arr);
		return rc;
	}
	snprintf(next, sizeof next, "%lld", (long long)c->last_id);
	http_json(r, 200, json_pack("{s:o, s:s?}", member, c->arr, "next_cursor",
				    c->more ? next : NULL));
	return ENR_OK;
}

/* GET /admin/audit[?limit=N][&cursor=ID]: admin actions, newest first. */
enum enr_err h_admin_audit(struct http_req *r)
{
	struct log_page c = { .arr = json_array() };
	int64_t before;

	if (c.arr == NULL)
		return ENR_E_NOMEM;
	log_params(r, &c, &before);
	return log_answer(r, &c, "entries",
			  st_audit_page(app_store(), before, c.limit + 1, audit_row, &c));
}

/* GET /admin/alerts[?limit=N][&cursor=ID]: keys that died, pools that ran
 * dry, newest first (kept ALERT_KEEP_DAYS days). */
enum enr_err h_admin_alerts(struct http_req *r)
{
	struct log_page c = { .arr = json_array() };
	int64_t before;

	if (c.arr == NULL)
		return ENR_E_NOMEM;
	log_params(r, &c, &before);
	return log_answer(r, &c, "alerts",
			  st_alert_page(app_store(), before, c.limit + 1, alert_row, &c));
}
