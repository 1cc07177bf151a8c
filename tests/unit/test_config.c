/*
 * test_config.c - loading, validation messages, secrets, snapshots, fields.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/ascii.h"
#include "lib/config.h"
#include "lib/config_int.h"
#include "lib/fields.h"
#include "lib/limits.h"
#include "lib/provider.h"
#include "lib/util.h"

#include "harness.h"
#include "tmpconf.h"

static char dir[] = "/tmp/enrichd-cfg-XXXXXX";
static char path[256];
static char err[512];

static const char *write_conf(const char *text)
{
	FILE *f;

	snprintf(path, sizeof path, "%s/t.conf", dir);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	return path;
}

static enum enr_err load(const char *text, struct cfg **c)
{
	return cfg_load(write_conf(text), c, err, sizeof err);
}

/* The error must be "PATH:LINE: want" */
static int err_is(int line, const char *want)
{
	char expect[600];

	snprintf(expect, sizeof expect, "%s:%d: %s", path, line, want);
	if (strncmp(err, expect, strlen(expect)) != 0) {
		fprintf(stderr, "  got:  %s\n  want: %s...\n", err, expect);
		return 0;
	}
	return 1;
}

static void write_file(const char *p, const char *text, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd >= 0) {
		if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
			fprintf(stderr, "  short write to %s\n", p);
		close(fd);
	}
}

/* Load text; it must be refused with "PATH:LINE: want..." */
static int refused(const char *text, int line, const char *want)
{
	struct cfg *c = NULL;
	enum enr_err rc = load(text, &c);

	cfg_release(c);
	if (rc != ENR_E_CONFIG) {
		fprintf(stderr, "  accepted: %s", text);
		return 0;
	}
	return err_is(line, want);
}

static int accepted(const char *text)
{
	struct cfg *c = NULL;
	enum enr_err rc = load(text, &c);

	cfg_release(c);
	if (rc != ENR_OK)
		fprintf(stderr, "  refused: %s  -> %s\n", text, err);
	return rc == ENR_OK;
}

TEST(empty_file_gives_defaults)
{
	struct cfg *c = NULL;

	char real[PATH_MAX], want[PATH_MAX + 64];

	REQUIRE(realpath(dir, real) != NULL);
	REQUIRE(load("", &c) == ENR_OK);
	CHECK_INT(c->threads, 8);
	CHECK_INT(c->max_in_flight, 10000);
	CHECK_INT(c->store_threads, 4);
	CHECK_INT(c->up_max_host_connections, 0);
	CHECK_INT(c->up_max_idle_connections, 0);
	CHECK_INT(c->up_max_streams, 1000);
	/* Default paths are beside the file, like relative ones. */
	snprintf(want, sizeof want, "%s/var/run/enrichd.sock", real);
	CHECK_STR(c->listen, want);
	snprintf(want, sizeof want, "sqlite:%s/var/enrichd.db", real);
	CHECK_STR(c->store, want);
	snprintf(want, sizeof want, "%s/data", real);
	CHECK_STR(c->data_dir, want);
	CHECK_STR(c->log_file, "");
	CHECK_STR(c->server_name, "localhost");
	CHECK_STR(c->store_password, "");
	CHECK_INT(c->store_pool_size, 8);
	CHECK_INT(c->store_pool_wait_ms, 2000);
	CHECK_INT(c->store_statement_timeout_ms, 5000);
	CHECK_INT(c->limits.body_max_bytes, 10485760);
	CHECK_INT(c->accounts_default.requests_per_minute, 100);
	CHECK_INT(c->accounts_default.burst, 20);
	CHECK(c->endpoints[CFG_EP_ENRICH].enabled);
	CHECK_INT(c->endpoints[CFG_EP_ENRICH].deadline_ms, 2000);
	CHECK_INT(c->endpoints[CFG_EP_ENRICH].fallback, CFG_FALLBACK_NONE);
	CHECK(c->rotation.enabled);
	CHECK_INT(c->rotation.strategy, CFG_STRATEGY_ROUND_ROBIN);
	CHECK_INT(c->waterfall[CFG_GROUP_PERSON].n, 1);
	CHECK_STR(c->waterfall[CFG_GROUP_PERSON].v[0], "local");
	CHECK_INT(c->cache.hit_ttl_s, 604800);
	CHECK_INT(c->worker.concurrency, 10);
	CHECK_INT(c->nproviders, 0);
	cfg_release(c);
}

TEST(shipped_file_is_valid)
{
	struct cfg *c = NULL;

	CHECK_INT(cfg_load("conf/enrichd.conf", &c, err, sizeof err), ENR_OK);
	if (c == NULL)
		fprintf(stderr, "  %s\n", err);
	cfg_release(c);
}

TEST(values_are_read)
{
	struct cfg *c = NULL;

	REQUIRE(load("threads = 4;\nlog_level = \"warn\";\n"
		     "limits = { body_max_bytes = 2048; records_per_job_max = 50; };\n"
		     "accounts_default = { requests_per_minute = 10; burst = 3; records_per_day = 5000000000L; };\n"
		     "endpoints = { enrich = { enabled = false; deadline_ms = 500; fallback = \"mock\"; }; };\n"
		     "rotation = { enabled = false; strategy = \"least_used\"; endpoints = { enqueue = false; }; };\n"
		     "waterfall = { person = [ \"local\", \"mock\" ]; };\n"
		     "http = { cors_origins = [ \"https://a.example\", \"https://b.example\" ]; };\n",
		     &c) == ENR_OK);
	CHECK_INT(c->threads, 4);
	CHECK_INT(c->log_level, LOG_LVL_WARN);
	CHECK_INT(c->limits.body_max_bytes, 2048);
	CHECK_INT(c->limits.records_per_job_max, 50);
	CHECK_INT(c->accounts_default.burst, 3);
	CHECK(c->accounts_default.records_per_day == 5000000000LL);
	CHECK(!c->endpoints[CFG_EP_ENRICH].enabled);
	CHECK_INT(c->endpoints[CFG_EP_ENRICH].deadline_ms, 500);
	CHECK_INT(c->endpoints[CFG_EP_ENRICH].fallback, CFG_FALLBACK_MOCK);
	CHECK(c->endpoints[CFG_EP_ENQUEUE].enabled);
	CHECK(!c->rotation.enabled);
	CHECK_INT(c->rotation.strategy, CFG_STRATEGY_LEAST_USED);
	CHECK(c->rotation.endpoints[CFG_EP_ENRICH]);
	CHECK(!c->rotation.endpoints[CFG_EP_ENQUEUE]);
	CHECK_INT(c->waterfall[CFG_GROUP_PERSON].n, 2);
	CHECK_STR(c->waterfall[CFG_GROUP_PERSON].v[1], "mock");
	CHECK_INT(c->cors_origins.n, 2);
	CHECK_STR(c->cors_origins.v[1], "https://b.example");
	cfg_release(c);
}

