/*
 * test_service.c - the composition root: what svc_open builds, the one
 * reload (refused when the file does not load, applied and recorded when
 * it does, new keys recorded first), svc_close on anything.  A temporary
 * SQLite store and the repository's domain lists; no sockets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/confhist.h"
#include "lib/keypool.h"
#include "lib/log.h"
#include "lib/service.h"

#include "harness.h"

static char dir[] = "/tmp/enrichd-svc-XXXXXX";
static char path[512], cwd[512];

static void write_conf(int nkeys, const char *extra)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return;
	fprintf(f, "store = \"sqlite:%s/s.db\"; state_dir = \"%s\"; data_dir = \"%s/data\";\n%s\n"
		   "providers = ( { name = \"pdl\"; kind = \"pdl\"; base_url = \"https://pdl.test\";\n"
		   "  keys = ( { id = \"pdl-1\"; secret = \"env:SVC_S1\"; }%s ); } );\n"
		   "waterfall = { person = [\"pdl\"]; };\n",
		dir, dir, cwd, extra, nkeys > 1 ? ", { id = \"pdl-2\"; secret = \"env:SVC_S2\"; }" : "");
	fclose(f);
}

static int keys_in_store(struct store *s)
{
	struct kp_key k[8];
	int n = -1;

	if (st_ukeys_of(s, "pdl", k, 8, &n) != ENR_OK)
		return -1;
	return n;
}

static struct cfg *load(void)
{
	char err[LIM_CONFIG_ERR_MAX];
	struct cfg *c = NULL;

	if (cfg_load(path, &c, err, sizeof err) != ENR_OK)
		fprintf(stderr, "  %s\n", err);
	return c;
}

/* The options the first two tests open with. */
static const struct svc_opts keys_and_admission = { .keys = true, .admission = true };

TEST(open_builds_what_the_options_ask_for)
{
	struct cfg *c;
	struct svc s;
	char why[512] = "";

	write_conf(1, "");
	REQUIRE((c = load()) != NULL);
	REQUIRE(svc_open(c, &keys_and_admission, &s, why, sizeof why) == ENR_OK);
	CHECK(s.store != NULL);
	CHECK(s.adm != NULL);
	CHECK(s.engine == NULL);
	CHECK(s.lists != NULL); /* the repository's data/, the tests' working directory */
	CHECK(s.pctx.domains == s.lists);
	CHECK_INT(keys_in_store(s.store), 1);
	svc_close(&s);
	CHECK(s.store == NULL && s.adm == NULL && s.lists == NULL);
	svc_close(&s); /* twice is harmless */
	cfg_release(c);
}

TEST(open_fails_clearly_and_leaves_nothing_open)
{
	struct cfg *c;
	struct svc s;
	char why[512] = "";

	write_conf(1, "");
	REQUIRE((c = load()) != NULL);
	free(c->store);
	c->store = strdup("sqlite:/nonexistent-dir-for-the-test/s.db");
	REQUIRE(c->store != NULL);
	CHECK(svc_open(c, &keys_and_admission, &s, why, sizeof why) != ENR_OK);
	CHECK(strncmp(why, "the store: ", 11) == 0);
	CHECK(s.store == NULL && s.adm == NULL);
	cfg_release(c);
}

TEST(reload_refuses_a_broken_file_and_applies_a_good_one)
{
	const struct svc_opts o = { .keys = true, .admission = true, .history = true };
	struct ch_entry e[8];
	struct cfg *c, *now;
	struct svc s;
	char why[512] = "", sha[CH_SHA_HEX];
	size_t n = 0;

	write_conf(1, "");
	REQUIRE((c = load()) != NULL);
	REQUIRE(svc_open(c, &o, &s, why, sizeof why) == ENR_OK);
	svc_record_applied(&s, c, path, sha);
	CHECK(strcmp(sha, "unknown") != 0);
	cfg_publish(c);

	/* A file that does not load changes nothing. */
	write_conf(1, "threads = \"many\";");
	CHECK(svc_reload(&s, path) != ENR_OK);
	now = cfg_acquire();
	CHECK(now == c);
	cfg_release(now);
	CHECK_INT(keys_in_store(s.store), 1);

	/* A good one with a second key: the key is recorded, the snapshot
	 * published, the file kept in the history. */
	write_conf(2, "");
	CHECK_INT(svc_reload(&s, path), ENR_OK);
	now = cfg_acquire();
	CHECK(now != NULL && now != c);
	CHECK(now && now->providers[0].nkeys == 2);
	cfg_release(now);
	CHECK_INT(keys_in_store(s.store), 2);
	CHECK_INT(ch_list(dir, e, 8, &n), ENR_OK);
	CHECK_INT(n, 2);
	cfg_publish(NULL);
	svc_close(&s);
}

int main(void)
{
	char cmd[300];

	if (mkdtemp(dir) == NULL || getcwd(cwd, sizeof cwd) == NULL)
		return 1;
	snprintf(path, sizeof path, "%s/enrichd.conf", dir);
	setenv("SVC_S1", "secret-one", 1);
	setenv("SVC_S2", "secret-two", 1);
	log_set_level(LOG_LVL_ERROR);
	RUN(open_builds_what_the_options_ask_for);
	RUN(open_fails_clearly_and_leaves_nothing_open);
	RUN(reload_refuses_a_broken_file_and_applies_a_good_one);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return harness_done();
}
