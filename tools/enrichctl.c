/*
 * enrichctl - the admin command line of enrichd: accounts, client keys,
 * usage, the upstream key pool and schema migrations, on the same store
 * and configuration as the responder.
 *
 * Exit status: 0 success, 1 the operation failed, 2 wrong usage.
 * Every listing has --json for scripts.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/auth.h"
#include "lib/config.h"
#include "lib/keypool.h"
#include "lib/log.h"
#include "lib/store.h"
#include "lib/util.h"

#define DEFAULT_CONF "/etc/enrichd/enrichd.conf"

static const char usage_text[] =
	"usage: enrichctl [-c FILE] COMMAND [ARGS] [--json]\n"
	"\n"
	"  migrate                                 apply pending schema migrations\n"
	"  account create NAME                     create a client account\n"
	"  account list                            list accounts and their limits\n"
	"  account show NAME                       one account, its limits and keys\n"
	"  account set-limits NAME [--requests-per-minute N] [--burst N]\n"
	"                     [--records-per-hour N] [--records-per-day N]\n"
	"                                          N may be \"default\" (the config value)\n"
	"  key create ACCOUNT [--scopes enrich,enqueue,admin] [--name TEXT]\n"
	"                     [--expires-in DAYS] [--raw]\n"
	"                                          create a key; it is shown only this once\n"
	"  key list [ACCOUNT]                      list client keys (never the keys themselves)\n"
	"  key revoke ID                           revoke a key (effective on the next request)\n"
	"  usage [ACCOUNT] [--days N]              requests, records, credits, rejections per day\n"
	"  keys list                               the upstream provider key pool and its state\n"
	"  keys revive ID                          put an invalid or exhausted upstream key back\n"
	"\n"
	"  -c FILE   configuration (default: $ENRICHD_CONF or " DEFAULT_CONF ")\n";

static bool json_out;
static bool raw_out;
static struct cfg *cfg;
static struct store *store;

__attribute__((format(printf, 1, 2), noreturn))
static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("enrichctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	st_close(store);
	cfg_release(cfg);
	exit(1);
}

__attribute__((noreturn))
static void usage_fail(const char *what)
{
	if (what)
		fprintf(stderr, "enrichctl: %s\n", what);
	fputs(usage_text, stderr);
	st_close(store);
	cfg_release(cfg);
	exit(2);
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	json_decref(j);
	if (s == NULL)
		fail("out of memory");
	puts(s);
	free(s);
}

static void need_ok(enum enr_err rc, const char *what)
{
	if (rc == ENR_OK)
		return;
	if (rc == ENR_E_UNAVAILABLE)
		fail("%s: the store is unavailable (%s)", what, cfg->store);
	fail("%s: %s", what, enr_strerror(rc));
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

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

static void account_get(const char *name, struct st_account *a)
{
	enum enr_err rc = st_account_by_name(store, name, a);

	if (rc == ENR_E_NOT_FOUND)
		fail("no account named \"%s\"", name);
	need_ok(rc, "account lookup");
}

static json_t *limit_json(int64_t v)
{
	return v == ST_LIMIT_DEFAULT ? json_string("default") : json_integer(v);
}

static json_t *account_json(const struct st_account *a)
{
	struct cfg_account_limits eff;

	st_account_limits(a, &cfg->accounts_default, &eff);
	return json_pack("{s:I, s:s, s:I, s:{s:o, s:o, s:o, s:o}, s:{s:I, s:I, s:I, s:I}}",
			 "id", (json_int_t)a->id, "name", a->name, "created_at",
			 (json_int_t)a->created_at, "limits", "requests_per_minute",
			 limit_json(a->requests_per_minute), "burst", limit_json(a->burst),
			 "records_per_hour", limit_json(a->records_per_hour), "records_per_day",
			 limit_json(a->records_per_day), "effective", "requests_per_minute",
			 (json_int_t)eff.requests_per_minute, "burst", (json_int_t)eff.burst,
			 "records_per_hour", (json_int_t)eff.records_per_hour, "records_per_day",
			 (json_int_t)eff.records_per_day);
}

static void print_account_line(const struct st_account *a)
{
	struct cfg_account_limits e;

	st_account_limits(a, &cfg->accounts_default, &e);
	printf("%-24s %8lld/min burst %-6lld %10lld/hour %10lld/day\n", a->name,
	       (long long)e.requests_per_minute, (long long)e.burst, (long long)e.records_per_hour,
	       (long long)e.records_per_day);
}

static int account_row(void *arg, const struct st_account *a)
{
	if (json_out)
		json_array_append_new((json_t *)arg, account_json(a));
	else
		print_account_line(a);
	return 0;
}

static json_t *key_json(const struct st_client_key *k)
{
	char scopes[32];

	auth_scopes_format(k->scopes, scopes, sizeof scopes);
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "id", (json_int_t)k->id,
			 "account", k->account, "name", k->name, "last4", k->last4, "scopes",
			 scopes, "created_at", (json_int_t)k->created_at, "expires_at",
			 (json_int_t)k->expires_at, "revoked_at", (json_int_t)k->revoked_at, "state",
			 k->revoked_at ? "revoked" :
			 (k->expires_at && k->expires_at <= util_now_ms() / 1000) ? "expired" :
										 "active");
}

static int key_row(void *arg, const struct st_client_key *k)
{
	if (json_out) {
		json_array_append_new((json_t *)arg, key_json(k));
	} else {
		char scopes[32], exp[21] = "never";

		auth_scopes_format(k->scopes, scopes, sizeof scopes);
		if (k->expires_at)
			util_fmt_time_s(k->expires_at, exp);
		printf("%-6lld %-20s %-16s ...%s  %-22s expires %-20s %s\n", (long long)k->id,
		       k->account, k->name[0] ? k->name : "-", k->last4, scopes, exp,
		       k->revoked_at ? "REVOKED" : "");
	}
	return 0;
}

static int usage_row(void *arg, const struct st_usage *u)
{
	if (json_out)
		json_array_append_new((json_t *)arg,
				      json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "account",
						u->account, "day", u->day, "requests",
						(json_int_t)u->requests, "records",
						(json_int_t)u->records, "credits", (json_int_t)u->credits,
						"rejections", (json_int_t)u->rejections));
	else
		printf("%-10s %-20s %10lld %10lld %10lld %10lld\n", u->day, u->account,
		       (long long)u->requests, (long long)u->records, (long long)u->credits,
		       (long long)u->rejections);
	return 0;
}

/* Options after the positional arguments, getopt_long style. */
enum { O_RPM = 1, O_BURST, O_RPH, O_RPD, O_SCOPES, O_NAME, O_EXPIRES_IN, O_DAYS };

