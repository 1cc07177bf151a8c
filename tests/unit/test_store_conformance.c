/*
 * test_store_conformance.c - every store operation, on whichever back end
 * the URL names: the same expectations for SQLite and PostgreSQL,
 * concurrency included (threads in two processes).
 *
 *   build/tests/test_store_conformance                 SQLite, temp files
 *   ENRICHD_TEST_PG_URL=postgresql://... build/tests/test_store_conformance
 *                                                      PostgreSQL: a fresh
 *                                                      database per test
 *
 * tests/run.sh runs it both ways (tests/pg.sh starts the server).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "lib/admission.h"
#include "lib/auth.h"
#include "lib/jobs.h"
#include "lib/keypool.h"
#include "lib/log.h"
#include "lib/rotation.h"
#include "lib/store.h"
#include "lib/store_int.h"
#include "lib/util.h"

#include "harness.h"

static const char *pg_base;          /* ENRICHD_TEST_PG_URL, or NULL: SQLite */
static char dir[] = "/tmp/enrichd-conf-XXXXXX";
static int dbn;
static char url_now[1024];           /* the URL of the last fresh() */

/* A new empty store's URL: a new SQLite file, or a new PostgreSQL
 * database created through the base URL's "postgres" database. */
static bool fresh_url(char *out, size_t outsz)
{
	if (pg_base == NULL) {
		snprintf(out, outsz, "sqlite:%s/c%d.db", dir, dbn++);
		return true;
	}
	{
		char name[64], sql[128];
		const char *p = strstr(pg_base, "/postgres?");
		PGconn *c = PQconnectdb(pg_base);
		PGresult *r;
		bool ok;

		if (p == NULL || PQstatus(c) != CONNECTION_OK) {
			fprintf(stderr, "cannot reach %s: %s\n", pg_base, PQerrorMessage(c));
			PQfinish(c);
			return false;
		}
		snprintf(name, sizeof name, "conf_%d_%d", (int)getpid(), dbn++);
		snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
		r = PQexec(c, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		snprintf(out, outsz, "%.*s/%s%s", (int)(p - pg_base), pg_base, name, p + 9);
		return ok;
	}
}

static struct store *fresh(void)
{
	struct store *s = NULL;

	if (!fresh_url(url_now, sizeof url_now))
		return NULL;
	if (st_open(url_now, NULL, &s) != ENR_OK)
		return NULL;
	return s;
}

static const struct cfg_account_limits dflt = { 60, 5, 100, 1000 };
static const int64_t T0 = 1795392000000LL; /* a UTC midnight, in ms */

/* ---- open, schema ------------------------------------------------------------ */

TEST(opens_migrates_and_names_its_back_end)
{
	struct store *s = fresh();
	int v = -1, from = -1, to = -1;

	REQUIRE(s != NULL);
	CHECK_STR(st_backend_name(s), pg_base ? "postgresql" : "sqlite");
	CHECK_INT(st_schema_version(s, &v), ENR_OK);
	CHECK_INT(v, st_schema_latest(s));
	CHECK_INT(st_migrate(s, &from, &to), ENR_OK);
	CHECK_INT(from, to);
	CHECK_INT(st_ping(s), ENR_OK);
	st_close(s);
	/* Opening again finds everything in place. */
	REQUIRE(st_open(url_now, NULL, &s) == ENR_OK);
	CHECK_INT(st_schema_version(s, &v), ENR_OK);
	CHECK_INT(v, st_schema_latest(s));
	st_close(s);
}

/* A database left at any older version (the back end's own numbering)
 * reaches the latest when a program opens it. */
TEST(migrates_from_each_older_version)
{
	struct store *s = fresh();
	int latest;

	REQUIRE(s != NULL);
	latest = st_schema_latest(s);
	st_close(s);
	for (int start = 0; start < latest; start++) {
		char url[1024];
		int from = -1, to = -1, v = -1;

		REQUIRE(fresh_url(url, sizeof url));
		REQUIRE(st_open_raw(url, NULL, &s) == ENR_OK);
		CHECK_INT(st_migrate_to(s, start, &from, &to), ENR_OK);
		CHECK_INT(to, start);
		st_close(s);
		REQUIRE(st_open(url, NULL, &s) == ENR_OK);
		CHECK_INT(st_schema_version(s, &v), ENR_OK);
		CHECK_INT(v, latest);
		CHECK_INT(st_ping(s), ENR_OK);
		st_close(s);
	}
}

TEST(urls_that_no_back_end_takes)
{
	struct store *s = NULL;

	CHECK_INT(st_open("mysql://x", NULL, &s), ENR_E_INVALID);
	CHECK_INT(st_open("sqlite:", NULL, &s), ENR_E_INVALID);
	CHECK_INT(st_open("postgresql://u:secret@/db?host=/nonexistent", NULL, &s), ENR_E_INVALID);
	CHECK_INT(st_open("postgres:///db?host=/x&password=secret", NULL, &s), ENR_E_INVALID);
	CHECK(st_url_ok("postgresql://enrichd@db.example:5432/enrichd"));
	CHECK(st_url_ok("postgres:///enrichd?host=/run/postgresql"));
	CHECK(!st_url_ok("postgresql://enrichd:pw@db.example/enrichd"));
	/* Unreachable is unavailable (a unix socket directory that is not there). */
	CHECK_INT(st_open("postgresql:///x?host=/nonexistent-dir&connect_timeout=1", NULL, &s),
		  ENR_E_UNAVAILABLE);
}

/* ---- accounts and client keys ---------------------------------------------------- */

static int count_accounts(void *arg, const struct st_account *a)
{
	(void)a;
	(*(int *)arg)++;
	return 0;
}

TEST(accounts)
{
	struct store *s = fresh();
	struct st_account a, b;
	struct cfg_account_limits eff;
	int64_t id = 0, id2 = 0;
	int n = 0;

	REQUIRE(s != NULL);
	CHECK_INT(st_account_create(s, "acme", 1000, &id), ENR_OK);
	CHECK_INT(st_account_create(s, "acme", 1000, &id2), ENR_E_CONFLICT);
	CHECK_INT(st_account_create(s, "beta", 1000, &id2), ENR_OK);
	CHECK(id2 != id);
	CHECK_INT(st_account_by_name(s, "acme", &a), ENR_OK);
	CHECK_INT(a.id, id);
	CHECK_INT(a.burst, ST_LIMIT_DEFAULT);
	CHECK_INT(a.created_at, 1000);
	CHECK_INT(st_account_by_name(s, "nope", &b), ENR_E_NOT_FOUND);
	CHECK_INT(st_account_by_id(s, 424242, &b), ENR_E_NOT_FOUND);
	st_account_limits(&a, &dflt, &eff);
	CHECK_INT(eff.burst, 5);
	a.burst = 50;
	a.records_per_day = 0;
	CHECK_INT(st_account_set_limits(s, id, &a), ENR_OK);
	CHECK_INT(st_account_by_id(s, id, &b), ENR_OK);
	CHECK_STR(b.name, "acme");
	st_account_limits(&b, &dflt, &eff);
	CHECK_INT(eff.burst, 50);
	CHECK_INT(eff.records_per_day, 0);
	CHECK_INT(eff.requests_per_minute, 60);
	CHECK_INT(st_account_set_limits(s, 999, &a), ENR_E_NOT_FOUND);
	CHECK_INT(st_account_each(s, count_accounts, &n), ENR_OK);
	CHECK_INT(n, 2);
	st_close(s);
}

static int count_keys(void *arg, const struct st_client_key *k)
{
	(void)k;
	(*(int *)arg)++;
	return 0;
}

TEST(client_keys_and_revocation)
{
	struct store *s = fresh();
	char key[AUTH_KEY_LEN + 1];
	unsigned char h[AUTH_HASH_LEN], other[AUTH_HASH_LEN];
	struct st_client_key k;
	int64_t acc, acc2, kid, kid2;
	int n = 0;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1000, &acc) == ENR_OK);
	REQUIRE(st_account_create(s, "beta", 1000, &acc2) == ENR_OK);
	REQUIRE(auth_key_generate(key) == ENR_OK);
	auth_key_hash(key, AUTH_KEY_LEN, h);
	CHECK_INT(st_client_key_insert(s, acc, "ci", h, key + 40, AUTH_SCOPE_ENRICH, 5000, 1000, &kid),
		  ENR_OK);
	/* The same key twice is a constraint. */
	CHECK_INT(st_client_key_insert(s, acc, "dup", h, key + 40, AUTH_SCOPE_ENRICH, 0, 1000, &kid2),
		  ENR_E_CONFLICT);
	CHECK_INT(st_client_key_by_hash(s, h, &k), ENR_OK);
	CHECK_INT(k.id, kid);
	CHECK_STR(k.account, "acme");
	CHECK_STR(k.name, "ci");
	CHECK_STR(k.last4, key + 40);
	CHECK_INT(k.scopes, AUTH_SCOPE_ENRICH);
	CHECK_INT(k.expires_at, 5000);
	CHECK_INT(k.revoked_at, 0);
	CHECK_INT(k.account_row.id, acc);
	CHECK_INT(k.account_row.burst, ST_LIMIT_DEFAULT);
	memcpy(other, h, sizeof other);
	other[0] ^= 1;
	CHECK_INT(st_client_key_by_hash(s, other, &k), ENR_E_NOT_FOUND);
	CHECK_INT(st_client_key_insert(s, acc2, NULL, other, "abcd", AUTH_SCOPE_ALL, 0, 1000, &kid2),
		  ENR_OK);
	CHECK_INT(st_client_key_revoke(s, kid, 2000), ENR_OK);
	CHECK_INT(st_client_key_revoke(s, kid, 2001), ENR_E_NOT_FOUND);
	CHECK_INT(st_client_key_revoke(s, 987654, 2001), ENR_E_NOT_FOUND);
	CHECK_INT(st_client_key_by_hash(s, h, &k), ENR_OK);
	CHECK_INT(k.revoked_at, 2000);
	CHECK_INT(st_client_key_each(s, acc, count_keys, &n), ENR_OK);
	CHECK_INT(n, 1);
	n = 0;
	CHECK_INT(st_client_key_each(s, -1, count_keys, &n), ENR_OK);
	CHECK_INT(n, 2);
	st_close(s);
}

TEST(revocation_reaches_another_process_within_a_second)
{
	struct store *a = fresh(), *b = NULL;
	unsigned char h[AUTH_HASH_LEN] = { 1, 2, 3 };
	int64_t acc, kid;
	uint64_t g0, g1 = 0;
	int64_t start;

	REQUIRE(a != NULL);
	/* b stands for another host: its own handle, pool and cache. */
	REQUIRE(st_open(url_now, NULL, &b) == ENR_OK);
	REQUIRE(st_account_create(a, "acme", 1000, &acc) == ENR_OK);
	REQUIRE(st_client_key_insert(a, acc, "k", h, "wxyz", AUTH_SCOPE_ALL, 0, 1000, &kid) == ENR_OK);
	g0 = st_auth_generation(b);
	CHECK(g0 != 0);
	/* The writer sees its own change at once. */
	{
		uint64_t before = st_auth_generation(a);

		REQUIRE(st_client_key_revoke(a, kid, 2000) == ENR_OK);
		CHECK(st_auth_generation(a) != before);
	}
	start = util_mono_ms();
	while (util_mono_ms() - start < 1000) {
		g1 = st_auth_generation(b);
		if (g1 != g0)
			break;
		usleep(10 * 1000);
	}
	CHECK(g1 != g0);
	CHECK(util_mono_ms() - start < 1000);
	st_close(b);
	st_close(a);
}

/* ---- admission and usage ----------------------------------------------------------- */

struct usage_sum {
	int64_t requests, records, credits, rejections;
	int rows;
};

static int sum_usage(void *arg, const struct st_usage *u)
{
	struct usage_sum *x = arg;

	x->requests += u->requests;
	x->records += u->records;
	x->credits += u->credits;
	x->rejections += u->rejections;
	x->rows++;
	return 0;
}

