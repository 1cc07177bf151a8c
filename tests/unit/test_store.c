/*
 * test_store.c - what is particular to the SQLite back end: upgrades from
 * each earlier schema version (data included), a newer schema refused,
 * files that cannot be opened, no secret in the file.  Everything both
 * back ends share is in test_store_conformance.c.  Databases live in a
 * temporary directory (several connections must see one database, which
 * :memory: cannot do).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/admission.h"
#include "lib/auth.h"
#include "lib/jobs.h"
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
	if (st_open(url, NULL, &s) != ENR_OK)
		return NULL;
	return s;
}

static const struct cfg_account_limits dflt = { 60, 5, 100, 1000 };

TEST(migrates_from_empty_and_from_each_version)
{
	for (int start = 0; start <= 7; start++) {
		char url[256];
		struct store *s = NULL;
		int from = -1, to = -1, v = -1;

		snprintf(url, sizeof url, "sqlite:%s/m%d.db", dir, start);
		REQUIRE(st_open_raw(url, NULL, &s) == ENR_OK);
		CHECK_INT(st_migrate_to(s, start, &from, &to), ENR_OK);
		CHECK_INT(from, 0);
		CHECK_INT(to, start);
		st_close(s);
		/* Reopen as the program does: everything missing is applied. */
		REQUIRE(st_open(url, NULL, &s) == ENR_OK);
		CHECK_INT(st_schema_version(s, &v), ENR_OK);
		CHECK_INT(v, st_schema_latest(s));
		CHECK_INT(v, 7);
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
	REQUIRE(st_open(url, NULL, &s) == ENR_OK);
	st_close(s);
	snprintf(cmd, sizeof cmd, "sqlite3 %s/newer.db 'PRAGMA user_version = 999'", dir);
	REQUIRE(system(cmd) == 0);
	CHECK_INT(st_open(url, NULL, &s), ENR_E_STORE);
}

TEST(unopenable_store_is_unavailable)
{
	struct store *s = NULL;

	CHECK_INT(st_open("sqlite:/nonexistent/dir/x.db", NULL, &s), ENR_E_UNAVAILABLE);
	CHECK_INT(st_open("mysql://x", NULL, &s), ENR_E_INVALID);
}

/* A database of version 4 (buckets and quota windows in their own tables)
 * keeps its admission state through the upgrade to one row per account. */
TEST(upgrade_to_5_carries_buckets_and_windows)
{
	char url[256], cmd[1024];
	struct store *s = NULL;
	struct adm *a;
	struct adm_res r;
	int from = -1, to = -1;
	int64_t now_ms = 1795395600000LL; /* 01:00:00Z: a fresh hour */

	snprintf(url, sizeof url, "sqlite:%s/up.db", dir);
	REQUIRE(st_open_raw(url, NULL, &s) == ENR_OK);
	REQUIRE(st_migrate_to(s, 4, &from, &to) == ENR_OK);
	st_close(s);
	/* Account 1: 2 tokens left at now, 98 records used this hour. */
	snprintf(cmd, sizeof cmd,
		 "sqlite3 %s/up.db \"INSERT INTO accounts(id, name, created_at) VALUES (1, 'acme', 1);"
		 " INSERT INTO buckets VALUES (1, 2.0, %lld);"
		 " INSERT INTO quota_windows VALUES (1, 3600, %lld, 98);"
		 " INSERT INTO quota_windows VALUES (1, 86400, %lld, 98);\"",
		 dir, (long long)now_ms, (long long)(now_ms / 1000), (long long)(now_ms / 1000 - 3600));
	REQUIRE(system(cmd) == 0);
	REQUIRE(st_open(url, NULL, &s) == ENR_OK);
	a = adm_new(s, false, NULL);
	REQUIRE(a != NULL);
	REQUIRE(adm_check(a, 1, &dflt, 1, 1, now_ms, &r) == ENR_OK);
	CHECK_INT(r.verdict, ADM_OK);
	CHECK_INT(r.bucket_remaining, 1);
	CHECK_INT(r.hour_remaining, 1);
	CHECK_INT(r.day_remaining, 1000 - 99);
	REQUIRE(adm_check(a, 1, &dflt, 0, 2, now_ms, &r) == ENR_OK);
	CHECK_INT(r.verdict, ADM_QUOTA);
	CHECK_INT(r.records_fit, 1);
	adm_free(a);
	st_close(s);
}

