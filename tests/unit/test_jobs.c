/*
 * test_jobs.c - batch submissions, row records, outcomes and rendering.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/jobs.h"
#include "lib/log.h"

#include "harness.h"

static struct cfg *cfg;

TEST(json_submission_keeps_good_rows_and_lists_bad_ones)
{
	struct job_input in;
	json_t *d = NULL;
	const char *body = "{\"records\":[{\"email\":\"a.b@acme.com\"},{\"email\":\"bad\"},"
			   "{\"linkedin_url\":\"linkedin.com/in/x-y\",\"first_name\":\"X\"},{}],"
			   "\"enrich\":[\"title\",\"phone\"]}";

	job_input_init(&in);
	REQUIRE(job_parse_json(body, strlen(body), cfg, NULL, &in, &d) == ENR_OK);
	CHECK(d == NULL);
	CHECK_INT(in.nrows, 4);
	CHECK_INT(in.rejected, 2);
	CHECK(!in.rows[0].invalid && in.rows[1].invalid && !in.rows[2].invalid && in.rows[3].invalid);
	CHECK(strstr(in.rows[1].error, "email") != NULL);
	CHECK(strstr(in.rows[3].error, "identifier") != NULL);
	CHECK(in.want == (FLD_BIT(FLD_TITLE) | FLD_BIT(FLD_PHONE)));
	CHECK_INT(json_array_size(in.rejections), 2);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(in.rejections, 0), "row")), 2);
	job_input_release(&in);
}

TEST(json_submission_refused_whole)
{
	static const char *const bad[] = {
		"", "[]", "{\"records\":[]}", "{\"records\":{}}", "{\"records\":[{}],\"x\":1}",
		"{\"records\":[{\"email\":\"a@b.com\"}],\"enrich\":[\"nope\"]}",
		"{\"records\":[{\"email\":\"a@b.com\"}],\"webhook_url\":\"http://example.com/\"}",
		"{\"records\":[{\"email\":\"a@b.com\"}],\"records\":[]}",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct job_input in;
		json_t *d = NULL;

		job_input_init(&in);
		CHECK_INT(job_parse_json(bad[i], strlen(bad[i]), cfg, NULL, &in, &d), ENR_E_INVALID);
		CHECK(json_array_size(d) > 0);
		json_decref(d);
		job_input_release(&in);
	}
}

TEST(csv_submission)
{
	struct job_input in;
	json_t *d = NULL;
	const char *body = "Email,Company,Notes\r\na.b@acme.com,Acme,\"x, y\"\r\nbad,Acme,z\r\n"
			   "only\r\nc.d@acme.com,Acme,\"multi\nline\"\r\n";
	struct st_job job;
	struct rec r;
	char why[128];

	job_input_init(&in);
	REQUIRE(job_parse_csv(body, strlen(body), "title,phone", cfg, NULL, &in, &d) == ENR_OK);
	CHECK_INT(in.nrows, 4);
	CHECK_INT(in.rejected, 2);
	CHECK_STR(in.columns, "[\"Email\",\"Company\",\"Notes\"]");
	CHECK_STR(in.rows[0].input, "[\"a.b@acme.com\",\"Acme\",\"x, y\"]");
	CHECK(in.rows[2].invalid && strstr(in.rows[2].error, "the header has 3") != NULL);
	/* A stored row comes back as the same normalised record. */
	memset(&job, 0, sizeof job);
	job.format = JOB_FMT_CSV;
	job.columns = in.columns;
	rec_init(&r);
	CHECK_INT(job_row_record(&job, in.rows[3].input, cfg, NULL, &r, why, sizeof why), ENR_OK);
	CHECK_STR(rec_get(&r, ID_EMAIL), "c.d@acme.com");
	CHECK_STR(rec_get(&r, ID_COMPANY_NAME), "Acme");
	rec_release(&r);
	job_input_release(&in);

	job_input_init(&in);
	CHECK_INT(job_parse_csv("Notes\r\nx\r\n", 10, NULL, cfg, NULL, &in, &d), ENR_E_INVALID);
	json_decref(d);
	job_input_release(&in);
	job_input_init(&in);
	CHECK_INT(job_parse_csv("Email\r\n\"open", 12, NULL, cfg, NULL, &in, &d), ENR_E_INVALID);
	json_decref(d);
	job_input_release(&in);
	job_input_init(&in);
	CHECK_INT(job_parse_csv("Email\r\n", 7, "title,salary", cfg, NULL, &in, &d), ENR_E_INVALID);
	{
		char *t = json_dumps(d, 0);

		CHECK(t && strstr(t, "salary") != NULL);
		free(t);
	}
	json_decref(d);
	job_input_release(&in);
}

