/*
 * test_jobs.c - batch submissions, row records, outcomes and rendering.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/jobs.h"
#include "lib/limits.h"
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
	/* "bad" is dropped because Acme remains; "only" (padded) has nothing else. */
	CHECK_INT(in.rejected, 1);
	CHECK_STR(in.columns, "[\"Email\",\"Company\",\"Notes\"]");
	CHECK_STR(in.rows[0].input, "[\"a.b@acme.com\",\"Acme\",\"x, y\"]");
	CHECK(!in.rows[1].invalid);
	CHECK_STR(in.rows[1].input, "[\"bad\",\"Acme\",\"z\"]");
	CHECK(in.rows[2].invalid && strstr(in.rows[2].error, "email: ") == in.rows[2].error);
	CHECK_STR(in.rows[2].input, "[\"only\",\"\",\"\"]");
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

/* A junk e-mail beside a valid LinkedIn URL: the row runs on the URL and
 * says what it ignored; a row the reader rejects keeps its cells. */
TEST(csv_rows_are_read_leniently)
{
	struct job_input in;
	json_t *d = NULL;
	const char *body = "E-mail,LinkedIn URL,Notes\r\n"
			   "not-an-email,linkedin.com/in/jane-roe,one\r\n"
			   "junk,,two\r\n"
			   "x@y,not a profile,three\r\n"
			   "a.b@acme.com,,\"four\"x\r\n"
			   "c.d@acme.com,,five,,\r\n"
			   "e.f@acme.com,,six,seven\r\n"
			   "g.h@acme.com,,\xff\r\n";
	struct st_job job;
	struct rec r;
	char why[256];

	job_input_init(&in);
	REQUIRE(job_parse_csv(body, strlen(body), NULL, cfg, NULL, &in, &d) == ENR_OK);
	REQUIRE(in.nrows == 7);
	CHECK(!in.rows[0].invalid);
	CHECK(in.rows[1].invalid && strstr(in.rows[1].error, "email: not a valid e-mail address"));
	/* Two bad identifiers: the first one is named. */
	CHECK(in.rows[2].invalid && strncmp(in.rows[2].error, "email: ", 7) == 0);
	CHECK(in.rows[3].invalid && strstr(in.rows[3].error, "quote") != NULL);
	CHECK_STR(in.rows[3].input, "[\"a.b@acme.com\",\"\",\"fourx\"]");
	CHECK(!in.rows[4].invalid);          /* trailing empty cells dropped */
	CHECK_STR(in.rows[4].input, "[\"c.d@acme.com\",\"\",\"five\"]");
	CHECK(in.rows[5].invalid && strstr(in.rows[5].error, "4 fields, the header has 3"));
	CHECK_STR(in.rows[5].input, "[\"e.f@acme.com\",\"\",\"six\",\"seven\"]");
	CHECK(in.rows[6].invalid && strstr(in.rows[6].error, "UTF-8") != NULL);
	CHECK_STR(in.rows[6].input, "[\"g.h@acme.com\",\"\",\"\"]");
	CHECK_INT(in.rejected, 5);

	memset(&job, 0, sizeof job);
	job.format = JOB_FMT_CSV;
	job.columns = in.columns;
	rec_init(&r);
	CHECK_INT(job_row_record(&job, in.rows[0].input, cfg, NULL, &r, why, sizeof why), ENR_OK);
	CHECK_STR(why, "email ignored: not a valid e-mail address");
	CHECK(rec_get(&r, ID_EMAIL) == NULL);
	CHECK_STR(rec_get(&r, ID_LINKEDIN_URL), "https://www.linkedin.com/in/jane-roe");
	rec_release(&r);
	rec_init(&r);
	CHECK_INT(job_row_record(&job, in.rows[4].input, cfg, NULL, &r, why, sizeof why), ENR_OK);
	CHECK_STR(why, "");
	rec_release(&r);
	job_input_release(&in);

	/* JSON records stay strict. */
	{
		const char *j = "{\"records\":[{\"email\":\"junk\",\"linkedin_url\":"
				"\"linkedin.com/in/jane-roe\"}]}";

		job_input_init(&in);
		REQUIRE(job_parse_json(j, strlen(j), cfg, NULL, &in, &d) == ENR_OK);
		CHECK_INT(in.rejected, 1);
		job_input_release(&in);
	}
}

