/*
 * test_store.c - the SQLite store: migrations, accounts, keys, admission,
 * usage.  Databases live in a temporary directory (several connections
 * must see one database, which :memory: cannot do).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/auth.h"
#include "lib/log.h"
#include "lib/store.h"
#include "lib/store_int.h"

#include "harness.h"

static char dir[] = "/tmp/enrichd-store-XXXXXX";
static int dbn;

static struct store *fresh(void)
{
	char url[256];
	struct store *s = NULL;

	snprintf(url, sizeof url, "sqlite:%s/t%d.db", dir, dbn++);
	if (st_open(url, &s) != ENR_OK)
		return NULL;
	return s;
}

static const struct cfg_account_limits dflt = { 60, 5, 100, 1000 };

TEST(migrates_from_empty_and_from_each_version)
{
	for (int start = 0; start <= st_schema_latest(); start++) {
		char url[256];
		struct store *s = NULL;
		int from = -1, to = -1, v = -1;

		snprintf(url, sizeof url, "sqlite:%s/m%d.db", dir, start);
		REQUIRE(st_open_raw(url, &s) == ENR_OK);
		CHECK_INT(st_migrate_to(s, start, &from, &to), ENR_OK);
		CHECK_INT(from, 0);
		CHECK_INT(to, start);
		st_close(s);
		/* Reopen as the program does: everything missing is applied. */
		REQUIRE(st_open(url, &s) == ENR_OK);
		CHECK_INT(st_schema_version(s, &v), ENR_OK);
		CHECK_INT(v, st_schema_latest());
		CHECK_INT(st_migrate(s, &from, &to), ENR_OK);
		CHECK_INT(from, to); /* nothing left to do */
		CHECK_INT(st_ping(s), ENR_OK);
		st_close(s);
	}
}

TEST(refuses_a_newer_schema)
{
	char url[256], cmd[512];
	struct store *s = NULL;

	snprintf(url, sizeof url, "sqlite:%s/newer.db", dir);
	REQUIRE(st_open(url, &s) == ENR_OK);
	st_close(s);
	snprintf(cmd, sizeof cmd, "sqlite3 %s/newer.db 'PRAGMA user_version = 999'", dir);
	REQUIRE(system(cmd) == 0);
	CHECK_INT(st_open(url, &s), ENR_E_STORE);
}

TEST(unopenable_store_is_unavailable)
{
	struct store *s = NULL;

	CHECK_INT(st_open("sqlite:/nonexistent/dir/x.db", &s), ENR_E_UNAVAILABLE);
	CHECK_INT(st_open("mysql://x", &s), ENR_E_INVALID);
}