static struct wf_result wf(enum wf_status st, int asked, int unavailable, int failed,
			   int64_t back, bool deadline)
{
	struct wf_result r;

	wf_result_init(&r);
	r.status = st;
	r.paid_asked = asked;
	r.paid_unavailable = unavailable;
	r.paid_failed = failed;
	r.comes_back_ms = back;
	r.deadline_passed = deadline;
	return r;
}

TEST(decisions)
{
	int64_t nb = 0;
	struct wf_result r;

	r = wf(WF_COMPLETE, 1, 0, 0, 0, false);
	CHECK_INT(job_decide(&r, 0, cfg, 1000, 0, &nb), JOB_ROW_DONE);
	r = wf(WF_NOT_FOUND, 2, 0, 0, 0, false);
	CHECK_INT(job_decide(&r, 0, cfg, 1000, 0, &nb), JOB_ROW_DONE);   /* a miss is an answer */
	r = wf(WF_NOT_FOUND, 0, 1, 0, 31000, false);
	CHECK_INT(job_decide(&r, 4, cfg, 1000, 0, &nb), JOB_ROW_SNOOZE); /* no attempt spent */
	CHECK_INT(nb, 31000);
	r = wf(WF_NOT_FOUND, 0, 1, 0, 0, false);                        /* only an admin helps */
	CHECK_INT(job_decide(&r, 0, cfg, 1000, 0, &nb), JOB_ROW_RETRY);
	r = wf(WF_PARTIAL, 1, 0, 1, 0, false);
	CHECK_INT(job_decide(&r, 0, cfg, 1000, 0, &nb), JOB_ROW_RETRY);
	CHECK_INT(nb, 1000 + cfg->worker.backoff_base_ms);
	CHECK_INT(job_decide(&r, 2, cfg, 1000, 0.5, &nb), JOB_ROW_RETRY);
	CHECK_INT(nb, 1000 + 4 * cfg->worker.backoff_base_ms + cfg->worker.backoff_base_ms / 2);
	CHECK_INT(job_decide(&r, cfg->worker.max_attempts - 1, cfg, 1000, 0, &nb), JOB_ROW_FAIL);
	r = wf(WF_PARTIAL, 1, 0, 0, 0, true);
	CHECK_INT(job_decide(&r, 0, cfg, 1000, 0, &nb), JOB_ROW_RETRY);
}

TEST(rendering)
{
	struct st_job job;
	struct st_job_row_out row;
	struct buf b;

	memset(&job, 0, sizeof job);
	job.format = JOB_FMT_CSV;
	job.columns = strdup("[\"Email\",\"title\"]");
	job.want = FLD_BIT(FLD_FIRST_NAME) | FLD_BIT(FLD_TITLE);
	buf_init(&b, 0);
	CHECK_INT(job_csv_header(&job, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "Email,title,first_name,title_enriched,_status,_error\r\n");
	buf_reset(&b);
	memset(&row, 0, sizeof row);
	row.rownum = 2;
	row.input = "[\"a@b.com\",\"x,y\"]";
	row.state = ST_ROW_DONE;
	row.status = 2;
	row.result = "{\"fields\":{\"first_name\":\"Ann\"},\"sources\":{}}";
	CHECK_INT(job_render_row(&job, &row, JOB_OUT_CSV, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "a@b.com,\"x,y\",Ann,,partial,\r\n");
	buf_reset(&b);
	CHECK_INT(job_render_row(&job, &row, JOB_OUT_NDJSON, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "{\"row\":2,\"input\":{\"Email\":\"a@b.com\",\"title\":\"x,y\"},"
				"\"first_name\":\"Ann\",\"title\":null,\"_status\":\"partial\",\"_error\":null}\n");
	buf_release(&b);
	st_job_release(&job);
}

int main(void)
{
	char err[256];

	log_set_level(LOG_LVL_ERROR);
	if (cfg_load("conf/enrichd.conf", &cfg, err, sizeof err) != ENR_OK)
		return 1;
	RUN(json_submission_keeps_good_rows_and_lists_bad_ones);
	RUN(json_submission_refused_whole);
	RUN(csv_submission);
	RUN(decisions);
	RUN(rendering);
	cfg_release(cfg);
	return harness_done();
}
