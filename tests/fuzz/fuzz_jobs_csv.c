/*
 * fuzz_jobs_csv.c - libFuzzer target for CSV batch submissions
 * (job_parse_csv, POST /enrich/enqueue with text/csv).  Input: the ?enrich=
 * value, a NUL byte, then the body (no NUL byte: all of it is the body and
 * enrich is absent).  Every row is accounted for, accepted rows rebuild
 * into records, refusals say why; on the responder's stack.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/domains.h"
#include "lib/jobs.h"
#include "lib/json_path.h"

#include "responder_stack.h"

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

static void check(int ok)
{
	if (!ok)
		abort();
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	char enrich[1024];
	const char *body = (const char *)data;
	size_t len = size, rejected = 0;
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
	if (rc == ENR_OK) {
		struct st_job job;

		check(details == NULL && in.nrows > 0 && in.want != 0 && in.columns != NULL);
		check(in.nrows <= (size_t)cfg->limits.records_per_job_max);
		memset(&job, 0, sizeof job);
		job.format = in.format;
		job.columns = in.columns;
		for (size_t i = 0; i < in.nrows; i++) {
			const char *input = in.rows[i].input;

			/* A row is stored as a flat array of its cells. */
			check(input != NULL && input[0] == '[' && jp_depth_ok(input, strlen(input), 1));
			if (in.rows[i].invalid) {
				check(in.rows[i].error != NULL && in.rows[i].error[0] != '\0');
				rejected++;
			} else {
				struct rec r;
				char why[256];

				rec_init(&r);
				check(job_row_record(&job, input, cfg, lists, &r, why, sizeof why) ==
				      ENR_OK);
				rec_release(&r);
			}
		}
		check(rejected == in.rejected);
	} else if (rc == ENR_E_INVALID || rc == ENR_E_TOO_LARGE) {
		check(json_is_array(details) && json_array_size(details) > 0);
	} else {
		check(rc == ENR_E_NOMEM);
	}
	json_decref(details);
	job_input_release(&in);
	return 0;
}

FUZZ_TARGET(fuzz_one)