TEST(probe_write_and_what_unavailable_means)
{
	char path[300];
	struct store *s;
	struct conn c;
	sqlite3 *db = NULL;

	snprintf(path, sizeof path, "%s/t%d.db", dir, dbn);
	s = fresh();
	REQUIRE(s != NULL);
	CHECK_INT(st_probe_write(s, 1000), ENR_OK);
	CHECK_INT(st_probe_write(s, 2000), ENR_OK); /* the same row, again */
	st_close(s);

	/* A database that takes no writes is unavailable, not a failed
	 * statement: the responder answers 503 and the client retries. */
	REQUIRE(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
	log_set_level(LOG_LVL_NOTICE); /* the refusals below are expected */
	CHECK_INT(st_exec(db, "INSERT INTO pace_slots(scope, next_ms) VALUES ('x', 1)"),
		  ENR_E_UNAVAILABLE);
	memset(&c, 0, sizeof c);
	c.db = db;
	CHECK_INT(st_step_err(&c, SQLITE_READONLY), ENR_E_UNAVAILABLE);
	CHECK_INT(st_step_err(&c, SQLITE_BUSY), ENR_E_UNAVAILABLE);
	CHECK_INT(st_step_err(&c, SQLITE_LOCKED), ENR_E_UNAVAILABLE);
	CHECK_INT(st_step_err(&c, SQLITE_IOERR_WRITE), ENR_E_UNAVAILABLE);
	CHECK_INT(st_step_err(&c, SQLITE_IOERR), ENR_E_UNAVAILABLE);
	CHECK_INT(st_step_err(&c, SQLITE_CANTOPEN), ENR_E_UNAVAILABLE);
	CHECK_INT(st_step_err(&c, SQLITE_FULL), ENR_E_UNAVAILABLE);
	CHECK_INT(st_step_err(&c, SQLITE_CONSTRAINT_UNIQUE), ENR_E_CONFLICT);
	CHECK_INT(st_step_err(&c, SQLITE_ERROR), ENR_E_STORE);
	CHECK_INT(st_step_err(&c, SQLITE_CORRUPT), ENR_E_STORE);
	log_set_level(LOG_LVL_WARN);
	sqlite3_close(db);
}

/* Lines written to the log while fn(s) runs. */
static int log_lines_during(struct store *s, enum enr_err (*fn)(struct store *), enum enr_err *rc,
			    char *text, size_t textsz)
{
	FILE *f = tmpfile();
	size_t n;
	int lines = 0;

	if (f == NULL)
		return -1;
	log_set_fd(fileno(f));
	*rc = fn(s);
	log_set_fd(2);
	rewind(f);
	n = fread(text, 1, textsz - 1, f);
	text[n] = '\0';
	for (size_t i = 0; i < n; i++)
		lines += text[i] == '\n';
	fclose(f);
	return lines;
}

static enum enr_err put_big(struct store *s)
{
	static char body[200000];
	unsigned char key[32] = { 7 };

	memset(body, 'x', sizeof body - 1);
	return st_cache_put(s, key, "pdl", true, body, 1000);
}

TEST(a_failed_write_logs_one_line)
{
	struct store *s = fresh();
	struct conn *c;
	sqlite3_stmt *st;
	char text[4096], sql[64];
	enum enr_err rc = ENR_OK;
	int pages = 0;

	REQUIRE(s != NULL);
	c = st_conn_get(s);
	REQUIRE(c != NULL);
	/* A disk that is full for this connection: SQLite rolls the whole
	 * transaction back itself when the insert fails. */
	REQUIRE(sqlite3_prepare_v2(c->db, "PRAGMA page_count", -1, &st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		pages = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	REQUIRE(pages > 0);
	snprintf(sql, sizeof sql, "PRAGMA max_page_count = %d", pages);
	REQUIRE(sqlite3_exec(c->db, sql, NULL, NULL, NULL) == SQLITE_OK);
	CHECK_INT(log_lines_during(s, put_big, &rc, text, sizeof text), 1);
	CHECK_INT(rc, ENR_E_UNAVAILABLE);
	CHECK(strstr(text, "database or disk is full") != NULL);
	CHECK(strstr(text, "cannot rollback") == NULL);
	CHECK(sqlite3_get_autocommit(c->db));
	/* The connection is usable afterwards. */
	CHECK_INT(st_ping(s), ENR_OK);
	st_close(s);
}

TEST(accounts)
{
	struct store *s = fresh();
	struct st_account a, b;
	struct cfg_account_limits eff;
	int64_t id = 0, id2 = 0;

	REQUIRE(s != NULL);
	CHECK_INT(st_account_create(s, "acme", 1000, &id), ENR_OK);
	CHECK_INT(st_account_create(s, "acme", 1000, &id2), ENR_E_CONFLICT);
	CHECK_INT(st_account_by_name(s, "acme", &a), ENR_OK);
	CHECK_INT(a.id, id);
	CHECK_INT(a.burst, ST_LIMIT_DEFAULT);
	CHECK_INT(st_account_by_name(s, "nope", &b), ENR_E_NOT_FOUND);
	st_account_limits(&a, &dflt, &eff);
	CHECK_INT(eff.burst, 5);
	a.burst = 50;
	a.records_per_day = 0;
	CHECK_INT(st_account_set_limits(s, id, &a), ENR_OK);
	CHECK_INT(st_account_by_id(s, id, &b), ENR_OK);
	st_account_limits(&b, &dflt, &eff);
	CHECK_INT(eff.burst, 50);
	CHECK_INT(eff.records_per_day, 0);
	CHECK_INT(eff.requests_per_minute, 60);
	CHECK_INT(st_account_set_limits(s, 999, &a), ENR_E_NOT_FOUND);
	st_close(s);
}

static int count_keys(void *arg, const struct st_client_key *k)
{
	(void)k;
	(*(int *)arg)++;
	return 0;
}

TEST(client_keys_store_only_the_hash)
{
	struct store *s = fresh();
	char key[AUTH_KEY_LEN + 1], cmd[512];
	unsigned char h[AUTH_HASH_LEN], other[AUTH_HASH_LEN];
	struct st_client_key k;
	int64_t acc, kid;
	int n = 0;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1000, &acc) == ENR_OK);
	REQUIRE(auth_key_generate(key) == ENR_OK);
	auth_key_hash(key, AUTH_KEY_LEN, h);
	CHECK_INT(st_client_key_insert(s, acc, "ci", h, key + 40, AUTH_SCOPE_ENRICH, 0, 1000, &kid),
		  ENR_OK);
	CHECK_INT(st_client_key_by_hash(s, h, &k), ENR_OK);
	CHECK_INT(k.id, kid);
	CHECK_STR(k.account, "acme");
	CHECK_STR(k.last4, key + 40);
	CHECK_INT(k.scopes, AUTH_SCOPE_ENRICH);
	CHECK_INT(k.revoked_at, 0);
	memcpy(other, h, sizeof other);
	other[0] ^= 1;
	CHECK_INT(st_client_key_by_hash(s, other, &k), ENR_E_NOT_FOUND);
	CHECK_INT(st_client_key_revoke(s, kid, 2000), ENR_OK);
	CHECK_INT(st_client_key_revoke(s, kid, 2001), ENR_E_NOT_FOUND);
	CHECK_INT(st_client_key_by_hash(s, h, &k), ENR_OK);
	CHECK_INT(k.revoked_at, 2000);
	CHECK_INT(st_client_key_each(s, acc, count_keys, &n), ENR_OK);
	CHECK_INT(n, 1);
	/* The key itself is nowhere in the database file. */
	snprintf(cmd, sizeof cmd, "grep -q -a '%s' %s/t%d.db %s/t%d.db-wal 2>/dev/null", key + 4,
		 dir, dbn - 1, dir, dbn - 1);
	CHECK(system(cmd) != 0);
	st_close(s);
}

static struct st_admit_req req(int64_t acc, int64_t now_ms, int cost, int64_t records)
{
	struct st_admit_req q = { .account_id = acc, .limits = dflt, .now_ms = now_ms,
				  .request_cost = cost, .records = records };

	return q;
}

TEST(admission_bucket_quota_and_usage)
{
	struct store *s = fresh();
	struct st_admit_req q;
	struct st_admit_res r;
	int64_t acc, t = 1795392000000LL; /* a UTC midnight, in ms */
	int allowed = 0;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1000, &acc) == ENR_OK);
	for (int i = 0; i < 8; i++) {
		q = req(acc, t, 1, 1);
		REQUIRE(st_admit(s, &q, &r) == ENR_OK);
		allowed += r.verdict == ST_ADMIT_OK;
	}
	CHECK_INT(allowed, 5);
	CHECK_INT(r.verdict, ST_ADMIT_RATE_LIMITED);
	CHECK_INT(r.retry_after_s, 1);
	CHECK_INT(r.bucket_remaining, 0);
	CHECK_INT(r.hour_remaining, 95);

	/* A batch of 96 records does not fit the hour (95 left): nothing is
	 * counted, and the answer says how many would. */
	q = req(acc, t + 60000, 0, 96);
	REQUIRE(st_admit(s, &q, &r) == ENR_OK);
	CHECK_INT(r.verdict, ST_ADMIT_QUOTA);
	CHECK_INT(r.records_fit, 95);
	CHECK_INT(r.retry_after_s, 3600 - 60);
	q = req(acc, t + 60000, 0, 95);
	REQUIRE(st_admit(s, &q, &r) == ENR_OK);
	CHECK_INT(r.verdict, ST_ADMIT_OK);
	CHECK_INT(r.hour_remaining, 0);
	CHECK_INT(r.day_remaining, 900);
	/* The next hour has room again. */
	q = req(acc, t + 3600000, 1, 1);
	REQUIRE(st_admit(s, &q, &r) == ENR_OK);
	CHECK_INT(r.verdict, ST_ADMIT_OK);
	CHECK_INT(r.hour_remaining, 99);
	CHECK_INT(st_usage_add_credits(s, acc, t / 1000, 7), ENR_OK);
	st_close(s);
}

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