TEST(admission_bucket_quota_usage_and_refund)
{
	struct store *s = fresh();
	struct adm *a = NULL;
	struct adm_res r;
	struct usage_sum u = { 0, 0, 0, 0, 0 };
	int64_t acc;
	int allowed = 0;
	char day[11];

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1000, &acc) == ENR_OK);
	a = adm_new(s, false, NULL);
	REQUIRE(a != NULL);
	for (int i = 0; i < 8; i++) {
		REQUIRE(adm_check(a, acc, &dflt, 1, 1, T0, &r) == ENR_OK);
		allowed += r.verdict == ADM_OK;
	}
	CHECK_INT(allowed, 5);
	CHECK_INT(r.verdict, ADM_RATE_LIMITED);
	CHECK_INT(r.retry_after_s, 1);
	CHECK_INT(r.bucket_remaining, 0);
	CHECK_INT(r.hour_remaining, 95);
	/* 96 records do not fit the hour (95 left): nothing is counted, and
	 * the answer says how many would. */
	REQUIRE(adm_check(a, acc, &dflt, 0, 96, T0 + 60000, &r) == ENR_OK);
	CHECK_INT(r.verdict, ADM_QUOTA);
	CHECK_INT(r.records_fit, 95);
	CHECK_INT(r.retry_after_s, 3600 - 60);
	REQUIRE(adm_check(a, acc, &dflt, 0, 95, T0 + 60000, &r) == ENR_OK);
	CHECK_INT(r.verdict, ADM_OK);
	CHECK_INT(r.hour_remaining, 0);
	CHECK_INT(r.day_remaining, 900);
	/* A batch that could not be stored gives its records back. */
	CHECK_INT(adm_refund(a, acc, &dflt, 45, T0 + 61000), ENR_OK);
	REQUIRE(adm_check(a, acc, &dflt, 0, 45, T0 + 62000, &r) == ENR_OK);
	CHECK_INT(r.verdict, ADM_OK);
	CHECK_INT(r.hour_remaining, 0);
	/* The next hour has room again. */
	REQUIRE(adm_check(a, acc, &dflt, 1, 1, T0 + 3600000, &r) == ENR_OK);
	CHECK_INT(r.verdict, ADM_OK);
	CHECK_INT(r.hour_remaining, 99);
	CHECK_INT(adm_add_credits(a, acc, 7, T0), ENR_OK);
	st_day(T0 / 1000, day);
	CHECK_STR(day, "2026-11-23");
	CHECK_INT(st_usage_each(s, acc, day, sum_usage, &u), ENR_OK);
	CHECK_INT(u.rows, 1);
	CHECK_INT(u.requests, 6);                 /* 5 + the next hour's */
	CHECK_INT(u.records, 5 + 95 + 1);         /* 45 given back, 45 taken again */
	CHECK_INT(u.rejections, 3 + 1);
	CHECK_INT(u.credits, 7);
	adm_free(a);
	st_close(s);
}

TEST(usage_add_and_listing_per_day)
{
	struct store *s = fresh();
	struct usage_sum u = { 0, 0, 0, 0, 0 };
	struct st_usage_delta d = { 2, 3, 4, 1 };
	int64_t acc, acc2;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1000, &acc) == ENR_OK);
	REQUIRE(st_account_create(s, "beta", 1000, &acc2) == ENR_OK);
	CHECK_INT(st_usage_add(s, acc, T0 / 1000, &d), ENR_OK);
	CHECK_INT(st_usage_add(s, acc, T0 / 1000 + 10, &d), ENR_OK);
	CHECK_INT(st_usage_add(s, acc, T0 / 1000 - 10, &d), ENR_OK); /* the day before */
	CHECK_INT(st_usage_add(s, acc2, T0 / 1000, &d), ENR_OK);
	CHECK_INT(st_usage_each(s, acc, "2026-11-23", sum_usage, &u), ENR_OK);
	CHECK_INT(u.rows, 1);
	CHECK_INT(u.requests, 4);
	CHECK_INT(u.records, 6);
	CHECK_INT(u.credits, 8);
	CHECK_INT(u.rejections, 2);
	memset(&u, 0, sizeof u);
	CHECK_INT(st_usage_each(s, -1, "2026-11-22", sum_usage, &u), ENR_OK);
	CHECK_INT(u.rows, 3);
	CHECK_INT(u.requests, 8);
	st_close(s);
}

TEST(journal_flush_is_exactly_once)
{
	struct store *s = fresh();
	struct st_journal_line l[2];
	struct usage_sum u = { 0, 0, 0, 0, 0 };
	int64_t acc;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1000, &acc) == ENR_OK);
	memset(l, 0, sizeof l);
	l[0].account_id = acc;
	snprintf(l[0].day, sizeof l[0].day, "2026-11-23");
	l[0].total = (struct st_usage_delta){ 10, 20, 3, 1 };
	l[1].account_id = acc;
	snprintf(l[1].day, sizeof l[1].day, "2026-11-22");
	l[1].total = (struct st_usage_delta){ 1, 1, 0, 0 };
	CHECK_INT(st_usage_journal_flush(s, "j1", l, 2), ENR_OK);
	/* The same totals again (a flush repeated after a crash): nothing more. */
	CHECK_INT(st_usage_journal_flush(s, "j1", l, 2), ENR_OK);
	/* Totals grow: only the growth is added. */
	l[0].total.requests = 15;
	CHECK_INT(st_usage_journal_flush(s, "j1", l, 1), ENR_OK);
	/* Another journal counts on its own. */
	l[0].total = (struct st_usage_delta){ 5, 0, 0, 0 };
	CHECK_INT(st_usage_journal_flush(s, "j2", l, 1), ENR_OK);
	CHECK_INT(st_usage_each(s, acc, "2026-11-01", sum_usage, &u), ENR_OK);
	CHECK_INT(u.requests, 15 + 1 + 5);
	CHECK_INT(u.records, 21);
	CHECK_INT(u.credits, 3);
	CHECK_INT(u.rejections, 1);
	CHECK_INT(st_usage_journal_forget(s, "j1"), ENR_OK);
	CHECK_INT(st_usage_journal_forget(s, "j1"), ENR_OK);
	st_close(s);
}

/* A start line for the two processes of a race: each side calls
 * race_start() once its store is open, and neither goes on before both
 * are there.  (Outside a race, or with a single process, it returns at
 * once.) */
static int race_tell = -1, race_hear = -1;

static void race_start(void)
{
	char c = 'r';

	if (race_tell >= 0 && write(race_tell, &c, 1) != 1)
		return;
	if (race_hear >= 0 && read(race_hear, &c, 1) != 1)
		return;
}

struct race {
	const char *url;
	struct store *s;
	int64_t acc;
	int allowed;
	int errors;
};

static void *admit_racer(void *arg)
{
	struct race *x = arg;
	struct adm *a = adm_new(x->s, false, NULL);
	struct cfg_account_limits l = { 1, 40, 1000000, 1000000 };

	for (int i = 0; a && i < 50; i++) {
		struct adm_res r;

		if (adm_check(a, x->acc, &l, 1, 1, T0, &r) != ENR_OK)
			x->errors++;
		else if (r.verdict == ADM_OK)
			x->allowed++;
	}
	adm_free(a);
	st_thread_release(x->s);
	return NULL;
}

/* Four threads in this process: returns how many they admitted (-1 on an
 * error). */
