/*
 * test_util.c - strict parsing, time formatting, hex, UTF-8, err tables,
 * ASCII classes (lib/ascii.h), sleeping, deadlines, jitter, whole files.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/ascii.h"
#include "lib/err.h"
#include "lib/util.h"

#include "harness.h"

TEST(parse_i64_accepts_whole_numbers_only)
{
	int64_t v = 7;

	CHECK_INT(util_parse_i64("42", 0, 100, &v), ENR_OK);
	CHECK_INT(v, 42);
	CHECK_INT(util_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), ENR_OK);
	CHECK(v == INT64_MIN);
	CHECK_INT(util_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v), ENR_OK);
	CHECK(v == INT64_MAX);
	v = 7;
	CHECK_INT(util_parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v), ENR_E_RANGE);
	CHECK_INT(util_parse_i64("", 0, 100, &v), ENR_E_INVALID);
	CHECK_INT(util_parse_i64("-", 0, 100, &v), ENR_E_INVALID);
	CHECK_INT(util_parse_i64(" 1", 0, 100, &v), ENR_E_INVALID);
	CHECK_INT(util_parse_i64("1 ", 0, 100, &v), ENR_E_INVALID);
	CHECK_INT(util_parse_i64("0x10", 0, 100, &v), ENR_E_INVALID);
	CHECK_INT(util_parse_i64("12a", 0, 100, &v), ENR_E_INVALID);
	CHECK_INT(util_parse_i64("101", 0, 100, &v), ENR_E_RANGE);
	CHECK_INT(util_parse_i64("-1", 0, 100, &v), ENR_E_RANGE);
	CHECK_INT(util_parse_i64(NULL, 0, 100, &v), ENR_E_INVALID);
	CHECK_INT(v, 7); /* untouched on failure */
	CHECK_INT(util_parse_i64n("123456", 3, 0, 1000, &v), ENR_OK);
	CHECK_INT(v, 123);
}

TEST(parse_double_strict)
{
	double d = 0;

	CHECK_INT(util_parse_double("1.5", 0, 2, &d), ENR_OK);
	CHECK_DBL(d, 1.5, 1e-12);
	CHECK_INT(util_parse_double("nan", -10, 10, &d), ENR_E_RANGE);
	CHECK_INT(util_parse_double("1e999", -10, 10, &d), ENR_E_RANGE);
	CHECK_INT(util_parse_double("1.5x", 0, 2, &d), ENR_E_INVALID);
	CHECK_INT(util_parse_double(" 1", 0, 2, &d), ENR_E_INVALID);
	CHECK_INT(util_parse_double("3", 0, 2, &d), ENR_E_RANGE);
}

TEST(time_formats_are_rfc3339_utc)
{
	char ms[25], s[21];

	util_fmt_time_ms(1795426216123LL, ms);
	CHECK_STR(ms, "2026-11-23T09:30:16.123Z");
	util_fmt_time_ms(0, ms);
	CHECK_STR(ms, "1970-01-01T00:00:00.000Z");
	util_fmt_time_s(1795426216LL, s);
	CHECK_STR(s, "2026-11-23T09:30:16Z");
	CHECK(util_now_ms() > 1700000000000LL);
	CHECK(util_mono_us() >= util_mono_ms() * 1000 - 1000);
}

TEST(random_and_hex)
{
	unsigned char a[16], b[16];
	char hex[33];
	static const unsigned char fixed[3] = { 0x00, 0xab, 0xff };

	CHECK_INT(util_random(a, sizeof a), ENR_OK);
	CHECK_INT(util_random(b, sizeof b), ENR_OK);
	CHECK(memcmp(a, b, sizeof a) != 0);
	util_hex(fixed, 3, hex);
	CHECK_STR(hex, "00abff");
}

TEST(integers_format_as_printf_does)
{
	static const int64_t vs[] = { 0, 7, -7, 10, 999, -1000, 1234567890123LL, INT64_MAX, INT64_MIN };
	char got[21], want[32];

	for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
		size_t n = util_fmt_i64(vs[i], got);

		snprintf(want, sizeof want, "%lld", (long long)vs[i]);
		CHECK_STR(got, want);
		CHECK_INT(n, strlen(want));
	}
}

TEST(strlcpy_truncates_and_terminates)
{
	char small[4];

	CHECK(util_strlcpy(small, "abc", sizeof small));
	CHECK_STR(small, "abc");
	CHECK(!util_strlcpy(small, "abcdef", sizeof small));
	CHECK_STR(small, "abc");
	CHECK(!util_strlcpy(small, "x", 0));
}

TEST(case_insensitive_compare)
{
	CHECK(util_strn_ieq("Content-Type", 12, "content-type"));
	CHECK(!util_strn_ieq("Content-Type", 7, "content-type"));
	CHECK(!util_strn_ieq("Content", 7, "content-type"));
}

