/*
 * test_checkpoint.c - the enrich-batch checkpoint file (lib/checkpoint.c).
 *
 * Files live in a fresh temporary directory (the lock and the WAL need a
 * real file); time is passed in, nothing sleeps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/checkpoint.h"
#include "lib/util.h"

#include "harness.h"

static char dir[] = "/tmp/enrichd-ckpt-XXXXXX";
static int fileno_;

static void fresh_path(char *out, size_t n)
{
	snprintf(out, n, "%s/c%d.checkpoint", dir, fileno_++);
}

static struct ckpt_row row(int64_t n, enum ckpt_state s, const char *out)
{
	struct ckpt_row r;

	memset(&r, 0, sizeof r);
	r.n = n;
	r.line = n + 1;
	r.state = s;
	r.code = s == CKPT_FAILED ? "no_key" : "";
	r.reason = s == CKPT_FAILED ? "no usable key for pdl" : "";
	r.out = out;
	r.out_len = strlen(out);
	r.credits = s == CKPT_COMPLETE ? 1 : 0;
	r.calls = 1;
	return r;
}

/* Read a count straight from the file, the way another program would. */
static long long count_rows(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM rows", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static struct ckpt_ident ident(const char *sha, const char *fields)
{
	struct ckpt_ident id;

	memset(&id, 0, sizeof id);
	util_strlcpy(id.input, "/data/in.csv", sizeof id.input);
	id.size = 1234;
	util_strlcpy(id.sha256, sha, sizeof id.sha256);
	util_strlcpy(id.fields, fields, sizeof id.fields);
	id.rows = 10;
	return id;
}

TEST(create_requires_the_flag_and_absent_is_not_found)
{
	char p[256];
	struct ckpt *c = NULL;
	struct stat st;

	fresh_path(p, sizeof p);
	CHECK_INT(ckpt_open(p, 0, &c), ENR_E_NOT_FOUND);
	CHECK(c == NULL);
	CHECK(stat(p, &st) != 0);
	REQUIRE(ckpt_open(p, CKPT_CREATE, &c) == ENR_OK);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 077) == 0);
	ckpt_close(c);
	c = NULL;
	CHECK_INT(ckpt_open(p, 0, &c), ENR_OK);
	ckpt_close(c);
	ckpt_close(NULL);
}

TEST(identity_round_trips_and_is_absent_at_first)
{
	char p[256];
	struct ckpt *c = NULL;
	struct ckpt_ident got, want = ident("ab12", "first_name,title");

	fresh_path(p, sizeof p);
	REQUIRE(ckpt_open(p, CKPT_CREATE, &c) == ENR_OK);
	CHECK_INT(ckpt_ident_get(c, &got), ENR_E_NOT_FOUND);
	CHECK_INT(ckpt_ident_set(c, &want), ENR_OK);
	ckpt_close(c);
	REQUIRE(ckpt_open(p, 0, &c) == ENR_OK);
	memset(&got, 0, sizeof got);
	CHECK_INT(ckpt_ident_get(c, &got), ENR_OK);
	CHECK_STR(got.input, "/data/in.csv");
	CHECK_INT(got.size, 1234);
	CHECK_STR(got.sha256, "ab12");
	CHECK_STR(got.fields, "first_name,title");
	CHECK_INT(got.rows, 10);
	ckpt_close(c);
}

TEST(a_second_handle_is_refused_while_the_first_is_open)
{
	char p[256];
	struct ckpt *a = NULL, *b = NULL;

	fresh_path(p, sizeof p);
	REQUIRE(ckpt_open(p, CKPT_CREATE, &a) == ENR_OK);
	CHECK_INT(ckpt_open(p, CKPT_CREATE, &b), ENR_E_CONFLICT);
	CHECK(b == NULL);
	ckpt_close(a);
	CHECK_INT(ckpt_open(p, 0, &b), ENR_OK);
	ckpt_close(b);
}