TEST(lenient_normalise)
{
	struct rec r;
	struct rec_problem p;
	char warn[128];

	rec_init(&r);
	CHECK_INT(rec_set(&r, ID_EMAIL, "junk", 4), ENR_OK);
	CHECK_INT(rec_set(&r, ID_PHONE, "call me", 7), ENR_OK);
	CHECK_INT(rec_set(&r, ID_COMPANY_NAME, "  Acme ", 7), ENR_OK);
	CHECK_INT(job_normalise_row(&r, 0, warn, sizeof warn, &p), ENR_OK);
	CHECK_STR(warn, "email ignored: not a valid e-mail address; phone ignored: "
			"not a valid phone number (6 to 20 digits)");
	CHECK_STR(rec_get(&r, ID_COMPANY_NAME), "Acme");
	CHECK(rec_get(&r, ID_EMAIL) == NULL && rec_get(&r, ID_PHONE) == NULL);
	rec_release(&r);

	/* Only bad identifiers: the first problem, as the strict rule says it. */
	rec_init(&r);
	CHECK_INT(rec_set(&r, ID_EMAIL, "junk", 4), ENR_OK);
	CHECK_INT(rec_set(&r, ID_PHONE, "   ", 3), ENR_OK);
	CHECK_INT(job_normalise_row(&r, 0, warn, sizeof warn, &p), ENR_E_INVALID);
	CHECK_INT(p.field, ID_EMAIL);
	rec_release(&r);
	rec_init(&r);
	CHECK_INT(job_normalise_row(&r, 0, warn, sizeof warn, &p), ENR_E_INVALID);
	CHECK_INT(p.field, ID__MAX);
	rec_release(&r);
	/* A small warning buffer truncates, never overruns. */
	rec_init(&r);
	CHECK_INT(rec_set(&r, ID_EMAIL, "junk", 4), ENR_OK);
	CHECK_INT(rec_set(&r, ID_DOMAIN, "acme.com", 8), ENR_OK);
	CHECK_INT(job_normalise_row(&r, 0, warn, 8, &p), ENR_OK);
	CHECK_INT(strlen(warn), 7);
	rec_release(&r);
}

TEST(result_column_names)
{
	char names[JOB_COLUMNS_MAX][JOB_COLUMN_NAME_MAX];
	size_t n = 0;
	const char *in1[] = { "E-mail", "Company", "Title", "Extra" };
	const char *in2[] = { "title", "Title_Enriched", "_status", "_source" };

	CHECK_INT(job_result_columns(in1, NULL, 4, FLD_BIT(FLD_COMPANY_NAME) | FLD_BIT(FLD_TITLE),
				     0, names, &n), ENR_OK);
	REQUIRE(n == 4);
	/* Another spelling of an identifier is not the same name. */
	CHECK_STR(names[0], "company_name");
	CHECK_STR(names[1], "title_enriched");
	CHECK_STR(names[2], "_status");
	CHECK_STR(names[3], "_error");
	CHECK_INT(job_result_columns(in2, NULL, 4, FLD_BIT(FLD_TITLE),
				     JOB_COL_SOURCE | JOB_COL_CONFIDENCE, names, &n), ENR_OK);
	REQUIRE(n == 5);
	CHECK_STR(names[0], "title_enriched2");
	CHECK_STR(names[1], "_source_enriched");
	CHECK_STR(names[2], "_confidence");
	CHECK_STR(names[3], "_status_enriched");
	CHECK_STR(names[4], "_error");
}