TEST(utf8_validation)
{
	CHECK(util_utf8_valid("plain", 5));
	CHECK(util_utf8_valid("M\xc3\xbcller", 7));             /* ü */
	CHECK(util_utf8_valid("\xe2\x82\xac", 3));              /* € */
	CHECK(util_utf8_valid("\xf0\x9f\x98\x80", 4));          /* emoji */
	CHECK(!util_utf8_valid("\xc3", 1));                     /* truncated */
	CHECK(!util_utf8_valid("\xc0\xaf", 2));                 /* overlong */
	CHECK(!util_utf8_valid("\xed\xa0\x80", 3));             /* surrogate */
	CHECK(!util_utf8_valid("\xf4\x90\x80\x80", 4));         /* > U+10FFFF */
	CHECK(!util_utf8_valid("a\0b", 3));                     /* NUL */
	CHECK(!util_utf8_valid("\xff", 1));
}

TEST(constant_time_equal)
{
	CHECK(util_ct_equal("abcd", "abcd", 4));
	CHECK(!util_ct_equal("abcd", "abce", 4));
}

TEST(error_tables_cover_every_code)
{
	for (int e = 0; e < ENR__MAX; e++) {
		CHECK(enr_strerror((enum enr_err)e)[0] != '\0');
		CHECK(enr_code((enum enr_err)e)[0] != '\0');
		CHECK(enr_http_status((enum enr_err)e) >= 200);
		CHECK(strcmp(enr_http_reason(enr_http_status((enum enr_err)e)), "Unknown") != 0);
	}
	CHECK_INT(enr_http_status(ENR_E_RATE_LIMITED), 429);
	CHECK_STR(enr_code(ENR_E_QUOTA), "quota_exceeded");
	CHECK_INT(enr_http_status(ENR_E_DISABLED), 503);
	CHECK_STR(enr_code(ENR_E_DISABLED), "endpoint_disabled");
	CHECK_STR(enr_code(ENR_E_TIMEOUT), "upstream_timeout");
	CHECK_STR(enr_code((enum enr_err)999), "internal");
}

TEST(timed_waits_run_on_the_monotonic_clock)
{
	pthread_cond_t c;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	int64_t t0, waited;
	int rc;

	REQUIRE(util_cond_init(&c) == ENR_OK);
	pthread_mutex_lock(&m);
	t0 = util_mono_ms();
	/* Spurious wake-ups are allowed: wait until the time is up. */
	do
		rc = util_cond_wait_ms(&c, &m, 60 - (util_mono_ms() - t0));
	while (rc == 0 && util_mono_ms() - t0 < 60);
	waited = util_mono_ms() - t0;
	pthread_mutex_unlock(&m);
	CHECK_INT(rc, ETIMEDOUT);
	/* A deadline on another clock than the condition's would end the wait
	 * at once (or decades later). */
	CHECK(waited >= 59 && waited < 5000);
	pthread_cond_destroy(&c);
}

/* Every byte value, and every negative char: the classes agree with the
 * "C" locale's <ctype.h> on ASCII and hold nothing else, whatever the
 * locale (this program never calls setlocale, so ctype is "C" here). */