TEST(other_files_are_not_checkpoints)
{
	char p[256], q[256];
	struct ckpt *c = NULL;
	sqlite3 *db = NULL;
	FILE *f;
	struct stat st;

	fresh_path(p, sizeof p);
	f = fopen(p, "w");
	REQUIRE(f != NULL);
	fputs("email,name\nsomeone@example.com,Someone\n", f);
	fclose(f);
	CHECK_INT(ckpt_open(p, CKPT_CREATE, &c), ENR_E_INVALID);
	CHECK(c == NULL);
	CHECK(stat(p, &st) == 0); /* not ours: left alone */

	fresh_path(q, sizeof q);
	REQUIRE(sqlite3_open(q, &db) == SQLITE_OK);
	sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL);
	sqlite3_close(db);
	CHECK_INT(ckpt_open(q, 0, &c), ENR_E_INVALID);
	CHECK(c == NULL);

	CHECK_INT(ckpt_open("/nonexistent-dir/x.checkpoint", CKPT_CREATE, &c), ENR_E_IO);
}

TEST(rows_commit_in_batches_by_count_and_age)
{
	char p[256];
	struct ckpt *c = NULL;

	fresh_path(p, sizeof p);
	REQUIRE(ckpt_open(p, CKPT_CREATE, &c) == ENR_OK);
	/* Under the batch size and younger than the age: nothing committed. */
	for (int i = 1; i < CKPT_BATCH_ROWS; i++) {
		struct ckpt_row r = row(i, CKPT_COMPLETE, "a,b\r\n");

		CHECK_INT(ckpt_put(c, &r, 1000), ENR_OK);
	}
	CHECK_INT(ckpt_pending(c), CKPT_BATCH_ROWS - 1);
	CHECK_INT(count_rows(p), 0);
	/* The batch fills up: committed. */
	{
		struct ckpt_row r = row(CKPT_BATCH_ROWS, CKPT_COMPLETE, "a,b\r\n");

		CHECK_INT(ckpt_put(c, &r, 1000), ENR_OK);
	}
	CHECK_INT(ckpt_pending(c), 0);
	CHECK_INT(count_rows(p), CKPT_BATCH_ROWS);
	/* One row, then time passes: a tick commits it, not before. */
	{
		struct ckpt_row r = row(100, CKPT_NOT_FOUND, "x\r\n");

		CHECK_INT(ckpt_put(c, &r, 5000), ENR_OK);
	}
	CHECK_INT(ckpt_tick(c, 5000 + CKPT_BATCH_MS - 1), ENR_OK);
	CHECK_INT(count_rows(p), CKPT_BATCH_ROWS);
	CHECK_INT(ckpt_tick(c, 5000 + CKPT_BATCH_MS), ENR_OK);
	CHECK_INT(count_rows(p), CKPT_BATCH_ROWS + 1);
	/* A row put when the oldest pending one is old commits at once. */
	{
		struct ckpt_row r = row(101, CKPT_NOT_FOUND, "x\r\n");
		struct ckpt_row r2 = row(102, CKPT_NOT_FOUND, "x\r\n");

		CHECK_INT(ckpt_put(c, &r, 9000), ENR_OK);
		CHECK_INT(ckpt_put(c, &r2, 9000 + CKPT_BATCH_MS), ENR_OK);
	}
	CHECK_INT(count_rows(p), CKPT_BATCH_ROWS + 3);
	/* flush commits whatever is there. */
	{
		struct ckpt_row r = row(103, CKPT_PARTIAL, "x\r\n");

		CHECK_INT(ckpt_put(c, &r, 9999), ENR_OK);
	}
	CHECK_INT(ckpt_flush(c), ENR_OK);
	CHECK_INT(count_rows(p), CKPT_BATCH_ROWS + 4);
	ckpt_close(c);
}

TEST(close_commits_pending_rows)
{
	char p[256];
	struct ckpt *c = NULL;
	struct ckpt_row r = row(7, CKPT_COMPLETE, "seven\r\n");

	fresh_path(p, sizeof p);
	REQUIRE(ckpt_open(p, CKPT_CREATE, &c) == ENR_OK);
	CHECK_INT(ckpt_put(c, &r, 0), ENR_OK);
	ckpt_close(c);
	CHECK_INT(count_rows(p), 1);
}

