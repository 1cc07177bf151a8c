/*
 * test_domains.c - domain lists, registrable domains, ccTLD countries
 * (lib/domains.c).
 *
 * The list tests load the real files from data/ (run from the repository
 * root, as tests/run.sh does) and tiny hand-written ones from a temporary
 * directory for the edge cases of the file format.  Load errors are
 * checked in the log line they write.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/domains.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/util.h"

#include "harness.h"

static struct dom_lists *real;
static char dir[] = "/tmp/enrichd-dom-XXXXXX";

static void write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL) {
		HARNESS_FAIL("cannot write %s", path);
		return;
	}
	fputs(text, f);
	fclose(f);
}

static void remove_file(const char *name)
{
	char path[256];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	unlink(path);
}

/* Load dir while capturing the log into out (size outsz). */
static struct dom_lists *load_logged(const char *d, enum enr_err *err, char *out, size_t outsz)
{
	struct dom_lists *l;
	FILE *f = tmpfile();
	size_t n = 0;

	if (f == NULL)
		return dom_lists_load(d, err);
	log_set_fd(fileno(f));
	l = dom_lists_load(d, err);
	log_set_fd(2);
	rewind(f);
	n = fread(out, 1, outsz - 1, f);
	out[n] = '\0';
	fclose(f);
	return l;
}

TEST(real_lists_load)
{
	REQUIRE(real != NULL);
	CHECK(dom_lists_free_count(real) > 10000);
	CHECK(dom_lists_disposable_count(real) > 100000);
}

TEST(real_lists_classify)
{
	static const char *const free_mail[] = { "gmail.com", "yahoo.com", "hotmail.com",
						 "outlook.com", "aol.com", "gmx.de", "web.de",
						 "icloud.com", "protonmail.com", "GMail.Com" };
	static const char *const disposable[] = {
		"mailinator.com", "x.mailinator.com", "a.b.mailinator.com", "yopmail.com",
		"guerrillamail.com", "10minutemail.com", "MAILINATOR.COM",
		"foo.ddns.net", /* listed as a wildcard: every name under it */
	};
	static const char *const neither[] = { "example.com", "example.co.uk", "ibm.com",
					       "x.gmail.com", "gmail.co", "com", "",
					       "uw.edu.pl", "-gmail.com", "gmail.com." };

	REQUIRE(real != NULL);
	for (size_t i = 0; i < sizeof free_mail / sizeof free_mail[0]; i++) {
		if (!dom_is_free(real, free_mail[i]))
			HARNESS_FAIL("%s not free", free_mail[i]);
	}
	CHECK(!dom_is_disposable(real, "gmail.com"));
	for (size_t i = 0; i < sizeof disposable / sizeof disposable[0]; i++) {
		if (!dom_is_disposable(real, disposable[i]))
			HARNESS_FAIL("%s not disposable", disposable[i]);
	}
	for (size_t i = 0; i < sizeof neither / sizeof neither[0]; i++) {
		if (dom_is_free(real, neither[i]) || dom_is_disposable(real, neither[i]))
			HARNESS_FAIL("%s classified", neither[i]);
	}
	/* edu.pl itself is listed; the universities under it are not */
	CHECK(dom_is_disposable(real, "edu.pl"));
	CHECK(!dom_is_disposable(real, "uw.edu.pl"));
	CHECK(!dom_is_free(NULL, "gmail.com"));
	CHECK(!dom_is_disposable(NULL, "mailinator.com"));
	CHECK(!dom_is_free(real, NULL));
	CHECK(!dom_is_disposable(real, NULL));
}

TEST(tiny_lists_format)
{
	enum enr_err err = ENR_OK;
	struct dom_lists *l;

	write_file(DOM_FREE_FILE, "# free mail\n"
				  "# source: test\n"
				  "\n"
				  "Free.Example\r\n"
				  "  spaced.example  \n"
				  "\tTabbed.Example\t\r\n"
				  "commented.example # a trailing note\n"
				  "free.example\n"
				  "   \n"
				  "\r\n"
				  "last.example");
	write_file(DOM_DISPOSABLE_FILE, "trash.example\n"
					"# comment\n"
					"TRASH.EXAMPLE\n"
					"ddns.example\n");
	l = dom_lists_load(dir, &err);
	REQUIRE(l != NULL);
	CHECK_INT(dom_lists_free_count(l), 5);
	CHECK_INT(dom_lists_disposable_count(l), 2);
	CHECK(dom_is_free(l, "free.example"));
	CHECK(dom_is_free(l, "FREE.example"));
	CHECK(dom_is_free(l, "spaced.example"));
	CHECK(dom_is_free(l, "tabbed.example"));
	CHECK(dom_is_free(l, "commented.example"));
	CHECK(dom_is_free(l, "last.example")); /* no final newline */
	CHECK(!dom_is_free(l, "sub.free.example"));
	CHECK(!dom_is_free(l, "example"));
	CHECK(!dom_is_free(l, "trash.example"));
	CHECK(dom_is_disposable(l, "trash.example"));
	CHECK(dom_is_disposable(l, "a.trash.example"));
	CHECK(dom_is_disposable(l, "a.b.c.trash.example"));
	CHECK(!dom_is_disposable(l, "notrash.example"));
	CHECK(!dom_is_disposable(l, "free.example"));
	dom_lists_free(l);
	dom_lists_free(NULL);
	CHECK_INT(dom_lists_free_count(NULL), 0);
	CHECK_INT(dom_lists_disposable_count(NULL), 0);
}

