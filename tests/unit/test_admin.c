/*
 * test_admin.c - the admin operations shared by the API and enrichctl:
 * validation, what each writes to the store, and the audit entry each
 * leaves (who, what, from where, never a secret).  A temporary SQLite file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/admin.h"
#include "lib/log.h"
#include "lib/store.h"

#include "harness.h"

static char dir[] = "/tmp/enrichd-admin-XXXXXX";
static int dbn;

static struct store *fresh(void)
{
	char url[256];
	struct store *s = NULL;

	snprintf(url, sizeof url, "sqlite:%s/a%d.db", dir, dbn++);
	if (st_open(url, NULL, &s) != ENR_OK)
		return NULL;
	return s;
}

struct entries {
	char action[8][40], target[8][80], who[8][160], from[8][192], details[8][256];
	int n;
};

static int entry(void *arg, const struct st_audit *e)
{
	struct entries *x = arg;

	if (x->n < 8) {
		snprintf(x->action[x->n], sizeof x->action[0], "%s", e->action);
		snprintf(x->target[x->n], sizeof x->target[0], "%s", e->target);
		snprintf(x->who[x->n], sizeof x->who[0], "%s", e->who);
		snprintf(x->from[x->n], sizeof x->from[0], "%s", e->from);
		snprintf(x->details[x->n], sizeof x->details[0], "%s", e->details ? e->details : "");
		x->n++;
	}
	return 0;
}

TEST(actors_name_who_and_where_without_hostile_bytes)
{
	struct ops_actor a;

	ops_actor_client(&a, "acme", 7, "10.1.2.3", NULL);
	CHECK_STR(a.who, "acme (key 7)");
	CHECK_STR(a.from, "10.1.2.3");
	ops_actor_client(&a, "acme", 7, "127.0.0.1", "203.0.113.9, 10.0.0.1\r\nX-Evil: 1");
	CHECK_STR(a.from, "127.0.0.1 (X-Forwarded-For: 203.0.113.9, 10.0.0.1????E???: 1)");
	ops_actor_client(&a, "acme", 7, NULL, "");
	CHECK_STR(a.from, "unknown");
	ops_actor_local(&a, "enrichctl");
	CHECK(strncmp(a.who, "enrichctl (", 11) == 0 && a.who[strlen(a.who) - 1] == ')');
	CHECK_STR(a.from, "local");
}

TEST(names_and_labels)
{
	CHECK(ops_name_ok("acme-eu.1_x"));
	CHECK(!ops_name_ok(""));
	CHECK(!ops_name_ok("a b"));
	CHECK(!ops_name_ok("a/b"));
	CHECK(ops_label_ok("the laptop in Lisbon \xc3\xa9", 23));
	CHECK(!ops_label_ok("tab\there", 8));
	CHECK(!ops_label_ok("\xff", 1));
}

TEST(accounts_keys_and_revive_each_leave_one_audit_entry)
{
	struct store *s = fresh();
	struct ops_actor who;
	struct ops_limits l;
	struct st_account a;
	struct st_client_key k, again;
	struct entries e;
	char key[AUTH_KEY_LEN + 1];

	REQUIRE(s != NULL);
	ops_actor_client(&who, "ops", 1, "127.0.0.1", NULL);
	memset(&l, 0, sizeof l);
	l.set[OPS_LIMIT_BURST] = true;
	l.v[OPS_LIMIT_BURST] = 0; /* below the minimum: refused, nothing written */
	CHECK_INT(ops_account_create(s, &who, "acme", &l, 1000, &a), ENR_E_INVALID);
	CHECK_INT(ops_account_create(s, &who, "bad name", NULL, 1000, &a), ENR_E_INVALID);
	l.v[OPS_LIMIT_BURST] = 50;
	CHECK_INT(ops_account_create(s, &who, "acme", &l, 1000, &a), ENR_OK);
	CHECK_INT(a.burst, 50);
	CHECK_INT(a.requests_per_minute, ST_LIMIT_DEFAULT);
	CHECK_INT(ops_account_create(s, &who, "acme", NULL, 1000, &a), ENR_E_CONFLICT);
	memset(&l, 0, sizeof l);
	CHECK_INT(ops_account_update(s, &who, "acme", &l, &a), ENR_E_INVALID); /* nothing given */
	l.set[OPS_LIMIT_RPD] = true;
	l.v[OPS_LIMIT_RPD] = ST_LIMIT_DEFAULT;
	l.set[OPS_LIMIT_RPM] = true;
	l.v[OPS_LIMIT_RPM] = 600;
	CHECK_INT(ops_account_update(s, &who, "ghost", &l, &a), ENR_E_NOT_FOUND);
	CHECK_INT(ops_account_update(s, &who, "acme", &l, &a), ENR_OK);
	CHECK_INT(a.requests_per_minute, 600);
	CHECK_INT(a.burst, 50); /* left as it was */

	CHECK_INT(ops_key_create(s, &who, "acme", NULL, 0, 0, 1000, key, &k), ENR_E_INVALID);
	CHECK_INT(ops_key_create(s, &who, "acme", NULL, AUTH_SCOPE_ENRICH, 999, 1000, key, &k),
		  ENR_E_INVALID); /* expires in the past */
	CHECK_INT(ops_key_create(s, &who, "ghost", NULL, AUTH_SCOPE_ENRICH, 0, 1000, key, &k),
		  ENR_E_NOT_FOUND);
	CHECK_INT(ops_key_create(s, &who, "acme", "crm", AUTH_SCOPE_ENRICH | AUTH_SCOPE_METRICS,
				 5000, 1000, key, &k), ENR_OK);
	CHECK(auth_key_shape_ok(key, strlen(key)));
	CHECK_STR(k.last4, key + AUTH_KEY_LEN - 4);
	CHECK_INT(k.scopes, AUTH_SCOPE_ENRICH | AUTH_SCOPE_METRICS);
	CHECK_STR(ops_key_state(&k, 1000), "active");
	CHECK_STR(ops_key_state(&k, 5000), "expired");
	CHECK_INT(ops_key_get(s, k.id, &again), ENR_OK);
	CHECK_STR(again.name, "crm");
	CHECK_INT(ops_key_revoke(s, &who, k.id, 2000, &again), ENR_OK);
	CHECK_STR(ops_key_state(&again, 2000), "revoked");
	CHECK_INT(ops_key_revoke(s, &who, k.id, 2000, &again), ENR_E_CONFLICT);
	CHECK_INT(ops_key_revoke(s, &who, 999, 2000, &again), ENR_E_NOT_FOUND);

	memset(&e, 0, sizeof e);
	CHECK_INT(st_audit_page(s, 0, 8, entry, &e), ENR_OK);
	CHECK_INT(e.n, 4); /* create, update, key create, key revoke: refusals leave nothing */
	CHECK_STR(e.action[0], "client_key.revoke");
	CHECK_STR(e.action[1], "client_key.create");
	CHECK_STR(e.action[2], "account.update");
	CHECK_STR(e.action[3], "account.create");
	CHECK_STR(e.who[1], "ops (key 1)");
	CHECK_STR(e.from[1], "127.0.0.1");
	CHECK(strstr(e.details[1], "\"scopes\":\"enrich,metrics\"") != NULL);
	CHECK(strstr(e.details[1], key) == NULL);
	CHECK(strstr(e.details[2], "\"records_per_day\":\"default\"") != NULL &&
	      strstr(e.details[2], "\"requests_per_minute\":600") != NULL);
	CHECK(strstr(e.details[3], "\"burst\":50") != NULL);
	CHECK(strstr(e.target[1], "of acme") != NULL);
	explicit_bzero(key, sizeof key);
	st_close(s);
}