TEST(client_keys_store_only_the_hash)
{
	struct store *s = fresh();
	char key[AUTH_KEY_LEN + 1], cmd[512];
	unsigned char h[AUTH_HASH_LEN];
	struct st_client_key k;
	int64_t acc, kid;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1000, &acc) == ENR_OK);
	REQUIRE(auth_key_generate(key) == ENR_OK);
	auth_key_hash(key, AUTH_KEY_LEN, h);
	CHECK_INT(st_client_key_insert(s, acc, "ci", h, key + 40, AUTH_SCOPE_ENRICH, 0, 1000, &kid),
		  ENR_OK);
	CHECK_INT(st_client_key_by_hash(s, h, &k), ENR_OK);
	/* The key itself is nowhere in the database file. */
	snprintf(cmd, sizeof cmd, "grep -q -a '%s' %s/t%d.db %s/t%d.db-wal 2>/dev/null", key + 4,
		 dir, dbn - 1, dir, dbn - 1);
	CHECK(system(cmd) != 0);
	st_close(s);
}

struct race {
	struct store *s;
	int64_t acc;
	int allowed;
};

static void *racer(void *arg)
{
	struct race *x = arg;
	struct adm *a = adm_new(x->s, false, NULL);
	struct cfg_account_limits l = { 1, 40, 1000000, 1000000 };

	for (int i = 0; a && i < 50; i++) {
		struct adm_res r;

		if (adm_check(a, x->acc, &l, 1, 1, 1795392000000LL, &r) == ENR_OK &&
		    r.verdict == ADM_OK)
			x->allowed++;
	}
	adm_free(a);
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
		rs[i] = (struct race){ s, acc, 0 };
		pthread_create(&t[i], NULL, racer, &rs[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		total += rs[i].allowed;
	}
	CHECK_INT(total, 40); /* 400 attempts at one instant, burst 40 */
	st_close(s);
}

TEST(probe_write_and_what_unavailable_means)
{
	struct store *s = fresh();

	REQUIRE(s != NULL);
	CHECK_INT(st_probe_write(s, 1000), ENR_OK);
	CHECK_INT(st_probe_write(s, 2000), ENR_OK); /* the same row, again */
	/* A database that takes no writes is unavailable, not a failed
	 * statement: the responder answers 503 and the client retries. */
	REQUIRE(st_sqlite_query_only(s, true) == ENR_OK);
	log_set_level(LOG_LVL_ERROR); /* the refusals below are expected */
	CHECK_INT(st_probe_write(s, 3000), ENR_E_UNAVAILABLE);
	CHECK_INT(st_ping(s), ENR_OK);
	log_set_level(LOG_LVL_WARN);
	REQUIRE(st_sqlite_query_only(s, false) == ENR_OK);
	CHECK_INT(st_probe_write(s, 4000), ENR_OK);
	CHECK_INT(st_sqlite_map(SQLITE_READONLY), ENR_E_UNAVAILABLE);
	CHECK_INT(st_sqlite_map(SQLITE_BUSY), ENR_E_UNAVAILABLE);
	CHECK_INT(st_sqlite_map(SQLITE_LOCKED), ENR_E_UNAVAILABLE);
	CHECK_INT(st_sqlite_map(SQLITE_IOERR_WRITE), ENR_E_UNAVAILABLE);
	CHECK_INT(st_sqlite_map(SQLITE_IOERR), ENR_E_UNAVAILABLE);
	CHECK_INT(st_sqlite_map(SQLITE_CANTOPEN), ENR_E_UNAVAILABLE);
	CHECK_INT(st_sqlite_map(SQLITE_FULL), ENR_E_UNAVAILABLE);
	CHECK_INT(st_sqlite_map(SQLITE_CONSTRAINT_UNIQUE), ENR_E_CONFLICT);
	CHECK_INT(st_sqlite_map(SQLITE_ERROR), ENR_E_STORE);
	CHECK_INT(st_sqlite_map(SQLITE_CORRUPT), ENR_E_STORE);
	st_close(s);
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

/* A transaction body that fails after SQLite has ended the transaction
 * itself, as it does on some full-disk and I/O errors. */
static enum enr_err body_sqlite_rolled_back(struct db_conn *c, void *arg)
{
	enum enr_err rc = c->ops->script(c, "ROLLBACK");

	(void)arg;
	return rc ? rc : ENR_E_UNAVAILABLE;
}

static enum enr_err tx_sqlite_rolled_back(struct store *s)
{
	return db_tx(s, body_sqlite_rolled_back, NULL);
}

/* A failed write whose transaction SQLite already rolled back logs nothing
 * more (no second, misleading "cannot rollback" line) and leaves the store
 * usable: the write lock is free and the next transaction commits. */
TEST(a_failed_write_logs_one_line)
{
	struct store *s = fresh();
	char text[4096];
	enum enr_err rc = ENR_OK;

	REQUIRE(s != NULL);
	CHECK_INT(log_lines_during(s, tx_sqlite_rolled_back, &rc, text, sizeof text), 0);
	CHECK_INT(rc, ENR_E_UNAVAILABLE);
	CHECK(strstr(text, "cannot rollback") == NULL);
	CHECK_INT(st_probe_write(s, 1000), ENR_OK);
	CHECK_INT(st_account_create(s, "after", 1, NULL), ENR_OK);
	st_close(s);
}

/* A statement that fails inside a job transaction (here: a column renamed
 * behind the store's back, so the statement cannot be prepared) rolls the
 * whole transaction back: cancel does not cancel rows of a job it could
 * not mark cancelled, retry does not requeue rows, a claim does not take
 * rows of a job it could not start. */
TEST(a_failed_statement_rolls_back_the_whole_job_transaction)
{
	struct store *s = fresh();
	struct st_job j, got;
	struct st_job_row rows[3] = { { "{}", false, NULL }, { "{}", false, NULL },
				      { "{}", false, NULL } };
	struct st_claim cl[3];
	char existing[ST_JOB_ID_LEN + 1], cmd[512];
	bool created, ended;
	int64_t acc, n = -1;
	int got_n = -1, db = dbn - 1;

	REQUIRE(s != NULL);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	memset(&j, 0, sizeof j);
	j.account_id = acc;
	REQUIRE(job_new_id(j.id) == ENR_OK);
	REQUIRE(st_job_create(s, &j, NULL, rows, 3, 1000, &created, existing) == ENR_OK);
	REQUIRE(st_rows_claim(s, "w", 1000, 60000, 1, cl, &got_n) == ENR_OK && got_n == 1);
	free(cl[0].input);
	REQUIRE(st_row_finish(s, j.seq, 1, "w", ST_ROW_FAILED, 0, NULL, "upstream_failed", "x", 0,
			      1000, &ended) == ENR_OK);
	st_close(s);
	snprintf(cmd, sizeof cmd,
		 "sqlite3 %s/t%d.db 'ALTER TABLE jobs RENAME COLUMN finished_ms TO gone_ms;"
		 " ALTER TABLE jobs RENAME COLUMN started_ms TO gone2_ms'", dir, db);
	REQUIRE(system(cmd) == 0);
	{
		char url[256];

		snprintf(url, sizeof url, "sqlite:%s/t%d.db", dir, db);
		REQUIRE(st_open(url, NULL, &s) == ENR_OK);
	}
	CHECK(st_job_cancel(s, j.seq, 2000) != ENR_OK);
	CHECK(st_job_retry(s, j.seq, 2000, &n) != ENR_OK);
	CHECK(st_rows_claim(s, "w2", 3000, 60000, 3, cl, &got_n) != ENR_OK);
	st_close(s);
	/* Nothing moved: two rows pending, one failed, nobody owns a row. */
	snprintf(cmd, sizeof cmd,
		 "test \"$(sqlite3 %s/t%d.db 'SELECT group_concat(state) FROM"
		 " (SELECT state FROM job_rows ORDER BY rownum); SELECT count(*) FROM job_rows"
		 " WHERE owner IS NOT NULL')\" = \"$(printf '3,0,0\\n0')\"", dir, db);
	CHECK(system(cmd) == 0);
	(void)got;
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
	RUN(upgrade_to_5_carries_buckets_and_windows);
	RUN(client_keys_store_only_the_hash);
	RUN(concurrent_admission_is_exact);
	RUN(probe_write_and_what_unavailable_means);
	RUN(a_failed_write_logs_one_line);
	RUN(a_failed_statement_rolls_back_the_whole_job_transaction);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return harness_done();
}
