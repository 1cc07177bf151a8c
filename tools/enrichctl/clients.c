/*
 * clients.c - enrichctl's client side: accounts and their limits, client
 * keys (created, listed, revoked; a key is shown once), and usage per
 * account and day with totals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/admin.h"
#include "lib/auth.h"
#include "lib/budget.h"
#include "lib/util.h"

#include "ctl.h"

static void account_get(const char *name, struct st_account *a)
{
	enum enr_err rc = st_account_by_name(store, name, a);

	if (rc == ENR_E_NOT_FOUND)
		fail("no account named \"%s\"", name);
	need_ok(rc, "account lookup");
}

static json_t *account_json(const struct st_account *a)
{
	return ops_account_json(a, cfg);
}

static struct tbl *account_table(void)
{
	static const char *const head[] = { "ID", "ACCOUNT", "REQUESTS/MIN", "BURST",
					    "RECORDS/HOUR", "RECORDS/DAY", "CREATED" };
	static const unsigned flags[] = { TBL_RIGHT | TBL_KEEP, 0, TBL_RIGHT, TBL_RIGHT,
					  TBL_RIGHT, TBL_RIGHT, TBL_KEEP };

	return new_table(7, head, flags);
}

/* Set when a listed account has a limit of its own. */
static bool any_own_limit;

/* An account's effective limits; "*" marks a value set for the account
 * rather than taken from accounts_default. */
static void account_cells(struct tbl *t, const struct st_account *a)
{
	struct cfg_account_limits e;
	char id[24], v[4][32], created[21];
	const int64_t own[4] = { a->requests_per_minute, a->burst, a->records_per_hour,
				 a->records_per_day };
	int64_t eff[4];
	const char *cells[7] = { id, a->name, v[0], v[1], v[2], v[3], created };

	st_account_limits(a, &cfg->accounts_default, &e);
	eff[0] = e.requests_per_minute;
	eff[1] = e.burst;
	eff[2] = e.records_per_hour;
	eff[3] = e.records_per_day;
	snprintf(id, sizeof id, "%lld", (long long)a->id);
	for (int i = 0; i < 4; i++) {
		snprintf(v[i], sizeof v[i], "%lld%s", (long long)eff[i],
			 own[i] == ST_LIMIT_DEFAULT ? "" : "*");
		any_own_limit |= own[i] != ST_LIMIT_DEFAULT;
	}
	date_of(a->created_at, created);
	table_row(t, cells);
}

static int account_row(void *arg, const struct st_account *a)
{
	if (json_out)
		json_array_append_new((json_t *)arg, account_json(a));
	else
		account_cells(arg, a);
	return 0;
}

static json_t *key_json(const struct st_client_key *k)
{
	return ops_key_json(k, util_now_ms() / 1000);
}

static struct tbl *key_table(void)
{
	static const char *const head[] = { "ID", "ACCOUNT", "NAME", "KEY", "SCOPES",
					    "CREATED", "EXPIRES", "STATE" };
	static const unsigned flags[] = { TBL_RIGHT | TBL_KEEP, 0, 0, TBL_KEEP, 0,
					  TBL_KEEP, TBL_KEEP, TBL_KEEP };

	return new_table(8, head, flags);
}

static int key_row(void *arg, const struct st_client_key *k)
{
	if (json_out) {
		json_array_append_new((json_t *)arg, key_json(k));
	} else {
		json_t *j = key_json(k);
		char id[24], scopes[32], created[21], exp[21] = "never", last4[8];
		const char *cells[8] = { id, k->account, k->name[0] ? k->name : "-", last4, scopes,
					 created, exp, ops_key_state(k, util_now_ms() / 1000) };

		snprintf(id, sizeof id, "%lld", (long long)k->id);
		snprintf(last4, sizeof last4, "...%s", k->last4);
		auth_scopes_format(k->scopes, scopes, sizeof scopes);
		date_of(k->created_at, created);
		if (k->expires_at)
			date_of(k->expires_at, exp);
		table_row(arg, cells);
		json_decref(j);
	}
	return 0;
}

/* Usage rows as they come, and the sums per account and in all. */
struct usage_acc {
	json_t *json;
	struct tbl *t;
	struct st_usage *per;       /* one per account, in the order first seen */
	size_t nper, aper;
	struct st_usage all;
	int64_t days;               /* rows seen */
};

static void usage_add(struct st_usage *to, const struct st_usage *u)
{
	to->requests += u->requests;
	to->records += u->records;
	to->credits += u->credits;
	to->rejections += u->rejections;
}