TEST(empty_lists_load)
{
	enum enr_err err = ENR_OK;
	struct dom_lists *l;

	write_file(DOM_FREE_FILE, "");
	write_file(DOM_DISPOSABLE_FILE, "# nothing yet\n\n");
	l = dom_lists_load(dir, &err);
	REQUIRE(l != NULL);
	CHECK_INT(dom_lists_free_count(l), 0);
	CHECK_INT(dom_lists_disposable_count(l), 0);
	CHECK(!dom_is_free(l, "gmail.com"));
	CHECK(!dom_is_disposable(l, "x.mailinator.com"));
	dom_lists_free(l);
}

TEST(missing_file_names_the_path)
{
	enum enr_err err = ENR_OK;
	char log[2048], want[256];
	struct dom_lists *l;

	write_file(DOM_FREE_FILE, "free.example\n");
	remove_file(DOM_DISPOSABLE_FILE);
	l = load_logged(dir, &err, log, sizeof log);
	CHECK(l == NULL);
	CHECK_INT(err, ENR_E_IO);
	snprintf(want, sizeof want, "%s/%s", dir, DOM_DISPOSABLE_FILE);
	if (strstr(log, want) == NULL)
		HARNESS_FAIL("log does not name %s: %s", want, log);
	CHECK(strstr(log, "level=error") != NULL);

	err = ENR_OK;
	l = load_logged("/nonexistent/enrichd", &err, log, sizeof log);
	CHECK(l == NULL);
	CHECK_INT(err, ENR_E_IO);
	CHECK(strstr(log, "/nonexistent/enrichd/" DOM_FREE_FILE) != NULL);

	err = ENR_OK;
	CHECK(dom_lists_load(NULL, &err) == NULL);
	CHECK_INT(err, ENR_E_INVALID);
	CHECK(dom_lists_load("", NULL) == NULL); /* err may be NULL */
}

TEST(bad_line_names_path_and_line)
{
	enum enr_err err = ENR_OK;
	char log[2048], want[256];
	struct dom_lists *l;

	write_file(DOM_FREE_FILE, "# header\nok.example\nnot a domain\n");
	write_file(DOM_DISPOSABLE_FILE, "trash.example\n");
	l = load_logged(dir, &err, log, sizeof log);
	CHECK(l == NULL);
	CHECK_INT(err, ENR_E_CONFIG);
	snprintf(want, sizeof want, "%s/%s:3", dir, DOM_FREE_FILE);
	if (strstr(log, want) == NULL)
		HARNESS_FAIL("log does not name %s: %s", want, log);

	write_file(DOM_FREE_FILE, "ok.example\n");
	write_file(DOM_DISPOSABLE_FILE, "*.wild.example\n");
	CHECK(load_logged(dir, &err, log, sizeof log) == NULL);
	CHECK_INT(err, ENR_E_CONFIG);

	/* a directory where a file should be */
	remove_file(DOM_DISPOSABLE_FILE);
	{
		char path[256];

		snprintf(path, sizeof path, "%s/%s", dir, DOM_DISPOSABLE_FILE);
		REQUIRE(mkdir(path, 0700) == 0);
		CHECK(load_logged(dir, &err, log, sizeof log) == NULL);
		CHECK_INT(err, ENR_E_IO);
		CHECK(strstr(log, "not a regular file") != NULL);
		rmdir(path);
	}
}

TEST(valid_names)
{
	static const char *const good[] = {
		"example.com", "a.co", "a-b.example", "xn--bcher-kva.de", "example.xn--p1ai",
		"1.example.com", "123.com",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
	};
	static const char *const bad[] = {
		"", "com", "example.", ".example.com", "example..com", "Example.com",
		"-a.com", "a-.com", "a_b.com", "a b.com", "example.c0m", "example.1",
		"example.c", "example.xn--", "1.2.3.4", "b\xc3\xbc" "cher.de",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
	};

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		if (!dom_valid(good[i], strlen(good[i])))
			HARNESS_FAIL("refused %s", good[i]);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (dom_valid(bad[i], strlen(bad[i])))
			HARNESS_FAIL("accepted \"%s\"", bad[i]);
	}
	CHECK(!dom_valid(NULL, 0));
	/* the length is what counts, not a NUL */
	CHECK(dom_valid("example.com.evil", 11));
}

