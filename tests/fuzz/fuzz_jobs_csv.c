/*
 * fuzz_jobs_csv.c - libFuzzer target for CSV batch submissions
 * (job_parse_csv, POST /enrich/enqueue with text/csv).  Input: the ?enrich=
 * value, a NUL byte, then the body (no NUL byte: all of it is the body and
 * enrich is absent).  Every row is accounted for, accepted rows rebuild
 * into records, refusals say why; on the responder's stack.
 */
#include <stdint.h>
#include <string.h>

#include "jobs_fuzz.h"
#include "responder_stack.h"

static int fuzz_one(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	char enrich[1024];
	const char *body = (const char *)data;
	size_t len = size;
	struct job_input in;
	json_t *details = NULL;
	enum enr_err rc;

	if (nul) {
		size_t n = (size_t)(nul - data);

		if (n >= sizeof enrich)
			return 0;
		memcpy(enrich, data, n);
		enrich[n] = '\0';
		body = (const char *)nul + 1;
		len = size - n - 1;
	}
	job_input_init(&in);
	rc = job_parse_csv(body, len, nul ? enrich : NULL, cfg, lists, &in, &details);
	/* A row is stored as a flat array of its cells. */
	check_job_input(rc, &in, details, 1, true);
	json_decref(details);
	job_input_release(&in);
	return 0;
}

FUZZ_TARGET(fuzz_one)
