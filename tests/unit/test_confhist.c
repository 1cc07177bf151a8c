/*
 * test_confhist.c - the history of applied configurations: record, list,
 * rollback, the cap of LIM_CONF_HISTORY_MAX entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/confhist.h"
#include "lib/util.h"

#include "harness.h"

static char dir[] = "/tmp/enrichd-ch-XXXXXX";
static char state[300], conf[300];

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* The file's text, "" when it cannot be read; valid until the next call. */
static const char *get(const char *path)
{
	static char *text;
	size_t n;

	free(text);
	text = NULL;
	if (util_read_file(path, 4096, 0, &text, &n) != ENR_OK)
		return "";
	return text;
}

/* A fresh state directory and configuration file for each test. */
static void fresh(const char *name)
{
	snprintf(state, sizeof state, "%s/%s-state", dir, name);
	snprintf(conf, sizeof conf, "%s/%s.conf", dir, name);
}

static void apply(const char *text, int64_t t)
{
	bool added = false;

	put(conf, text);
	CHECK_INT(ch_record(state, conf, t, NULL, &added), ENR_OK);
	CHECK(added);
}

TEST(file_checksum_is_sha256)
{
	char sha[CH_SHA_HEX], p[320];

	snprintf(p, sizeof p, "%s/abc", dir);
	put(p, "abc");
	CHECK_INT(ch_file_sha(p, sha), ENR_OK);
	CHECK_STR(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	snprintf(p, sizeof p, "%s/missing", dir);
	CHECK_INT(ch_file_sha(p, sha), ENR_E_IO);
}

TEST(record_keeps_copy_index_and_last_good)
{
	struct ch_entry e[LIM_CONF_HISTORY_MAX];
	char sha[CH_SHA_HEX], p[400];
	size_t n = 99;
	bool added = true;

	fresh("record");
	CHECK_INT(ch_list(state, e, LIM_CONF_HISTORY_MAX, &n), ENR_OK);
	CHECK_INT(n, 0);
	put(conf, "threads = 1;\n");
	CHECK_INT(ch_record(state, conf, 100, sha, &added), ENR_OK);
	CHECK(added);
	snprintf(p, sizeof p, "%s/last-good.conf", state);
	CHECK_STR(get(p), "threads = 1;\n");
	snprintf(p, sizeof p, "%s/history/%s.conf", state, sha);
	CHECK_STR(get(p), "threads = 1;\n");

	/* A restart on the same file adds nothing. */
	CHECK_INT(ch_record(state, conf, 200, NULL, &added), ENR_OK);
	CHECK(!added);
	put(conf, "threads = 2;\n");
	CHECK_INT(ch_record(state, conf, 300, NULL, &added), ENR_OK);
	CHECK(added);
	CHECK_INT(ch_list(state, e, LIM_CONF_HISTORY_MAX, &n), ENR_OK);
	REQUIRE(n == 2);
	CHECK_INT(e[0].time_s, 300);
	CHECK_INT(e[1].time_s, 100);
	CHECK_STR(e[1].sha, sha);
	snprintf(p, sizeof p, "%s/last-good.conf", state);
	CHECK_STR(get(p), "threads = 2;\n");

	/* The same content applied again later is a new entry. */
	put(conf, "threads = 1;\n");
	CHECK_INT(ch_record(state, conf, 400, NULL, &added), ENR_OK);
	CHECK(added);
	CHECK_INT(ch_list(state, e, LIM_CONF_HISTORY_MAX, &n), ENR_OK);
	CHECK_INT(n, 3);
	CHECK_STR(e[0].sha, sha);
}

TEST(record_keeps_the_last_ten)
{
	struct ch_entry e[LIM_CONF_HISTORY_MAX + 5];
	char first[CH_SHA_HEX], text[64], p[400];
	size_t n = 0;

	fresh("ten");
	for (int i = 0; i < 12; i++) {
		snprintf(text, sizeof text, "threads = %d;\n", i + 1);
		put(conf, text);
		CHECK_INT(ch_record(state, conf, 1000 + i, i == 0 ? first : NULL, NULL), ENR_OK);
	}
	CHECK_INT(ch_list(state, e, LIM_CONF_HISTORY_MAX + 5, &n), ENR_OK);
	CHECK_INT(n, LIM_CONF_HISTORY_MAX);
	CHECK_INT(e[0].time_s, 1011);
	CHECK_INT(e[n - 1].time_s, 1002);
	/* The copy of an entry that fell off is gone. */
	snprintf(p, sizeof p, "%s/history/%s.conf", state, first);
	CHECK(access(p, F_OK) != 0);
}

TEST(record_fails_cleanly)
{
	char p[400];

	fresh("fail");
	snprintf(p, sizeof p, "%s/none.conf", dir);
	CHECK_INT(ch_record(state, p, 1, NULL, NULL), ENR_E_IO);
	put(conf, "threads = 1;\n");
	CHECK_INT(ch_record("/proc/enrichd-cannot-exist/state", conf, 1, NULL, NULL), ENR_E_IO);
}

TEST(rollback_after_a_good_change_returns_to_the_previous_file)
{
	struct ch_rollback rb;
	struct ch_entry e[LIM_CONF_HISTORY_MAX];
	size_t n = 0;

	fresh("prev");
	apply("threads = 1;\n", 10);
	apply("threads = 2;\n", 20);
	CHECK_INT(ch_rollback(state, conf, NULL, 30, &rb), ENR_OK);
	CHECK_STR(get(conf), "threads = 1;\n");
	CHECK(!rb.kept_rejected);
	CHECK_INT(rb.to.time_s, 10);
	/* Nothing is recorded until the file is applied again. */
	CHECK_INT(ch_list(state, e, LIM_CONF_HISTORY_MAX, &n), ENR_OK);
	CHECK_INT(n, 2);
}

TEST(rollback_of_a_never_applied_file_keeps_it_as_rejected)
{
	struct ch_rollback rb;
	char want[400];

	fresh("rej");
	apply("threads = 1;\n", 10);
	apply("threads = 2;\n", 20);
	put(conf, "threads = oops\n");
	/* 2026-11-23T12:03:10Z */
	CHECK_INT(ch_rollback(state, conf, NULL, 1795435390, &rb), ENR_OK);
	CHECK_STR(get(conf), "threads = 2;\n");
	CHECK(rb.kept_rejected);
	snprintf(want, sizeof want, "%s.rejected.20261123T120310Z", conf);
	CHECK_STR(rb.rejected, want);
	CHECK_STR(get(want), "threads = oops\n");
}

TEST(rollback_of_an_applied_file_edited_back_keeps_no_copy)
{
	struct ch_rollback rb;

	fresh("back");
	apply("threads = 1;\n", 10);
	apply("threads = 2;\n", 20);
	put(conf, "threads = 1;\n"); /* applied before, not now */
	CHECK_INT(ch_rollback(state, conf, NULL, 30, &rb), ENR_OK);
	CHECK_STR(get(conf), "threads = 2;\n");
	CHECK(!rb.kept_rejected);
}

TEST(rollback_to_a_checksum_prefix)
{
	struct ch_rollback rb;
	struct ch_entry e[LIM_CONF_HISTORY_MAX];
	char prefix[8];
	size_t n = 0;

	fresh("to");
	apply("threads = 1;\n", 10);
	apply("threads = 2;\n", 20);
	apply("threads = 3;\n", 30);
	CHECK_INT(ch_list(state, e, LIM_CONF_HISTORY_MAX, &n), ENR_OK);
	REQUIRE(n == 3);
	memcpy(prefix, e[2].sha, 7);
	prefix[7] = '\0';
	CHECK_INT(ch_rollback(state, conf, prefix, 40, &rb), ENR_OK);
	CHECK_STR(get(conf), "threads = 1;\n");
	CHECK_INT(ch_rollback(state, conf, "abc", 40, &rb), ENR_E_INVALID);
	CHECK_INT(ch_rollback(state, conf, "zzzzzzzz", 40, &rb), ENR_E_INVALID);
	CHECK_INT(ch_rollback(state, conf, e[0].sha[0] == '0' ? "1111111" : "0000000", 40, &rb),
		  ENR_E_NOT_FOUND);
	CHECK_STR(get(conf), "threads = 1;\n");
}

TEST(rollback_with_nothing_to_go_back_to)
{
	struct ch_rollback rb;

	fresh("none");
	put(conf, "threads = 1;\n");
	CHECK_INT(ch_rollback(state, conf, NULL, 1, &rb), ENR_E_NOT_FOUND);
	CHECK_INT(ch_record(state, conf, 1, NULL, NULL), ENR_OK);
	CHECK_INT(ch_rollback(state, conf, NULL, 2, &rb), ENR_E_NOT_FOUND);
	CHECK_STR(get(conf), "threads = 1;\n");
}

TEST(rollback_keeps_the_mode)
{
	struct ch_rollback rb;
	struct stat st;

	fresh("mode");
	apply("threads = 1;\n", 10);
	apply("threads = 2;\n", 20);
	REQUIRE(chmod(conf, 0600) == 0);
	CHECK_INT(ch_rollback(state, conf, NULL, 30, &rb), ENR_OK);
	REQUIRE(stat(conf, &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0600);
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	RUN(file_checksum_is_sha256);
	RUN(record_keeps_copy_index_and_last_good);
	RUN(record_keeps_the_last_ten);
	RUN(record_fails_cleanly);
	RUN(rollback_after_a_good_change_returns_to_the_previous_file);
	RUN(rollback_of_a_never_applied_file_keeps_it_as_rejected);
	RUN(rollback_of_an_applied_file_edited_back_keeps_no_copy);
	RUN(rollback_to_a_checksum_prefix);
	RUN(rollback_with_nothing_to_go_back_to);
	RUN(rollback_keeps_the_mode);
	{
		char cmd[400];

		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return harness_done();
}