TEST(registrable_domain)
{
	static const struct {
		const char *in, *want;
	} ok[] = {
		{ "mail.corp.example.co.uk", "example.co.uk" },
		{ "example.co.uk", "example.co.uk" },
		{ "example.com", "example.com" },
		{ "a.b.c.example.com", "example.com" },
		{ "WWW.Example.COM", "example.com" },
		{ "foo.github.io", "foo.github.io" },       /* private section */
		{ "x.foo.github.io", "foo.github.io" },
		{ "shop.example.com.au", "example.com.au" },
		{ "example.unknowntld", "example.unknowntld" }, /* default rule "*" */
		{ "xn--bcher-kva.de", "xn--bcher-kva.de" },
	};
	char out[LIM_REC_DOMAIN_MAX + 1];

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		out[0] = '\0';
		CHECK_INT(dom_registrable(ok[i].in, out, sizeof out), ENR_OK);
		CHECK_STR(out, ok[i].want);
	}
	util_strlcpy(out, "unchanged", sizeof out);
	CHECK_INT(dom_registrable("co.uk", out, sizeof out), ENR_E_NOT_FOUND);
	CHECK_INT(dom_registrable("github.io", out, sizeof out), ENR_E_NOT_FOUND);
	CHECK_INT(dom_registrable("com", out, sizeof out), ENR_E_INVALID);
	CHECK_INT(dom_registrable("uk", out, sizeof out), ENR_E_INVALID);
	CHECK_INT(dom_registrable("", out, sizeof out), ENR_E_INVALID);
	CHECK_INT(dom_registrable(NULL, out, sizeof out), ENR_E_INVALID);
	CHECK_INT(dom_registrable("exa mple.com", out, sizeof out), ENR_E_INVALID);
	CHECK_INT(dom_registrable("example.com.", out, sizeof out), ENR_E_INVALID);
	CHECK_INT(dom_registrable("b\xc3\xbc" "cher.de", out, sizeof out), ENR_E_INVALID);
	CHECK_STR(out, "unchanged");
	/* "example.com" needs 12 bytes */
	CHECK_INT(dom_registrable("www.example.com", out, 11), ENR_E_TOO_LARGE);
	CHECK_STR(out, "unchanged");
	CHECK_INT(dom_registrable("www.example.com", out, 12), ENR_OK);
	CHECK_STR(out, "example.com");
	/* The same name asked again, and names asked in turn, answer as the
	 * first time (a thread keeps its last answer). */
	for (int round = 0; round < 3; round++) {
		CHECK_INT(dom_registrable("a.example.co.uk", out, sizeof out), ENR_OK);
		CHECK_STR(out, "example.co.uk");
		CHECK_INT(dom_registrable("a.example.co.uk", out, sizeof out), ENR_OK);
		CHECK_STR(out, "example.co.uk");
		CHECK_INT(dom_registrable("co.uk", out, sizeof out), ENR_E_NOT_FOUND);
		CHECK_INT(dom_registrable("co.uk", out, sizeof out), ENR_E_NOT_FOUND);
		CHECK_INT(dom_registrable("A.EXAMPLE.CO.UK", out, 13), ENR_E_TOO_LARGE);
		CHECK_INT(dom_registrable("x.foo.github.io", out, sizeof out), ENR_OK);
		CHECK_STR(out, "foo.github.io");
	}
}