TEST(credit_budgets_are_set_like_limits_with_one_audit_entry)
{
	struct store *s = fresh();
	static struct cfg cfg;
	struct ops_actor who;
	struct ops_limits l;
	struct st_account a;
	struct entries e;
	json_t *arr = NULL, *day;

	REQUIRE(s != NULL);
	cfg.accounts_default = (struct cfg_account_limits){ 100, 20, 1000, 10000 };
	cfg.credits_per_month = 500;
	ops_actor_client(&who, "ops", 1, "127.0.0.1", NULL);
	CHECK_INT(ops_account_create(s, &who, "acme", NULL, 1000, &a), ENR_OK);
	CHECK_INT(a.credits_per_day, ST_LIMIT_DEFAULT);
	memset(&l, 0, sizeof l);
	l.set[OPS_LIMIT_CPD] = true;
	l.v[OPS_LIMIT_CPD] = -5; /* refused, nothing written */
	CHECK_INT(ops_account_update(s, &who, "acme", &l, &a), ENR_E_INVALID);
	l.v[OPS_LIMIT_CPD] = 20;
	CHECK_INT(ops_account_update(s, &who, "acme", &l, &a), ENR_OK);
	CHECK_INT(a.credits_per_day, 20);
	CHECK_INT(a.credits_per_month, ST_LIMIT_DEFAULT);
	CHECK_INT(a.burst, ST_LIMIT_DEFAULT); /* the limits stay */
	CHECK_INT(st_account_by_name(s, "acme", &a), ENR_OK);
	CHECK_INT(a.credits_per_day, 20);

	CHECK_INT(ops_account_budgets(s, &cfg, &a, 1795392000000LL, &arr), ENR_OK);
	REQUIRE(arr != NULL);
	CHECK_INT(json_array_size(arr), 2); /* its own day budget, the default month budget */
	day = json_array_get(arr, 0);
	CHECK_STR(json_string_value(json_object_get(day, "period")), "day");
	CHECK_INT(json_integer_value(json_object_get(day, "limit")), 20);
	CHECK_INT(json_integer_value(json_object_get(day, "left")), 20);
	CHECK_STR(json_string_value(json_object_get(day, "resets")), "2026-11-24T00:00:00Z");
	CHECK_INT(json_integer_value(json_object_get(json_array_get(arr, 1), "limit")), 500);
	json_decref(arr);

	memset(&e, 0, sizeof e);
	CHECK_INT(st_audit_page(s, 0, 8, entry, &e), ENR_OK);
	CHECK_INT(e.n, 2); /* create, the budget's update */
	CHECK_STR(e.action[0], "account.update");
	CHECK_STR(e.details[0], "{\"credits_per_day\":20}");
	st_close(s);
}

