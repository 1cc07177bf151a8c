/*
 * h_admin.c - the upstream key pool for admins: GET /admin/keys and
 * POST /admin/keys/{id}/revive.
 */
#include <string.h>

#include <jansson.h>

#include "app.h"
#include "lib/keypool.h"
#include "lib/log.h"
#include "lib/rotation.h"
#include "lib/util.h"
#include "routes.h"

/* A key as admins see it: never more of the secret than its last four. */
static json_t *key_json(const struct kp_key *k, int64_t now_ms)
{
	char until[21] = "", used[21] = "";
	bool usable = kp_usable(k, now_ms);

	if (!usable && k->until_ms > 0)
		util_fmt_time_s(k->until_ms / 1000, until);
	if (k->last_used_ms > 0)
		util_fmt_time_s(k->last_used_ms / 1000, used);
	return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:I, s:I, s:I, s:I, s:I, s:s?}", "id", k->id,
			 "provider", k->provider, "account", k->account, "state",
			 kp_state_names[usable ? KP_ACTIVE : k->state], "until",
			 until[0] ? until : NULL, "last4", k->last4, "calls", (json_int_t)k->calls,
			 "hits", (json_int_t)k->hits, "misses", (json_int_t)k->misses, "errors",
			 (json_int_t)k->errors, "credits", (json_int_t)k->credits, "last_used",
			 used[0] ? used : NULL);
}

struct list_ctx {
	json_t *arr;
	int64_t now;
};

static int key_row(void *arg, const struct kp_key *k)
{
	struct list_ctx *c = arg;

	json_array_append_new(c->arr, key_json(k, c->now));
	return 0;
}

enum enr_err h_admin_keys(struct http_req *r)
{
	struct list_ctx c = { json_array(), util_now_ms() };
	enum enr_err rc;

	if (c.arr == NULL)
		return ENR_E_NOMEM;
	rot_flush(app_store()); /* counts this process holds in memory first */
	rc = st_ukey_each(app_store(), key_row, &c);
	if (rc) {
		json_decref(c.arr);
		return rc;
	}
	http_json(r, 200, json_pack("{s:o}", "keys", c.arr));
	return ENR_OK;
}

enum enr_err h_admin_key_revive(struct http_req *r)
{
	struct kp_key k;
	enum enr_err rc = st_ukey_revive(app_store(), r->params[0], &k);

	if (rc == ENR_E_NOT_FOUND) {
		http_error(r, rc, "no configured upstream key has this id", NULL);
		return ENR_OK;
	}
	if (rc)
		return rc;
	log_notice("keypool", "key %s (...%s) of provider %s revived by account %s", k.id, k.last4,
		   k.provider, r->account_name);
	http_json(r, 200, key_json(&k, util_now_ms()));
	return ENR_OK;
}