TEST(country_from_cctld)
{
	static const struct {
		const char *in, *want;
	} t[] = {
		{ "example.de", "Germany" },
		{ "example.co.uk", "United Kingdom" },
		{ "example.uk", "United Kingdom" },
		{ "example.gb", "United Kingdom" },
		{ "EXAMPLE.FR", "France" },
		{ "example.de.", "Germany" },
		{ "shop.example.com.au", "Australia" },
		{ "example.us", "United States" },
		{ "example.jp", "Japan" },
		{ "example.ch", "Switzerland" },
		{ "example.nl", "Netherlands" },
		{ "example.br", "Brazil" },
		{ "example.in", "India" },
		{ "example.ad", "Andorra" },
		{ "example.zw", "Zimbabwe" },
		{ "example.ie", "Ireland" },
		/* generic and vanity: nothing can honestly be said */
		{ "example.com", NULL },
		{ "example.org", NULL },
		{ "example.eu", NULL },
		{ "example.xyz", NULL },
		{ "example.io", NULL },
		{ "example.co", NULL },
		{ "example.ai", NULL },
		{ "example.me", NULL },
		{ "example.tv", NULL },
		{ "example.fm", NULL },
		{ "example.ly", NULL },
		{ "example.gg", NULL },
		{ "example.ws", NULL },
		{ "example.tk", NULL },
		{ "example.aq", NULL },
		{ "example.zz", NULL },
		{ "de", NULL },
		{ ".de", NULL },
		{ "", NULL },
		{ "example.d", NULL },
		{ "example.1e", NULL },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		CHECK_STR(dom_country(t[i].in), t[i].want);
	CHECK_STR(dom_country(NULL), NULL);
}

/* Every code in the table must be found again by the binary search,
 * which misses entries when the table is out of order: the count of
 * two-letter codes that have a name is the table's size. */
TEST(country_table_sorted)
{
	char d[8];
	int found = 0;

	for (char a = 'a'; a <= 'z'; a++) {
		for (char b = 'a'; b <= 'z'; b++) {
			const char *c;

			snprintf(d, sizeof d, "x.%c%c", a, b);
			c = dom_country(d);
			if (c != NULL) {
				found++;
				CHECK(strlen(c) > 2);
			}
		}
	}
	/* 204 ISO 3166-1 codes (249 less the vanity, free, uninhabited and
	 * undelegated ones) plus .uk */
	CHECK_INT(found, 205);
}

/* The search filters' countries: every code that has a name, the vanity
 * ones included (a full walk also proves both tables sorted), and back. */
TEST(countries_by_code_and_name)
{
	char code[3];
	int found = 0;

	for (char a = 'a'; a <= 'z'; a++) {
		for (char b = 'a'; b <= 'z'; b++) {
			const char *name, *back;

			code[0] = a;
			code[1] = b;
			code[2] = '\0';
			if ((name = dom_country_by_code(code)) == NULL)
				continue;
			found++;
			back = dom_country_code_of(name);
			if (back == NULL || strcmp(back, strcmp(code, "uk") == 0 ? "gb" : code) != 0)
				HARNESS_FAIL("%s is %s, whose code is %s", code, name, back ? back : "(none)");
		}
	}
	/* 205 from the domain table and the 40 codes it leaves out. */
	CHECK_INT(found, 245);
	CHECK_STR(dom_country_by_code("co"), "Colombia");
	CHECK_STR(dom_country_code_of("united KINGDOM"), "gb");
	CHECK_STR(dom_country_code_of("Germany"), "de");
	CHECK(dom_country_code_of("Atlantis") == NULL);
	CHECK(dom_country_by_code("zz") == NULL);
	CHECK(dom_country_by_code("usa") == NULL);
	CHECK(dom_country_by_code(NULL) == NULL && dom_country_code_of(NULL) == NULL);
}

static void *lookup_thread(void *arg)
{
	long bad = 0;

	(void)arg;
	for (int i = 0; i < 20000; i++) {
		char out[LIM_REC_DOMAIN_MAX + 1];

		bad += !dom_is_free(real, "gmail.com");
		bad += dom_is_free(real, "example.com");
		bad += !dom_is_disposable(real, "x.mailinator.com");
		bad += dom_registrable("a.example.co.uk", out, sizeof out) != ENR_OK;
	}
	return (void *)bad;
}

TEST(concurrent_reads)
{
	pthread_t t[4];
	long total = 0;

	REQUIRE(real != NULL);
	for (int i = 0; i < 4; i++)
		REQUIRE(pthread_create(&t[i], NULL, lookup_thread, NULL) == 0);
	for (int i = 0; i < 4; i++) {
		void *r = NULL;

		pthread_join(t[i], &r);
		total += (long)r;
	}
	CHECK_INT(total, 0);
}

int main(void)
{
	enum enr_err err = ENR_OK;
	char path[256];

	real = dom_lists_load("data", &err);
	if (real == NULL)
		fprintf(stderr, "cannot load data/ (%s); run from the repository root\n",
			enr_strerror(err));
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}

	RUN(real_lists_load);
	RUN(real_lists_classify);
	RUN(tiny_lists_format);
	RUN(empty_lists_load);
	RUN(missing_file_names_the_path);
	RUN(bad_line_names_path_and_line);
	RUN(valid_names);
	RUN(registrable_domain);
	RUN(country_from_cctld);
	RUN(country_table_sorted);
	RUN(countries_by_code_and_name);
	RUN(concurrent_reads);

	remove_file(DOM_FREE_FILE);
	remove_file(DOM_DISPOSABLE_FILE);
	snprintf(path, sizeof path, "%s/%s", dir, DOM_DISPOSABLE_FILE);
	rmdir(path);
	rmdir(dir);
	dom_lists_free(real);
	return harness_done();
}