TEST(json_shapes)
{
	struct st_account a = { 3, "acme", 600, ST_LIMIT_DEFAULT, 0, ST_LIMIT_DEFAULT, 1795392000,
			      ST_LIMIT_DEFAULT, ST_LIMIT_DEFAULT };
	static struct cfg cfg;
	struct st_client_key k;
	json_t *j;
	struct st_audit e = { 9, 1795392000123LL, "w", "local", "account.create", "acme", "{\"burst\":5}" };

	cfg.accounts_default = (struct cfg_account_limits){ 100, 20, 1000, 10000 };
	cfg.credits_per_day = 0;
	cfg.credits_per_month = 3000;
	a.credits_per_day = 40;
	j = ops_account_json(&a, &cfg);
	CHECK_STR(json_string_value(json_object_get(json_object_get(j, "limits"), "burst")), "default");
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "limits"), "credits_per_day")), 40);
	CHECK_STR(json_string_value(json_object_get(json_object_get(j, "limits"), "credits_per_month")), "default");
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "effective"), "credits_per_day")), 40);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "effective"), "credits_per_month")), 3000);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "effective"), "burst")), 20);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "effective"), "records_per_hour")), 0);
	CHECK_STR(json_string_value(json_object_get(j, "created_at")), "2026-11-23T00:00:00Z");
	json_decref(j);
	memset(&k, 0, sizeof k);
	k.id = 4;
	snprintf(k.account, sizeof k.account, "acme");
	snprintf(k.last4, sizeof k.last4, "abcd");
	k.scopes = AUTH_SCOPE_ADMIN | AUTH_SCOPE_ENRICH;
	j = ops_key_json(&k, 1);
	CHECK(json_is_null(json_object_get(j, "name")) && json_is_null(json_object_get(j, "expires_at")));
	CHECK_INT(json_array_size(json_object_get(j, "scopes")), 2);
	CHECK_STR(json_string_value(json_array_get(json_object_get(j, "scopes"), 1)), "admin");
	CHECK(json_object_get(j, "key") == NULL);
	json_decref(j);
	j = ops_audit_json(&e);
	CHECK_STR(json_string_value(json_object_get(j, "at")), "2026-11-23T00:00:00.123Z");
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "details"), "burst")), 5);
	json_decref(j);
}

int main(void)
{
	int rc;

	if (mkdtemp(dir) == NULL)
		return 1;
	log_set_level(LOG_LVL_ERROR);
	RUN(actors_name_who_and_where_without_hostile_bytes);
	RUN(names_and_labels);
	RUN(accounts_keys_and_revive_each_leave_one_audit_entry);
	RUN(credit_budgets_are_set_like_limits_with_one_audit_entry);
	RUN(json_shapes);
	rc = harness_done();
	{
		char cmd[128];

		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			rc = 1;
	}
	return rc;
}