static int admit_four(const char *url, int64_t acc)
{
	struct store *s = NULL;
	struct race rs[4];
	pthread_t t[4];
	int total = 0, errors = 0;

	if (st_open(url, NULL, &s) != ENR_OK)
		return -1;
	race_start();
	for (int i = 0; i < 4; i++) {
		rs[i] = (struct race){ url, s, acc, 0, 0 };
		pthread_create(&t[i], NULL, admit_racer, &rs[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += rs[i].allowed;
		errors += rs[i].errors;
	}
	st_close(s);
	return errors ? -1 : total;
}

/* Run fn in a child process; its result comes back through a pipe. */
static pid_t child(int (*fn)(const char *url, int64_t arg), int64_t arg, int *rfd)
{
	int p[2], up[2], down[2];
	pid_t pid;

	if (pipe(p) != 0 || pipe(up) != 0 || pipe(down) != 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		char buf[32];
		int v;

		close(p[0]);
		close(up[0]);
		close(down[1]);
		race_tell = up[1];
		race_hear = down[0];
		v = fn(url_now, arg);
		snprintf(buf, sizeof buf, "%d\n", v);
		if (write(p[1], buf, strlen(buf)) < 0)
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	close(up[1]);
	close(down[0]);
	race_tell = down[1];
	race_hear = up[0];
	*rfd = p[0];
	return pid;
}

static int child_result(pid_t pid, int fd)
{
	char buf[32] = "";
	ssize_t n = read(fd, buf, sizeof buf - 1);
	int64_t v = -1;
	int status = 0;

	close(fd);
	close(race_tell);
	close(race_hear);
	race_tell = race_hear = -1;
	waitpid(pid, &status, 0);
	if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (util_parse_i64(buf, -1, 1000000000, &v) != ENR_OK)
		return -1;
	return (int)v;
}

TEST(admissions_from_8_threads_in_2_processes_admit_exactly_the_burst)
{
	struct store *s = fresh();
	int64_t acc;
	int fd = -1, here, there;
	pid_t pid;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1000, &acc) == ENR_OK);
	st_close(s);
	pid = child(admit_four, acc, &fd);
	REQUIRE(pid > 0);
	here = admit_four(url_now, acc);
	there = child_result(pid, fd);
	CHECK(here >= 0);
	CHECK(there >= 0);
	/* 400 attempts at one instant (no refill), burst 40. */
	CHECK_INT(here + there, 40);
}

TEST(leases_never_admit_more_than_the_bucket)
{
	struct store *s = fresh();
	struct adm *a, *b;
	struct cfg_account_limits l = { 60000, 300, 1000000, 10000000 };
	struct adm_res r;
	struct usage_sum u = { 0, 0, 0, 0, 0 };
	int64_t acc;
	int ok = 0;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	a = adm_new(s, true, dir);
	b = adm_new(s, true, dir);   /* a second process sharing the store */
	REQUIRE(a && b);
	/* One instant: nothing refills, so the total is the burst or less. */
	for (int i = 0; i < 1000; i++) {
		REQUIRE(adm_check(i % 2 ? a : b, acc, &l, 1, 1, 5000000, &r) == ENR_OK);
		ok += r.verdict == ADM_OK;
	}
	CHECK(ok <= 300);
	CHECK(ok >= 300 - 2 * 30);    /* at most one unused lease per process */
	CHECK_INT(adm_flush(a, 5000000), ENR_OK);
	CHECK_INT(adm_flush(b, 5000000), ENR_OK);
	CHECK_INT(st_usage_each(s, acc, "1970-01-01", sum_usage, &u), ENR_OK);
	CHECK_INT(u.requests, ok);
	CHECK_INT(u.records, ok);
	CHECK_INT(u.rejections, 1000 - ok);
	adm_free(a);
	adm_free(b);
	st_close(s);
}

/* ---- the key pool and pacing ---------------------------------------------------------- */

static const struct st_ukey_cfg pool[] = {
	{ "pdl-1", "pdl", "acme", "AAAA", 0 },
	{ "pdl-2", "pdl", "acme", "BBBB", 1 },
	{ "pdl-3", "pdl", "other", "CCCC", 2 },
	{ "lusha-1", "lusha", "x", "DDDD", 0 },
};

static int count_ukeys(void *arg, const struct kp_key *k)
{
	(void)k;
	(*(int *)arg)++;
	return 0;
}

TEST(key_pool_sync_get_put_and_cool)
{
	struct store *s = fresh();
	struct kp_key keys[8], k, before, after;
	struct st_ukey_cfg again[3];
	int n = 0, moved = -1;
	bool stored = false;

	REQUIRE(s != NULL);
	CHECK_INT(st_ukey_sync(s, pool, 4), ENR_OK);
	CHECK_INT(st_ukeys_of(s, "pdl", keys, 8, &n), ENR_OK);
	CHECK_INT(n, 3);
	CHECK_STR(keys[0].id, "pdl-1");
	CHECK_STR(keys[2].account, "other");
	CHECK_STR(keys[1].last4, "BBBB");
	CHECK_INT(keys[0].state, KP_ACTIVE);
	CHECK_INT(st_ukey_get(s, "nope", &k), ENR_E_NOT_FOUND);
	REQUIRE(st_ukey_get(s, "pdl-1", &before) == ENR_OK);

	/* Compare-and-set: a put from a stale read stores nothing. */
	after = before;
	after.state = KP_EXHAUSTED;
	after.until_ms = 5000;
	after.calls = before.calls + 1;
	after.errors = before.errors + 1;
	CHECK_INT(st_ukey_put(s, &before, &after, &stored), ENR_OK);
	CHECK(stored);
	CHECK_INT(st_ukey_put(s, &before, &after, &stored), ENR_OK);
	CHECK(!stored);
	REQUIRE(st_ukey_get(s, "pdl-1", &k) == ENR_OK);
	CHECK_INT(k.state, KP_EXHAUSTED);
	CHECK_INT(k.until_ms, 5000);
	CHECK_INT(k.calls, 1);
	CHECK_INT(k.version, before.version + 1);

	/* Counters gathered elsewhere add up, and do not move the version. */
	CHECK_INT(st_ukey_add_counts(s, "pdl-1", 10, 6, 4, 3, 7000), ENR_OK);
	CHECK_INT(st_ukey_add_counts(s, "pdl-1", 1, 1, 0, 0, 6000), ENR_OK);
	REQUIRE(st_ukey_get(s, "pdl-1", &after) == ENR_OK);
	CHECK_INT(after.calls, 12);
	CHECK_INT(after.hits, 7);
	CHECK_INT(after.misses, 4);
	CHECK_INT(after.credits, 3);
	CHECK_INT(after.last_used_ms, 7000);
	CHECK_INT(after.version, k.version);

	/* Cooling an upstream account: the other keys of "acme" only, and an
	 * exhausted key whose deadline passed counts as active. */
	CHECK_INT(st_ukey_cool_account(s, "pdl", "acme", "pdl-2", 9000, 6000, &moved), ENR_OK);
	CHECK_INT(moved, 1);
	REQUIRE(st_ukey_get(s, "pdl-1", &k) == ENR_OK);
	CHECK_INT(k.state, KP_COOLING);
	CHECK_INT(k.until_ms, 9000);
	/* Never earlier. */
	CHECK_INT(st_ukey_cool_account(s, "pdl", "acme", "pdl-2", 8000, 6000, &moved), ENR_OK);
	CHECK_INT(moved, 0);
	REQUIRE(st_ukey_get(s, "pdl-3", &k) == ENR_OK);
	CHECK_INT(k.state, KP_ACTIVE);

	/* Sync again: a key dropped from the configuration hides, state
	 * survives, "" keeps the last four characters. */
	again[0] = pool[0];
	again[1] = pool[3];
	again[2] = pool[2];
	again[0].last4[0] = '\0';
	again[2].ord = 1;
	CHECK_INT(st_ukey_sync(s, again, 3), ENR_OK);
	n = 0;
	CHECK_INT(st_ukey_each(s, count_ukeys, &n), ENR_OK);
	CHECK_INT(n, 3);
	CHECK_INT(st_ukey_get(s, "pdl-2", &k), ENR_E_NOT_FOUND);
	REQUIRE(st_ukey_get(s, "pdl-1", &k) == ENR_OK);
	CHECK_STR(k.last4, "AAAA");
	CHECK_INT(k.state, KP_COOLING);
	CHECK_INT(k.calls, 12);
	REQUIRE(st_ukeys_of(s, "pdl", keys, 8, &n) == ENR_OK);
	CHECK_INT(n, 2);
	CHECK_STR(keys[1].id, "pdl-3");
	st_close(s);
}

/* The array grows as rows come (from room for four), up to max. */
TEST(key_pool_loads_into_an_array_of_its_size)
{
	struct store *s = fresh();
	struct st_ukey_cfg many[10];
	struct kp_key *keys = (struct kp_key *)&keys;
	int n = -1;

	REQUIRE(s != NULL);
	for (int i = 0; i < 10; i++) {
		memset(&many[i], 0, sizeof many[i]);
		snprintf(many[i].id, sizeof many[i].id, "pdl-%d", i + 1);
		snprintf(many[i].provider, sizeof many[i].provider, "%s", "pdl");
		snprintf(many[i].account, sizeof many[i].account, "%s", "acme");
		snprintf(many[i].last4, sizeof many[i].last4, "%04d", i);
		many[i].ord = 9 - i;
	}
	CHECK_INT(st_ukey_sync(s, many, 10), ENR_OK);
	REQUIRE(st_ukeys_load(s, "pdl", 64, &keys, &n) == ENR_OK);
	CHECK_INT(n, 10);
	/* In configuration order. */
	CHECK_STR(keys[0].id, "pdl-10");
	CHECK_STR(keys[9].id, "pdl-1");
	CHECK_STR(keys[4].last4, "0005");
	free(keys);
	REQUIRE(st_ukeys_load(s, "pdl", 5, &keys, &n) == ENR_OK);
	CHECK_INT(n, 5);
	CHECK_STR(keys[4].id, "pdl-6");
	free(keys);
	REQUIRE(st_ukeys_load(s, "pdl", 3, &keys, &n) == ENR_OK);
	CHECK_INT(n, 3);
	free(keys);
	/* None: no array. */
	REQUIRE(st_ukeys_load(s, "lusha", 64, &keys, &n) == ENR_OK);
	CHECK_INT(n, 0);
	CHECK(keys == NULL);
	st_close(s);
}

TEST(revive_and_apply_through_rotation)
{
	struct store *s = fresh();
	struct kp_params p = { 3, 60000 };
	struct kp_key k;
	struct kp_change ch;

	REQUIRE(s != NULL);
	REQUIRE(st_ukey_sync(s, pool, 4) == ENR_OK);
	CHECK_INT(rot_apply(s, "pdl-1", PROV_KEY_INVALID, 0, 0, 1000, &p, &k, &ch), ENR_OK);
	CHECK_INT(k.state, KP_INVALID);
	CHECK_INT(ch.from, KP_ACTIVE);
	CHECK_INT(ch.to, KP_INVALID);
	CHECK_INT(rot_apply(s, "pdl-2", PROV_RATE_LIMITED, 30000, 0, 1000, &p, &k, &ch), ENR_OK);
	CHECK_INT(k.state, KP_COOLING);
	CHECK_INT(k.until_ms, 30000);
	/* The invalid key of the same account stays invalid. */
	REQUIRE(st_ukey_get(s, "pdl-1", &k) == ENR_OK);
	CHECK_INT(k.state, KP_INVALID);
	CHECK_INT(rot_revive(s, "pdl-1", &k), ENR_OK);
	CHECK_INT(k.state, KP_ACTIVE);
	REQUIRE(st_ukey_get(s, "pdl-1", &k) == ENR_OK);
	CHECK_INT(k.state, KP_ACTIVE);
	CHECK_INT(k.calls, 1);
	CHECK_INT(rot_revive(s, "nope", &k), ENR_E_NOT_FOUND);
	CHECK_INT(rot_apply(s, "nope", PROV_HIT, 0, 0, 1000, &p, &k, &ch), ENR_E_NOT_FOUND);
	st_close(s);
}

#define APPLY_THREADS 8
#define APPLY_EACH 25

struct applier {
	struct store *s;
	int failed;
};

static void *apply_racer(void *arg)
{
	struct applier *x = arg;
	struct kp_params p = { 1000000, 60000 };

	for (int i = 0; i < APPLY_EACH; i++) {
		/* A transient below the breaker threshold changes counters and
		 * the transient count: a lost update would show in both. */
		if (rot_apply(x->s, "pdl-1", PROV_TRANSIENT, 0, 1, 1000 + i, &p, NULL, NULL) != ENR_OK)
			x->failed++;
	}
	st_thread_release(x->s);
	return NULL;
}

static int apply_eight(const char *url, int64_t unused)
{
	struct store *s = NULL;
	struct applier a[APPLY_THREADS];
	pthread_t t[APPLY_THREADS];
	int failed = 0;

	(void)unused;
	if (st_open(url, NULL, &s) != ENR_OK)
		return -1;
	race_start();
	for (int i = 0; i < APPLY_THREADS; i++) {
		a[i] = (struct applier){ s, 0 };
		pthread_create(&t[i], NULL, apply_racer, &a[i]);
	}
	for (int i = 0; i < APPLY_THREADS; i++) {
		pthread_join(t[i], NULL);
		failed += a[i].failed;
	}
	st_close(s);
	return failed;
}

TEST(concurrent_key_applies_never_lose_a_transition)
{
	struct store *s = fresh();
	struct kp_key k;
	int fd = -1, here, there;
	pid_t pid;

	REQUIRE(s != NULL);
	REQUIRE(st_ukey_sync(s, pool, 4) == ENR_OK);
	pid = child(apply_eight, 0, &fd);
	REQUIRE(pid > 0);
	here = apply_eight(url_now, 0);
	there = child_result(pid, fd);
	CHECK_INT(here, 0);
	CHECK_INT(there, 0);
	REQUIRE(st_ukey_get(s, "pdl-1", &k) == ENR_OK);
	CHECK_INT(k.calls, 2 * APPLY_THREADS * APPLY_EACH);
	CHECK_INT(k.errors, 2 * APPLY_THREADS * APPLY_EACH);
	CHECK_INT(k.transients, 2 * APPLY_THREADS * APPLY_EACH);
	CHECK_INT(k.credits, 2 * APPLY_THREADS * APPLY_EACH);
	CHECK_INT(k.version, 2 * APPLY_THREADS * APPLY_EACH);
	st_close(s);
}

TEST(pacing_slots_are_shared)
{
	struct store *s = fresh(), *t = NULL;
	int64_t a = 0, b = 0, c = 0, d = 0;

	REQUIRE(s != NULL);
	REQUIRE(st_open(url_now, NULL, &t) == ENR_OK);
	CHECK_INT(st_pace_reserve(s, "key:pdl-1", 1000, 10000, &a), ENR_OK);
	CHECK_INT(st_pace_reserve(t, "key:pdl-1", 1000, 10000, &b), ENR_OK);
	CHECK_INT(st_pace_reserve(s, "key:pdl-1", 1000, 10500, &c), ENR_OK);
	CHECK_INT(st_pace_reserve(s, "key:pdl-2", 1000, 10000, &d), ENR_OK);
	CHECK_INT(a, 10000);
	CHECK_INT(b, 11000);
	CHECK_INT(c, 12000);
	CHECK_INT(d, 10000);
	/* A slot long past starts from now. */
	CHECK_INT(st_pace_reserve(t, "key:pdl-1", 1000, 50000, &a), ENR_OK);
	CHECK_INT(a, 50000);
	st_close(t);
	st_close(s);
}

/* ---- cache ------------------------------------------------------------------------------- */

TEST(cache_get_put_expire_and_purge)
{
	struct store *s = fresh();
	unsigned char k1[32], k2[32];
	char *body = NULL;
	bool hit = false;
	int64_t exp = 0;
	int removed = -1;

	REQUIRE(s != NULL);
	memset(k1, 0xab, sizeof k1);
	memset(k2, 0x00, sizeof k2);     /* a NUL byte in a key is a byte like any */
	k2[31] = 1;
	CHECK_INT(st_cache_get(s, k1, 1000, &hit, &body, &exp), ENR_E_NOT_FOUND);
	CHECK_INT(st_cache_put(s, k1, "pdl", true, "{\"a\":1}", 5000), ENR_OK);
	CHECK_INT(st_cache_put(s, k2, "pdl", false, "", 2000), ENR_OK);
	CHECK_INT(st_cache_get(s, k1, 1000, &hit, &body, &exp), ENR_OK);
	CHECK(hit);
	CHECK_STR(body, "{\"a\":1}");
	CHECK_INT(exp, 5000);
	free(body);
	body = NULL;
	/* Overwrite: the last writer wins. */
	CHECK_INT(st_cache_put(s, k1, "lusha", false, "{}", 6000), ENR_OK);
	CHECK_INT(st_cache_get(s, k1, 1000, &hit, &body, &exp), ENR_OK);
	CHECK(!hit);
	CHECK_STR(body, "{}");
	free(body);
	body = NULL;
	CHECK_INT(st_cache_get(s, k2, 1999, &hit, &body, &exp), ENR_OK);
	free(body);
	body = NULL;
	CHECK_INT(st_cache_get(s, k2, 2000, &hit, &body, &exp), ENR_E_NOT_FOUND);
	CHECK_INT(st_cache_purge(s, 3000, 100, &removed), ENR_OK);
	CHECK_INT(removed, 1);
	CHECK_INT(st_cache_purge(s, 3000, 100, &removed), ENR_OK);
	CHECK_INT(removed, 0);
	CHECK_INT(st_cache_get(s, k1, 3000, &hit, &body, &exp), ENR_OK);
	free(body);
	st_close(s);
}

/* ---- jobs ---------------------------------------------------------------------------------- */

static enum enr_err make_job(struct store *s, int64_t acc, const char *idem, size_t n,
			     size_t invalid_every, struct st_job *j, bool *created, char *existing)
{
	struct st_job_row *rows = calloc(n ? n : 1, sizeof *rows);
	enum enr_err rc;

	if (rows == NULL)
		return ENR_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		rows[i].input = "{\"email\":\"a@b.example\"}";
		rows[i].invalid = invalid_every && i % invalid_every == invalid_every - 1;
		rows[i].error = rows[i].invalid ? "email: not an address" : NULL;
	}
	memset(j, 0, sizeof *j);
	j->account_id = acc;
	j->want = 3;
	j->format = 0;
	rc = job_new_id(j->id);
	if (rc == ENR_OK)
		rc = st_job_create(s, j, idem, rows, n, T0, created, existing);
	free(rows);
	return rc;
}