TEST(a_crash_loses_only_the_open_batch)
{
	char p[256];
	struct ckpt *c = NULL;
	struct ckpt_counts k;
	pid_t pid;
	int status = 0;

	fresh_path(p, sizeof p);
	REQUIRE(ckpt_open(p, CKPT_CREATE, &c) == ENR_OK);
	ckpt_close(c);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct ckpt *cc = NULL;

		if (ckpt_open(p, 0, &cc) != ENR_OK)
			_exit(3);
		for (int i = 1; i <= 5; i++) {
			struct ckpt_row r = row(i, CKPT_COMPLETE, "row\r\n");

			CHECK_INT(ckpt_put(cc, &r, 0), ENR_OK);
		}
		CHECK_INT(ckpt_flush(cc), ENR_OK);
		for (int i = 6; i <= 8; i++) {
			struct ckpt_row r = row(i, CKPT_COMPLETE, "row\r\n");

			CHECK_INT(ckpt_put(cc, &r, 0), ENR_OK);
		}
		_exit(0); /* no close: rows 6..8 were never committed */
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	REQUIRE(ckpt_open(p, 0, &c) == ENR_OK);
	CHECK_INT(ckpt_counts(c, &k), ENR_OK);
	CHECK_INT(k.done, 5);
	ckpt_close(c);
}

struct collected {
	char text[512];
	int n;
};

static int collect(void *arg, const struct ckpt_row *r)
{
	struct collected *col = arg;
	size_t len = strlen(col->text);

	snprintf(col->text + len, sizeof col->text - len, "%lld:%s:%s:%.*s:%d:%d;", (long long)r->n,
		 ckpt_state_names[r->state], r->code, (int)r->out_len, r->out, r->credits,
		 r->attempts);
	return ++col->n == 100;
}

static int stop_after_two(void *arg, const struct ckpt_row *r)
{
	(void)r;
	return ++*(int *)arg == 2;
}

static int collect_codes(void *arg, const char *code, int64_t n)
{
	struct collected *col = arg;
	size_t len = strlen(col->text);

	snprintf(col->text + len, sizeof col->text - len, "%s=%lld;", code, (long long)n);
	return 0;
}

TEST(rows_read_back_in_order_with_states_counts_and_codes)
{
	char p[256];
	struct ckpt *c = NULL;
	struct ckpt_counts k;
	struct collected col;
	signed char states[6];
	int seen = 0;
	struct ckpt_row r;

	fresh_path(p, sizeof p);
	REQUIRE(ckpt_open(p, CKPT_CREATE, &c) == ENR_OK);
	r = row(3, CKPT_FAILED, "c\r\n");
	CHECK_INT(ckpt_put(c, &r, 0), ENR_OK);
	r = row(1, CKPT_COMPLETE, "a\r\n");
	CHECK_INT(ckpt_put(c, &r, 0), ENR_OK);
	r = row(2, CKPT_INVALID, "b\r\n");
	r.code = "invalid_email";
	CHECK_INT(ckpt_put(c, &r, 0), ENR_OK);
	r = row(9, CKPT_NOT_FOUND, "");
	CHECK_INT(ckpt_put(c, &r, 0), ENR_OK);
	r = row(0, CKPT_COMPLETE, "zero\r\n");
	CHECK_INT(ckpt_put(c, &r, 0), ENR_E_INVALID);
	CHECK_INT(ckpt_flush(c), ENR_OK);

	memset(&col, 0, sizeof col);
	CHECK_INT(ckpt_each(c, 0, collect, &col), ENR_OK);
	CHECK_STR(col.text, "1:complete::a\r\n:1:1;2:invalid:invalid_email:b\r\n:0:1;"
			    "3:failed:no_key:c\r\n:0:1;9:not_found:::0:1;");
	memset(&col, 0, sizeof col);
	CHECK_INT(ckpt_each(c, 1u << CKPT_FAILED | 1u << CKPT_INVALID, collect, &col), ENR_OK);
	CHECK_STR(col.text, "2:invalid:invalid_email:b\r\n:0:1;3:failed:no_key:c\r\n:0:1;");
	CHECK_INT(ckpt_each(c, 0, stop_after_two, &seen), ENR_OK);
	CHECK_INT(seen, 2);

	CHECK_INT(ckpt_states(c, states, sizeof states), ENR_OK);
	CHECK_INT(states[0], -1);
	CHECK_INT(states[1], CKPT_COMPLETE);
	CHECK_INT(states[2], CKPT_INVALID);
	CHECK_INT(states[3], CKPT_FAILED);
	CHECK_INT(states[4], -1);
	CHECK_INT(states[5], -1); /* row 9 lies beyond the array */

	CHECK_INT(ckpt_counts(c, &k), ENR_OK);
	CHECK_INT(k.done, 4);
	CHECK_INT(k.state[CKPT_COMPLETE], 1);
	CHECK_INT(k.state[CKPT_FAILED], 1);
	CHECK_INT(k.state[CKPT_INVALID], 1);
	CHECK_INT(k.state[CKPT_NOT_FOUND], 1);
	CHECK_INT(k.state[CKPT_PARTIAL], 0);
	CHECK_INT(k.credits, 1);
	CHECK_INT(k.calls, 4);

	memset(&col, 0, sizeof col);
	CHECK_INT(ckpt_codes(c, collect_codes, &col), ENR_OK);
	CHECK_STR(col.text, "invalid_email=1;no_key=1;");
	ckpt_close(c);
}

