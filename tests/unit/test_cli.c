/*
 * test_cli.c - the command line every program shares (lib/cli.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cli.h"

#include "harness.h"

struct seen {
	int n;
	int opts[16];
	const char *last;
};

static enum enr_err own(void *arg, int opt, const char *val, char *why, size_t whylen)
{
	struct seen *s = arg;

	if (opt == 'x' && strcmp(val, "bad") == 0) {
		snprintf(why, whylen, "-x: \"%s\" will not do", val);
		return ENR_E_INVALID;
	}
	if (s->n < 15)
		s->opts[s->n++] = opt;
	s->last = val;
	return ENR_OK;
}

static const struct option longs[] = {
	{ "ex", required_argument, NULL, 'x' },
	{ "flag", no_argument, NULL, 256 },
	{ NULL, 0, NULL, 0 },
};

static struct seen seen;
static const struct cli_spec spec = { "prog", "usage: prog\n", "x:", longs, false, own, &seen };

static enum cli_next parse(const struct cli_spec *s, struct cli *cl, ...)
{
	char *argv[16] = { "prog" };
	int argc = 1;
	va_list ap;
	char *a;

	va_start(ap, cl);
	while (argc < 15 && (a = va_arg(ap, char *)) != NULL)
		argv[argc++] = a;
	va_end(ap);
	memset(&seen, 0, sizeof seen);
	return cli_parse(s, argc, argv, cl);
}

TEST(configuration_file)
{
	struct cli cl;

	unsetenv("ENRICHD_CONF");
	CHECK_INT(parse(&spec, &cl, NULL), CLI_RUN);
	CHECK_STR(cl.config, CLI_DEFAULT_CONF);
	CHECK(!cl.config_given);
	setenv("ENRICHD_CONF", "/env/enrichd.conf", 1);
	CHECK_INT(parse(&spec, &cl, NULL), CLI_RUN);
	CHECK_STR(cl.config, "/env/enrichd.conf");
	CHECK(!cl.config_given);
	CHECK_INT(parse(&spec, &cl, "-c", "/given.conf", NULL), CLI_RUN);
	CHECK_STR(cl.config, "/given.conf");
	CHECK(cl.config_given);
	CHECK_INT(parse(&spec, &cl, "--config=/long.conf", NULL), CLI_RUN);
	CHECK_STR(cl.config, "/long.conf");
	/* empty is the default, whoever gave it */
	CHECK_INT(parse(&spec, &cl, "-c", "", NULL), CLI_RUN);
	CHECK_STR(cl.config, CLI_DEFAULT_CONF);
	setenv("ENRICHD_CONF", "", 1);
	CHECK_INT(parse(&spec, &cl, NULL), CLI_RUN);
	CHECK_STR(cl.config, CLI_DEFAULT_CONF);
	unsetenv("ENRICHD_CONF");
}

TEST(help_and_version)
{
	struct cli cl;
	char want[64];

	CHECK_INT(parse(&spec, &cl, "-h", NULL), CLI_EXIT_OK);
	CHECK_STR(cl.text, "usage: prog\n");
	CHECK_INT(parse(&spec, &cl, "--help", "-x", "bad", NULL), CLI_EXIT_OK); /* at once */
	snprintf(want, sizeof want, "prog %s\n", ENRICHD_VERSION);
	CHECK_INT(parse(&spec, &cl, "-V", NULL), CLI_EXIT_OK);
	CHECK_STR(cl.text, want);
	CHECK_INT(parse(&spec, &cl, "--version", NULL), CLI_EXIT_OK);
	CHECK_STR(cl.text, want);
}

TEST(own_options_and_usage_errors)
{
	struct cli cl;

	CHECK_INT(parse(&spec, &cl, "-x", "1", "--flag", "--ex=2", NULL), CLI_RUN);
	CHECK_INT(seen.n, 3);
	CHECK(seen.opts[0] == 'x' && seen.opts[1] == 256 && seen.opts[2] == 'x');
	CHECK_STR(seen.last, "2");
	CHECK_INT(parse(&spec, &cl, "-x", "bad", NULL), CLI_EXIT_USAGE);
	CHECK_STR(cl.error, "prog: -x: \"bad\" will not do\n");
	CHECK_STR(cl.text, "usage: prog\n");
	/* unknown options and missing arguments: getopt says so itself */
	CHECK_INT(parse(&spec, &cl, "--nope", NULL), CLI_EXIT_USAGE);
	CHECK_STR(cl.error, "");
	CHECK_STR(cl.text, "usage: prog\n");
	CHECK_INT(parse(&spec, &cl, "-x", NULL), CLI_EXIT_USAGE);
	CHECK_INT(parse(&spec, &cl, "-q", NULL), CLI_EXIT_USAGE);
}

TEST(words_after_the_options)
{
	struct cli_spec words = spec;
	struct cli cl;

	CHECK_INT(parse(&spec, &cl, "stray", NULL), CLI_EXIT_USAGE);
	CHECK_STR(cl.error, "prog: unexpected argument \"stray\"\n");
	words.words = true;
	/* GNU getopt lets options stand among the words */
	CHECK_INT(parse(&words, &cl, "keys", "-x", "1", "list", NULL), CLI_RUN);
	CHECK_INT(cl.first_word, 3);
	CHECK_INT(seen.n, 1);
}

int main(void)
{
	RUN(configuration_file);
	RUN(help_and_version);
	RUN(own_options_and_usage_errors);
	RUN(words_after_the_options);
	return harness_done();
}