static int count_rows(void *arg, const struct st_job_row_out *r)
{
	int *n = arg;

	/* Input order. */
	if (r->rownum != n[0] + 1 + n[1])
		n[2]++;
	n[0]++;
	return 0;
}

TEST(job_create_is_idempotent)
{
	struct store *s = fresh();
	struct st_job j, j2, got;
	char existing[ST_JOB_ID_LEN + 1] = "", found[ST_JOB_ID_LEN + 1] = "";
	bool created = false;
	int64_t acc, acc2;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	REQUIRE(st_account_create(s, "beta", 1, &acc2) == ENR_OK);
	CHECK_INT(make_job(s, acc, "idem-1", 10, 5, &j, &created, existing), ENR_OK);
	CHECK(created);
	CHECK_INT(j.total, 10);
	CHECK_INT(j.rejected, 2);
	CHECK_INT(j.pending, 8);
	CHECK_INT(j.status, ST_JOB_QUEUED);
	/* The same key again: nothing is written, the first job answers. */
	CHECK_INT(make_job(s, acc, "idem-1", 3, 0, &j2, &created, existing), ENR_OK);
	CHECK(!created);
	CHECK_STR(existing, j.id);
	CHECK_INT(st_job_find_idempotent(s, acc, "idem-1", found), ENR_OK);
	CHECK_STR(found, j.id);
	CHECK_INT(st_job_find_idempotent(s, acc, "idem-2", found), ENR_E_NOT_FOUND);
	/* Keys are per account; no key means a new job each time. */
	CHECK_INT(make_job(s, acc2, "idem-1", 3, 0, &j2, &created, existing), ENR_OK);
	CHECK(created);
	CHECK_INT(make_job(s, acc, NULL, 3, 0, &j2, &created, existing), ENR_OK);
	CHECK(created);
	CHECK_INT(make_job(s, acc, NULL, 3, 0, &j2, &created, existing), ENR_OK);
	CHECK(created);
	/* An id that is taken is a constraint, not an idempotent replay. */
	{
		struct st_job_row row = { "{}", false, NULL };
		struct st_job dup = j2;

		dup.seq = 0;
		CHECK_INT(st_job_create(s, &dup, NULL, &row, 1, T0, &created, existing),
			  ENR_E_CONFLICT);
	}
	REQUIRE(st_job_get(s, j.id, acc, &got) == ENR_OK);
	CHECK_INT(got.total, 10);
	CHECK_INT(got.pending, 8);
	CHECK_STR(got.columns, "[]");
	st_job_release(&got);
	CHECK_INT(st_job_get(s, j.id, acc2, &got), ENR_E_NOT_FOUND);
	CHECK_INT(st_job_get(s, "job_000000000000000000000000", -1, &got), ENR_E_NOT_FOUND);
	REQUIRE(st_job_by_seq(s, j.seq, &got) == ENR_OK);
	CHECK_STR(got.id, j.id);
	st_job_release(&got);
	/* A job of refused rows only is over at once. */
	CHECK_INT(make_job(s, acc, NULL, 2, 1, &j2, &created, existing), ENR_OK);
	CHECK_INT(j2.status, ST_JOB_COMPLETED);
	REQUIRE(st_job_by_seq(s, j2.seq, &got) == ENR_OK);
	CHECK_INT(got.status, ST_JOB_COMPLETED);
	st_job_release(&got);
	st_close(s);
}

static int count_errors(void *arg, const char *code, int64_t n)
{
	if (strcmp(code, "invalid_request") == 0)
		*(int64_t *)arg += n;
	return 0;
}

TEST(job_rows_claim_lease_finish_requeue)
{
	struct store *s = fresh();
	struct st_job j, got;
	struct st_claim cl[16], cl2[16];
	char existing[ST_JOB_ID_LEN + 1];
	bool created, ended = true;
	int64_t acc, errs = 0, since = -1;
	int n = 0, m = 0, beat = -1, back = -1, order[3] = { 0, 0, 0 };

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	REQUIRE(make_job(s, acc, NULL, 6, 6, &j, &created, existing) == ENR_OK);
	/* 5 pending, 1 invalid (row 6). */
	CHECK_INT(st_rows_claim(s, "w1", T0, 10000, 3, cl, &n), ENR_OK);
	CHECK_INT(n, 3);
	CHECK_INT(cl[0].rownum, 1);
	CHECK_INT(cl[2].rownum, 3);
	CHECK_INT(cl[0].attempts, 0);
	CHECK_STR(cl[0].input, "{\"email\":\"a@b.example\"}");
	REQUIRE(st_job_by_seq(s, j.seq, &got) == ENR_OK);
	CHECK_INT(got.status, ST_JOB_RUNNING);
	CHECK_INT(got.started_ms, T0);
	st_job_release(&got);
	CHECK_INT(st_rows_claim(s, "w2", T0, 10000, 16, cl2, &m), ENR_OK);
	CHECK_INT(m, 2);
	CHECK_INT(cl2[0].rownum, 4);
	for (int i = 0; i < m; i++)
		free(cl2[i].input);
	/* Nothing left to claim while the leases hold. */
	CHECK_INT(st_rows_claim(s, "w3", T0 + 5000, 10000, 16, cl2, &m), ENR_OK);
	CHECK_INT(m, 0);
	/* w1 keeps its rows alive; w2 stops beating.  A heartbeat names rows:
	 * one that is not (or no longer) the owner's is not renewed. */
	{
		struct st_row_ref mine[4] = { { j.seq, 1 }, { j.seq, 2 }, { j.seq, 3 }, { j.seq, 4 } };

		CHECK_INT(st_rows_heartbeat(s, "w1", T0 + 300000, mine, 4, &beat), ENR_OK);
		CHECK_INT(beat, 3);
		CHECK_INT(st_rows_heartbeat(s, "w1", T0 + 300000, mine, 0, &beat), ENR_OK);
		CHECK_INT(beat, 0);
	}
	CHECK_INT(st_rows_claim(s, "w3", T0 + 20000, 100000, 16, cl2, &m), ENR_OK);
	CHECK_INT(m, 2);                         /* w2's rows, their lease gone */
	CHECK_INT(cl2[0].rownum, 4);
	for (int i = 0; i < m; i++)
		free(cl2[i].input);
	/* w2 comes back: its rows are no longer its own. */
	CHECK_INT(st_row_finish(s, j.seq, 4, "w2", ST_ROW_DONE, 1, "{}", NULL, NULL, 1, T0 + 21000,
				&ended), ENR_E_CONFLICT);
	CHECK_INT(st_row_requeue(s, j.seq, 4, "w2", 0, true, "x", "y"), ENR_E_CONFLICT);
	CHECK_INT(st_row_release(s, j.seq, 4, "w2"), ENR_E_CONFLICT);
	REQUIRE(st_job_by_seq(s, j.seq, &got) == ENR_OK);
	CHECK_INT(got.done, 0);                  /* the lost finish wrote nothing */
	st_job_release(&got);
	/* w1 finishes row 1, snoozes row 2, fails row 3 once (retry). */
	CHECK_INT(st_row_finish(s, j.seq, 1, "w1", ST_ROW_DONE, 3, "{\"r\":1}", NULL, NULL, 2,
				T0 + 22000, &ended), ENR_OK);
	CHECK(!ended);
	CHECK_INT(st_row_requeue(s, j.seq, 2, "w1", T0 + 40000, false, "unavailable", "wait"),
		  ENR_OK);
	CHECK_INT(st_row_requeue(s, j.seq, 3, "w1", T0 + 23000, true, "upstream_failed", "retry"),
		  ENR_OK);
	/* Row 3 is due at T0+23s, row 2 at T0+40s. */
	CHECK_INT(st_rows_claim(s, "w1", T0 + 25000, 10000, 16, cl2, &m), ENR_OK);
	CHECK_INT(m, 1);
	CHECK_INT(cl2[0].rownum, 3);
	CHECK_INT(cl2[0].attempts, 1);
	free(cl2[0].input);
	CHECK_INT(st_row_finish(s, j.seq, 3, "w1", ST_ROW_FAILED, 0, NULL, "upstream_failed",
				"gave up", 0, T0 + 26000, &ended), ENR_OK);
	CHECK_INT(st_rows_claim(s, "w1", T0 + 41000, 10000, 16, cl2, &m), ENR_OK);
	CHECK_INT(m, 1);
	CHECK_INT(cl2[0].rownum, 2);
	CHECK_INT(cl2[0].attempts, 0);           /* a snooze spends no attempt */
	free(cl2[0].input);
	/* A row given back (its result could not be written) is claimable now. */
	CHECK_INT(st_row_release(s, j.seq, 2, "w1"), ENR_OK);
	CHECK_INT(st_rows_claim(s, "w1", T0 + 41000, 10000, 16, cl2, &m), ENR_OK);
	CHECK_INT(m, 1);
	free(cl2[0].input);
	CHECK_INT(st_row_finish(s, j.seq, 2, "w1", ST_ROW_DONE, 1, "{}", NULL, NULL, 0, T0 + 42000,
				&ended), ENR_OK);
	CHECK_INT(st_row_finish(s, j.seq, 4, "w3", ST_ROW_DONE, 2, "{}", NULL, NULL, 0, T0 + 42000,
				&ended), ENR_OK);
	CHECK(!ended);
	CHECK_INT(st_rows_release(s, "w3", &back), ENR_OK);
	CHECK_INT(back, 1);                      /* row 5 */
	CHECK_INT(st_rows_claim(s, "w1", T0 + 43000, 10000, 16, cl2, &m), ENR_OK);
	CHECK_INT(m, 1);
	CHECK_INT(cl2[0].rownum, 5);
	free(cl2[0].input);
	CHECK_INT(st_row_finish(s, j.seq, 5, "w1", ST_ROW_INVALID, 0, NULL, "invalid_request",
				"bad", 0, T0 + 44000, &ended), ENR_OK);
	CHECK(ended);
	REQUIRE(st_job_by_seq(s, j.seq, &got) == ENR_OK);
	CHECK_INT(got.status, ST_JOB_COMPLETED);
	CHECK_INT(got.done, 3);
	CHECK_INT(got.found, 2);
	CHECK_INT(got.not_found, 1);
	CHECK_INT(got.failed, 2);
	CHECK_INT(got.pending, 0);
	CHECK_INT(got.credits, 2);
	CHECK_INT(got.finished_ms, T0 + 44000);
	st_job_release(&got);
	CHECK_INT(st_job_rows_each(s, j.seq, count_rows, order), ENR_OK);
	CHECK_INT(order[0], 6);
	CHECK_INT(order[2], 0);
	CHECK_INT(st_job_errors(s, j.seq, count_errors, &errs), ENR_OK);
	CHECK_INT(errs, 2);
	CHECK_INT(st_job_finished_since(s, j.seq, T0 + 41500, &since), ENR_OK);
	CHECK_INT(since, 2);
	for (int i = 0; i < n; i++)
		free(cl[i].input);
	st_close(s);
}

TEST(job_cancel_and_retry)
{
	struct store *s = fresh();
	struct st_job j, got;
	struct st_claim cl[8];
	char existing[ST_JOB_ID_LEN + 1];
	bool created, ended;
	int64_t acc, back = -1;
	int n = 0;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	REQUIRE(make_job(s, acc, NULL, 4, 0, &j, &created, existing) == ENR_OK);
	REQUIRE(st_rows_claim(s, "w", T0, 10000, 2, cl, &n) == ENR_OK && n == 2);
	CHECK_INT(st_row_finish(s, j.seq, 1, "w", ST_ROW_FAILED, 0, NULL, "upstream_failed", "x", 0,
				T0, &ended), ENR_OK);
	/* Retry before the end: the failed row goes back. */
	CHECK_INT(st_job_retry(s, j.seq, T0, &back), ENR_OK);
	CHECK_INT(back, 1);
	CHECK_INT(st_job_retry(s, j.seq, T0, &back), ENR_OK);
	CHECK_INT(back, 0);
	/* Cancel: pending rows (1, 3, 4) stop; row 2 is being processed and
	 * may still finish. */
	CHECK_INT(st_job_cancel(s, j.seq, T0 + 1000), ENR_OK);
	REQUIRE(st_job_by_seq(s, j.seq, &got) == ENR_OK);
	CHECK_INT(got.status, ST_JOB_CANCELLED);
	CHECK_INT(got.pending, 1);
	st_job_release(&got);
	CHECK_INT(st_job_cancel(s, j.seq, T0 + 2000), ENR_E_CONFLICT);
	CHECK_INT(st_row_finish(s, j.seq, 2, "w", ST_ROW_DONE, 1, "{}", NULL, NULL, 0, T0 + 3000,
				&ended), ENR_OK);
	CHECK(!ended);                           /* a cancelled job stays cancelled */
	REQUIRE(st_job_by_seq(s, j.seq, &got) == ENR_OK);
	CHECK_INT(got.status, ST_JOB_CANCELLED);
	CHECK_INT(got.done, 1);
	st_job_release(&got);
	CHECK_INT(st_rows_claim(s, "w", T0 + 4000, 10000, 8, cl + 2, &n), ENR_OK);
	CHECK_INT(n, 0);
	free(cl[0].input);
	free(cl[1].input);
	st_close(s);
}