static const struct option long_opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "raw", no_argument, NULL, 'r' },
	{ "requests-per-minute", required_argument, NULL, O_RPM },
	{ "burst", required_argument, NULL, O_BURST },
	{ "records-per-hour", required_argument, NULL, O_RPH },
	{ "records-per-day", required_argument, NULL, O_RPD },
	{ "scopes", required_argument, NULL, O_SCOPES },
	{ "name", required_argument, NULL, O_NAME },
	{ "expires-in", required_argument, NULL, O_EXPIRES_IN },
	{ "days", required_argument, NULL, O_DAYS },
	{ NULL, 0, NULL, 0 },
};

struct opts {
	const char *limit[4];   /* rpm, burst, rph, rpd */
	const char *scopes;
	const char *name;
	const char *expires_in;
	const char *days;
};

static int64_t parse_limit(const char *s, const char *what, int64_t min)
{
	int64_t v;

	if (strcmp(s, "default") == 0)
		return ST_LIMIT_DEFAULT;
	if (util_parse_i64(s, min, 1000000000000LL, &v) != ENR_OK)
		usage_fail(what);
	return v;
}

static void cmd_account(int argc, char **argv, const struct opts *o)
{
	struct st_account a;
	int64_t now_s = util_now_ms() / 1000;

	if (argc < 1)
		usage_fail("account: which subcommand?");
	if (strcmp(argv[0], "create") == 0) {
		int64_t id;
		enum enr_err rc;

		if (argc != 2 || !name_ok(argv[1]))
			usage_fail("account create NAME (1-64 of A-Z a-z 0-9 . _ -)");
		rc = st_account_create(store, argv[1], now_s, &id);
		if (rc == ENR_E_CONFLICT)
			fail("an account named \"%s\" already exists", argv[1]);
		need_ok(rc, "account create");
		account_get(argv[1], &a);
		if (json_out)
			print_json(account_json(&a));
		else
			printf("created account %s (id %lld)\n", a.name, (long long)a.id);
	} else if (strcmp(argv[0], "list") == 0) {
		json_t *arr = json_array();

		need_ok(st_account_each(store, account_row, arr), "account list");
		if (json_out)
			print_json(arr);
		else
			json_decref(arr);
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
			json_decref(keys);
			print_account_line(&a);
			need_ok(st_client_key_each(store, a.id, key_row, NULL), "key list");
		}
	} else if (strcmp(argv[0], "set-limits") == 0) {
		static const char *const what[4] = {
			"--requests-per-minute takes a number >= 1 or \"default\"",
			"--burst takes a number >= 1 or \"default\"",
			"--records-per-hour takes a number >= 0 or \"default\"",
			"--records-per-day takes a number >= 0 or \"default\"",
		};
		int64_t *dst[4] = { &a.requests_per_minute, &a.burst, &a.records_per_hour,
				    &a.records_per_day };
		bool any = false;

		if (argc != 2)
			usage_fail("account set-limits NAME [--requests-per-minute N] ...");
		account_get(argv[1], &a);
		for (int i = 0; i < 4; i++) {
			if (o->limit[i]) {
				*dst[i] = parse_limit(o->limit[i], what[i], i < 2 ? 1 : 0);
				any = true;
			}
		}
		if (!any)
			usage_fail("account set-limits: give at least one limit");
		need_ok(st_account_set_limits(store, a.id, &a), "account set-limits");
		account_get(argv[1], &a);
		if (json_out)
			print_json(account_json(&a));
		else
			print_account_line(&a);
	} else {
		usage_fail("account: unknown subcommand");
	}
}

