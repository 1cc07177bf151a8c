/*
 * jobs_fuzz.h - what a parsed batch submission must hold, JSON or CSV
 * (fuzz_jobs_json.c, fuzz_jobs_csv.c): either a job input whose every row
 * is accounted for and whose accepted rows rebuild into the records a
 * worker will enrich, or a refusal that says why.
 */
#ifndef ENR_FUZZ_JOBS_FUZZ_H
#define ENR_FUZZ_JOBS_FUZZ_H

#include <string.h>

#include "lib/jobs.h"
#include "lib/json_path.h"

#include "engine_fuzz.h"

/* rc, in and details as job_parse_json/job_parse_csv left them; a stored
 * row is JSON nested at most depth deep (and an array for CSV input). */
static inline void check_job_input(enum enr_err rc, const struct job_input *in,
				   const json_t *details, int depth, bool csv)
{
	size_t rejected = 0;
	struct st_job job;

	if (rc != ENR_OK) {
		if (rc == ENR_E_INVALID || rc == ENR_E_TOO_LARGE)
			check(json_is_array(details) && json_array_size(details) > 0);
		else
			check(rc == ENR_E_NOMEM);
		return;
	}
	check(details == NULL && in->nrows > 0 && in->want != 0);
	check(!csv || in->columns != NULL);
	check(in->nrows <= (size_t)cfg->limits.records_per_job_max);
	check(json_array_size(in->rejections) <= LIM_JOB_REJECTIONS_LISTED);
	memset(&job, 0, sizeof job);
	job.format = in->format;
	job.columns = in->columns;
	for (size_t i = 0; i < in->nrows; i++) {
		const char *input = in->rows[i].input;

		check(input != NULL && jp_depth_ok(input, strlen(input), depth));
		check(!csv || input[0] == '[');
		if (in->rows[i].invalid) {
			check(in->rows[i].error != NULL && in->rows[i].error[0] != '\0');
			rejected++;
		} else {
			struct rec r;
			char why[256];

			rec_init(&r);
			check(job_row_record(&job, input, cfg, lists, &r, why, sizeof why) == ENR_OK);
			rec_release(&r);
		}
	}
	check(rejected == in->rejected);
}

#endif