TEST(ascii_classes_match_the_c_locale_on_ascii_only)
{
	for (int c = -128; c < 256; c++) {
		bool a = c >= 0 && c < 128;

		CHECK_INT(ascii_is_digit(c), a && isdigit(c));
		CHECK_INT(ascii_is_lower(c), a && islower(c));
		CHECK_INT(ascii_is_upper(c), a && isupper(c));
		CHECK_INT(ascii_is_alpha(c), a && isalpha(c));
		CHECK_INT(ascii_is_alnum(c), a && isalnum(c));
		CHECK_INT(ascii_is_xdigit(c), a && isxdigit(c));
		CHECK_INT(ascii_is_lower_xdigit(c), a && isxdigit(c) && !isupper(c));
		CHECK_INT(ascii_is_space(c), a && isspace(c));
		CHECK_INT(ascii_is_blank(c), a && isblank(c));
		CHECK_INT(ascii_is_print(c), a && isprint(c));
		CHECK_INT(ascii_is_unreserved(c), a && (isalnum(c) || (c && strchr("-._~", c))));
		CHECK_INT(ascii_hex_value(c), !(a && isxdigit(c)) ? -1
					      : isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
		if (c >= -128 && c < 128) {
			CHECK_INT(ascii_to_lower((char)c), a ? tolower(c) : c);
			CHECK_INT(ascii_to_upper((char)c), a ? toupper(c) : c);
		}
	}
	/* A char that is negative here (0xE9, 'é' in Latin-1) is no letter. */
	CHECK(!ascii_is_alpha((char)0xE9) && ascii_to_lower((char)0xC9) == (char)0xC9);
}

TEST(ascii_printable_copy_quotes_safely)
{
	char out[8];

	ascii_printable_copy("a\x01" "b\xff" "\tc", 6, out, sizeof out);
	CHECK_STR(out, "a?b??c");
	ascii_printable_copy("abcdefghij", 10, out, sizeof out);
	CHECK_STR(out, "abcdefg");
	ascii_printable_copy("x\0y", 3, out, sizeof out);
	CHECK_STR(out, "x?y");
	ascii_printable_copy("abc", 3, out, 1);
	CHECK_STR(out, "");
}

TEST(deadlines_on_the_monotonic_clock)
{
	int64_t d;

	CHECK(util_deadline_left(0) == INT64_MAX);
	CHECK(!util_deadline_passed(0));
	d = util_deadline_in(100000);
	CHECK(util_deadline_left(d) > 99000 && util_deadline_left(d) <= 100000);
	CHECK(!util_deadline_passed(d));
	d = util_deadline_in(0);
	CHECK(util_deadline_passed(d) && util_deadline_left(d) <= 0);
	d = util_deadline_in(-5); /* no deadline in the past */
	CHECK(d >= util_mono_ms() - 1000 && util_deadline_passed(d));
	CHECK(util_deadline_in(INT64_MAX) == INT64_MAX); /* no overflow */
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/* Signals arrive every 5 ms during a 60 ms sleep; it still lasts 60 ms. */
TEST(sleep_lasts_its_whole_time_across_signals)
{
	struct sigaction sa, old;
	struct itimerval it = { { 0, 5000 }, { 0, 5000 } }, off = { { 0, 0 }, { 0, 0 } };
	int64_t t0;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm; /* no SA_RESTART: the sleep sees EINTR */
	sigemptyset(&sa.sa_mask);
	REQUIRE(sigaction(SIGALRM, &sa, &old) == 0);
	alarms = 0;
	REQUIRE(setitimer(ITIMER_REAL, &it, NULL) == 0);
	t0 = util_mono_us();
	util_sleep_ms(60);
	CHECK(util_mono_us() - t0 >= 60000);
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	CHECK(alarms > 0);
	t0 = util_mono_us();
	util_sleep_ms(0);
	util_sleep_ms(-1);
	CHECK(util_mono_us() - t0 < 20000);
}

static atomic_bool stop_flag;

static void *set_stop_later(void *arg)
{
	(void)arg;
	util_sleep_ms(20);
	atomic_store(&stop_flag, true);
	return NULL;
}

TEST(sleep_unless_ends_when_the_flag_is_set)
{
	pthread_t t;
	int64_t t0;

	atomic_store(&stop_flag, false);
	t0 = util_mono_ms();
	CHECK(util_sleep_ms_unless(30, &stop_flag));
	CHECK(util_mono_ms() - t0 >= 30);
	REQUIRE(pthread_create(&t, NULL, set_stop_later, NULL) == 0);
	t0 = util_mono_ms();
	CHECK(!util_sleep_ms_unless(60000, &stop_flag));
	/* noticed within a slice or so, not after a minute */
	CHECK(util_mono_ms() - t0 < 20 + 10 * UTIL_SLEEP_SLICE_MS);
	pthread_join(t, NULL);
	t0 = util_mono_ms();
	CHECK(!util_sleep_ms_unless(60000, &stop_flag)); /* already set: at once */
	CHECK(util_mono_ms() - t0 < UTIL_SLEEP_SLICE_MS);
}

TEST(jitter_spreads_up_to_a_quarter)
{
	double lo = 1.0, hi = 0.0;

	for (int i = 0; i < 1000; i++) {
		double j = util_jitter();

		CHECK(j >= 0.0 && j < 1.0);
		lo = j < lo ? j : lo;
		hi = j > hi ? j : hi;
	}
	CHECK(hi - lo > 0.5); /* 1000 draws that are not all alike */
	CHECK_INT(util_jitter_add(1000, 0.0), 1000);
	CHECK_INT(util_jitter_add(1000, 0.5), 1125);
	CHECK_INT(util_jitter_add(1000, 0.999), 1249);
	CHECK_INT(util_jitter_add(1000, 1.0), 1250);
	CHECK_INT(util_jitter_add(1000, 7.0), 1250);
	CHECK_INT(util_jitter_add(1000, -1.0), 1000);
	CHECK_INT(util_jitter_add(1000, NAN), 1000);
	CHECK_INT(util_jitter_add(0, 0.9), 0);
}

/* ---- whole files ---- */

TEST(read_file)
{
	char path[] = "/tmp/test_util_XXXXXX";
	int fd = mkstemp(path);
	static char untouched[] = "untouched";
	char *data = untouched;
	size_t len = 7;

	REQUIRE(fd >= 0);
	REQUIRE(write(fd, "a,b\n1,2\n", 8) == 8);
	close(fd);
	CHECK_INT(util_read_file(path, 8, 0, &data, &len), ENR_OK);
	CHECK_INT(len, 8);
	CHECK_STR(data, "a,b\n1,2\n");
	free(data);
	data = untouched;
	len = 7;
	CHECK_INT(util_read_file(path, 7, 0, &data, &len), ENR_E_TOO_LARGE);
	CHECK_STR(data, "untouched");
	CHECK_INT(len, 7);
	unlink(path);
	CHECK_INT(util_read_file(path, 100, 0, &data, &len), ENR_E_NOT_FOUND);
	CHECK_INT(util_read_file("/", 100, 0, &data, &len), ENR_E_IO);
	CHECK_STR(data, "untouched");

	/* An empty file is an empty buffer, not an error. */
	memcpy(path + sizeof(path) - 7, "XXXXXX", 6);
	fd = mkstemp(path);
	REQUIRE(fd >= 0);
	close(fd);
	CHECK_INT(util_read_file(path, 0, 0, &data, &len), ENR_OK);
	CHECK_INT(len, 0);
	CHECK_STR(data, "");
	free(data);
	unlink(path);
}

TEST(read_file_without_size)
{
	/* A pipe has no size; the cap still holds. */
	int p[2];
	char *data = NULL;
	size_t len = 0;
	char path[64];
	static char chunk[100000];
	pid_t pid;

	REQUIRE(pipe(p) == 0);
	memset(chunk, 'q', sizeof(chunk));
	/* A pipe holds 64 KiB; write from a child so the read side drains. */
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (write(p[1], chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	snprintf(path, sizeof(path), "/dev/fd/%d", p[0]);
	CHECK_INT(util_read_file(path, sizeof(chunk), 0, &data, &len), ENR_OK);
	CHECK_INT(len, sizeof(chunk));
	if (data != NULL)
		CHECK(data[0] == 'q' && data[len - 1] == 'q' && data[len] == '\0');
	free(data);
	close(p[0]);
	waitpid(pid, NULL, 0);
}

TEST(read_file_options)
{
	char path[] = "/tmp/test_util_XXXXXX";
	int fd = mkstemp(path);
	char *data = NULL;
	size_t len = 0;

	REQUIRE(fd >= 0);
	REQUIRE(write(fd, "s3cret\n", 7) == 7);
	close(fd);
	REQUIRE(chmod(path, 0644) == 0);
	CHECK_INT(util_read_file(path, 100, UTIL_RF_PRIVATE, &data, &len), ENR_E_FORBIDDEN);
	CHECK(data == NULL);
	REQUIRE(chmod(path, 0640) == 0);
	CHECK_INT(util_read_file(path, 100, UTIL_RF_PRIVATE | UTIL_RF_REGULAR, &data, &len),
		  ENR_OK);
	CHECK_STR(data, "s3cret\n");
	free(data);
	data = NULL;
	/* a directory is no regular file; without the option it fails to read */
	CHECK_INT(util_read_file("/tmp", 100, UTIL_RF_REGULAR, &data, &len), ENR_E_INVALID);
	errno = 0;
	CHECK_INT(util_read_file("/tmp", 100, 0, &data, &len), ENR_E_IO);
	CHECK_INT(errno, EISDIR); /* errno says why */
	CHECK_INT(util_read_file("/dev/null", 100, UTIL_RF_REGULAR, &data, &len), ENR_E_INVALID);
	CHECK_INT(util_read_file("/dev/null", 100, 0, &data, &len), ENR_OK);
	CHECK_INT(len, 0);
	free(data);
	CHECK_INT(util_read_file(NULL, 100, 0, &data, &len), ENR_E_INVALID);
	unlink(path);
}

int main(void)
{
	RUN(timed_waits_run_on_the_monotonic_clock);
	RUN(parse_i64_accepts_whole_numbers_only);
	RUN(parse_double_strict);
	RUN(time_formats_are_rfc3339_utc);
	RUN(random_and_hex);
	RUN(integers_format_as_printf_does);
	RUN(strlcpy_truncates_and_terminates);
	RUN(case_insensitive_compare);
	RUN(utf8_validation);
	RUN(constant_time_equal);
	RUN(error_tables_cover_every_code);
	RUN(ascii_classes_match_the_c_locale_on_ascii_only);
	RUN(ascii_printable_copy_quotes_safely);
	RUN(deadlines_on_the_monotonic_clock);
	RUN(sleep_lasts_its_whole_time_across_signals);
	RUN(sleep_unless_ends_when_the_flag_is_set);
	RUN(jitter_spreads_up_to_a_quarter);
	RUN(read_file);
	RUN(read_file_without_size);
	RUN(read_file_options);
	return harness_done();
}