TEST(webhook_due_claim_and_result)
{
	struct store *s = fresh(), *t = NULL;
	struct st_job j, got;
	struct st_claim cl[2];
	char existing[ST_JOB_ID_LEN + 1];
	bool created, ended = false, mine = false, theirs = true;
	int64_t acc, seqs[4];
	int n = 0;

	REQUIRE(s != NULL);
	REQUIRE(st_open(url_now, NULL, &t) == ENR_OK);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	memset(&j, 0, sizeof j);
	{
		struct st_job_row row = { "{}", false, NULL };

		j.account_id = acc;
		snprintf(j.webhook_url, sizeof j.webhook_url, "https://hooks.example/done");
		REQUIRE(job_new_id(j.id) == ENR_OK);
		REQUIRE(st_job_create(s, &j, NULL, &row, 1, T0, &created, existing) == ENR_OK);
	}
	CHECK_INT(st_webhooks_due(s, T0, 4, seqs, &n), ENR_OK);
	CHECK_INT(n, 0);
	REQUIRE(st_rows_claim(s, "w", T0, 10000, 2, cl, &n) == ENR_OK && n == 1);
	free(cl[0].input);
	REQUIRE(st_row_finish(s, j.seq, 1, "w", ST_ROW_DONE, 1, "{}", NULL, NULL, 0, T0 + 10, &ended) ==
		ENR_OK);
	CHECK(ended);
	CHECK_INT(st_webhooks_due(s, T0 + 10, 4, seqs, &n), ENR_OK);
	CHECK_INT(n, 1);
	CHECK_INT(seqs[0], j.seq);
	/* Two workers: one takes it. */
	CHECK_INT(st_webhook_claim(s, j.seq, T0 + 10, T0 + 60000, &mine), ENR_OK);
	CHECK_INT(st_webhook_claim(t, j.seq, T0 + 10, T0 + 60000, &theirs), ENR_OK);
	CHECK(mine);
	CHECK(!theirs);
	CHECK_INT(st_webhook_result(s, j.seq, ST_HOOK_PENDING, T0 + 5000), ENR_OK);
	CHECK_INT(st_webhooks_due(s, T0 + 4000, 4, seqs, &n), ENR_OK);
	CHECK_INT(n, 0);
	CHECK_INT(st_webhooks_due(s, T0 + 5000, 4, seqs, &n), ENR_OK);
	CHECK_INT(n, 1);
	CHECK_INT(st_webhook_result(s, j.seq, ST_HOOK_SENT, 0), ENR_OK);
	REQUIRE(st_job_by_seq(s, j.seq, &got) == ENR_OK);
	CHECK_INT(got.webhook_state, ST_HOOK_SENT);
	CHECK_INT(got.webhook_attempts, 2);
	st_job_release(&got);
	st_close(t);
	st_close(s);
}

#define CLAIM_ROWS 2000
#define CLAIM_THREADS 8

struct claimer {
	struct store *s;
	char owner[32];
	int claimed, finished, errors;
};

static void *claim_racer(void *arg)
{
	struct claimer *x = arg;

	for (;;) {
		struct st_claim cl[10];
		int n = 0;

		if (st_rows_claim(x->s, x->owner, T0, 600000, 10, cl, &n) != ENR_OK) {
			x->errors++;
			if (x->errors > 50)
				break;
			continue;
		}
		if (n == 0)
			break;
		x->claimed += n;
		for (int i = 0; i < n; i++) {
			bool ended;

			usleep(1000); /* the row's work, outside the store (a worker's call) */

			if (st_row_finish(x->s, cl[i].seq, cl[i].rownum, x->owner, ST_ROW_DONE, 1, "{}",
					  NULL, NULL, 0, T0, &ended) == ENR_OK)
				x->finished++;
			else
				x->errors++;
			free(cl[i].input);
		}
	}
	st_thread_release(x->s);
	return NULL;
}

/* Eight claimers in this process; returns rows claimed, or -1 when a
 * claimer saw an error or a finish of a claimed row failed. */
static int claim_eight(const char *url, int64_t tag)
{
	struct store *s = NULL;
	struct claimer c[CLAIM_THREADS];
	pthread_t t[CLAIM_THREADS];
	int total = 0, bad = 0;

	if (st_open(url, NULL, &s) != ENR_OK)
		return -1;
	/* Each process takes one batch before the start, so that both hold
	 * rows whatever the scheduler does next (SQLite's busy handler does
	 * not queue waiters fairly: a process can find the lock taken every
	 * time it wakes, until the other has claimed every row). */
	{
		struct claimer first = { .s = s };

		snprintf(first.owner, sizeof first.owner, "p%lld-first", (long long)tag);
		{
			struct st_claim cl[10];
			int n = 0;

			if (st_rows_claim(s, first.owner, T0, 600000, 10, cl, &n) != ENR_OK || n == 0)
				bad++;
			for (int i = 0; i < n; i++) {
				bool ended;

				if (st_row_finish(s, cl[i].seq, cl[i].rownum, first.owner, ST_ROW_DONE, 1,
						  "{}", NULL, NULL, 0, T0, &ended) != ENR_OK)
					bad++;
				free(cl[i].input);
			}
			total += n;
		}
	}
	race_start();
	for (int i = 0; i < CLAIM_THREADS; i++) {
		c[i] = (struct claimer){ .s = s };
		snprintf(c[i].owner, sizeof c[i].owner, "p%lld-t%d", (long long)tag, i);
		pthread_create(&t[i], NULL, claim_racer, &c[i]);
	}
	for (int i = 0; i < CLAIM_THREADS; i++) {
		pthread_join(t[i], NULL);
		total += c[i].claimed;
		bad += c[i].errors + (c[i].claimed - c[i].finished);
	}
	st_close(s);
	return bad ? -1 : total;
}


/* ---- listings, gauges, the audit log, alerts, outcomes and meters ------------------- */

static enum enr_err job_at(struct store *s, int64_t acc, int64_t created_ms, size_t n,
			   struct st_job *j)
{
	struct st_job_row rows[4];
	char existing[ST_JOB_ID_LEN + 1];
	bool created = false;
	enum enr_err rc;

	for (size_t i = 0; i < n && i < 4; i++)
		rows[i] = (struct st_job_row){ "{\"email\":\"a@b.example\"}", false, NULL };
	memset(j, 0, sizeof *j);
	j->account_id = acc;
	j->want = 3;
	rc = job_new_id(j->id);
	if (rc == ENR_OK)
		rc = st_job_create(s, j, NULL, rows, n < 4 ? n : 4, created_ms, &created, existing);
	if (rc == ENR_OK && !created)
		rc = ENR_E_STORE;
	return rc;
}

struct seen_jobs {
	char ids[64][ST_JOB_ID_LEN + 1];
	char accounts[64][LIM_NAME_MAX + 1];
	int64_t seq[64], created[64];
	int n;
};

static int seen_job(void *arg, const struct st_job *j, const char *account)
{
	struct seen_jobs *x = arg;

	if (x->n == 64)
		return 1;
	snprintf(x->ids[x->n], sizeof x->ids[0], "%s", j->id);
	snprintf(x->accounts[x->n], sizeof x->accounts[0], "%s", account);
	x->seq[x->n] = j->seq;
	x->created[x->n] = j->created_ms;
	x->n++;
	return 0;
}

TEST(jobs_page_newest_first_and_stable_while_jobs_are_added)
{
	struct store *s = fresh();
	struct st_job j;
	struct seen_jobs all, page, walk;
	struct st_job_cursor cur;
	int64_t acc, acc2;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	REQUIRE(st_account_create(s, "beta", 1, &acc2) == ENR_OK);
	/* Seven jobs; three share a creation time (the seq breaks the tie). */
	for (int i = 0; i < 7; i++) {
		REQUIRE(job_at(s, i == 3 ? acc2 : acc, T0 + (i < 3 ? 0 : i) * 1000, 1, &j) == ENR_OK);
		st_job_release(&j);
	}
	memset(&all, 0, sizeof all);
	CHECK_INT(st_job_page(s, -1, NULL, 100, seen_job, &all), ENR_OK);
	CHECK_INT(all.n, 7);
	for (int i = 1; i < all.n; i++)
		CHECK(all.created[i - 1] > all.created[i] ||
		      (all.created[i - 1] == all.created[i] && all.seq[i - 1] > all.seq[i]));
	CHECK_STR(all.accounts[3], "beta");
	/* Two at a time, with newer jobs added between the pages: every job
	 * that was there at the start comes exactly once, in order. */
	memset(&walk, 0, sizeof walk);
	memset(&cur, 0, sizeof cur);
	for (int round = 0; round < 10; round++) {
		memset(&page, 0, sizeof page);
		CHECK_INT(st_job_page(s, -1, round ? &cur : NULL, 2, seen_job, &page), ENR_OK);
		for (int i = 0; i < page.n && walk.n < 64; i++, walk.n++)
			snprintf(walk.ids[walk.n], sizeof walk.ids[0], "%s", page.ids[i]);
		if (page.n < 2)
			break;
		cur.created_ms = page.created[page.n - 1];
		cur.seq = page.seq[page.n - 1];
		REQUIRE(job_at(s, acc, T0 + 100000 + round, 1, &j) == ENR_OK);
		st_job_release(&j);
	}
	CHECK_INT(walk.n, 7);
	for (int i = 0; i < 7 && i < walk.n; i++)
		CHECK_STR(walk.ids[i], all.ids[i]);
	/* One account's jobs only. */
	memset(&page, 0, sizeof page);
	CHECK_INT(st_job_page(s, acc2, NULL, 100, seen_job, &page), ENR_OK);
	CHECK_INT(page.n, 1);
	CHECK_STR(page.ids[0], all.ids[3]);
	memset(&page, 0, sizeof page);
	CHECK_INT(st_job_page(s, acc, NULL, 3, seen_job, &page), ENR_OK);
	CHECK_INT(page.n, 3);
	st_close(s);
}

TEST(queue_stats_count_rows_jobs_and_the_oldest_pending)
{
	struct store *s = fresh();
	struct st_queue_stats q;
	struct st_claim cl[4];
	struct st_job j1, j2;
	bool ended = false;
	int n = 0;
	int64_t acc;

	REQUIRE(s != NULL);
	CHECK_INT(st_queue_stats(s, &q), ENR_OK);
	CHECK_INT(q.rows_pending + q.rows_running + q.rows_failed + q.oldest_pending_ms, 0);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	REQUIRE(job_at(s, acc, T0, 3, &j1) == ENR_OK);
	REQUIRE(job_at(s, acc, T0 + 5000, 2, &j2) == ENR_OK);
	CHECK_INT(st_rows_claim(s, "w1", T0 + 10000, 60000, 2, cl, &n), ENR_OK);
	CHECK_INT(n, 2);
	for (int i = 0; i < n; i++)
		free(cl[i].input);
	CHECK_INT(st_row_finish(s, cl[0].seq, cl[0].rownum, "w1", ST_ROW_FAILED, 0, NULL, "x", "x", 0,
				T0 + 11000, &ended), ENR_OK);
	CHECK_INT(st_queue_stats(s, &q), ENR_OK);
	CHECK_INT(q.rows_pending, 3);
	CHECK_INT(q.rows_running, 1);
	CHECK_INT(q.rows_failed, 1);
	CHECK_INT(q.jobs[ST_JOB_RUNNING] + q.jobs[ST_JOB_QUEUED], 2);
	CHECK_INT(q.oldest_pending_ms, T0);
	st_job_release(&j1);
	st_job_release(&j2);
	st_close(s);
}

struct seen_audit {
	int64_t ids[16];
	char actions[16][32];
	bool null_details[16];
	int n;
};