static void usage_cells(struct tbl *t, const char *day, const struct st_usage *u,
			const char *account)
{
	char v[4][24];
	const char *cells[6] = { day, account, v[0], v[1], v[2], v[3] };

	snprintf(v[0], sizeof v[0], "%lld", (long long)u->requests);
	snprintf(v[1], sizeof v[1], "%lld", (long long)u->records);
	snprintf(v[2], sizeof v[2], "%lld", (long long)u->credits);
	snprintf(v[3], sizeof v[3], "%lld", (long long)u->rejections);
	table_row(t, cells);
}

static int usage_row(void *arg, const struct st_usage *u)
{
	struct usage_acc *acc = arg;
	size_t i;

	if (json_out) {
		json_array_append_new(acc->json,
				      json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "account",
						u->account, "day", u->day, "requests",
						(json_int_t)u->requests, "records",
						(json_int_t)u->records, "credits", (json_int_t)u->credits,
						"rejections", (json_int_t)u->rejections));
		return 0;
	}
	usage_cells(acc->t, u->day, u, u->account);
	for (i = 0; i < acc->nper && strcmp(acc->per[i].account, u->account) != 0; i++)
		;
	if (i == acc->nper) {
		if (acc->nper == acc->aper) {
			size_t n = acc->aper ? acc->aper * 2 : 8;
			struct st_usage *p = realloc(acc->per, n * sizeof *p);

			if (p == NULL)
				return 1;
			acc->per = p;
			acc->aper = n;
		}
		memset(&acc->per[i], 0, sizeof acc->per[i]);
		util_strlcpy(acc->per[i].account, u->account, sizeof acc->per[i].account);
		acc->nper++;
	}
	usage_add(&acc->per[i], u);
	usage_add(&acc->all, u);
	acc->days++;
	return 0;
}

/* A budget as a table row: period, limit, spent, held, left, reset. */
void budget_cells(struct tbl *t, const struct bud_state *b, const char *who)
{
	char v[4][24], resets[21];
	const char *cells[7] = { who, bud_period_names[b->period], v[0], v[1], v[2], v[3], resets };

	snprintf(v[0], sizeof v[0], "%lld", (long long)b->limit);
	snprintf(v[1], sizeof v[1], "%lld", (long long)b->spent);
	snprintf(v[2], sizeof v[2], "%lld", (long long)b->held);
	snprintf(v[3], sizeof v[3], "%lld", (long long)b->left);
	util_fmt_time_s(b->resets_ms / 1000, resets);
	table_row(t, cells);
}

struct tbl *budget_table(const char *first)
{
	static const char *head[] = { "", "PERIOD", "CREDITS", "SPENT", "HELD", "LEFT",
				      "RESETS" };
	static const unsigned flags[] = { 0, TBL_KEEP, TBL_RIGHT, TBL_RIGHT, TBL_RIGHT, TBL_RIGHT,
					  TBL_KEEP };

	head[0] = first;
	return new_table(7, head, flags);
}

/* An account's credit budgets as they apply (own, else accounts_default). */
static void budget_show(const struct st_account *a)
{
	struct bud_state st[2];
	int n = 0;

	if (json_out) {
		json_t *j = account_json(a), *arr = NULL;

		if (j == NULL)
			fail("out of memory");
		need_ok(ops_account_budgets(store, cfg, a, util_now_ms(), &arr), "account budget");
		json_object_set_new(j, "budgets", arr);
		print_json(j);
		return;
	}
	need_ok(bud_account_state(store, cfg, a, util_now_ms(), st, &n), "account budget");
	if (n == 0) {
		printf("account %s has no credit budget (credits_per_day and credits_per_month "
		       "are 0)\n", a->name);
		return;
	}
	{
		struct tbl *t = budget_table("ACCOUNT");

		for (int i = 0; i < n; i++)
			budget_cells(t, &st[i], a->name);
		print_table(t);
	}
}

/* Options after the positional arguments, getopt_long style. */
static int64_t parse_limit(const char *s, const char *what, int64_t min)
{
	int64_t v;

	if (strcmp(s, "default") == 0)
		return ST_LIMIT_DEFAULT;
	if (util_parse_i64(s, min, OPS_LIMIT_VALUE_MAX, &v) != ENR_OK)
		usage_fail(what);
	return v;
}