static void cmd_key(int argc, char **argv, const struct opts *o)
{
	int64_t now_s = util_now_ms() / 1000;

	if (argc < 1)
		usage_fail("key: which subcommand?");
	if (strcmp(argv[0], "create") == 0) {
		struct st_account a;
		char key[AUTH_KEY_LEN + 1], scopes_s[32];
		unsigned char hash[AUTH_HASH_LEN];
		unsigned scopes = AUTH_SCOPE_ENRICH | AUTH_SCOPE_ENQUEUE;
		int64_t expires = 0, days, id;

		if (argc != 2)
			usage_fail("key create ACCOUNT [--scopes LIST] [--name TEXT] [--expires-in DAYS]");
		if (o->scopes && auth_scopes_parse(o->scopes, &scopes) != ENR_OK)
			usage_fail("--scopes is a comma-separated list of enrich, enqueue, admin");
		if (o->name && (strlen(o->name) > LIM_NAME_MAX || !util_utf8_valid(o->name, strlen(o->name))))
			usage_fail("--name is at most 64 bytes of UTF-8");
		if (o->expires_in) {
			if (util_parse_i64(o->expires_in, 1, 36500, &days) != ENR_OK)
				usage_fail("--expires-in takes a number of days from 1 to 36500");
			expires = now_s + days * 86400;
		}
		account_get(argv[1], &a);
		need_ok(auth_key_generate(key), "key create");
		auth_key_hash(key, AUTH_KEY_LEN, hash);
		need_ok(st_client_key_insert(store, a.id, o->name, hash, key + AUTH_KEY_LEN - 4, scopes,
					     expires, now_s, &id),
			"key create");
		auth_scopes_format(scopes, scopes_s, sizeof scopes_s);
		if (raw_out)
			puts(key);
		else if (json_out)
			print_json(json_pack("{s:I, s:s, s:s, s:s, s:I}", "id", (json_int_t)id,
					     "account", a.name, "key", key, "scopes", scopes_s,
					     "expires_at", (json_int_t)expires));
		else
			printf("key %lld for account %s (scopes %s)\n%s\n"
			       "Store it now: it is not kept and cannot be shown again.\n",
			       (long long)id, a.name, scopes_s, key);
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
		need_ok(st_client_key_each(store, account, key_row, arr), "key list");
		if (json_out)
			print_json(arr);
		else
			json_decref(arr);
	} else if (strcmp(argv[0], "revoke") == 0) {
		int64_t id;
		enum enr_err rc;

		if (argc != 2 || util_parse_i64(argv[1], 1, INT64_MAX, &id) != ENR_OK)
			usage_fail("key revoke ID (the number from key list)");
		rc = st_client_key_revoke(store, id, now_s);
		if (rc == ENR_E_NOT_FOUND)
			fail("no active key with id %lld", (long long)id);
		need_ok(rc, "key revoke");
		if (json_out)
			print_json(json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", "revoked"));
		else
			printf("revoked key %lld\n", (long long)id);
	} else {
		usage_fail("key: unknown subcommand");
	}
}

static void cmd_usage(int argc, char **argv, const struct opts *o)
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
	if (!json_out)
		printf("%-10s %-20s %10s %10s %10s %10s\n", "day", "account", "requests", "records",
		       "credits", "rejections");
	need_ok(st_usage_each(store, account, from, usage_row, arr), "usage");
	if (json_out)
		print_json(arr);
	else
		json_decref(arr);
}

