/*
 * fuzz_config.c - libFuzzer target for the configuration loader: any bytes
 * as a configuration file must load or fail with a message, never crash or
 * leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(path, sizeof path, "/tmp/fuzz-config-%d.conf", (int)getpid());
	setenv("FUZZ_SECRET", "s3cret", 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	struct cfg *c = NULL;
	char err[512];

	if (f == NULL)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	if (cfg_load(path, &c, err, sizeof err) == ENR_OK) {
		/* Every reference a valid snapshot holds must resolve. */
		for (int g = 0; g < CFG_GROUP__MAX; g++)
			for (size_t i = 0; i < c->waterfall[g].n; i++)
				if (strcmp(c->waterfall[g].v[i], "local") && strcmp(c->waterfall[g].v[i], "mock") &&
				    !cfg_provider_find(c, c->waterfall[g].v[i]))
					abort();
		cfg_release(c);
	} else if (err[0] == '\0') {
		abort(); /* a failure always explains itself */
	}
	return 0;
}