static int seen_entry(void *arg, const struct st_audit *e)
{
	struct seen_audit *x = arg;

	if (x->n < 16) {
		x->ids[x->n] = e->id;
		snprintf(x->actions[x->n], sizeof x->actions[0], "%s", e->action);
		x->null_details[x->n] = e->details == NULL;
		x->n++;
	}
	return 0;
}

TEST(audit_log_appends_and_pages_newest_first)
{
	struct store *s = fresh();
	struct seen_audit a, b;
	int64_t id = 0, prev = 0;

	REQUIRE(s != NULL);
	for (int i = 0; i < 5; i++) {
		char action[32];
		struct st_audit e = { 0, T0 + i, "ops (key 1)", "127.0.0.1", action, "acme",
				      i % 2 ? "{\"burst\":5}" : NULL };

		snprintf(action, sizeof action, "action.%d", i);
		CHECK_INT(st_audit_add(s, &e, &id), ENR_OK);
		CHECK(id > prev);
		prev = id;
	}
	{
		struct st_audit bad = { 0, T0, NULL, "local", "x", "y", NULL };

		CHECK_INT(st_audit_add(s, &bad, NULL), ENR_E_INVALID);
	}
	memset(&a, 0, sizeof a);
	CHECK_INT(st_audit_page(s, 0, 3, seen_entry, &a), ENR_OK);
	CHECK_INT(a.n, 3);
	CHECK_STR(a.actions[0], "action.4");
	CHECK(a.null_details[0] && !a.null_details[1]);
	memset(&b, 0, sizeof b);
	CHECK_INT(st_audit_page(s, a.ids[2], 3, seen_entry, &b), ENR_OK);
	CHECK_INT(b.n, 2);
	CHECK_STR(b.actions[1], "action.0");
	st_close(s);
}

static int count_alert(void *arg, const struct st_alert *al)
{
	int *n = arg;

	if (strcmp(al->event, "key_state") == 0 && al->key_id && strcmp(al->key_id, "pdl-2") == 0)
		n[1]++;
	n[0]++;
	return 0;
}

TEST(alerts_append_page_and_purge_by_age)
{
	struct store *s = fresh();
	struct st_alert k = { 0, T0, "key_state", "pdl", "pdl-2", "0002", "invalid", 0, "dead" };
	struct st_alert d = { 0, T0 + 60000, "pool_dry", "pdl", NULL, NULL, "dry", T0 + 90000, "dry" };
	int n[2] = { 0, 0 }, removed = -1;

	REQUIRE(s != NULL);
	CHECK_INT(st_alert_add(s, &k), ENR_OK);
	CHECK_INT(st_alert_add(s, &d), ENR_OK);
	CHECK_INT(st_alert_page(s, 0, 10, count_alert, n), ENR_OK);
	CHECK_INT(n[0], 2);
	CHECK_INT(n[1], 1);
	CHECK_INT(st_alert_purge(s, T0 + 1, &removed), ENR_OK);
	CHECK_INT(removed, 1);
	n[0] = n[1] = 0;
	CHECK_INT(st_alert_page(s, 0, 10, count_alert, n), ENR_OK);
	CHECK_INT(n[0], 1);
	CHECK_INT(n[1], 0);
	st_close(s);
}

struct outcome_sum {
	int64_t calls[PROV_OUTCOME__MAX], credits;
	int rows;
};

static int sum_outcome(void *arg, const char *provider, const char *id, int outcome,
		       int64_t calls, int64_t credits)
{
	struct outcome_sum *x = arg;

	if (strcmp(provider, "pdl") == 0 && strcmp(id, "pdl-1") == 0 && outcome >= 0 &&
	    outcome < PROV_OUTCOME__MAX) {
		x->calls[outcome] += calls;
		x->credits += credits;
	}
	x->rows++;
	return 0;
}

TEST(outcome_counters_add_and_meters_keep_the_latest)
{
	struct store *s = fresh();
	struct outcome_sum o;
	struct kp_key k;

	REQUIRE(s != NULL);
	CHECK_INT(st_ukey_sync(s, pool, 4), ENR_OK);
	CHECK_INT(st_ukey_outcome_add(s, "pdl-1", PROV_HIT, 3, 3), ENR_OK);
	CHECK_INT(st_ukey_outcome_add(s, "pdl-1", PROV_HIT, 2, 1), ENR_OK);
	CHECK_INT(st_ukey_outcome_add(s, "pdl-1", PROV_RATE_LIMITED, 1, 0), ENR_OK);
	CHECK_INT(st_ukey_outcome_add(s, "pdl-2", PROV_MISS, 4, 0), ENR_OK);
	memset(&o, 0, sizeof o);
	CHECK_INT(st_ukey_outcome_each(s, sum_outcome, &o), ENR_OK);
	CHECK_INT(o.calls[PROV_HIT], 5);
	CHECK_INT(o.calls[PROV_RATE_LIMITED], 1);
	CHECK_INT(o.credits, 4);
	CHECK_INT(o.rows, 3);
	/* Meters: unknown at first; a later reading wins, an older one and an
	 * unknown meter (-1) change nothing. */
	CHECK_INT(st_ukey_get(s, "pdl-1", &k), ENR_OK);
	CHECK_INT(k.requests_left, -1);
	CHECK_INT(k.meters_ms, 0);
	CHECK_INT(st_ukey_meters_put(s, "pdl-1", 99, 500, T0 + 2000), ENR_OK);
	CHECK_INT(st_ukey_meters_put(s, "pdl-1", 10, 10, T0 + 1000), ENR_OK);
	CHECK_INT(st_ukey_get(s, "pdl-1", &k), ENR_OK);
	CHECK_INT(k.requests_left, 99);
	CHECK_INT(k.credits_left, 500);
	CHECK_INT(st_ukey_meters_put(s, "pdl-1", 98, -1, T0 + 3000), ENR_OK);
	CHECK_INT(st_ukey_get(s, "pdl-1", &k), ENR_OK);
	CHECK_INT(k.requests_left, 98);
	CHECK_INT(k.credits_left, 500);
	CHECK_INT(k.meters_ms, T0 + 3000);
	st_close(s);
}

static int sum_totals(void *arg, const struct st_usage *u)
{
	struct usage_sum *x = arg;

	if (strcmp(u->account, "acme") == 0) {
		x->requests += u->requests;
		x->credits += u->credits;
	}
	x->rows++;
	return 0;
}

TEST(usage_totals_sum_every_day_per_account)
{
	struct store *s = fresh();
	struct st_usage_delta d = { 2, 3, 4, 1 };
	struct usage_sum u = { 0, 0, 0, 0, 0 };
	int64_t acc, acc2;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	REQUIRE(st_account_create(s, "beta", 1, &acc2) == ENR_OK);
	CHECK_INT(st_usage_add(s, acc, T0 / 1000, &d), ENR_OK);
	CHECK_INT(st_usage_add(s, acc, T0 / 1000 - 86400 * 40, &d), ENR_OK);
	CHECK_INT(st_usage_add(s, acc2, T0 / 1000, &d), ENR_OK);
	CHECK_INT(st_usage_totals(s, sum_totals, &u), ENR_OK);
	CHECK_INT(u.rows, 2);
	CHECK_INT(u.requests, 4);
	CHECK_INT(u.credits, 8);
	st_close(s);
}

TEST(claimers_in_two_processes_never_claim_a_row_twice)
{
	struct store *s = fresh();
	struct st_job j, got;
	char existing[ST_JOB_ID_LEN + 1];
	bool created;
	int64_t acc;
	int fd = -1, here, there;
	pid_t pid;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	REQUIRE(make_job(s, acc, NULL, CLAIM_ROWS, 0, &j, &created, existing) == ENR_OK);
	pid = child(claim_eight, 2, &fd);
	REQUIRE(pid > 0);
	here = claim_eight(url_now, 1);
	there = child_result(pid, fd);
	CHECK(here >= 0);
	CHECK(there >= 0);
	/* Every row claimed once: a row claimed twice would count twice. */
	CHECK_INT(here + there, CLAIM_ROWS);
	CHECK(here > 0 && there > 0);
	REQUIRE(st_job_by_seq(s, j.seq, &got) == ENR_OK);
	CHECK_INT(got.done, CLAIM_ROWS);
	CHECK_INT(got.pending, 0);
	CHECK_INT(got.status, ST_JOB_COMPLETED);
	st_job_release(&got);
	st_close(s);
}

/* ---- moving a deployment ---------------------------------------------------------------- */

/* ---- claims on lookups in flight, credit budgets, savings ---------------------- */

TEST(flight_claims_have_one_holder_and_expire)
{
	struct store *s = fresh();
	unsigned char key[32] = { 1, 2, 3 };
	bool mine = false, held = false;
	int64_t until = 0;
	int removed = 0;

	REQUIRE(s != NULL);
	CHECK_INT(st_flight_claim(s, key, "a", T0, T0 + 1000, &mine, &until), ENR_OK);
	CHECK(mine);
	CHECK_INT(st_flight_claim(s, key, "b", T0 + 10, T0 + 2000, &mine, &until), ENR_OK);
	CHECK(!mine);
	CHECK_INT(until, T0 + 1000);
	/* The holder may extend its own claim. */
	CHECK_INT(st_flight_claim(s, key, "a", T0 + 20, T0 + 1500, &mine, NULL), ENR_OK);
	CHECK(mine);
	CHECK_INT(st_flight_get(s, key, T0 + 30, &held, &until), ENR_OK);
	CHECK(held);
	CHECK_INT(until, T0 + 1500);
	/* Only the holder releases. */
	CHECK_INT(st_flight_release(s, key, "b"), ENR_OK);
	CHECK_INT(st_flight_get(s, key, T0 + 30, &held, NULL), ENR_OK);
	CHECK(held);
	CHECK_INT(st_flight_release(s, key, "a"), ENR_OK);
	CHECK_INT(st_flight_get(s, key, T0 + 30, &held, NULL), ENR_OK);
	CHECK(!held);
	/* An expired claim is anyone's. */
	CHECK_INT(st_flight_claim(s, key, "a", T0, T0 + 100, &mine, NULL), ENR_OK);
	CHECK_INT(st_flight_claim(s, key, "b", T0 + 100, T0 + 900, &mine, NULL), ENR_OK);
	CHECK(mine);
	CHECK_INT(st_flight_purge(s, T0 + 1000, 10, &removed), ENR_OK);
	CHECK_INT(removed, 1);
	st_close(s);
}

static struct st_budget_scope scope_of(const char *name, int64_t limit)
{
	struct st_budget_scope sc;

	memset(&sc, 0, sizeof sc);
	snprintf(sc.scope, sizeof sc.scope, "%s", name);
	sc.period_start = T0 / 1000;
	sc.limit = limit;
	return sc;
}

TEST(budget_holds_settle_and_expire)
{
	struct store *s = fresh();
	struct st_budget_scope a = scope_of("account:1:day", 10), ab[2];
	bool ok = false;
	int refused = -1;
	int64_t avail = -1, spent = -1, held = -1;

	REQUIRE(s != NULL);
	CHECK_INT(st_budget_reserve(s, "h1", &a, 1, 6, T0, T0 + 60000, &ok, &refused, &avail), ENR_OK);
	CHECK(ok);
	CHECK_INT(st_budget_reserve(s, "h2", &a, 1, 5, T0, T0 + 60000, &ok, &refused, &avail), ENR_OK);
	CHECK(!ok);
	CHECK_INT(refused, 0);
	CHECK_INT(avail, 4);
	CHECK_INT(st_budget_reserve(s, "h2", &a, 1, 4, T0, T0 + 60000, &ok, NULL, NULL), ENR_OK);
	CHECK(ok);
	/* Settling with what was charged frees the rest of the hold. */
	CHECK_INT(st_budget_settle(s, "h1", &a, 1, 2), ENR_OK);
	CHECK_INT(st_budget_get(s, a.scope, a.period_start, T0, &spent, &held), ENR_OK);
	CHECK_INT(spent, 2);
	CHECK_INT(held, 4);
	CHECK_INT(st_budget_reserve(s, "h3", &a, 1, 4, T0, T0 + 1000, &ok, NULL, NULL), ENR_OK);
	CHECK(ok);
	CHECK_INT(st_budget_reserve(s, "h4", &a, 1, 1, T0, T0 + 60000, &ok, NULL, &avail), ENR_OK);
	CHECK(!ok);
	CHECK_INT(avail, 0);
	/* A hold whose caller died counts for nothing once it expires. */
	CHECK_INT(st_budget_reserve(s, "h4", &a, 1, 4, T0 + 2000, T0 + 60000, &ok, NULL, NULL),
		  ENR_OK);
	CHECK(ok);
	/* All or nothing over several budgets. */
	ab[0] = scope_of("key:pdl-1", 100);
	ab[1] = scope_of("upstream:pdl/acme", 1);
	CHECK_INT(st_budget_reserve(s, "h5", ab, 2, 2, T0, T0 + 60000, &ok, &refused, &avail), ENR_OK);
	CHECK(!ok);
	CHECK_INT(refused, 1);
	CHECK_INT(avail, 1);
	CHECK_INT(st_budget_get(s, "key:pdl-1", ab[0].period_start, T0, &spent, &held), ENR_OK);
	CHECK_INT(held, 0);
	CHECK_INT(st_budget_reserve(s, "h5", ab, 2, 1, T0, T0 + 60000, &ok, NULL, NULL), ENR_OK);
	CHECK(ok);
	/* What a provider charged may pass the limit: it is what was spent. */
	CHECK_INT(st_budget_settle(s, "h5", ab, 2, 3), ENR_OK);
	CHECK_INT(st_budget_get(s, "upstream:pdl/acme", ab[1].period_start, T0, &spent, &held),
		  ENR_OK);
	CHECK_INT(spent, 3);
	CHECK_INT(held, 0);
	/* Another period starts from nothing. */
	a.period_start += 86400;
	CHECK_INT(st_budget_reserve(s, "h6", &a, 1, 10, T0 + 86400000, T0 + 86460000, &ok, NULL,
				    NULL), ENR_OK);
	CHECK(ok);
	st_close(s);
}

