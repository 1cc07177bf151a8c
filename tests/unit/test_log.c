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
	log_access("GET", "/health?x=\"1\"", 200, 1.234);
	log_set_request_id(NULL);
}

TEST(access_line)
{
	const char *s = capture(write_access);

	CHECK(strstr(s, "level=info rid=r1 mod=access method=GET path=\"/health?x=\\\"1\\\"\" status=200 ms=1.23\n") != NULL);
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
	RUN(access_line);
	RUN(level_names_parse);
	RUN(escape_truncates_with_marker);
	RUN(request_id_is_truncated_to_cap);
	return harness_done();
}
