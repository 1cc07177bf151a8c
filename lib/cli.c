/*
 * cli.c - the command line every enrichd program shares (cli.h).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ENRICHD_VERSION
#define ENRICHD_VERSION "0.0.0"
#endif

static const struct option shared[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
};
#define NSHARED (sizeof shared / sizeof shared[0])

static enum cli_next usage_error(const struct cli_spec *s, struct cli *out, const char *why)
{
	snprintf(out->error, sizeof out->error, "%s: %s\n", s->prog, why);
	out->text = s->usage;
	return CLI_EXIT_USAGE;
}

enum cli_next cli_parse(const struct cli_spec *s, int argc, char **argv, struct cli *out)
{
	struct option opts[CLI_OPTIONS_MAX + 1];
	char shortopts[2 * CLI_OPTIONS_MAX + 8];
	const char *env = getenv("ENRICHD_CONF");
	size_t n = 0;
	int c;

	memset(out, 0, sizeof *out);
	out->text = s->usage;
	memcpy(opts, shared, sizeof shared);
	n = NSHARED;
	for (size_t i = 0; s->longopts && s->longopts[i].name; i++) {
		if (n == CLI_OPTIONS_MAX)
			return usage_error(s, out, "too many options (CLI_OPTIONS_MAX)");
		opts[n++] = s->longopts[i];
	}
	memset(&opts[n], 0, sizeof opts[n]);
	if ((size_t)snprintf(shortopts, sizeof shortopts, "c:hV%s",
			     s->shortopts ? s->shortopts : "") >= sizeof shortopts)
		return usage_error(s, out, "too many short options");
	out->config = env;
	optind = 0; /* glibc: start afresh, also after an earlier parse */
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		char why[256] = "";

		switch (c) {
		case 'c':
			out->config = optarg;
			out->config_given = true;
			break;
		case 'h':
			return CLI_EXIT_OK;
		case 'V':
			snprintf(out->version, sizeof out->version, "%s %s\n", s->prog,
				 ENRICHD_VERSION);
			out->text = out->version;
			return CLI_EXIT_OK;
		case '?':
		case ':':
			return CLI_EXIT_USAGE; /* getopt said what is wrong */
		default:
			if (s->option == NULL || s->option(s->arg, c, optarg, why, sizeof why))
				return why[0] ? usage_error(s, out, why) : CLI_EXIT_USAGE;
			break;
		}
	}
	out->first_word = optind;
	if (!s->words && optind < argc) {
		char why[256];

		snprintf(why, sizeof why, "unexpected argument \"%.200s\"", argv[optind]);
		return usage_error(s, out, why);
	}
	if (out->config == NULL || out->config[0] == '\0')
		out->config = CLI_DEFAULT_CONF;
	return CLI_RUN;
}
