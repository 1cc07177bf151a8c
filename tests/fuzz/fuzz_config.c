/*
 * fuzz_config.c - libFuzzer target for the configuration loader: any bytes
 * as a configuration file must load or fail with a message, never crash or
 * leak.
 */
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/config_int.h"

#include "responder_stack.h"

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(path, sizeof path, "/tmp/fuzz-config-%d.conf", (int)getpid());
	setenv("FUZZ_SECRET", "s3cret", 1);
	return 0;
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	struct cfg *c = NULL;
	char err[512];

	if (f == NULL)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	if (cfg_load(path, &c, err, sizeof err) == ENR_OK) {
		const char *sp = cfg_store_path(c->store, NULL);
		/* A PostgreSQL URL is kept as written; an SQLite path is made absolute. */
		bool pg = strncmp(c->store, "postgres", 8) == 0;

		/* Every reference a valid snapshot holds must resolve. */
		for (int g = 0; g < CFG_GROUP__MAX; g++)
			for (size_t i = 0; i < c->waterfall[g].n; i++)
				if (strcmp(c->waterfall[g].v[i], "local") && strcmp(c->waterfall[g].v[i], "mock") &&
				    !cfg_provider_find(c, c->waterfall[g].v[i]))
					abort();
		/* Paths are absolute; what nginx renders is safe for it; every
		 * URL enrichd calls is https or loopback http. */
		if (c->listen[0] != '/' || c->data_dir[0] != '/' || c->state_dir[0] != '/' ||
		    (!pg && (sp == NULL || (sp[0] != '/' && strcmp(sp, ":memory:") != 0))) ||
		    (c->log_file[0] && c->log_file[0] != '/') || cfg_nginx_unsafe(c->listen) ||
		    strpbrk(c->server_name, ";{}'\"\\$#\t\n") != NULL)
			abort();
		for (size_t i = 0; i < c->cors_origins.n; i++)
			if (cfg_nginx_unsafe(c->cors_origins.v[i]))
				abort();
		if (c->alerts.webhook_url[0] && !cfg_url_check(c->alerts.webhook_url, NULL, 0))
			abort();
		for (size_t i = 0; i < c->nproviders; i++)
			if (c->providers[i].base_url[0] &&
			    !cfg_url_check(c->providers[i].base_url, NULL, 0))
				abort();
		cfg_release(c);
	} else if (err[0] == '\0') {
		abort(); /* a failure always explains itself */
	}
	return 0;
}

FUZZ_TARGET(fuzz_one)
