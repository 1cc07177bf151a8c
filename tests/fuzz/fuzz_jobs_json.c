/*
 * fuzz_jobs_json.c - libFuzzer target for JSON batch submissions
 * (job_parse_json, POST /enrich/enqueue): any body gives either a job input
 * whose every row is accounted for, or a refusal that says why; an accepted
 * row rebuilds into the same kind of record a worker will enrich.  Never a
 * crash, a leak or a stack overflow on the responder's stack.
 */
#include <stdint.h>

#include "jobs_fuzz.h"
#include "responder_stack.h"

static int fuzz_one(const uint8_t *data, size_t size)
{
	struct job_input in;
	json_t *details = NULL;
	enum enr_err rc;

	job_input_init(&in);
	rc = job_parse_json((const char *)data, size, cfg, lists, &in, &details);
	/* What is stored is shallow JSON, whatever came in. */
	check_job_input(rc, &in, details, 2, false);
	json_decref(details);
	job_input_release(&in);
	return 0;
}

FUZZ_TARGET(fuzz_one)
