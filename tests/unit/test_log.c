/*
 * test_log.c - line format, escaping, levels, request ids.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

#include "harness.h"

static char captured[8192];

/* Run fn with the log pointed at a pipe; return what it wrote. */
static const char *capture(void (*fn)(void))
{
	int p[2];
	ssize_t n;

	if (pipe(p) != 0)
		return "";
	log_set_fd(p[1]);
	fn();
	close(p[1]);
	n = read(p[0], captured, sizeof captured - 1);
	close(p[0]);
	captured[n > 0 ? n : 0] = '\0';
	log_set_fd(2);
	return captured;
}

static void write_info(void)
{
	log_set_request_id("abc123");
	log_info("cfg", "loaded %s with %d keys", "x.conf", 3);
	log_set_request_id(NULL);
}

TEST(line_has_time_level_rid_module_message)
{
	const char *s;

	log_set_level(LOG_LVL_INFO);
	s = capture(write_info);
	/* 2026-11-23T09:23:36.123Z level=info rid=abc123 mod=cfg msg="..." */
	CHECK(strlen(s) > 25 && s[4] == '-' && s[10] == 'T' && s[23] == 'Z');
	CHECK(strstr(s, " level=info rid=abc123 mod=cfg msg=\"loaded x.conf with 3 keys\"\n") != NULL);
	CHECK_INT((long long)(strchr(s, '\n') - s), (long long)strlen(s) - 1); /* one line */
}

static void write_hostile(void)
{
	log_warn("edge", "header %s", "a\"b\\c\nlevel=error fake\x01\xff");
}

TEST(untrusted_bytes_are_escaped)
{
	const char *s = capture(write_hostile);

	CHECK(strstr(s, "msg=\"header a\\\"b\\\\c\\x0alevel=error fake\\x01\\xff\"\n") != NULL);
	CHECK_INT((long long)(strchr(s, '\n') - s), (long long)strlen(s) - 1);
}

static void write_levels(void)
{
	log_set_level(LOG_LVL_WARN);
	log_info("m", "dropped");
	log_debug("m", "dropped");
	log_warn("m", "kept-warn");
	log_error("m", "kept-error");
	log_notice("m", "kept-notice");
	log_set_level(LOG_LVL_INFO);
}

TEST(levels_filter_but_notice_always_written)
{
	const char *s = capture(write_levels);

	CHECK(strstr(s, "dropped") == NULL);
	CHECK(strstr(s, "level=warn") && strstr(s, "kept-warn"));
	CHECK(strstr(s, "level=error") && strstr(s, "kept-error"));
	CHECK(strstr(s, "level=notice") && strstr(s, "kept-notice"));
}

static void write_access(void)
{
	log_set_request_id("r1");
	log_access("GET", "/health?x=\"1\"", 200, 1.234, NULL);
	log_access("POST", "/enrich", 200, 2.5, "acme");
	log_set_request_id(NULL);
}

TEST(access_line_names_the_account)
{
	const char *s = capture(write_access);

	CHECK(strstr(s, "level=info rid=r1 mod=access method=GET path=\"/health?x=\\\"1\\\"\" status=200 ms=1.23 account=-\n") != NULL);
	CHECK(strstr(s, "mod=access method=POST path=\"/enrich\" status=200 ms=2.50 account=acme\n") != NULL);
}

static void write_json(void)
{
	log_set_format(LOG_FMT_JSON);
	log_set_request_id("r2");
	log_warn("edge", "q\"b\\c\nnew\x01 caf\xc3\xa9 bad\xff\xc3");
	log_access("GET", "/a\"b", 404, 0.5, "acme");
	log_access("GET", "/health", 200, 0.25, "");
	log_set_request_id(NULL);
	log_set_format(LOG_FMT_TEXT);
}

TEST(json_lines_are_one_valid_object_each)
{
	const char *s = capture(write_json);
	const char *nl1 = strchr(s, '\n'), *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;

	CHECK(strncmp(s, "{\"ts\":\"", 7) == 0);
	CHECK(strstr(s, "\",\"level\":\"warn\",\"rid\":\"r2\",\"mod\":\"edge\","
			"\"msg\":\"q\\\"b\\\\c\\u000anew\\u0001 caf\xc3\xa9 bad\\ufffd\\ufffd\"}\n") != NULL);
	CHECK(nl1 && nl2);
	CHECK(strstr(s, "\"mod\":\"access\",\"method\":\"GET\",\"path\":\"/a\\\"b\",\"status\":404,"
			"\"ms\":0.50,\"account\":\"acme\"}\n") != NULL);
	CHECK(strstr(s, "\"path\":\"/health\",\"status\":200,\"ms\":0.25,\"account\":\"-\"}\n") != NULL);
}

TEST(json_escape_refuses_bad_utf8)
{
	char out[64];

	/* An overlong encoding, a surrogate, a lone continuation byte. */
	log_escape_json("\xc0\xaf|\xed\xa0\x80|\x80", 8, out, sizeof out);
	CHECK_STR(out, "\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|\\ufffd");
	log_escape_json("\xf0\x9f\x98\x80", 4, out, sizeof out);
	CHECK_STR(out, "\xf0\x9f\x98\x80");
}

TEST(level_names_parse)
{
	enum log_level l;

	CHECK(log_level_parse("warn", &l) && l == LOG_LVL_WARN);
	CHECK(log_level_parse("debug", &l) && l == LOG_LVL_DEBUG);
	CHECK(!log_level_parse("notice", &l)); /* not a filter level */
	CHECK(!log_level_parse("WARN", &l));
}

TEST(escape_truncates_with_marker)
{
	char out[12];
	unsigned n = log_escape("0123456789abcdef", 16, out, sizeof out);

	CHECK_INT(n, strlen(out));
	CHECK(strlen(out) < sizeof out);
	CHECK(strstr(out, "...") != NULL);
}

TEST(request_id_is_truncated_to_cap)
{
	char longid[200];

	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	log_set_request_id(longid);
	CHECK_INT(strlen(log_request_id()), 64);
	log_set_request_id(NULL);
	CHECK_STR(log_request_id(), "-");
}

int main(void)
{
	RUN(line_has_time_level_rid_module_message);
	RUN(untrusted_bytes_are_escaped);
	RUN(levels_filter_but_notice_always_written);
	RUN(access_line_names_the_account);
	RUN(json_lines_are_one_valid_object_each);
	RUN(json_escape_refuses_bad_utf8);
	RUN(level_names_parse);
	RUN(escape_truncates_with_marker);
	RUN(request_id_is_truncated_to_cap);
	return harness_done();
}
