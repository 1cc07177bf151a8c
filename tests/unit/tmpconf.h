/*
 * tmpconf.h - a configuration written to a temporary directory, and the
 * directory removed afterwards: what the unit tests of modules that need
 * a configuration and a store share.
 */
#ifndef ENR_TEST_TMPCONF_H
#define ENR_TEST_TMPCONF_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/config.h"

/* Write text to path and load it into *out; false (the loader's message on
 * stderr) when either fails. */
static inline bool tmpconf_load(const char *path, const char *text, struct cfg **out)
{
	char err[512];
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return false;
	fputs(text, f);
	fclose(f);
	if (cfg_load(path, out, err, sizeof err) != ENR_OK) {
		fprintf(stderr, "%s\n", err);
		return false;
	}
	return true;
}

/* Remove dir and everything in it (a mkdtemp directory of the test's). */
static inline void tmpconf_remove(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

#endif