void cmd_account(int argc, char **argv, const struct opts *o)
{
	struct st_account a;
	int64_t now_s = util_now_ms() / 1000;

	if (argc < 1)
		usage_fail("account: which subcommand?");
	if (strcmp(argv[0], "create") == 0) {
		enum enr_err rc;

		if (argc != 2 || !ops_name_ok(argv[1]))
			usage_fail("account create NAME (1-64 of A-Z a-z 0-9 . _ -)");
		rc = ops_account_create(store, &actor, argv[1], NULL, now_s, &a);
		if (rc == ENR_E_CONFLICT)
			fail("an account named \"%s\" already exists", argv[1]);
		need_ok(rc, "account create");
		if (json_out)
			print_json(account_json(&a));
		else
			printf("created account %s (id %lld)\n", a.name, (long long)a.id);
	} else if (strcmp(argv[0], "list") == 0) {
		if (json_out) {
			json_t *arr = json_array();

			need_ok(st_account_each(store, account_row, arr), "account list");
			print_json(arr);
		} else {
			struct tbl *t = account_table();

			need_ok(st_account_each(store, account_row, t), "account list");
			if (tbl_rows(t) == 0) {
				tbl_free(t);
				printf("no accounts (enrichctl account create NAME)\n");
				return;
			}
			print_table(t);
			if (any_own_limit)
				printf("* set for the account; the others come from accounts_default\n");
		}
	} else if (strcmp(argv[0], "show") == 0) {
		json_t *keys = json_array(), *j;

		if (argc != 2)
			usage_fail("account show NAME");
		account_get(argv[1], &a);
		if (json_out) {
			need_ok(st_client_key_each(store, a.id, key_row, keys), "key list");
			j = account_json(&a);
			json_object_set_new(j, "keys", keys);
			print_json(j);
		} else {
			struct tbl *t = account_table();

			json_decref(keys);
			account_cells(t, &a);
			print_table(t);
			t = key_table();
			need_ok(st_client_key_each(store, a.id, key_row, t), "key list");
			printf("\n");
			if (tbl_rows(t) == 0) {
				tbl_free(t);
				printf("no client keys (enrichctl key create %s)\n", a.name);
			} else {
				print_table(t);
			}
		}
	} else if (strcmp(argv[0], "set-limits") == 0 || strcmp(argv[0], "set-budget") == 0) {
		static const char *const what[OPS_LIMIT__MAX] = {
			"--requests-per-minute takes a number >= 1 or \"default\"",
			"--burst takes a number >= 1 or \"default\"",
			"--records-per-hour takes a number >= 0 or \"default\"",
			"--records-per-day takes a number >= 0 or \"default\"",
			"--credits-per-day takes a number >= 0 or \"default\"",
			"--credits-per-month takes a number >= 0 or \"default\"",
		};
		bool budget = strcmp(argv[0], "set-budget") == 0;
		/* set-limits takes the rate limits and quotas, set-budget the
		 * credit budgets; both are one account.update. */
		int first = budget ? OPS_LIMIT_CPD : 0, last = budget ? OPS_LIMIT__MAX : OPS_LIMIT_CPD;
		struct ops_limits l;
		bool any = false;
		enum enr_err rc;

		if (argc != 2)
			usage_fail(budget ? "account set-budget NAME [--credits-per-day N] "
					    "[--credits-per-month N]"
					  : "account set-limits NAME [--requests-per-minute N] ...");
		memset(&l, 0, sizeof l);
		for (int i = 0; i < OPS_LIMIT__MAX; i++) {
			if (!o->limit[i])
				continue;
			if (i < first || i >= last)
				usage_fail(budget ? "account set-budget takes --credits-per-day and "
						    "--credits-per-month (rate limits: set-limits)"
						  : "account set-limits takes no credit budget (use "
						    "account set-budget)");
			l.v[i] = parse_limit(o->limit[i], what[i], ops_limit_min[i]);
			l.set[i] = true;
			any = true;
		}
		if (!any)
			usage_fail(budget ? "account set-budget: give --credits-per-day or "
					    "--credits-per-month"
					  : "account set-limits: give at least one limit");
		rc = ops_account_update(store, &actor, argv[1], &l, &a);
		if (rc == ENR_E_NOT_FOUND)
			fail("no account named \"%s\"", argv[1]);
		need_ok(rc, budget ? "account set-budget" : "account set-limits");
		if (budget) {
			budget_show(&a);
		} else if (json_out) {
			print_json(account_json(&a));
		} else {
			struct tbl *t = account_table();

			account_cells(t, &a);
			print_table(t);
		}
	} else if (strcmp(argv[0], "budget") == 0) {
		if (argc != 2)
			usage_fail("account budget NAME");
		account_get(argv[1], &a);
		budget_show(&a);
	} else {
		usage_fail("account: unknown subcommand");
	}
}