TEST(a_retried_row_replaces_its_result_and_adds_up_its_costs)
{
	char p[256];
	struct ckpt *c = NULL;
	struct collected col;
	struct ckpt_counts k;
	struct ckpt_row r;

	fresh_path(p, sizeof p);
	REQUIRE(ckpt_open(p, CKPT_CREATE, &c) == ENR_OK);
	r = row(4, CKPT_FAILED, "old\r\n");
	r.credits = 2;
	CHECK_INT(ckpt_put(c, &r, 0), ENR_OK);
	r = row(4, CKPT_COMPLETE, "new\r\n");
	r.credits = 3;
	CHECK_INT(ckpt_put(c, &r, 0), ENR_OK);
	CHECK_INT(ckpt_flush(c), ENR_OK);
	memset(&col, 0, sizeof col);
	CHECK_INT(ckpt_each(c, 0, collect, &col), ENR_OK);
	CHECK_STR(col.text, "4:complete::new\r\n:5:2;");
	CHECK_INT(ckpt_counts(c, &k), ENR_OK);
	CHECK_INT(k.done, 1);
	CHECK_INT(k.calls, 2);
	ckpt_close(c);
}

TEST(remove_takes_the_wal_files_too)
{
	char p[256], w[300];
	struct ckpt *c = NULL;
	struct ckpt_row r = row(1, CKPT_COMPLETE, "a\r\n");
	struct stat st;

	fresh_path(p, sizeof p);
	REQUIRE(ckpt_open(p, CKPT_CREATE, &c) == ENR_OK);
	CHECK_INT(ckpt_put(c, &r, 0), ENR_OK);
	CHECK_INT(ckpt_flush(c), ENR_OK);
	snprintf(w, sizeof w, "%s-wal", p);
	CHECK(stat(w, &st) == 0);
	ckpt_close(c);
	CHECK_INT(ckpt_remove(p), ENR_OK);
	CHECK(stat(p, &st) != 0 && stat(w, &st) != 0);
	CHECK_INT(ckpt_remove(p), ENR_OK);
}

TEST(state_names_parse)
{
	enum ckpt_state s;

	for (int i = 0; i < CKPT_STATE__MAX; i++) {
		CHECK(ckpt_state_parse(ckpt_state_names[i], &s));
		CHECK_INT(s, i);
	}
	CHECK(!ckpt_state_parse("done", &s));
}

int main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(create_requires_the_flag_and_absent_is_not_found);
	RUN(identity_round_trips_and_is_absent_at_first);
	RUN(a_second_handle_is_refused_while_the_first_is_open);
	RUN(other_files_are_not_checkpoints);
	RUN(rows_commit_in_batches_by_count_and_age);
	RUN(close_commits_pending_rows);
	RUN(a_crash_loses_only_the_open_batch);
	RUN(rows_read_back_in_order_with_states_counts_and_codes);
	RUN(a_retried_row_replaces_its_result_and_adds_up_its_costs);
	RUN(remove_takes_the_wal_files_too);
	RUN(state_names_parse);
	{
		char cmd[64];

		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return harness_done();
}
