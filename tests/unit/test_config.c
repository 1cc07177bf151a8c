/*
 * test_config.c - loading, validation messages, secrets, snapshots, fields.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/fields.h"

#include "harness.h"

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

TEST(empty_file_gives_defaults)
{
	struct cfg *c = NULL;

	REQUIRE(load("", &c) == ENR_OK);
	CHECK_INT(c->threads, 64);
	CHECK_STR(c->listen, "var/run/enrichd.sock");
	CHECK_STR(c->store, "sqlite:var/enrichd.db");
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
	CHECK(err_is(1, "store: must be \"sqlite:PATH\""));
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

	REQUIRE(load("", &c) == ENR_OK);
	CHECK_STR(c->state_dir, "var");
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
	RUN(snapshots_are_reference_counted);
	RUN(state_dir_and_listen_group);
	RUN(fields_and_groups);
	{
		char cmd[300];

		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return harness_done();
}
