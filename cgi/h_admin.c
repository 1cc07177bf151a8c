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

struct list_ctx {
	json_t *arr;
	int64_t now;
};

static int key_row(void *arg, const struct kp_key *k)
{
	struct list_ctx *c = arg;
	struct kp_key shown = *k;

	/* Calls this process counted and could not write yet count too. */
	rot_pending_apply(&shown, 1);
	json_array_append_new(c->arr, kp_key_json(&shown, c->now));
	return 0;
}

enum enr_err h_admin_keys(struct http_req *r)
{
	struct list_ctx c = { json_array(), util_now_ms() };
	enum enr_err rc;

	if (c.arr == NULL)
		return ENR_E_NOMEM;
	rot_flush(app_store()); /* counts this process holds in memory first (kept on failure) */
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
	enum enr_err rc = rot_revive(app_store(), r->params[0], &k);

	if (rc == ENR_E_NOT_FOUND) {
		http_error(r, rc, "no configured upstream key has this id", NULL);
		return ENR_OK;
	}
	if (rc)
		return rc;
	log_notice("keypool", "key %s (...%s) of provider %s revived by account %s", k.id, k.last4,
		   k.provider, r->account_name);
	http_json(r, 200, kp_key_json(&k, util_now_ms()));
	return ENR_OK;
}