static int ukey_row(void *arg, const struct kp_key *k)
{
	json_t *j = kp_key_json(k, util_now_ms());

	if (json_out) {
		json_array_append_new((json_t *)arg, j);
		return 0;
	}
	printf("%-16s %-10s %-12s ...%s  %-9s %-20s calls %-6lld hits %-6lld misses %-6lld errors %-6lld credits %lld\n",
	       k->id, k->provider, k->account, k->last4,
	       json_string_value(json_object_get(j, "state")),
	       json_string_value(json_object_get(j, "until")) ? json_string_value(json_object_get(j, "until")) : "-",
	       (long long)k->calls, (long long)k->hits, (long long)k->misses, (long long)k->errors,
	       (long long)k->credits);
	json_decref(j);
	return 0;
}

static void cmd_keys(int argc, char **argv)
{
	if (argc == 1 && strcmp(argv[0], "list") == 0) {
		json_t *arr = json_array();

		/* The pool as configured now (keys added to the file since the
		 * service last loaded it appear too). */
		need_ok(st_ukey_sync(store, cfg), "keys list");
		need_ok(st_ukey_each(store, ukey_row, arr), "keys list");
		if (json_out)
			print_json(arr);
		else
			json_decref(arr);
	} else if (argc == 2 && strcmp(argv[0], "revive") == 0) {
		struct kp_key k;
		enum enr_err rc = st_ukey_revive(store, argv[1], &k);

		if (rc == ENR_E_NOT_FOUND)
			fail("no configured upstream key has the id \"%s\"", argv[1]);
		need_ok(rc, "keys revive");
		if (json_out)
			print_json(kp_key_json(&k, util_now_ms()));
		else
			printf("revived key %s (...%s) of provider %s\n", k.id, k.last4, k.provider);
	} else {
		usage_fail("keys list | keys revive ID");
	}
}

int main(int argc, char **argv)
{
	const char *path = getenv("ENRICHD_CONF");
	struct opts o;
	char err[LIM_CONFIG_ERR_MAX];
	char *pos[8];
	int npos = 0, c;
	enum enr_err rc;

	memset(&o, 0, sizeof o);
	/* GNU getopt permutes: options may stand anywhere among the words. */
	while ((c = getopt_long(argc, argv, "c:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'j': json_out = true; break;
		case 'r': raw_out = true; break;
		case O_RPM: o.limit[0] = optarg; break;
		case O_BURST: o.limit[1] = optarg; break;
		case O_RPH: o.limit[2] = optarg; break;
		case O_RPD: o.limit[3] = optarg; break;
		case O_SCOPES: o.scopes = optarg; break;
		case O_NAME: o.name = optarg; break;
		case O_EXPIRES_IN: o.expires_in = optarg; break;
		case O_DAYS: o.days = optarg; break;
		default: usage_fail(NULL);
		}
	}
	for (int i = optind; i < argc; i++) {
		if (npos == (int)(sizeof pos / sizeof pos[0]))
			usage_fail("too many arguments");
		pos[npos++] = argv[i];
	}
	if (npos == 0)
		usage_fail(NULL);
	if (path == NULL || *path == '\0')
		path = DEFAULT_CONF;
	/* enrichctl needs the store and the defaults, not the provider secrets. */
	if (cfg_load_flags(path, CFG_LOAD_NO_SECRETS, &cfg, err, sizeof err) != ENR_OK) {
		fprintf(stderr, "enrichctl: %s\n", err);
		return 1;
	}
	log_set_level(LOG_LVL_WARN);
	if (strcmp(pos[0], "migrate") == 0) {
		int from = 0, to = 0;

		need_ok(st_open_raw(cfg->store, &store), "open the store");
		need_ok(st_migrate(store, &from, &to), "migrate");
		if (json_out)
			print_json(json_pack("{s:i, s:i}", "from", from, "to", to));
		else if (from == to)
			printf("schema is at version %d (current)\n", to);
		else
			printf("schema migrated from version %d to %d\n", from, to);
		st_close(store);
		cfg_release(cfg);
		return 0;
	}
	rc = st_open(cfg->store, &store);
	if (rc)
		fail("cannot open the store %s: %s", cfg->store, enr_strerror(rc));
	if (strcmp(pos[0], "account") == 0)
		cmd_account(npos - 1, pos + 1, &o);
	else if (strcmp(pos[0], "key") == 0)
		cmd_key(npos - 1, pos + 1, &o);
	else if (strcmp(pos[0], "usage") == 0)
		cmd_usage(npos - 1, pos + 1, &o);
	else if (strcmp(pos[0], "keys") == 0)
		cmd_keys(npos - 1, pos + 1);
	else
		usage_fail("unknown command");
	st_close(store);
	cfg_release(cfg);
	return 0;
}
