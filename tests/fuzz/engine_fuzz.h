/*
 * engine_fuzz.h - what the fuzz targets of request parsing share
 * (fuzz_enrich.c, fuzz_jobs_csv.c, fuzz_jobs_json.c): the shipped
 * configuration and domain lists, loaded once by LLVMFuzzerInitialize,
 * and check(), which aborts on a broken promise.
 */
#ifndef ENR_FUZZ_ENGINE_FUZZ_H
#define ENR_FUZZ_ENGINE_FUZZ_H

#include <stdlib.h>

#include "lib/config.h"
#include "lib/domains.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct cfg *cfg;
static struct dom_lists *lists;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];
	enum enr_err rc;

	(void)argc;
	(void)argv;
	if (cfg_load("conf/enrichd.conf", &cfg, err, sizeof err) != ENR_OK)
		abort();
	lists = dom_lists_load("data", &rc); /* may be NULL outside the repository */
	return 0;
}

static inline void check(int ok)
{
	if (!ok)
		abort();
}

#endif
