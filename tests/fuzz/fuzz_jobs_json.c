/*
 * fuzz_jobs_json.c - libFuzzer target for JSON batch submissions
 * (job_parse_json, POST /enrich/enqueue): any body gives either a job input
 * whose every row is accounted for, or a refusal that says why; an accepted
 * row rebuilds into the same kind of record a worker will enrich.  Never a
 * crash, a leak or a stack overflow on the responder's stack.
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
	struct job_input in;
	json_t *details = NULL;
	enum enr_err rc;
	size_t rejected = 0;

	job_input_init(&in);
	rc = job_parse_json((const char *)data, size, cfg, lists, &in, &details);
	if (rc == ENR_OK) {
		struct st_job job;

		check(details == NULL && in.nrows > 0 && in.want != 0);
		check(in.nrows <= (size_t)cfg->limits.records_per_job_max);
		check(json_array_size(in.rejections) <= LIM_JOB_REJECTIONS_LISTED);
		memset(&job, 0, sizeof job);
		job.format = in.format;
		job.columns = in.columns;
		for (size_t i = 0; i < in.nrows; i++) {
			const char *input = in.rows[i].input;

			/* What is stored is shallow JSON, whatever came in. */
			check(input != NULL && jp_depth_ok(input, strlen(input), 2));
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