TEST(usage_is_recorded_per_day)
{
	struct store *s = fresh();
	struct st_admit_req q;
	struct st_admit_res r;
	struct usage_sum u = { 0, 0, 0, 0, 0 };
	int64_t acc, t = 1795392000000LL;
	char day[11];

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1000, &acc) == ENR_OK);
	for (int i = 0; i < 7; i++) {
		q = req(acc, t, 1, 1);
		st_admit(s, &q, &r);
	}
	q = req(acc, t - 1000, 1, 1); /* the previous day: earlier clock, still a request */
	st_admit(s, &q, &r);
	st_usage_add_credits(s, acc, t / 1000, 3);
	st_day(t / 1000, day);
	CHECK_STR(day, "2026-11-23");
	CHECK_INT(st_usage_each(s, acc, day, sum_usage, &u), ENR_OK);
	CHECK_INT(u.rows, 1);
	CHECK_INT(u.requests, 5);
	CHECK_INT(u.records, 5);
	CHECK_INT(u.rejections, 2);
	CHECK_INT(u.credits, 3);
	memset(&u, 0, sizeof u);
	CHECK_INT(st_usage_each(s, -1, "2026-11-22", sum_usage, &u), ENR_OK);
	CHECK_INT(u.rows, 2);
	st_close(s);
}

