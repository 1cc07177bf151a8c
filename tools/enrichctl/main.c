/*
 * enrichctl - the admin command line of enrichd: accounts, client keys,
 * usage, the upstream key pool and schema migrations, on the same store
 * and configuration as the responder.
 *
 * This file: options, messages, output helpers and the dispatch; the
 * commands are in clients.c, pool.c and store.c (ctl.h).
 *
 * Exit status: 0 success, 1 the operation failed, 2 wrong usage.
 * Listings are tables with a header row that fit 100 columns (long values
 * cut with an ellipsis); --json gives the full data for scripts.
 */
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/store.h"
#include "lib/table.h"
#include "lib/util.h"

#include "ctl.h"

#define DEFAULT_CONF "/etc/enrichd/enrichd.conf"

static const char usage_text[] =
	"usage: enrichctl [-c FILE] COMMAND [ARGS] [--json]\n"
	"\n"
	"  migrate [STORE_URL]                     apply pending schema migrations (to the\n"
	"                                          configured store, or the one named)\n"
	"  store copy FROM_URL TO_URL [--from-password REF] [--to-password REF]\n"
	"                                          copy accounts, keys, usage, the key pool,\n"
	"                                          cache and jobs (upserts: safe to run again);\n"
	"                                          REF is env:NAME or file:PATH; the config's\n"
	"                                          store_password goes with its own store\n"
	"  account create NAME                     create a client account\n"
	"  account list                            list accounts and their limits\n"
	"  account show NAME                       one account, its limits and keys\n"
	"  account set-limits NAME [--requests-per-minute N] [--burst N]\n"
	"                     [--records-per-hour N] [--records-per-day N]\n"
	"                                          N may be \"default\" (the config value)\n"
	"  account set-budget NAME [--credits-per-day N] [--credits-per-month N]\n"
	"                                          credit budgets (0: none; \"default\")\n"
	"  account budget NAME                     the account's budgets: spent, held, left\n"
	"  key create ACCOUNT [--scopes enrich,enqueue,admin,metrics,search] [--name TEXT]\n"
	"                     [--expires-in DAYS] [--raw]\n"
	"                                          create a key; it is shown only this once\n"
	"  key list [ACCOUNT]                      list client keys (never the keys themselves)\n"
	"  key revoke ID                           revoke a key (effective on the next request)\n"
	"  usage [ACCOUNT] [--days N]              requests, records, credits, rejections per day\n"
	"  keys list                               the upstream provider key pool, its state and why\n"
	"  keys revive ID                          put an invalid or exhausted upstream key back\n"
	"  keys budgets                            upstream key and account budgets and their state\n"
	"\n"
	"  -c, --config FILE   configuration (default: $ENRICHD_CONF or " DEFAULT_CONF ")\n"
	"      --json          full data as JSON instead of a table\n"
	"  -V, --version       print the version\n"
	"  -h, --help          this text\n";

bool json_out;
bool raw_out;
const char *conf_path;
struct cfg *cfg;
struct store *store;
struct ops_actor actor;

void fail(const char *fmt, ...)
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

void usage_fail(const char *what)
{
	if (what)
		fprintf(stderr, "enrichctl: %s\n", what);
	fputs(usage_text, stderr);
	st_close(store);
	cfg_release(cfg);
	exit(2);
}

void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	json_decref(j);
	if (s == NULL)
		fail("out of memory");
	puts(s);
	free(s);
}

/* Print a table fitted to TABLE_WIDTH columns (or a narrower terminal);
 * the table is freed. */
void print_table(struct tbl *t)
{
	struct winsize ws;
	size_t width = TABLE_WIDTH;
	const char *cs;
	struct buf b;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 &&
	    ws.ws_col - 1 < TABLE_WIDTH)
		width = ws.ws_col - 1;
	cs = nl_langinfo(CODESET);
	buf_init(&b, 0);
	if (tbl_render(t, width, cs && strcmp(cs, "UTF-8") == 0, &b) != ENR_OK) {
		tbl_free(t);
		fail("out of memory");
	}
	fputs(buf_cstr(&b), stdout);
	buf_release(&b);
	tbl_free(t);
}

struct tbl *new_table(size_t n, const char *const *head, const unsigned *flags)
{
	struct tbl *t = tbl_new(n, head, flags);

	if (t == NULL)
		fail("out of memory");
	return t;
}

void table_row(struct tbl *t, const char *const *cells)
{
	if (tbl_row(t, cells) != ENR_OK)
		fail("out of memory");
}

/* A UTC date ("2026-11-23") or "-" for 0. */
void date_of(int64_t s, char out[21])
{
	if (s <= 0) {
		snprintf(out, 21, "-");
		return;
	}
	util_fmt_time_s(s, out);
	out[10] = '\0';
}

void need_ok(enum enr_err rc, const char *what)
{
	if (rc == ENR_OK)
		return;
	if (rc == ENR_E_UNAVAILABLE)
		fail("%s: the store is unavailable (%s)", what, cfg->store);
	fail("%s: %s", what, enr_strerror(rc));
}

enum { O_RPM = 1, O_BURST, O_RPH, O_RPD, O_SCOPES, O_NAME, O_EXPIRES_IN, O_DAYS, O_FROM_PW,
       O_TO_PW, O_CPD, O_CPM };

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
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
	{ "from-password", required_argument, NULL, O_FROM_PW },
	{ "to-password", required_argument, NULL, O_TO_PW },
	{ "credits-per-day", required_argument, NULL, O_CPD },
	{ "credits-per-month", required_argument, NULL, O_CPM },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	const char *path = getenv("ENRICHD_CONF");
	struct opts o;
	char err[LIM_CONFIG_ERR_MAX], why[512];
	char *pos[8];
	int npos = 0, c;

	memset(&o, 0, sizeof o);
	/* GNU getopt permutes: options may stand anywhere among the words. */
	setlocale(LC_CTYPE, "");
	while ((c = getopt_long(argc, argv, "c:hV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': printf("enrichctl %s\n", ENRICHD_VERSION); return 0;
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
		case O_FROM_PW: o.from_password = optarg; break;
		case O_TO_PW: o.to_password = optarg; break;
		case O_CPD: o.limit[OPS_LIMIT_CPD] = optarg; break;
		case O_CPM: o.limit[OPS_LIMIT_CPM] = optarg; break;
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
	conf_path = path;
	/* enrichctl needs the store and the defaults, not the provider secrets. */
	if (cfg_load_flags(path, CFG_LOAD_NO_SECRETS, &cfg, err, sizeof err) != ENR_OK) {
		fprintf(stderr, "enrichctl: %s\n", err);
		return 1;
	}
	log_set_level(LOG_LVL_WARN);
	ops_actor_local(&actor, "enrichctl");
	if (strcmp(pos[0], "migrate") == 0 || strcmp(pos[0], "store") == 0) {
		if (pos[0][0] == 'm')
			cmd_migrate(npos - 1, pos + 1);
		else
			cmd_store(npos - 1, pos + 1, &o);
		st_close(store);
		cfg_release(cfg);
		return 0;
	}
	if (st_open_cfg(cfg, &store, why, sizeof why) != ENR_OK)
		fail("%s", why);
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