TEST(errors_name_file_line_and_setting)
{
	struct cfg *c = NULL;

	CHECK_INT(load("threads = 4;\n\nlimitz = 1;\n", &c), ENR_E_CONFIG);
	CHECK(err_is(3, "limitz: unknown setting"));
	CHECK_INT(load("limits = {\n  body_max_bytes = 100;\n};\n", &c), ENR_E_CONFIG);
	CHECK(err_is(2, "limits.body_max_bytes: 100 is outside 1024..268435456"));
	CHECK_INT(load("threads = 1.5;\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "threads: must be an integer"));
	CHECK_INT(load("endpoints = { enrich = { enabled = 1; }; };\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "endpoints.enrich.enabled: must be true or false"));
	CHECK_INT(load("endpoints = { enrich = { fallback = \"random\"; }; };\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "endpoints.enrich.fallback: \"random\" is not one of none|mock"));
	CHECK_INT(load("http = { cors_origins = [ 1 ]; };\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "http.cors_origins[0]: must be a string"));
	CHECK_INT(load("http = { cors_origins = [ \"app.example.com\" ]; };\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "http.cors_origins[0]: must be an origin"));
	CHECK_INT(load("waterfall = {\n person = [ \"local\", \"pdl\" ];\n};\n", &c), ENR_E_CONFIG);
	CHECK(err_is(2, "waterfall.person[1]: no provider is named \"pdl\""));
	CHECK_INT(load("worker = { lease_s = 10; heartbeat_s = 10; };\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "worker.heartbeat_s: must be shorter than worker.lease_s"));
	CHECK_INT(load("threads = 4;\nthreads = 5;\n", &c), ENR_E_CONFIG);
	CHECK(err_is(2, "syntax error: duplicate setting name"));
	CHECK_INT(load("threads = ;\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "syntax error"));
	CHECK_INT(load("store = \"mysql://x\";\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "store: must be \"sqlite:PATH\" or \"postgresql://"));
	/* A password in the store URL is a secret in the file. */
	CHECK_INT(load("threads = 2;\nstore = \"postgresql://u:pw@db.example/x\";\n", &c),
		  ENR_E_CONFIG);
	CHECK(err_is(2, "store: must not carry a password"));
	CHECK_INT(load("store = \"postgres:///x?host=/run/pg&password=pw\";\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "store: must not carry a password"));
	CHECK_INT(load("store_password = \"hunter2\";\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "store_password: must be \"env:NAME\" or \"file:PATH\""));
	CHECK_INT(load("store_pool_size = 0;\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "store_pool_size: 0 is outside 1..256"));
	/* ENRICHD_STORE takes the place of the setting, validated the same way. */
	setenv("ENRICHD_STORE", "postgresql://enrichd@db.example/enrichd", 1);
	CHECK_INT(load("store = \"sqlite:x.db\";\n", &c), ENR_OK);
	if (c)
		CHECK_STR(c->store, "postgresql://enrichd@db.example/enrichd");
	cfg_release(c);
	c = NULL;
	setenv("ENRICHD_STORE", "postgresql://enrichd:pw@db.example/enrichd", 1);
	CHECK_INT(load("", &c), ENR_E_CONFIG);
	CHECK(strstr(err, "ENRICHD_STORE: must not carry a password") != NULL);
	setenv("ENRICHD_STORE", "mysql://x", 1);
	CHECK_INT(load("", &c), ENR_E_CONFIG);
	CHECK(strstr(err, "ENRICHD_STORE: must be \"sqlite:PATH\"") != NULL);
	unsetenv("ENRICHD_STORE");
	CHECK(c == NULL);
	CHECK_INT(cfg_load("/nonexistent/enrichd.conf", &c, err, sizeof err), ENR_E_CONFIG);
	CHECK(strstr(err, "/nonexistent/enrichd.conf: cannot read") != NULL);
}

TEST(providers_keys_and_secrets)
{
	struct cfg *c = NULL;
	const struct cfg_provider *p;
	char secret_path[300], text[1024];
	int fd;

	setenv("ENRICHD_T_KEY1", "sk-live-AAAABBBBCCCCDDDD", 1);
	snprintf(secret_path, sizeof secret_path, "%s/secret", dir);
	fd = open(secret_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0);
	CHECK(write(fd, "file-secret-1234\n", 17) == 17);
	close(fd);
	snprintf(text, sizeof text,
		 "providers = (\n"
		 "  { name = \"lusha\"; kind = \"lusha\"; requests_per_minute = 50;\n"
		 "    keys = ( { id = \"l1\"; account = \"acme\"; secret = \"env:ENRICHD_T_KEY1\"; category = \"phone\"; },\n"
		 "             { id = \"l2\"; secret = \"file:%s\"; requests_per_minute = 5; } ); },\n"
		 "  { name = \"pdl\"; kind = \"pdl\"; base_url = \"http://127.0.0.1:9/pdl\"; min_likelihood = 8;\n"
		 "    keys = ( { id = \"p1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); }\n"
		 ");\nwaterfall = { person = [ \"local\", \"pdl\", \"lusha\" ]; phone = [ \"lusha\" ]; };\n",
		 secret_path);
	REQUIRE(load(text, &c) == ENR_OK);
	CHECK_INT(c->nproviders, 2);
	p = cfg_provider_find(c, "lusha");
	REQUIRE(p != NULL);
	CHECK_STR(p->base_url, "https://api.lusha.com");
	CHECK_INT(p->nkeys, 2);
	CHECK_STR(p->keys[0].secret, "sk-live-AAAABBBBCCCCDDDD");
	CHECK_STR(p->keys[0].account, "acme");
	CHECK_STR(p->keys[0].category, "phone");
	CHECK_INT(p->keys[0].requests_per_minute, 50);
	CHECK_STR(p->keys[1].secret, "file-secret-1234");
	CHECK_STR(p->keys[1].account, "l2");
	CHECK_INT(p->keys[1].requests_per_minute, 5);
	p = cfg_provider_find(c, "pdl");
	REQUIRE(p != NULL);
	CHECK_INT(p->min_likelihood, 8);
	CHECK_INT(p->credits_per_hit, 1);
	CHECK(cfg_provider_find(c, "surfe") == NULL);
	cfg_release(c);

	/* A secret file readable by others is refused. */
	chmod(secret_path, 0644);
	CHECK_INT(load(text, &c), ENR_E_CONFIG);
	CHECK(strstr(err, "readable by others") != NULL);
	/* One too long is refused, not cut to its first 4 KiB; the longest
	 * one is read whole. */
	{
		static char big[LIM_SECRET_FILE_MAX + 2];

		memset(big, 'k', sizeof big - 1);
		fd = open(secret_path, O_WRONLY | O_TRUNC);
		REQUIRE(fd >= 0);
		CHECK(write(fd, big, LIM_SECRET_FILE_MAX + 1) == LIM_SECRET_FILE_MAX + 1);
		close(fd);
		chmod(secret_path, 0600);
		CHECK_INT(load(text, &c), ENR_E_CONFIG);
		CHECK(strstr(err, "is larger than 4095 bytes") != NULL);
		REQUIRE(truncate(secret_path, LIM_SECRET_FILE_MAX) == 0);
		REQUIRE(load(text, &c) == ENR_OK);
		CHECK_INT(strlen(cfg_provider_find(c, "lusha")->keys[1].secret), LIM_SECRET_FILE_MAX);
		cfg_release(c);
		c = NULL;
		REQUIRE(truncate(secret_path, 0) == 0);
		CHECK_INT(load(text, &c), ENR_E_CONFIG);
		CHECK(strstr(err, "is empty") != NULL);
	}
	/* Secrets are never literal, and the literal never shows in the error. */
	CHECK_INT(load("providers = ( { name = \"x\"; kind = \"pdl\"; keys = ( { id = \"k\"; secret = \"plain-secret-value\"; } ); } );\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "providers[0].keys[0].secret: must be \"env:NAME\" or \"file:PATH\""));
	CHECK(strstr(err, "plain-secret-value") == NULL);
	/* Duplicates and missing pieces. */
	CHECK_INT(load("providers = ( { name = \"x\"; kind = \"pdl\"; keys = ( { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; }, { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n", &c), ENR_E_CONFIG);
	CHECK(strstr(err, "key id \"k\" is used twice") != NULL);
	CHECK_INT(load("providers = ( { name = \"x\"; kind = \"pdl\"; keys = (); } );\n", &c), ENR_E_CONFIG);
	CHECK(strstr(err, "needs at least one key") != NULL);
	CHECK_INT(load("providers = ( { name = \"x\"; kind = \"pdl\"; base_url = \"ftp://x\"; keys = ( { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n", &c), ENR_E_CONFIG);
	CHECK(strstr(err, "base_url must start with https://") != NULL);
	CHECK_INT(load("providers = ( { name = \"x\"; kind = \"oracle\"; } );\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "providers[0].kind: \"oracle\" is not one of"));
}

TEST(generic_provider)
{
	struct cfg *c = NULL;
	const struct cfg_provider *p;

	setenv("ENRICHD_T_KEY1", "k1", 1);
	REQUIRE(load("providers = ( { name = \"acme\"; kind = \"generic\"; base_url = \"https://acme.example\";\n"
		     "  request = { method = \"GET\"; url = \"{base_url}/p?email={email}\"; auth_header = \"Authorization\"; auth_prefix = \"Bearer \"; };\n"
		     "  fields = { title = \"data.job.title\"; phone = \"data.phone\"; };\n"
		     "  statuses = { miss = [ 404 ]; key_invalid = [ 401, 403 ]; };\n"
		     "  keys = ( { id = \"a1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n",
		     &c) == ENR_OK);
	p = cfg_provider_find(c, "acme");
	REQUIRE(p && p->generic);
	CHECK_STR(p->generic->url, "{base_url}/p?email={email}");
	CHECK_STR(p->generic->fields[FLD_TITLE], "data.job.title");
	CHECK(p->generic->fields[FLD_CITY] == NULL);
	CHECK_INT(p->generic->key_invalid.n, 2);
	CHECK_INT(p->generic->key_invalid.v[1], 403);
	cfg_release(c);
	CHECK_INT(load("providers = ( { name = \"acme\"; kind = \"generic\"; base_url = \"https://a\";\n"
		       "  request = { url = \"x\"; auth_header = \"A\"; }; fields = { salary = \"x\"; };\n"
		       "  keys = ( { id = \"a1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n", &c),
		  ENR_E_CONFIG);
	CHECK(strstr(err, "fields.salary: not a record field name") != NULL);
	CHECK_INT(load("providers = ( { name = \"p\"; kind = \"pdl\"; fields = { title = \"x\"; };\n"
		       "  keys = ( { id = \"a1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n", &c),
		  ENR_E_CONFIG);
	CHECK(strstr(err, "only for kind \"generic\"") != NULL);
}

#define PDL_P "{ name = \"pdl\"; kind = \"pdl\"; keys = ( { id = \"p1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); }"
#define LUSHA_P "{ name = \"lu\"; kind = \"lusha\"; keys = ( { id = \"l1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); }"
#define GEN_SEARCH "{ name = \"gs\"; kind = \"generic\"; base_url = \"https://g.example\";\n" \
	"  search_people = { url = \"{base_url}/people/search\"; body = \"{\\\"d\\\":{domains},\\\"l\\\":{limit}}\";\n" \
	"    results = \"results\"; next_cursor = \"paging.next\"; max_limit = 40; credits_per_result = 2;\n" \
	"    fields = { title = \"job.title\"; first_name = \"first\"; }; domain = \"company.domain\";\n" \
	"    statuses = { request_rejected = [ 400, 422 ]; }; };\n" \
	"  keys = ( { id = \"g1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); }"

TEST(search_settings)
{
	struct cfg *c = NULL;
	const struct cfg_provider *p;

	setenv("ENRICHD_T_KEY1", "k1", 1);
	/* Defaults: no provider, the limits, the switches on. */
	REQUIRE(load("", &c) == ENR_OK);
	CHECK_INT(c->search.people.n, 0);
	CHECK_INT(c->search.limit_max, 100);
	CHECK_INT(c->search.limit_default, 25);
	CHECK_INT(c->search.cursor_ttl_s, 86400);
	CHECK_INT(c->search.enqueue_max_records, 1000);
	CHECK_INT(c->cache.search_ttl_s, 86400);
	CHECK(c->endpoints[CFG_EP_SEARCH_PEOPLE].enabled && c->endpoints[CFG_EP_SEARCH_COMPANIES].enabled);
	CHECK_INT(c->endpoints[CFG_EP_SEARCH_PEOPLE].deadline_ms, 5000);
	CHECK(c->rotation.endpoints[CFG_EP_SEARCH_PEOPLE] && c->rotation.endpoints[CFG_EP_SEARCH_COMPANIES]);
	cfg_release(c);
	c = NULL;
	REQUIRE(load("providers = ( " PDL_P ", " GEN_SEARCH " );\n"
		     "search = { people = [ \"gs\", \"pdl\" ]; companies = [ \"pdl\" ]; limit_max = 150;\n"
		     "  limit_default = 10; cursor_secret = \"env:ENRICHD_T_KEY1\"; cursor_ttl_s = 600; };\n"
		     "endpoints = { search_people = { enabled = false; deadline_ms = 900; }; };\n"
		     "rotation = { endpoints = { search_companies = false; }; };\n"
		     "cache = { search_ttl_s = 60; };\n", &c) == ENR_OK);
	CHECK_INT(c->search.people.n, 2);
	CHECK_STR(c->search.people.v[0], "gs");
	CHECK_STR(c->search.companies.v[0], "pdl");
	CHECK_INT(c->search.limit_max, 150);
	CHECK_STR(c->search.cursor_secret, "k1");
	CHECK(!c->endpoints[CFG_EP_SEARCH_PEOPLE].enabled);
	CHECK_INT(c->endpoints[CFG_EP_SEARCH_PEOPLE].deadline_ms, 900);
	CHECK(!c->rotation.endpoints[CFG_EP_SEARCH_COMPANIES]);
	CHECK(c->rotation.endpoints[CFG_EP_SEARCH_PEOPLE]);
	CHECK_INT(c->cache.search_ttl_s, 60);
	p = cfg_provider_find(c, "gs");
	REQUIRE(p && p->search[0] && p->search[1] == NULL);
	/* A generic provider that only searches has no lookup. */
	CHECK(p->generic == NULL);
	CHECK_STR(p->search[0]->method, "POST");
	CHECK_STR(p->search[0]->results, "results");
	CHECK_STR(p->search[0]->fields[FLD_TITLE], "job.title");
	CHECK_STR(p->search[0]->domain, "company.domain");
	CHECK_INT(p->search[0]->max_limit, 40);
	CHECK_INT(p->search[0]->credits_per_result, 2);
	CHECK_INT(p->search[0]->request_rejected.n, 2);
	CHECK_STR(p->search[0]->total, "");
	cfg_release(c);
	c = NULL;

	/* Lists name providers that search that kind. */
	CHECK_INT(load("search = { people = [ \"nope\" ]; };\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "search.people[0]: no provider is named \"nope\""));
	CHECK_INT(load("providers = ( " LUSHA_P " );\nsearch = {\n people = [ \"lu\" ]; };\n", &c),
		  ENR_E_CONFIG);
	CHECK(err_is(3, "search.people[0]: provider \"lu\" (kind lusha) has no people search"));
	CHECK_INT(load("providers = ( " GEN_SEARCH " );\nsearch = { companies = [ \"gs\" ]; };\n", &c),
		  ENR_E_CONFIG);
	CHECK(strstr(err, "has no company search: describe search_companies") != NULL);
	CHECK_INT(load("providers = ( " PDL_P " );\nsearch = { people = [ \"pdl\", \"pdl\" ]; };\n", &c),
		  ENR_E_CONFIG);
	CHECK(strstr(err, "search.people[1]: provider \"pdl\" is named twice") != NULL);
	CHECK_INT(load("search = { limit_max = 20; limit_default = 25; };\n", &c), ENR_E_CONFIG);
	CHECK(strstr(err, "search.limit_default: must not be more than search.limit_max") != NULL);
	CHECK_INT(load("search = { limit_max = 201; };\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "search.limit_max: 201 is outside 1..200"));
	CHECK_INT(load("search = { color = 1; };\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "search.color: unknown setting"));
	/* A search-only generic provider may not stand in a waterfall. */
	CHECK_INT(load("providers = ( " GEN_SEARCH " );\nwaterfall = { person = [ \"gs\" ]; };\n", &c),
		  ENR_E_CONFIG);
	CHECK(strstr(err, "waterfall.person[0]: provider \"gs\" describes no lookup") != NULL);
	/* The block is the generic kind's, complete, with paths that are paths. */
	CHECK_INT(load("providers = ( { name = \"p\"; kind = \"pdl\"; search_people = { url = \"x\"; results = \"r\"; };\n"
		       "  keys = ( { id = \"a1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n", &c),
		  ENR_E_CONFIG);
	CHECK(strstr(err, "only for kind \"generic\"") != NULL);
	CHECK_INT(load("providers = ( { name = \"g\"; kind = \"generic\"; search_people = { url = \"https://g/x\"; };\n"
		       "  keys = ( { id = \"a1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n", &c),
		  ENR_E_CONFIG);
	CHECK(strstr(err, "search_people.results is required") != NULL);
	CHECK_INT(load("providers = ( { name = \"g\"; kind = \"generic\";\n"
		       "  search_companies = { url = \"https://g/x\"; results = \"a..b\"; };\n"
		       "  keys = ( { id = \"a1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n", &c),
		  ENR_E_CONFIG);
	CHECK(err_is(2, "providers[0].search_companies.results: not a JSON path"));
	CHECK_INT(load("providers = ( { name = \"g\"; kind = \"generic\";\n"
		       "  search_people = { url = \"https://g/x\"; results = \"r\"; fields = { salary = \"s\"; }; };\n"
		       "  keys = ( { id = \"a1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n", &c),
		  ENR_E_CONFIG);
	CHECK(strstr(err, "search_people.fields.salary: not a record field name") != NULL);
	CHECK_INT(load("providers = ( { name = \"g\"; kind = \"generic\";\n"
		       "  search_people = { url = \"http://g.example/x\"; results = \"r\"; };\n"
		       "  keys = ( { id = \"a1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n", &c),
		  ENR_E_CONFIG);
	CHECK(strstr(err, "search_people.url") != NULL);
	/* Neither lookups nor searches: nothing to do. */
	CHECK_INT(load("providers = ( { name = \"g\"; kind = \"generic\";\n"
		       "  keys = ( { id = \"a1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n", &c),
		  ENR_E_CONFIG);
	CHECK(strstr(err, "or search_people / search_companies") != NULL);
}

TEST(snapshots_are_reference_counted)
{
	struct cfg *a = NULL, *b = NULL, *x, *y;

	CHECK(cfg_acquire() == NULL);
	REQUIRE(load("threads = 1;\n", &a) == ENR_OK);
	REQUIRE(load("threads = 2;\n", &b) == ENR_OK);
	cfg_publish(a);
	x = cfg_acquire();
	CHECK(x == a && x->threads == 1);
	cfg_publish(b);             /* a stays alive: x still holds it */
	CHECK_INT(x->threads, 1);
	y = cfg_acquire();
	CHECK(y == b && y->threads == 2);
	cfg_release(x);             /* frees a (ASan would flag a leak otherwise) */
	cfg_release(y);
	cfg_publish(NULL);          /* frees b */
	CHECK(cfg_acquire() == NULL);
	cfg_release(NULL);
}

TEST(state_dir_and_listen_group)
{
	struct cfg *c = NULL;
	char real[PATH_MAX], want[PATH_MAX + 8];

	REQUIRE(realpath(dir, real) != NULL);
	snprintf(want, sizeof want, "%s/var", real);
	REQUIRE(load("", &c) == ENR_OK);
	CHECK_STR(c->state_dir, want); /* beside the file, like every relative path */
	CHECK_STR(c->listen_group, "");
	cfg_release(c);
	c = NULL;
	REQUIRE(load("state_dir = \"/var/lib/enrichd\";\nlisten_group = \"root\";\n", &c) == ENR_OK);
	CHECK_STR(c->state_dir, "/var/lib/enrichd");
	CHECK_STR(c->listen_group, "root");
	cfg_release(c);
	c = NULL;
	CHECK_INT(load("threads = 2;\nlisten_group = \"enrichd-no-such-group\";\n", &c), ENR_E_CONFIG);
	CHECK(err_is(2, "listen_group: no group is named \"enrichd-no-such-group\""));
	CHECK_INT(load("state_dir = \"\";\n", &c), ENR_E_CONFIG);
	CHECK(err_is(1, "state_dir: length 0 is outside 1.."));
	CHECK(c == NULL);
}

TEST(relative_paths_follow_the_file)
{
	char real[PATH_MAX], cwd[PATH_MAX], p[PATH_MAX + 64], want[PATH_MAX + 64];
	struct cfg *c = NULL;
	const struct cfg_provider *pr;

	REQUIRE(realpath(dir, real) != NULL && getcwd(cwd, sizeof cwd) != NULL);
	snprintf(p, sizeof p, "%s/etc", real);
	REQUIRE(mkdir(p, 0755) == 0);
	snprintf(p, sizeof p, "%s/etc/key.txt", real);
	write_file(p, "k-relative\n", 0600);
	snprintf(p, sizeof p, "%s/etc/inc.conf", real);
	write_file(p, "threads = 7;\n", 0644);
	snprintf(p, sizeof p, "%s/etc/rel.conf", real);
	write_file(p,
		   "listen = \"../run/s.sock\";\n"
		   "store = \"sqlite:../var/x.db\";\n"
		   "data_dir = \"./data\";\n"
		   "state_dir = \"..\";\n"
		   "log_file = \"logs/e.log\";\n"
		   "@include \"inc.conf\"\n"
		   "providers = ( { name = \"p\"; kind = \"pdl\";\n"
		   "  keys = ( { id = \"k\"; secret = \"file:key.txt\"; } ); } );\n",
		   0644);

	/* From another working directory, by absolute path. */
	REQUIRE(chdir("/") == 0);
	CHECK_INT(cfg_load(p, &c, err, sizeof err), ENR_OK);
	if (c == NULL)
		fprintf(stderr, "  %s\n", err);
	REQUIRE(chdir(cwd) == 0);
	REQUIRE(c != NULL);
	snprintf(want, sizeof want, "%s/run/s.sock", real);
	CHECK_STR(c->listen, want);
	snprintf(want, sizeof want, "sqlite:%s/var/x.db", real);
	CHECK_STR(c->store, want);
	snprintf(want, sizeof want, "%s/etc/data", real);
	CHECK_STR(c->data_dir, want);
	snprintf(want, sizeof want, "%s/etc/logs/e.log", real);
	CHECK_STR(c->log_file, want);
	CHECK_STR(c->state_dir, real);
	CHECK_INT(c->threads, 7);
	pr = cfg_provider_find(c, "p");
	REQUIRE(pr != NULL && pr->nkeys == 1);
	CHECK_STR(pr->keys[0].secret, "k-relative");
	cfg_release(c);
	c = NULL;

	/* By a relative path from the directory above: the same files. */
	REQUIRE(chdir(real) == 0);
	CHECK_INT(cfg_load("etc/rel.conf", &c, err, sizeof err), ENR_OK);
	REQUIRE(chdir(cwd) == 0);
	REQUIRE(c != NULL);
	snprintf(want, sizeof want, "%s/run/s.sock", real);
	CHECK_STR(c->listen, want);
	cfg_release(c);
	c = NULL;

	/* Absolute paths stay as they are; ".." stops at the root. */
	REQUIRE(load("listen = \"/x/y.sock\"; store = \"sqlite:/x/y.db\"; data_dir = \"/x/d\";\n"
		     "log_file = \"/x/l.log\";\n", &c) == ENR_OK);
	CHECK_STR(c->listen, "/x/y.sock");
	CHECK_STR(c->store, "sqlite:/x/y.db");
	CHECK_STR(c->data_dir, "/x/d");
	CHECK_STR(c->log_file, "/x/l.log");
	cfg_release(c);
	c = NULL;
	REQUIRE(load("data_dir = \"../../../../../../../../../../../../d\";\n", &c) == ENR_OK);
	CHECK_STR(c->data_dir, "/d");
	cfg_release(c);

	/* A relative secret file that is missing is named with its full path. */
	snprintf(want, sizeof want, "cannot open secret file %s/nope.txt", real);
	CHECK(refused("providers = ( { name = \"p\"; kind = \"pdl\";\n"
		      "  keys = ( { id = \"k\"; secret = \"file:nope.txt\"; } ); } );\n",
		      2, "providers[0].keys[0].secret: cannot open secret file"));
	CHECK(strstr(err, want) != NULL);
}

TEST(http_only_to_loopback)
{
	static const char *const ok[] = {
		"https://api.example.com", "https://api.example.com:8443/v2",
		"http://127.0.0.1:9/pdl", "http://127.8.9.10/x", "http://localhost:8080",
		"http://LOCALHOST/", "http://[::1]:9/x",
		"https://api.example.com/v5/person/enrich?email=a%40b.com&min_likelihood=2",
		"http://127.0.0.1:65535/x?y=z", "https://a.b:443", "http://localhost?x=1",
		"HTTPS://API.EXAMPLE.COM/", "https://user@api.example.com/", "http://127.0.0.1:/x",
	};
	static const char *const bad[] = {
		"http://api.example.com", "http://10.0.0.1/", "http://0.0.0.0:9/",
		"http://[::ffff:127.0.0.1]/", "http://127.0.0.1.nip.io/", "http://localhost.example/",
		"http://127.0.0.1@api.example.com/", "http://128.0.0.1/", "ftp://127.0.0.1/",
		"127.0.0.1:9/x", "http://", "",
		"https://a:99999/", "https://exa mple.com/", "https://host/pa th", "https://",
		"http://127.0.0.1:70000/", "https://host/\x7f",
		"http://127.0.0.1:9\t/x", "http://localhost.:9/", "http://127.000.0.1.x/",
	};
	char why[256], text[512];

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		if (!cfg_url_check(ok[i], why, sizeof why))
			HARNESS_FAIL("%s refused: %s", ok[i], why);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (cfg_url_check(bad[i], why, sizeof why))
			HARNESS_FAIL("%s accepted", bad[i]);
		else if (why[0] == '\0')
			HARNESS_FAIL("%s refused without a reason", bad[i]);
	}

	/* At load, with file, line and setting. */
	setenv("ENRICHD_T_KEY1", "k1", 1);
	CHECK(refused("threads = 2;\nproviders = ( { name = \"x\"; kind = \"pdl\";\n"
		      "  base_url = \"http://api.peopledatalabs.com\";\n"
		      "  keys = ( { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n",
		      3, "providers[0].base_url: base_url must start with https://; http:// goes "
			 "only to a loopback host"));
	CHECK(strstr(err, "\"api.peopledatalabs.com\" is not one") != NULL);
	CHECK(refused("alerts = {\n  webhook_url = \"http://hooks.example.com/x\";\n};\n", 2,
		      "alerts.webhook_url: webhook_url must start with https://"));
	CHECK(refused("alerts = { webhook_url = \"hooks.example.com/x\"; };\n", 1,
		      "alerts.webhook_url: webhook_url must start with https://; not a URL"));
	CHECK(accepted("alerts = { webhook_url = \"https://hooks.example.com/x\"; };\n"));
	CHECK(accepted("alerts = { webhook_url = \"http://127.0.0.1:9/alerts\"; };\n"));
	CHECK(accepted("providers = ( { name = \"x\"; kind = \"pdl\"; base_url = \"http://[::1]:9/pdl\";\n"
		       "  keys = ( { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n"));

	/* A generic provider's URL template. */
	snprintf(text, sizeof text,
		 "providers = ( { name = \"g\"; kind = \"generic\";\n"
		 "  request = { url = \"%s\"; };\n  fields = { title = \"t\"; };\n"
		 "  keys = ( { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n",
		 "http://api.example.com/p?email={email}");
	CHECK(refused(text, 2, "providers[0].request.url: url must start with {base_url} or https://"));
	snprintf(text, sizeof text,
		 "providers = ( { name = \"g\"; kind = \"generic\";\n"
		 "  request = { url = \"%s\"; };\n  fields = { title = \"t\"; };\n"
		 "  keys = ( { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n",
		 "http://{domain}/p?email={email}");
	CHECK(refused(text, 2, "providers[0].request.url: an http:// url must name its loopback host"));
	snprintf(text, sizeof text,
		 "providers = ( { name = \"g\"; kind = \"generic\";\n"
		 "  request = { url = \"%s\"; };\n  fields = { title = \"t\"; };\n"
		 "  keys = ( { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n",
		 "http://127.0.0.1:9/p?email={email}");
	CHECK(accepted(text));
	snprintf(text, sizeof text,
		 "providers = ( { name = \"g\"; kind = \"generic\"; base_url = \"https://g.example\";\n"
		 "  request = { url = \"%s\"; };\n  fields = { title = \"t\"; };\n"
		 "  keys = ( { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n",
		 "{base_url}/p?email={email}");
	CHECK(accepted(text));
}

TEST(values_rendered_into_nginx)
{
	char text[600];
	size_t n;

	/* The reproducer: a directive smuggled into server_name. */
	CHECK(refused("threads = 2;\nhttp = {\n  server_name = \"localhost; bogus_directive on\";\n};\n",
		      3, "http.server_name: \"localhost;\" is not a server name"));
	CHECK(refused("http = { server_name = \"~^(www\\\\.)?example\\\\.com$\"; };\n", 1,
		      "http.server_name: "));
	CHECK(strstr(err, "no regular expressions") != NULL);
	CHECK(refused("http = { server_name = \"a.example  b.example\"; };\n", 1, "http.server_name: "));
	CHECK(refused("http = { server_name = \"a.example\\tb\"; };\n", 1, "http.server_name: "));
	CHECK(refused("http = { server_name = \"a{b\"; };\n", 1, "http.server_name: "));
	CHECK(refused("http = { server_name = \"\\\"a\\\"\"; };\n", 1, "http.server_name: "));
	CHECK(refused("http = { server_name = \"a..b\"; };\n", 1, "http.server_name: "));
	CHECK(refused("http = { server_name = \"w*.example.com\"; };\n", 1, "http.server_name: "));
	CHECK(refused("http = { server_name = \" a\"; };\n", 1, "http.server_name: "));
	CHECK(refused("http = { server_name = \"\"; };\n", 1, "http.server_name: length 0"));
	CHECK(accepted("http = { server_name = \"api.example.com *.example.org www.example.* "
		       ".example.net _ localhost 127.0.0.1 my_host\"; };\n"));

	/* CORS origins are rendered into an nginx map, quoted. */
	CHECK(refused("http = {\n cors_origins = [ \"https://a.example\", \"https://b.example/\" ];\n};\n",
		      2, "http.cors_origins[1]: must be an origin like"));
	CHECK(refused("http = { cors_origins = [ \"https://a.example/app\" ]; };\n", 1,
		      "http.cors_origins[0]: must be an origin"));
	CHECK(refused("http = { cors_origins = [ \"https://a.example;\" ]; };\n", 1,
		      "http.cors_origins[0]: must be an origin"));
	CHECK(refused("http = { cors_origins = [ \"https://a.example\\\" x\" ]; };\n", 1,
		      "http.cors_origins[0]: must be an origin"));
	CHECK(refused("http = { cors_origins = [ \"https://A.example\" ]; };\n", 1,
		      "http.cors_origins[0]: must be an origin"));
	CHECK(refused("http = { cors_origins = [ \"https://a.example:99999\" ]; };\n", 1,
		      "http.cors_origins[0]: must be an origin"));
	CHECK(refused("http = { cors_origins = [ \"*\" ]; };\n", 1,
		      "http.cors_origins[0]: must be an origin"));
	CHECK(accepted("http = { cors_origins = [ \"https://app.example.com\", \"https://a.example:8443\",\n"
		       "  \"http://localhost:3000\", \"https://[::1]:8443\" ]; };\n"));

	/* The socket path is rendered into fastcgi_pass. */
	CHECK(refused("threads = 2;\nlisten = \"/tmp/my sock\";\n", 2,
		      "listen: /tmp/my sock has a space or a control character"));
	CHECK(refused("listen = \"/tmp/x;y\";\n", 1, "listen: /tmp/x;y has one of"));
	CHECK(refused("listen = \"/tmp/x{y}\";\n", 1, "listen: /tmp/x{y} has one of"));
	CHECK(refused("listen = \"/tmp/$x\";\n", 1, "listen: /tmp/$x has one of"));
	/* ... and must fit a unix socket address once made absolute. */
	n = (size_t)snprintf(text, sizeof text, "listen = \"");
	for (size_t i = 0; i < 88; i++)	/* 93 bytes: fits until the directory is prefixed */
		text[n++] = 'a';
	snprintf(text + n, sizeof text - n, ".sock\";\n");
	CHECK(refused(text, 1, "listen: /"));
	CHECK(strstr(err, "the socket path may hold at most 96") != NULL);
	CHECK(refused("limits = { body_max_bytes = 1; };\n", 1, "limits.body_max_bytes: 1 is outside"));
}

/* w appears in text as a whole word. */
static bool word_in(const char *text, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = strstr(text, w); p; p = strstr(p + 1, w)) {
		char b = p == text ? ' ' : p[-1], a = p[n];

		if (!(b == '_' || ascii_is_lower(b)) && !(a == '_' || ascii_is_lower(a)))
			return true;
	}
	return false;
}

static void documented(const struct cfg_table *t, const char *text, int *checked)
{
	for (; t; t = t->also) {
		for (size_t i = 0; i < t->n; i++) {
			const char *rp = t->dirs[i].path, *dot = strrchr(rp, '.');
			const char *leaf = dot ? dot + 1 : rp;

			if (strcmp(leaf, "*") != 0) {
				(*checked)++;
				if (!word_in(text, leaf))
					HARNESS_FAIL("%s (%s) is not in conf/enrichd.conf", rp, t->what);
			}
			if (t->dirs[i].sub)
				documented(t->dirs[i].sub, text, checked);
		}
	}
}

TEST(every_setting_is_in_the_shipped_file)
{
	char *text = NULL;
	size_t n;
	int checked = 0;

	REQUIRE(util_read_file("conf/enrichd.conf", LIM_CONFIG_FILE_MAX, 0, &text, &n) == ENR_OK);
	documented(&cfg_root_table, text, &checked);
	CHECK(checked > 90); /* the walk reached the provider, key and generic rows */
	free(text);
}

/* The file says "the value shown is the default unless the comment says
 * otherwise": loading it gives the defaults, but for paths and origins. */
TEST(shipped_values_are_the_defaults)
{
	struct cfg *d = NULL, *s = NULL;

	REQUIRE(load("", &d) == ENR_OK);
	CHECK_INT(cfg_load("conf/enrichd.conf", &s, err, sizeof err), ENR_OK);
	REQUIRE(s != NULL);
	CHECK_INT(s->listen_backlog, d->listen_backlog);
	CHECK_INT(s->threads, d->threads);
	CHECK_INT(s->log_level, d->log_level);
	CHECK_STR(s->log_file, d->log_file);
	CHECK_STR(s->listen_group, d->listen_group);
	CHECK_STR(s->server_name, d->server_name);
	CHECK(memcmp(&s->limits, &d->limits, sizeof s->limits) == 0);
	CHECK(memcmp(&s->accounts_default, &d->accounts_default, sizeof s->accounts_default) == 0);
	for (int i = 0; i < CFG_EP__MAX; i++) {
		CHECK_INT(s->endpoints[i].enabled, d->endpoints[i].enabled);
		CHECK_INT(s->endpoints[i].deadline_ms, d->endpoints[i].deadline_ms);
		CHECK_INT(s->endpoints[i].fallback, d->endpoints[i].fallback);
		CHECK_INT(s->rotation.endpoints[i], d->rotation.endpoints[i]);
	}
	CHECK_INT(s->rotation.enabled, d->rotation.enabled);
	CHECK_INT(s->rotation.strategy, d->rotation.strategy);
	CHECK_INT(s->rotation.breaker_threshold, d->rotation.breaker_threshold);
	CHECK_INT(s->rotation.cooldown_max_s, d->rotation.cooldown_max_s);
	for (int g = 0; g < CFG_GROUP__MAX; g++) {
		CHECK_INT(s->waterfall[g].n, 1);
		CHECK_STR(s->waterfall[g].v[0], d->waterfall[g].v[0]);
	}
	CHECK(memcmp(&s->cache, &d->cache, sizeof s->cache) == 0);
	CHECK_STR(s->alerts.webhook_url, d->alerts.webhook_url);
	CHECK_STR(s->webhooks.secret, d->webhooks.secret);
	CHECK_INT(s->webhooks.allow_private, d->webhooks.allow_private);
	CHECK_INT(s->webhooks.timeout_ms, d->webhooks.timeout_ms);
	CHECK_INT(s->webhooks.max_attempts, d->webhooks.max_attempts);
	CHECK(memcmp(&s->worker, &d->worker, sizeof s->worker) == 0);
	CHECK_INT(s->nproviders, d->nproviders);
	cfg_release(d);
	cfg_release(s);
}

TEST(provider_and_key_defaults)
{
	struct cfg *c = NULL;
	const struct cfg_provider *p;

	setenv("ENRICHD_T_KEY1", "k1", 1);
	REQUIRE(load("providers = (\n"
		     "  { name = \"s\"; kind = \"surfe\"; keys = ( { id = \"s1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); },\n"
		     "  { name = \"m\"; kind = \"mock\"; enabled = false; },\n"
		     "  { name = \"g\"; kind = \"generic\"; request = { url = \"https://g.example/{email}\"; };\n"
		     "    fields = { phone = \"p\"; }; keys = ( { id = \"g1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); }\n"
		     ");\n", &c) == ENR_OK);
	p = cfg_provider_find(c, "s");
	REQUIRE(p != NULL);
	CHECK_STR(p->base_url, "https://api.surfe.com");
	CHECK(p->enabled);
	CHECK_INT(p->timeout_ms, 1500);
	CHECK_INT(p->requests_per_minute, 0);
	CHECK_INT(p->min_likelihood, 6);
	CHECK_INT(p->credits_per_hit, 1);
	CHECK_INT(p->poll_interval_ms, 250);
	CHECK_INT(p->http2, PROV_HTTP2_AUTO);
	CHECK_STR(p->ca_file, "");
	CHECK(p->generic == NULL);
	CHECK_STR(p->keys[0].account, "s1");
	CHECK_STR(p->keys[0].category, "");
	p = cfg_provider_find(c, "m");
	REQUIRE(p != NULL);
	CHECK(!p->enabled);
	CHECK_INT(p->credits_per_hit, 0);
	CHECK_STR(p->base_url, "");
	CHECK_INT(p->nkeys, 0);
	p = cfg_provider_find(c, "g");
	REQUIRE(p != NULL && p->generic != NULL);
	CHECK_STR(p->base_url, "");
	CHECK_STR(p->generic->method, "GET");
	CHECK_STR(p->generic->auth_header, "Authorization");
	CHECK_STR(p->generic->auth_prefix, "");
	CHECK_STR(p->generic->body, "");
	CHECK_STR(p->generic->fields[FLD_PHONE], "p");
	CHECK_INT(p->generic->miss.n, 0);
	cfg_release(c);

	/* Required members name themselves. */
	CHECK(refused("providers = (\n  { kind = \"pdl\"; } );\n", 2, "providers[0]: name is required"));
	CHECK(refused("providers = ( { name = \"p\"; kind = \"pdl\";\n  keys = ( { id = \"k\"; } ); } );\n",
		      2, "providers[0].keys[0]: secret is required"));
	CHECK(refused("providers = ( { name = \"g\"; kind = \"generic\";\n  request = { method = \"POST\"; };\n"
		      "  fields = { phone = \"p\"; }; keys = ( { id = \"g1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n",
		      2, "providers[0]: request.url is required"));
	CHECK(refused("providers = ( { name = \"p\"; kind = \"mock\"; },\n { name = \"p\"; kind = \"local\"; } );\n",
		      2, "providers[1]: provider name \"p\" is used twice"));
	CHECK(refused("providers = ( 1 );\n", 1, "providers[0]: must be a group"));
	CHECK(refused("providers = ( { name = \"p\"; kind = \"mock\"; keys = ( { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; colour = \"x\"; } ); } );\n",
		      1, "providers[0].keys[0].colour: unknown setting"));
	CHECK(refused("providers = ( { name = \"p\"; kind = \"pdl\"; min_likelihood = 11;\n"
		      "  keys = ( { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n",
		      1, "providers[0].min_likelihood: 11 is outside 1..10"));
	CHECK(refused("providers = ( { name = \"g\"; kind = \"generic\"; request = { url = \"https://g/{email}\"; };\n"
		      "  fields = { phone = \"p\"; }; statuses = { miss = [ 404, 99 ]; };\n"
		      "  keys = ( { id = \"g1\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n",
		      2, "providers[0].statuses.miss[1]: 99 is outside 100..599"));
	CHECK(refused("endpoints = { enqueue = { deadline_ms = 100; }; };\n", 1,
		      "endpoints.enqueue.deadline_ms: unknown setting"));
	CHECK(refused("log_level = \"notice\";\n", 1, "log_level: \"notice\" is not one of debug|info|warn|error"));
	CHECK(refused("providers = ( { name = \"p\"; kind = \"pdl\"; http2 = \"prior\";\n"
		      "  keys = ( { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n",
		      1, "providers[0].http2: \"prior\" is not one of auto|off"));
	/* A CA file that cannot be read would fail every call's TLS check. */
	CHECK(refused("providers = ( { name = \"p\"; kind = \"pdl\";\n  ca_file = \"/nonexistent/ca.pem\";\n"
		      "  keys = ( { id = \"k\"; secret = \"env:ENRICHD_T_KEY1\"; } ); } );\n",
		      2, "providers[0]: ca_file /nonexistent/ca.pem cannot be read: No such file"));
	CHECK(refused("upstream = { max_streams_per_connection = 0; };\n", 1,
		      "upstream.max_streams_per_connection: 0 is outside 1..100000"));
}

TEST(fields_and_groups)
{
	enum fld_id f;
	enum fld_ident id;
	fld_set all = 0;

	CHECK(fld_parse("phone", &f) && f == FLD_PHONE);
	CHECK(!fld_parse("Phone", &f));
	CHECK(fld_parse_n("titlex", 5, &f) && f == FLD_TITLE);
	CHECK_INT(fld_group(FLD_PHONE), CFG_GROUP_PHONE);
	CHECK_INT(fld_group(FLD_INDUSTRY), CFG_GROUP_COMPANY);
	CHECK_INT(fld_group(FLD_BUSINESS_EMAIL), CFG_GROUP_EMAIL);
	CHECK_INT(fld_group(FLD_SENIORITY), CFG_GROUP_PERSON);
	for (int g = 0; g < CFG_GROUP__MAX; g++) {
		CHECK((all & fld_group_set((enum cfg_group)g)) == 0); /* groups are disjoint */
		all |= fld_group_set((enum cfg_group)g);
	}
	CHECK(all == FLD_ALL);
	CHECK_INT(fld_count(FLD_ALL), 19);
	CHECK(fld_ident_parse("linkedin_url", &id) && id == ID_LINKEDIN_URL);
	CHECK(!fld_ident_parse("title", &id));
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	RUN(empty_file_gives_defaults);
	RUN(shipped_file_is_valid);
	RUN(values_are_read);
	RUN(errors_name_file_line_and_setting);
	RUN(providers_keys_and_secrets);
	RUN(generic_provider);
	RUN(search_settings);
	RUN(snapshots_are_reference_counted);
	RUN(state_dir_and_listen_group);
	RUN(relative_paths_follow_the_file);
	RUN(http_only_to_loopback);
	RUN(values_rendered_into_nginx);
	RUN(every_setting_is_in_the_shipped_file);
	RUN(shipped_values_are_the_defaults);
	RUN(provider_and_key_defaults);
	RUN(fields_and_groups);
	tmpconf_remove(dir);
	return harness_done();
}
