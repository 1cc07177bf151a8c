/*
 * store.c - enrichctl migrate and enrichctl store copy: the schema of
 * either back end, and moving a deployment from one store to another
 * (SQLite to PostgreSQL when one machine is no longer enough).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "lib/store.h"

#include "ctl.h"

/* The options to open url with: the configuration's for its own store,
 * else only the password reference given (or libpq's passfile). */
static void store_options(const char *url, const char *password, struct st_options *o)
{
	if (strcmp(url, cfg->store) == 0)
		st_options_from_cfg(cfg, o);
	else
		memset(o, 0, sizeof *o);
	if (password)
		o->password = password;
}

static void need_url(const char *url)
{
	if (!st_url_ok(url))
		fail("\"%s\" is not a store URL (sqlite:PATH or postgresql://..., without a password)",
		     url);
}

void cmd_migrate(int argc, char **argv)
{
	const char *url = argc == 1 ? argv[0] : cfg->store;
	struct st_options so;
	char why[512];
	int from = 0, to = 0;

	if (argc > 1)
		usage_fail("migrate [STORE_URL]");
	need_url(url);
	store_options(url, NULL, &so);
	if (st_open_why(url, &so, false, &store, why, sizeof why) != ENR_OK)
		fail("%s", why);
	need_ok(st_migrate(store, &from, &to), "migrate");
	if (json_out)
		print_json(json_pack("{s:s, s:i, s:i}", "backend", st_backend_name(store), "from", from,
				     "to", to));
	else if (from == to)
		printf("%s schema is at version %d (current)\n", st_backend_name(store), to);
	else
		printf("%s schema migrated from version %d to %d\n", st_backend_name(store), from, to);
}

struct copied {
	json_t *tables;
};

static void copied_table(void *arg, const char *table, int64_t rows)
{
	struct copied *c = arg;

	json_object_set_new(c->tables, table, json_integer(rows));
	if (!json_out)
		printf("  %-14s %lld rows\n", table, (long long)rows);
}

void cmd_store(int argc, char **argv, const struct opts *o)
{
	struct st_options fo, to;
	struct store *from = NULL, *dst = NULL;
	struct copied c = { json_object() };
	char why[512];
	enum enr_err rc;

	if (argc != 3 || strcmp(argv[0], "copy") != 0)
		usage_fail("store copy FROM_URL TO_URL");
	need_url(argv[1]);
	need_url(argv[2]);
	if (strcmp(argv[1], argv[2]) == 0)
		fail("store copy: FROM and TO are the same store");
	if (c.tables == NULL)
		fail("out of memory");
	store_options(argv[1], o->from_password, &fo);
	store_options(argv[2], o->to_password, &to);
	if (st_open_why(argv[1], &fo, true, &from, why, sizeof why) != ENR_OK)
		fail("%s", why);
	if (st_open_why(argv[2], &to, true, &dst, why, sizeof why) != ENR_OK) {
		st_close(from);
		fail("%s", why);
	}
	if (!json_out)
		printf("copying %s (%s) to %s (%s)\n", argv[1], st_backend_name(from), argv[2],
		       st_backend_name(dst));
	rc = st_copy(from, dst, copied_table, &c);
	st_close(from);
	st_close(dst);
	if (rc) {
		json_decref(c.tables);
		fail("store copy stopped: %s (the tables copied so far stay; run it again)",
		     enr_strerror(rc));
	}
	if (json_out) {
		print_json(json_pack("{s:s, s:s, s:o}", "from", argv[1], "to", argv[2], "tables",
				     c.tables));
	} else {
		json_decref(c.tables);
		printf("done\n");
	}
}