TEST(source_and_confidence_cells)
{
	struct wf_result r;
	struct buf b;
	char c[16];

	wf_result_init(&r);
	buf_init(&b, 0);
	CHECK_INT(job_source_cell(&r, FLD_ALL, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "");
	job_confidence_cell(&r, FLD_ALL, c, sizeof c);
	CHECK_STR(c, "");
	r.value[FLD_FIRST_NAME] = strdup("Ann");
	r.source[FLD_FIRST_NAME] = "pdl";
	r.confidence[FLD_FIRST_NAME] = 0.9;
	r.value[FLD_PHONE] = strdup("+1 555 0100");
	r.source[FLD_PHONE] = "lusha";
	r.confidence[FLD_PHONE] = 0.456;
	CHECK_INT(job_source_cell(&r, FLD_ALL, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "first_name=pdl; phone=lusha");
	buf_reset(&b);
	CHECK_INT(job_source_cell(&r, FLD_BIT(FLD_PHONE), &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "phone=lusha");
	job_confidence_cell(&r, FLD_ALL, c, sizeof c);
	CHECK_STR(c, "0.46");
	job_confidence_cell(&r, FLD_BIT(FLD_FIRST_NAME), c, sizeof c);
	CHECK_STR(c, "0.90");
	buf_release(&b);
	wf_result_release(&r);
}

struct parse_job {
	const char *body;
	size_t len;
	enum enr_err rc;
	char *details;      /* the details, as text */
	struct job_input in;
};

static void *parse_json_job(void *arg)
{
	struct parse_job *p = arg;
	json_t *d = NULL;

	job_input_init(&p->in);
	p->rc = job_parse_json(p->body, p->len, cfg, NULL, &p->in, &d);
	p->details = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	return NULL;
}

/* {"records": [[[...]]]} with n levels of arrays inside "records". */
static char *deep_records(size_t n)
{
	static const char head[] = "{\"records\": [", tail[] = "]}";
	size_t len = sizeof head - 1 + 2 * n + sizeof tail - 1;
	char *s = malloc(len + 1);

	if (s == NULL)
		return NULL;
	memcpy(s, head, sizeof head - 1);
	memset(s + sizeof head - 1, '[', n);
	memset(s + sizeof head - 1 + n, ']', n);
	memcpy(s + sizeof head - 1 + 2 * n, tail, sizeof tail);
	return s;
}

/* The crash a client could cause: 2,000 levels of nesting in a batch, on
 * the stack a responder thread has. */
TEST(deep_nesting_is_refused_on_a_responder_stack)
{
	struct parse_job p;
	char *body = deep_records(2000);

	REQUIRE(body != NULL);
	memset(&p, 0, sizeof p);
	p.body = body;
	p.len = strlen(body);
	REQUIRE(harness_on_stack(parse_json_job, &p, LIM_RESPONDER_STACK) == 0);
	CHECK_INT(p.rc, ENR_E_INVALID);
	CHECK(p.details && strstr(p.details, "\"field\":\"body\"") &&
	      strstr(p.details, "nested deeper than"));
	free(p.details);
	job_input_release(&p.in);
	free(body);

	/* Just under the cap: parsed, the record refused, its input kept flat. */
	body = deep_records(LIM_JSON_DEPTH_MAX - 2);
	REQUIRE(body != NULL);
	memset(&p, 0, sizeof p);
	p.body = body;
	p.len = strlen(body);
	REQUIRE(harness_on_stack(parse_json_job, &p, LIM_RESPONDER_STACK) == 0);
	CHECK_INT(p.rc, ENR_OK);
	CHECK_INT(p.in.nrows, 1);
	CHECK_INT(p.in.rejected, 1);
	CHECK_STR(p.in.rows[0].input, "null");
	free(p.details);
	job_input_release(&p.in);
	free(body);
}

TEST(refused_records_are_stored_one_level_deep)
{
	struct job_input in;
	json_t *d = NULL;
	const char *body = "{\"records\":[{\"email\":{\"x\":[1,2]},\"phone\":\"+1 555\","
			   "\"n\":3}, \"a string\"]}";

	job_input_init(&in);
	REQUIRE(job_parse_json(body, strlen(body), cfg, NULL, &in, &d) == ENR_OK);
	CHECK_INT(in.rejected, 2);
	CHECK_STR(in.rows[0].input, "{\"email\":null,\"phone\":\"+1 555\",\"n\":3}");
	CHECK_STR(in.rows[1].input, "null");
	job_input_release(&in);
}

TEST(csv_refusals_say_why_and_rows_rebuild_as_submitted)
{
	struct job_input in;
	json_t *d = NULL;
	const char *body = "Email,Company,E-mail\r\n,Acme,not-an-email\r\n";
	struct st_job job;
	struct rec r;
	char why[128];

	/* A ?enrich= entry that is not UTF-8 is quoted back as ASCII. */
	job_input_init(&in);
	CHECK_INT(job_parse_csv(body, strlen(body), "title,\xff\xfe", cfg, NULL, &in, &d),
		  ENR_E_INVALID);
	CHECK_INT(json_array_size(d), 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(d, 0), "problem")),
		  "\"??\" is not a field that can be enriched");
	json_decref(d);
	job_input_release(&in);

	/* The first Email column owns the identifier even when empty: the
	 * later "E-mail" column is carried, never read as the e-mail. */
	job_input_init(&in);
	REQUIRE(job_parse_csv(body, strlen(body), NULL, cfg, NULL, &in, &d) == ENR_OK);
	CHECK_INT(in.rejected, 0);
	memset(&job, 0, sizeof job);
	job.format = JOB_FMT_CSV;
	job.columns = in.columns;
	rec_init(&r);
	CHECK_INT(job_row_record(&job, in.rows[0].input, cfg, NULL, &r, why, sizeof why), ENR_OK);
	CHECK(rec_get(&r, ID_EMAIL) == NULL);
	CHECK_STR(rec_get(&r, ID_COMPANY_NAME), "Acme");
	rec_release(&r);
	job_input_release(&in);
}

TEST(invalid_json_rows_say_why)
{
	struct st_job job;
	struct rec r;
	char why[128] = "untouched";

	memset(&job, 0, sizeof job);
	job.format = JOB_FMT_JSON;
	job.columns = "[]";
	rec_init(&r);
	CHECK_INT(job_row_record(&job, "{\"email\":\"bad\"}", cfg, NULL, &r, why, sizeof why),
		  ENR_E_INVALID);
	CHECK(strstr(why, "email") != NULL);
	rec_release(&r);
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

TEST(not_done_reasons)
{
	struct wf_result r;
	char code[32], why[128];

	r = wf(WF_PARTIAL, 1, 0, 1, 0, true);
	job_not_done_reason(&r, 500, code, sizeof code, why, sizeof why);
	CHECK_STR(code, "upstream_failed");
	r = wf(WF_PARTIAL, 1, 0, 0, 0, true);
	job_not_done_reason(&r, 500, code, sizeof code, why, sizeof why);
	CHECK_STR(code, "deadline");
	CHECK_STR(why, "the deadline of 500 ms passed");
	r = wf(WF_NOT_FOUND, 0, 2, 0, 0, false);
	r.skipped[0] = "pdl";
	r.skipped[1] = "lusha";
	r.nskipped = 2;
	job_not_done_reason(&r, 0, code, sizeof code, why, sizeof why);
	CHECK_STR(code, "no_key");
	CHECK_STR(why, "no usable key for pdl, lusha");
	job_not_done_reason(&r, 0, code, sizeof code, why, 10);
	CHECK_INT(strlen(why), 9);
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
	CHECK_INT(job_csv_header(&job, JOB_OUT_CSV, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "Email,title,first_name,title_enriched,_status,_error\r\n");
	buf_reset(&b);
	free(job.columns);
	job.columns = strdup("[\"E-mail\",\"Company\",\"_status\"]");
	job.want = FLD_BIT(FLD_COMPANY_NAME);
	CHECK_INT(job_csv_header(&job, JOB_OUT_CSV, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "E-mail,Company,_status,company_name,_status_enriched,_error\r\n");
	free(job.columns);
	job.columns = strdup("[\"Email\",\"title\"]");
	job.want = FLD_BIT(FLD_FIRST_NAME) | FLD_BIT(FLD_TITLE);
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

TEST(csv_results_neutralise_formulas_unless_raw)
{
	struct st_job job;
	struct st_job_row_out row;
	struct buf b;

	memset(&job, 0, sizeof job);
	job.format = JOB_FMT_CSV;
	job.columns = strdup("[\"Email\",\"=cmd|' /C calc'!A0\"]");
	job.want = FLD_BIT(FLD_TITLE);
	buf_init(&b, 0);
	CHECK_INT(job_csv_header(&job, JOB_OUT_CSV, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "Email,'=cmd|' /C calc'!A0,title,_status,_error\r\n");
	buf_reset(&b);
	memset(&row, 0, sizeof row);
	row.rownum = 1;
	row.input = "[\"a@b.com\",\"+1 555 0100\"]";
	row.state = ST_ROW_DONE;
	row.status = 1;
	row.result = "{\"fields\":{\"title\":\"=HYPERLINK(\\\"http://x\\\",\\\"y\\\")\"},"
		     "\"sources\":{}}";
	CHECK_INT(job_render_row(&job, &row, JOB_OUT_CSV, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "a@b.com,'+1 555 0100,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\","
				"complete,\r\n");
	/* For machine consumers: the bytes as they are. */
	buf_reset(&b);
	CHECK_INT(job_render_row(&job, &row, JOB_OUT_CSV_RAW, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "a@b.com,+1 555 0100,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\","
				"complete,\r\n");
	buf_reset(&b);
	CHECK_INT(job_csv_header(&job, JOB_OUT_CSV_RAW, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "Email,=cmd|' /C calc'!A0,title,_status,_error\r\n");
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
	RUN(deep_nesting_is_refused_on_a_responder_stack);
	RUN(refused_records_are_stored_one_level_deep);
	RUN(csv_submission);
	RUN(csv_refusals_say_why_and_rows_rebuild_as_submitted);
	RUN(csv_rows_are_read_leniently);
	RUN(lenient_normalise);
	RUN(result_column_names);
	RUN(source_and_confidence_cells);
	RUN(invalid_json_rows_say_why);
	RUN(decisions);
	RUN(not_done_reasons);
	RUN(rendering);
	RUN(csv_results_neutralise_formulas_unless_raw);
	cfg_release(cfg);
	return harness_done();
}
