/*
 * cli.h - the command line every enrichd program shares.
 *
 * Prefix: cli_.  enrichd, enrich-worker, enrich-batch and enrichctl all
 * take -c/--config FILE (else $ENRICHD_CONF, else CLI_DEFAULT_CONF),
 * -h/--help and -V/--version, and refuse what they do not know with their
 * usage.  cli_parse reads those and hands every other option to the
 * program's own handler.  Nothing here prints or exits: the result says
 * what main() prints and how it ends.  Not thread-safe (getopt).
 */
#ifndef ENR_CLI_H
#define ENR_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define CLI_DEFAULT_CONF "/etc/enrichd/enrichd.conf"
#define CLI_OPTIONS_MAX  64  /* long options of one program, the shared ones included */

struct cli_spec {
	const char *prog;               /* "enrichd": --version and messages */
	const char *usage;              /* the --help text, shown after a usage error too */
	const char *shortopts;          /* the program's own short options (getopt syntax) */
	const struct option *longopts;  /* its own long options, ended by a zero row; may be NULL */
	bool words;                     /* words after the options are the program's (enrichctl) */
	/* The program's own option opt with its argument (NULL when it takes
	 * none): ENR_OK, or ENR_E_INVALID with why saying what is wrong. */
	enum enr_err (*option)(void *arg, int opt, const char *optarg, char *why, size_t whylen);
	void *arg;
};

enum cli_next {
	CLI_RUN,        /* go on with cli.config */
	CLI_EXIT_OK,    /* print cli.text on standard output, exit 0 (--help, --version) */
	CLI_EXIT_USAGE, /* print cli.error then cli.text on standard error, exit 2 */
};

struct cli {
	const char *config;   /* the configuration file to use (never NULL or empty) */
	bool config_given;    /* -c named it */
	int first_word;       /* argv index of the first word after the options */
	const char *text;     /* CLI_EXIT_*: the usage or the version line */
	char error[320];      /* CLI_EXIT_USAGE: "<prog>: <why>\n", or "" (getopt said it) */
	char version[96];
};

/* Parse argv by s into out.  getopt_long reports an unknown option or a
 * missing argument on standard error itself, as it always has. */
enum cli_next cli_parse(const struct cli_spec *s, int argc, char **argv, struct cli *out);

#endif
