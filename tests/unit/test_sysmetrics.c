/*
 * test_sysmetrics.c - the store-wide metrics: what the store holds shows in
 * the exposition once, keys and accounts by name, the queue as gauges.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/store.h"
#include "lib/sysmetrics.h"

#include "harness.h"

static char dir[] = "/tmp/enrichd-sm-XXXXXX";

static const struct st_ukey_cfg pool[] = {
	{ "pdl-1", "pdl", "acme", "AAAA", 0 },
	{ "pdl-2", "pdl", "acme", "BBBB", 1 },
};

static char *render(void)
{
	struct buf b;
	char *out;

	buf_init(&b, 0);
	if (mx_render(&b) != ENR_OK) {
		buf_release(&b);
		return NULL;
	}
	out = strdup(buf_cstr(&b));
	buf_release(&b);
	return out;
}

TEST(store_counts_show_once)
{
	char url[256], *text;
	struct store *s = NULL;
	struct st_usage_delta d = { 5, 7, 3, 1 };
	struct st_job_row rows[2] = { { "{}", false, NULL }, { "{}", false, NULL } };
	struct st_job j;
	char existing[ST_JOB_ID_LEN + 1];
	bool created = false;
	int64_t acc, now = 1795392000000LL;

	snprintf(url, sizeof url, "sqlite:%s/m.db", dir);
	REQUIRE(st_open(url, NULL, &s) == ENR_OK);
	REQUIRE(st_ukey_sync(s, pool, 2) == ENR_OK);
	REQUIRE(st_account_create(s, "acme", 1, &acc) == ENR_OK);
	REQUIRE(st_usage_add(s, acc, now / 1000, &d) == ENR_OK);
	REQUIRE(st_ukey_outcome_add(s, "pdl-1", PROV_HIT, 4, 4) == ENR_OK);
	REQUIRE(st_ukey_outcome_add(s, "pdl-2", PROV_KEY_INVALID, 1, 0) == ENR_OK);
	REQUIRE(st_ukey_meters_put(s, "pdl-1", 96, -1, now) == ENR_OK);
	memset(&j, 0, sizeof j);
	j.account_id = acc;
	REQUIRE(job_new_id(j.id) == ENR_OK);
	REQUIRE(st_job_create(s, &j, NULL, rows, 2, now - 30000, &created, existing) == ENR_OK);
	st_job_release(&j);
	sm_init();
	CHECK_INT(sm_refresh(s, now), ENR_OK);
	text = render();
	REQUIRE(text != NULL);
	CHECK(strstr(text, "enrichd_upstream_calls_total{provider=\"pdl\",key=\"pdl-1\",outcome=\"hit\"} 4\n"));
	CHECK(strstr(text, "enrichd_upstream_call_credits_total{provider=\"pdl\",key=\"pdl-1\",outcome=\"hit\"} 4\n"));
	CHECK(strstr(text, "enrichd_upstream_calls_total{provider=\"pdl\",key=\"pdl-2\",outcome=\"key_invalid\"} 1\n"));
	CHECK(strstr(text, "enrichd_upstream_key_requests_left{provider=\"pdl\",key=\"pdl-1\"} 96\n"));
	CHECK(strstr(text, "enrichd_upstream_key_requests_left{provider=\"pdl\",key=\"pdl-2\"}") == NULL);
	CHECK(strstr(text, "enrichd_upstream_key_credits_left{") == NULL); /* never reported */
	CHECK(strstr(text, "enrichd_upstream_key_state{provider=\"pdl\",key=\"pdl-1\",state=\"active\"} 1\n"));
	CHECK(strstr(text, "enrichd_account_credits_total{account=\"acme\"} 3\n"));
	CHECK(strstr(text, "enrichd_account_requests_total{account=\"acme\"} 5\n"));
	CHECK(strstr(text, "enrichd_job_rows{state=\"pending\"} 2\n"));
	CHECK(strstr(text, "enrichd_jobs{status=\"queued\"} 1\n"));
	CHECK(strstr(text, "enrichd_job_oldest_pending_age_seconds 30\n"));
	CHECK(strstr(text, "# TYPE enrichd_upstream_calls_total counter\n"));
	/* A second refresh replaces, never adds. */
	CHECK_INT(sm_refresh(s, now), ENR_OK);
	free(text);
	text = render();
	REQUIRE(text != NULL);
	CHECK(strstr(text, "outcome=\"hit\"} 4\n"));
	{
		const char *first = strstr(text, "enrichd_account_credits_total{account=\"acme\"}");

		CHECK(first && strstr(first + 1, "enrichd_account_credits_total{account=\"acme\"}") == NULL);
	}
	free(text);
	st_close(s);
}

int main(void)
{
	int rc;
	char cmd[128];

	if (mkdtemp(dir) == NULL)
		return 1;
	log_set_level(LOG_LVL_ERROR);
	RUN(store_counts_show_once);
	rc = harness_done();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