struct budget_race {
	struct store *s;
	int ok, errors;
	int tag;
};

static void *budget_racer(void *arg)
{
	struct budget_race *x = arg;
	struct st_budget_scope sc = scope_of("account:7:day", 20);

	for (int i = 0; i < 10; i++) {
		char id[64];
		bool ok = false;

		snprintf(id, sizeof id, "race-%d-%d-%d", (int)getpid(), x->tag, i);
		if (st_budget_reserve(x->s, id, &sc, 1, 1, T0, T0 + 60000, &ok, NULL, NULL) != ENR_OK)
			x->errors++;
		else if (ok)
			x->ok++;
	}
	st_thread_release(x->s);
	return NULL;
}

static int reserve_four(const char *url, int64_t unused)
{
	struct store *s = NULL;
	struct budget_race r[4];
	pthread_t t[4];
	int total = 0, errors = 0;

	(void)unused;
	if (st_open(url, NULL, &s) != ENR_OK)
		return -1;
	race_start();
	for (int i = 0; i < 4; i++) {
		r[i] = (struct budget_race){ s, 0, 0, i };
		pthread_create(&t[i], NULL, budget_racer, &r[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += r[i].ok;
		errors += r[i].errors;
	}
	st_close(s);
	return errors ? -1 : total;
}

TEST(budget_reservers_in_2_processes_never_overshoot)
{
	struct store *s = fresh();
	int fd = -1, here, there;
	int64_t spent = -1, held = -1;
	pid_t pid;

	REQUIRE(s != NULL);
	st_close(s);
	pid = child(reserve_four, 0, &fd);
	REQUIRE(pid > 0);
	here = reserve_four(url_now, 0);
	there = child_result(pid, fd);
	CHECK(here >= 0);
	CHECK(there >= 0);
	/* 80 reservations of one credit against a budget of 20. */
	CHECK_INT(here + there, 20);
	REQUIRE(st_open(url_now, NULL, &s) == ENR_OK);
	CHECK_INT(st_budget_get(s, "account:7:day", T0 / 1000, T0, &spent, &held), ENR_OK);
	CHECK_INT(spent, 0);
	CHECK_INT(held, 20);
	st_close(s);
}

struct claim_race {
	struct store *s;
	int mine, errors, tag;
};

static void *claim_flight_racer(void *arg)
{
	struct claim_race *x = arg;
	unsigned char key[32] = { 42 };
	char owner[64];
	bool mine = false;

	snprintf(owner, sizeof owner, "p%d-t%d", (int)getpid(), x->tag);
	for (int i = 0; i < 5; i++) {
		if (st_flight_claim(x->s, key, owner, T0, T0 + 60000, &mine, NULL) != ENR_OK)
			x->errors++;
		else if (mine)
			x->mine++;
	}
	st_thread_release(x->s);
	return NULL;
}

/* Four threads of this process claim one key under their own names: how
 * many claims each won (a winner may claim again: it holds it). */
static int claim_four(const char *url, int64_t unused)
{
	struct store *s = NULL;
	struct claim_race r[4];
	pthread_t t[4];
	int winners = 0, errors = 0;

	(void)unused;
	if (st_open(url, NULL, &s) != ENR_OK)
		return -1;
	race_start();
	for (int i = 0; i < 4; i++) {
		r[i] = (struct claim_race){ s, 0, 0, i };
		pthread_create(&t[i], NULL, claim_flight_racer, &r[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		winners += r[i].mine > 0;
		errors += r[i].errors;
	}
	st_close(s);
	return errors ? -1 : winners;
}

TEST(claimers_of_one_lookup_in_2_processes_get_one_holder)
{
	struct store *s = fresh();
	int fd = -1, here, there;
	pid_t pid;

	REQUIRE(s != NULL);
	st_close(s);
	pid = child(claim_four, 0, &fd);
	REQUIRE(pid > 0);
	here = claim_four(url_now, 0);
	there = child_result(pid, fd);
	CHECK(here >= 0);
	CHECK(there >= 0);
	/* Eight claimers, one unexpired claim: exactly one of them holds it. */
	CHECK_INT(here + there, 1);
}

static int sum_savings(void *arg, const struct st_savings *v)
{
	int64_t *x = arg;

	x[0] += v->cache_calls;
	x[1] += v->cache_credits;
	x[2] += v->flight_calls;
	x[3] += v->flight_credits;
	x[4]++;
	return 0;
}

TEST(savings_add_up_per_provider_and_day)
{
	struct store *s = fresh();
	struct st_savings d;
	int64_t sum[5] = { 0, 0, 0, 0, 0 };

	REQUIRE(s != NULL);
	memset(&d, 0, sizeof d);
	snprintf(d.provider, sizeof d.provider, "pdl");
	snprintf(d.day, sizeof d.day, "2026-11-30");
	d.cache_calls = 3;
	d.cache_credits = 3;
	CHECK_INT(st_savings_add(s, &d), ENR_OK);
	d.flight_calls = 2;
	d.flight_credits = 1;
	d.cache_calls = 1;
	d.cache_credits = 0;
	CHECK_INT(st_savings_add(s, &d), ENR_OK);
	snprintf(d.provider, sizeof d.provider, "lusha");
	CHECK_INT(st_savings_add(s, &d), ENR_OK);
	CHECK_INT(st_savings_each(s, "2026-11-01", sum_savings, sum), ENR_OK);
	CHECK_INT(sum[0], 5);
	CHECK_INT(sum[1], 3);
	CHECK_INT(sum[2], 4);
	CHECK_INT(sum[3], 2);
	CHECK_INT(sum[4], 2);
	st_close(s);
}

TEST(account_budgets_set_and_read)
{
	struct store *s = fresh();
	struct st_account a;
	int64_t id;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &id) == ENR_OK);
	REQUIRE(st_account_by_id(s, id, &a) == ENR_OK);
	CHECK_INT(a.credits_per_day, ST_LIMIT_DEFAULT);
	CHECK_INT(a.credits_per_month, ST_LIMIT_DEFAULT);
	CHECK_INT(st_account_set_budgets(s, id, 20, 0), ENR_OK);
	REQUIRE(st_account_by_name(s, "acme", &a) == ENR_OK);
	CHECK_INT(a.credits_per_day, 20);
	CHECK_INT(a.credits_per_month, 0);
	CHECK_INT(st_account_set_budgets(s, id + 99, 1, 1), ENR_E_NOT_FOUND);
	st_close(s);
}

struct copied {
	int64_t accounts, job_rows, cache;
};

static void on_copied(void *arg, const char *table, int64_t rows)
{
	struct copied *c = arg;

	if (strcmp(table, "accounts") == 0)
		c->accounts = rows;
	if (strcmp(table, "job_rows") == 0)
		c->job_rows = rows;
	if (strcmp(table, "cache") == 0)
		c->cache = rows;
}

TEST(copy_into_a_fresh_store_twice)
{
	struct store *s = fresh(), *t = NULL;
	unsigned char h[AUTH_HASH_LEN] = { 9 }, key[32] = { 7 };
	struct st_client_key k;
	struct st_job j, got;
	struct copied c = { 0, 0, 0 };
	struct usage_sum u = { 0, 0, 0, 0, 0 };
	struct st_usage_delta d = { 3, 2, 1, 0 };
	char existing[ST_JOB_ID_LEN + 1], from_url[1024];
	bool created;
	int64_t acc, kid, acc2;
	char *body = NULL;
	bool hit;
	int64_t exp;

	REQUIRE(s != NULL);
	snprintf(from_url, sizeof from_url, "%s", url_now);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	REQUIRE(st_client_key_insert(s, acc, "k", h, "wxyz", AUTH_SCOPE_ALL, 0, 1, &kid) == ENR_OK);
	REQUIRE(st_usage_add(s, acc, T0 / 1000, &d) == ENR_OK);
	REQUIRE(st_ukey_sync(s, pool, 4) == ENR_OK);
	REQUIRE(st_cache_put(s, key, "pdl", true, "{\"x\":1}", T0 + 1000) == ENR_OK);
	REQUIRE(make_job(s, acc, "i", 120, 7, &j, &created, existing) == ENR_OK);
	REQUIRE(st_account_set_budgets(s, acc, 5, 50) == ENR_OK);
	{
		struct st_budget_scope sc = scope_of("account:1:day", 10);
		bool ok = false;

		REQUIRE(st_budget_reserve(s, "c1", &sc, 1, 3, T0, T0 + 60000, &ok, NULL, NULL) ==
			ENR_OK);
		REQUIRE(ok && st_budget_settle(s, "c1", &sc, 1, 3) == ENR_OK);
	}
	t = fresh();
	REQUIRE(t != NULL);
	CHECK_INT(st_copy(s, t, on_copied, &c), ENR_OK);
	CHECK_INT(c.accounts, 1);
	CHECK_INT(c.job_rows, 120);
	CHECK_INT(c.cache, 1);
	/* Again: the same data, nothing doubled. */
	CHECK_INT(st_copy(s, t, on_copied, &c), ENR_OK);
	CHECK_INT(st_client_key_by_hash(t, h, &k), ENR_OK);
	CHECK_INT(k.id, kid);
	CHECK_STR(k.account, "acme");
	CHECK_INT(st_usage_each(t, -1, "2026-01-01", sum_usage, &u), ENR_OK);
	CHECK_INT(u.rows, 1);
	CHECK_INT(u.requests, 3);
	CHECK_INT(st_cache_get(t, key, T0, &hit, &body, &exp), ENR_OK);
	CHECK_STR(body, "{\"x\":1}");
	free(body);
	{
		struct st_account a;
		int64_t spent = -1, held = -1;

		REQUIRE(st_account_by_id(t, acc, &a) == ENR_OK);
		CHECK_INT(a.credits_per_day, 5);
		CHECK_INT(a.credits_per_month, 50);
		CHECK_INT(st_budget_get(t, "account:1:day", T0 / 1000, T0, &spent, &held), ENR_OK);
		CHECK_INT(spent, 3);
	}
	REQUIRE(st_job_get(t, j.id, acc, &got) == ENR_OK);
	CHECK_INT(got.total, 120);
	CHECK_INT(got.seq, j.seq);
	st_job_release(&got);
	/* New rows in the target do not collide with copied ids. */
	CHECK_INT(st_account_create(t, "beta", 1, &acc2), ENR_OK);
	CHECK(acc2 > acc);
	CHECK_INT(make_job(t, acc, NULL, 1, 0, &j, &created, existing), ENR_OK);
	st_close(t);
	st_close(s);
}

/* ---- PostgreSQL only: the pool, timeouts, lost connections ---------------------- */

/* A maintenance connection to the database of url_now. */
static PGconn *admin_conn(void)
{
	PGconn *c = PQconnectdb(url_now);

	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

static bool admin_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	return ok;
}

struct holder {
	struct store *s;
	enum enr_err ping;
	int64_t waited_ms;
};

static void *ping_meanwhile(void *arg)
{
	struct holder *h = arg;
	int64_t t0 = util_mono_ms();

	h->ping = st_ping(h->s);
	h->waited_ms = util_mono_ms() - t0;
	return NULL;
}

/* While the one connection of the pool is lent (a streamed listing is
 * running), another caller waits store_pool_wait_ms and is told the store
 * is unavailable. */
static int hold_the_pool(void *arg, const struct st_job_row_out *r)
{
	struct holder *h = arg;
	pthread_t t;

	(void)r;
	if (h->waited_ms >= 0)
		return 0;
	pthread_create(&t, NULL, ping_meanwhile, h);
	pthread_join(t, NULL);
	return 0;
}

TEST(pg_pool_is_bounded_and_a_caller_beyond_it_waits_then_is_refused)
{
	struct store *s = fresh(), *one = NULL;
	struct st_options o = { .pool_size = 1, .pool_wait_ms = 150 };
	struct st_job j;
	struct st_claim cl[2];
	char existing[ST_JOB_ID_LEN + 1];
	bool created, ended;
	struct holder h = { NULL, ENR_OK, -1 };
	int64_t acc;
	int n = 0;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	REQUIRE(make_job(s, acc, NULL, 1, 0, &j, &created, existing) == ENR_OK);
	REQUIRE(st_rows_claim(s, "w", T0, 10000, 2, cl, &n) == ENR_OK && n == 1);
	free(cl[0].input);
	REQUIRE(st_row_finish(s, j.seq, 1, "w", ST_ROW_DONE, 1, "{}", NULL, NULL, 0, T0, &ended) ==
		ENR_OK);
	REQUIRE(st_open(url_now, &o, &one) == ENR_OK);
	h.s = one;
	CHECK_INT(st_job_rows_each(one, j.seq, hold_the_pool, &h), ENR_OK);
	CHECK_INT(h.ping, ENR_E_UNAVAILABLE);
	CHECK(h.waited_ms >= 140 && h.waited_ms < 2000);
	/* Lent back: the next caller gets it at once. */
	CHECK_INT(st_ping(one), ENR_OK);
	st_close(one);
	st_close(s);
}

TEST(pg_statement_timeout_is_unavailable)
{
	struct store *s = fresh(), *quick = NULL;
	struct st_options o = { .statement_timeout_ms = 200 };
	struct adm *a;
	struct adm_res r;
	PGconn *lock = NULL;
	char sql[128];
	int64_t acc, t0;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	REQUIRE(st_open(url_now, &o, &quick) == ENR_OK);
	a = adm_new(quick, false, NULL);
	REQUIRE(a != NULL);
	REQUIRE(adm_check(a, acc, &dflt, 1, 1, T0, &r) == ENR_OK); /* the row exists */
	/* Someone holds the account's admission row. */
	lock = admin_conn();
	REQUIRE(lock != NULL);
	snprintf(sql, sizeof sql, "SELECT 1 FROM admission WHERE account_id = %lld FOR UPDATE",
		 (long long)acc);
	REQUIRE(admin_exec(lock, "BEGIN") && admin_exec(lock, sql));
	t0 = util_mono_ms();
	CHECK_INT(adm_check(a, acc, &dflt, 1, 1, T0 + 1000, &r), ENR_E_UNAVAILABLE);
	CHECK(util_mono_ms() - t0 < 2000);
	admin_exec(lock, "ROLLBACK");
	CHECK_INT(adm_check(a, acc, &dflt, 1, 1, T0 + 2000, &r), ENR_OK);
	PQfinish(lock);
	adm_free(a);
	st_close(quick);
	st_close(s);
}

TEST(pg_lost_connections_are_re_established)
{
	struct store *s = fresh();
	struct st_account acct;
	PGconn *killer;
	int64_t acc;
	enum enr_err first;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	killer = admin_conn();
	REQUIRE(killer != NULL);
	/* Every other connection to this database goes: the server restarted,
	 * or a proxy dropped them. */
	REQUIRE(admin_exec(killer, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
				   " WHERE datname = current_database() AND pid <> pg_backend_pid()"));
	PQfinish(killer);
	/* The first use finds its connection gone (503, not a crash, not 500);
	 * it is reset, and what follows works. */
	first = st_account_by_id(s, acc, &acct);
	CHECK(first == ENR_OK || first == ENR_E_UNAVAILABLE);
	CHECK_INT(st_account_by_id(s, acc, &acct), ENR_OK);
	CHECK_STR(acct.name, "acme");
	CHECK_INT(st_ping(s), ENR_OK);
	st_close(s);
}

/* The password comes from env:NAME or file:PATH: the server is made to ask
 * one role for a password (a scram line first in its pg_hba.conf), and the
 * store opens as that role only with the right one. */
TEST(pg_password_from_env_and_file)
{
	struct store *s = fresh(), *pw = NULL;
	struct st_options o = { 0 };
	struct st_account acct;
	PGconn *admin;
	PGresult *r;
	char hba[1024] = "", url[1024], *old = NULL, pwfile[300], *at;
	size_t oldlen = 0;
	FILE *f;
	int64_t acc;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	admin = admin_conn();
	REQUIRE(admin != NULL);
	r = PQexec(admin, "SHOW hba_file");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		snprintf(hba, sizeof hba, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	REQUIRE(hba[0] != '\0');
	REQUIRE(util_read_file(hba, 1 << 20, 0, &old, &oldlen) == ENR_OK);
	f = fopen(hba, "w");
	REQUIRE(f != NULL);
	fprintf(f, "local all enrichd_pw scram-sha-256\n%s", old);
	fclose(f);
	REQUIRE(admin_exec(admin, "DROP ROLE IF EXISTS enrichd_pw") &&
		admin_exec(admin, "SET password_encryption = 'scram-sha-256'") &&
		admin_exec(admin, "CREATE ROLE enrichd_pw LOGIN SUPERUSER PASSWORD 'right-pw-7'") &&
		admin_exec(admin, "SELECT pg_reload_conf()"));
	at = strstr(url_now, "@");
	REQUIRE(at != NULL && strncmp(url_now, "postgresql://", 13) == 0);
	snprintf(url, sizeof url, "postgresql://enrichd_pw%s", at);

	log_set_level(LOG_LVL_NOTICE); /* the refusals below are expected */
	CHECK(st_open(url, NULL, &pw) != ENR_OK);           /* no password */
	setenv("ENRICHD_TEST_STORE_PW", "right-pw-7", 1);
	o.password = "env:ENRICHD_TEST_STORE_PW";
	CHECK_INT(st_open(url, &o, &pw), ENR_OK);
	if (pw) {
		CHECK_INT(st_account_by_id(pw, acc, &acct), ENR_OK);
		CHECK_STR(acct.name, "acme");
		st_close(pw);
		pw = NULL;
	}
	snprintf(pwfile, sizeof pwfile, "%s/pw", dir);
	f = fopen(pwfile, "w");
	REQUIRE(f != NULL);
	fputs("wrong-pw\n", f);
	fclose(f);
	REQUIRE(chmod(pwfile, 0600) == 0);
	o.password = pwfile;
	CHECK(st_open(url, &o, &pw) != ENR_OK);              /* a path is not a secret spec */
	{
		char spec[310];

		snprintf(spec, sizeof spec, "file:%s", pwfile);
		o.password = spec;
		CHECK(st_open(url, &o, &pw) != ENR_OK);      /* the wrong password */
		f = fopen(pwfile, "w");
		REQUIRE(f != NULL);
		fputs("right-pw-7\n", f);
		fclose(f);
		CHECK_INT(st_open(url, &o, &pw), ENR_OK);
		if (pw) {
			CHECK_INT(st_ping(pw), ENR_OK);
			st_close(pw);
		}
	}
	log_set_level(LOG_LVL_ERROR);
	unsetenv("ENRICHD_TEST_STORE_PW");

	f = fopen(hba, "w");
	if (f) {
		fwrite(old, 1, oldlen, f);
		fclose(f);
	}
	admin_exec(admin, "SELECT pg_reload_conf()");
	admin_exec(admin, "DROP ROLE IF EXISTS enrichd_pw");
	free(old);
	PQfinish(admin);
	st_close(s);
}

/* A transaction body that fails with a given SQLSTATE on its first
 * `fails` attempts, then succeeds. */
struct flaky {
	const char *state;
	int fails, attempts;
};

static enum enr_err flaky_body(struct db_conn *c, void *arg)
{
	struct flaky *f = arg;
	char sql[160];

	if (f->attempts++ >= f->fails)
		return c->ops->script(c, "SELECT 1");
	snprintf(sql, sizeof sql,
		 "DO $$ BEGIN RAISE EXCEPTION 'planted' USING ERRCODE = '%s'; END $$", f->state);
	return c->ops->script(c, sql);
}

/* Serialization failures (40001) and deadlocks (40P01) run the transaction
 * again, a bounded number of times; other failures are not retried. */
TEST(pg_serialization_failures_and_deadlocks_are_retried)
{
	struct store *s = fresh();
	struct flaky once = { "40001", 1, 0 }, dead = { "40P01", 2, 0 }, always = { "40001", 99, 0 },
		     dup = { "23505", 1, 0 }, other = { "22012", 1, 0 };

	REQUIRE(s != NULL);
	CHECK_INT(db_tx(s, flaky_body, &once), ENR_OK);
	CHECK_INT(once.attempts, 2);
	CHECK_INT(db_tx(s, flaky_body, &dead), ENR_OK);
	CHECK_INT(dead.attempts, 3);
	CHECK_INT(db_tx(s, flaky_body, &always), ENR_E_UNAVAILABLE);
	CHECK_INT(always.attempts, 3);
	CHECK_INT(db_tx(s, flaky_body, &dup), ENR_E_CONFLICT);
	CHECK_INT(dup.attempts, 1);
	CHECK_INT(db_tx(s, flaky_body, &other), ENR_E_STORE);
	CHECK_INT(other.attempts, 1);
	CHECK_INT(st_ping(s), ENR_OK);
	st_close(s);
}

int main(void)
{
	char cmd[300];

	pg_base = getenv("ENRICHD_TEST_PG_URL");
	if (pg_base && *pg_base == '\0')
		pg_base = NULL;
	if (mkdtemp(dir) == NULL)
		return 1;
	log_set_level(LOG_LVL_ERROR);
	printf("# store conformance on %s\n", pg_base ? pg_base : "sqlite");
	RUN(opens_migrates_and_names_its_back_end);
	RUN(migrates_from_each_older_version);
	RUN(urls_that_no_back_end_takes);
	RUN(accounts);
	RUN(client_keys_and_revocation);
	RUN(revocation_reaches_another_process_within_a_second);
	RUN(admission_bucket_quota_usage_and_refund);
	RUN(usage_add_and_listing_per_day);
	RUN(journal_flush_is_exactly_once);
	RUN(admissions_from_8_threads_in_2_processes_admit_exactly_the_burst);
	RUN(leases_never_admit_more_than_the_bucket);
	RUN(key_pool_sync_get_put_and_cool);
	RUN(key_pool_loads_into_an_array_of_its_size);
	RUN(revive_and_apply_through_rotation);
	RUN(concurrent_key_applies_never_lose_a_transition);
	RUN(pacing_slots_are_shared);
	RUN(cache_get_put_expire_and_purge);
	RUN(job_create_is_idempotent);
	RUN(job_rows_claim_lease_finish_requeue);
	RUN(job_cancel_and_retry);
	RUN(webhook_due_claim_and_result);
	RUN(jobs_page_newest_first_and_stable_while_jobs_are_added);
	RUN(queue_stats_count_rows_jobs_and_the_oldest_pending);
	RUN(audit_log_appends_and_pages_newest_first);
	RUN(alerts_append_page_and_purge_by_age);
	RUN(outcome_counters_add_and_meters_keep_the_latest);
	RUN(usage_totals_sum_every_day_per_account);
	RUN(claimers_in_two_processes_never_claim_a_row_twice);
	RUN(flight_claims_have_one_holder_and_expire);
	RUN(claimers_of_one_lookup_in_2_processes_get_one_holder);
	RUN(budget_holds_settle_and_expire);
	RUN(budget_reservers_in_2_processes_never_overshoot);
	RUN(savings_add_up_per_provider_and_day);
	RUN(account_budgets_set_and_read);
	RUN(copy_into_a_fresh_store_twice);
	if (pg_base) {
		RUN(pg_pool_is_bounded_and_a_caller_beyond_it_waits_then_is_refused);
		RUN(pg_statement_timeout_is_unavailable);
		RUN(pg_lost_connections_are_re_established);
		RUN(pg_serialization_failures_and_deadlocks_are_retried);
		RUN(pg_password_from_env_and_file);
	}
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return harness_done();
}