struct race {
	struct store *s;
	int64_t acc;
	int64_t now_ms;
	int allowed;
};

static void *racer(void *arg)
{
	struct race *x = arg;

	for (int i = 0; i < 50; i++) {
		struct st_admit_req q = { .account_id = x->acc, .limits = { 1, 40, 1000000, 1000000 },
					  .now_ms = x->now_ms, .request_cost = 1, .records = 1 };
		struct st_admit_res r;

		if (st_admit(x->s, &q, &r) == ENR_OK && r.verdict == ST_ADMIT_OK)
			x->allowed++;
	}
	st_thread_release(x->s);
	return NULL;
}

TEST(concurrent_admission_is_exact)
{
	struct store *s = fresh();
	struct race rs[8];
	pthread_t t[8];
	int64_t acc;
	int total = 0;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1000, &acc) == ENR_OK);
	for (int i = 0; i < 8; i++) {
		rs[i] = (struct race){ s, acc, 1795392000000LL, 0 };
		pthread_create(&t[i], NULL, racer, &rs[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		total += rs[i].allowed;
	}
	CHECK_INT(total, 40); /* 400 attempts at one instant, burst 40 */
	st_close(s);
}

int main(void)
{
	char cmd[300];

	if (mkdtemp(dir) == NULL)
		return 1;
	log_set_level(LOG_LVL_WARN);
	RUN(migrates_from_empty_and_from_each_version);
	RUN(refuses_a_newer_schema);
	RUN(unopenable_store_is_unavailable);
	RUN(probe_write_and_what_unavailable_means);
	RUN(a_failed_write_logs_one_line);
	RUN(accounts);
	RUN(client_keys_store_only_the_hash);
	RUN(admission_bucket_quota_and_usage);
	RUN(usage_is_recorded_per_day);
	RUN(concurrent_admission_is_exact);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return harness_done();
}