void cmd_key(int argc, char **argv, const struct opts *o)
{
	int64_t now_s = util_now_ms() / 1000;

	if (argc < 1)
		usage_fail("key: which subcommand?");
	if (strcmp(argv[0], "create") == 0) {
		struct st_client_key k;
		char key[AUTH_KEY_LEN + 1], scopes_s[40];
		unsigned scopes = AUTH_SCOPE_ENRICH | AUTH_SCOPE_ENQUEUE;
		int64_t expires = 0, days;
		enum enr_err rc;

		if (argc != 2)
			usage_fail("key create ACCOUNT [--scopes LIST] [--name TEXT] [--expires-in DAYS]");
		if (o->scopes && auth_scopes_parse(o->scopes, &scopes) != ENR_OK)
			usage_fail("--scopes is a comma-separated list of enrich, enqueue, admin, metrics, search");
		if (o->name && !ops_label_ok(o->name, strlen(o->name)))
			usage_fail("--name is at most 64 bytes of UTF-8 without control characters");
		if (o->expires_in) {
			if (util_parse_i64(o->expires_in, 1, 36500, &days) != ENR_OK)
				usage_fail("--expires-in takes a number of days from 1 to 36500");
			expires = now_s + days * 86400;
		}
		rc = ops_key_create(store, &actor, argv[1], o->name, scopes, expires, now_s, key, &k);
		if (rc == ENR_E_NOT_FOUND)
			fail("no account named \"%s\"", argv[1]);
		need_ok(rc, "key create");
		auth_scopes_format(scopes, scopes_s, sizeof scopes_s);
		if (raw_out) {
			puts(key);
		} else if (json_out) {
			json_t *j = key_json(&k);

			json_object_set_new(j, "key", json_string(key));
			print_json(j);
		} else {
			printf("key %lld for account %s (scopes %s)\n%s\n"
			       "Store it now: it is not kept and cannot be shown again.\n",
			       (long long)k.id, k.account, scopes_s, key);
		}
		explicit_bzero(key, sizeof key);
	} else if (strcmp(argv[0], "list") == 0) {
		json_t *arr = json_array();
		int64_t account = -1;

		if (argc == 2) {
			struct st_account a;

			account_get(argv[1], &a);
			account = a.id;
		} else if (argc != 1) {
			usage_fail("key list [ACCOUNT]");
		}
		if (json_out) {
			need_ok(st_client_key_each(store, account, key_row, arr), "key list");
			print_json(arr);
		} else {
			struct tbl *t = key_table();

			json_decref(arr);
			need_ok(st_client_key_each(store, account, key_row, t), "key list");
			if (tbl_rows(t) == 0) {
				tbl_free(t);
				printf("no client keys\n");
			} else {
				print_table(t);
			}
		}
	} else if (strcmp(argv[0], "revoke") == 0) {
		struct st_client_key k;
		int64_t id;
		enum enr_err rc;

		if (argc != 2 || util_parse_i64(argv[1], 1, INT64_MAX, &id) != ENR_OK)
			usage_fail("key revoke ID (the number from key list)");
		rc = ops_key_revoke(store, &actor, id, now_s, &k);
		if (rc == ENR_E_NOT_FOUND || rc == ENR_E_CONFLICT)
			fail("no active key with id %lld", (long long)id);
		need_ok(rc, "key revoke");
		if (json_out)
			print_json(key_json(&k));
		else
			printf("revoked key %lld\n", (long long)id);
	} else {
		usage_fail("key: unknown subcommand");
	}
}

void cmd_usage(int argc, char **argv, const struct opts *o)
{
	int64_t days = 7, account = -1;
	char from[11];
	json_t *arr = json_array();

	if (o->days && util_parse_i64(o->days, 1, 3660, &days) != ENR_OK)
		usage_fail("--days takes a number from 1 to 3660");
	if (argc == 1) {
		struct st_account a;

		account_get(argv[0], &a);
		account = a.id;
	} else if (argc > 1) {
		usage_fail("usage [ACCOUNT] [--days N]");
	}
	st_day(util_now_ms() / 1000 - (days - 1) * 86400, from);
	if (json_out) {
		struct usage_acc acc = { .json = arr };

		need_ok(st_usage_each(store, account, from, usage_row, &acc), "usage");
		print_json(arr);
		return;
	}
	json_decref(arr);
	{
		static const char *const head[] = { "DAY", "ACCOUNT", "REQUESTS", "RECORDS",
						    "CREDITS", "REJECTIONS" };
		static const unsigned flags[] = { TBL_KEEP, 0, TBL_RIGHT, TBL_RIGHT, TBL_RIGHT,
						  TBL_RIGHT };
		struct usage_acc acc = { .t = new_table(6, head, flags) };
		char label[48];
		enum enr_err rc = st_usage_each(store, account, from, usage_row, &acc);

		if (rc) {
			tbl_free(acc.t);
			free(acc.per);
			need_ok(rc, "usage");
		}
		if (acc.days == 0) {
			tbl_free(acc.t);
			printf("no usage recorded since %s\n", from);
			return;
		}
		/* Totals over the days shown: per account when there are several,
		 * then in all. */
		snprintf(label, sizeof label, "total %lldd", (long long)days);
		for (size_t i = 0; acc.nper > 1 && i < acc.nper; i++)
			usage_cells(acc.t, label, &acc.per[i], acc.per[i].account);
		usage_cells(acc.t, label, &acc.all, acc.nper == 1 ? acc.per[0].account : "(all)");
		print_table(acc.t);
		free(acc.per);
	}
}

