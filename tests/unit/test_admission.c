/*
 * test_admission.c - leased admission: exact for small limits, never over
 * the bucket for large ones, usage written on flush.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/admission.h"
#include "lib/log.h"
#include "lib/store.h"
#include "lib/store_int.h"

#include "harness.h"

static char dir[] = "/tmp/enrichd-adm-XXXXXX";
static int dbn;

static struct store *fresh(int64_t *acc)
{
	char url[256];
	struct store *s = NULL;

	snprintf(url, sizeof url, "sqlite:%s/a%d.db", dir, dbn++);
	if (st_open(url, &s) != ENR_OK || st_account_create(s, "acme", 1, acc) != ENR_OK)
		return NULL;
	return s;
}

struct sum {
	int64_t requests, records, rejections;
};

static int add(void *arg, const struct st_usage *u)
{
	struct sum *x = arg;

	x->requests += u->requests;
	x->records += u->records;
	x->rejections += u->rejections;
	return 0;
}

TEST(small_limits_are_exact_without_leases)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, true);
	struct cfg_account_limits l = { 60, 5, 1000, 10000 };
	struct st_admit_res r;
	int ok = 0;

	REQUIRE(s && a);
	for (int i = 0; i < 9; i++) {
		REQUIRE(adm_check(a, acc, &l, 1, 1, 1000000, &r) == ENR_OK);
		ok += r.verdict == ST_ADMIT_OK;
	}
	CHECK_INT(ok, 5);
	CHECK_INT(r.verdict, ST_ADMIT_RATE_LIMITED);
	CHECK_INT(r.retry_after_s, 1);
	adm_free(a);
	st_close(s);
}

TEST(leases_never_admit_more_than_the_bucket)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, true);
	struct adm *b = adm_new(s, true);   /* a second process sharing the store */
	struct cfg_account_limits l = { 60000, 300, 1000000, 10000000 };
	struct st_admit_res r;
	int ok = 0;
	struct sum u = { 0, 0, 0 };

	REQUIRE(s && a && b);
	/* One instant: nothing refills, so the total is the burst exactly or less. */
	for (int i = 0; i < 1000; i++) {
		REQUIRE(adm_check(i % 2 ? a : b, acc, &l, 1, 1, 5000000, &r) == ENR_OK);
		ok += r.verdict == ST_ADMIT_OK;
	}
	CHECK(ok <= 300);
	CHECK(ok >= 300 - 2 * 30);    /* at most one unused lease per process */
	CHECK_INT(adm_flush(a, 5000000), ENR_OK);
	CHECK_INT(adm_flush(b, 5000000), ENR_OK);
	st_usage_each(s, acc, "1970-01-01", add, &u);
	CHECK_INT(u.requests, ok);
	CHECK_INT(u.records, ok);
	adm_free(a);
	adm_free(b);
	st_close(s);
}

TEST(expired_lease_is_dropped)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, true);
	struct cfg_account_limits l = { 60000, 1000, 1000000, 10000000 };
	struct st_admit_res r;

	REQUIRE(s && a);
	REQUIRE(adm_check(a, acc, &l, 1, 1, 1000, &r) == ENR_OK);
	CHECK_INT(r.verdict, ST_ADMIT_OK);
	/* 100 tokens leased, bucket shows what is left beyond them. */
	CHECK_INT(r.bucket_remaining, 999);
	REQUIRE(adm_check(a, acc, &l, 1, 1, 1100, &r) == ENR_OK); /* from the lease */
	CHECK_INT(r.bucket_remaining, 998);
	REQUIRE(adm_check(a, acc, &l, 1, 1, 2000, &r) == ENR_OK); /* lease expired: store */
	CHECK_INT(r.verdict, ST_ADMIT_OK);
	adm_free(a);
	st_close(s);
}

TEST(batches_of_records_go_to_the_store)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, true);
	struct cfg_account_limits l = { 60000, 1000, 50, 10000000 };
	struct st_admit_res r;

	REQUIRE(s && a);
	REQUIRE(adm_check(a, acc, &l, 0, 51, 1000, &r) == ENR_OK);
	CHECK_INT(r.verdict, ST_ADMIT_QUOTA);
	CHECK_INT(r.records_fit, 50);
	REQUIRE(adm_check(a, acc, &l, 0, 50, 1000, &r) == ENR_OK);
	CHECK_INT(r.verdict, ST_ADMIT_OK);
	adm_free(a);
	st_close(s);
}

TEST(cgi_mode_always_asks_the_store)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, false);
	struct cfg_account_limits l = { 60000, 1000, 1000000, 10000000 };
	struct st_admit_res r;
	struct sum u = { 0, 0, 0 };

	REQUIRE(s && a);
	for (int i = 0; i < 3; i++)
		REQUIRE(adm_check(a, acc, &l, 1, 1, 1000, &r) == ENR_OK);
	st_usage_each(s, acc, "1970-01-01", add, &u);
	CHECK_INT(u.requests, 3); /* written at once, nothing held in memory */
	adm_free(a);
	st_close(s);
}

/* The calling thread's store connection refuses writes (or takes them again). */
static void writes(struct store *s, bool on)
{
	struct conn *c = st_conn_get(s);

	if (c)
		CHECK(sqlite3_exec(c->db, on ? "PRAGMA query_only = 0" : "PRAGMA query_only = 1",
				   NULL, NULL, NULL) == SQLITE_OK);
}

TEST(usage_survives_a_failed_flush)
{
	int64_t acc;
	struct store *s = fresh(&acc);
	struct adm *a = adm_new(s, true);
	struct cfg_account_limits l = { 60000, 1000, 1000000, 10000000 };
	struct st_admit_res r;
	struct sum u = { 0, 0, 0 };

	REQUIRE(s && a);
	/* The first admission takes a lease from the store; the next ten
	 * come from memory and are counted there. */
	for (int i = 0; i < 11; i++) {
		REQUIRE(adm_check(a, acc, &l, 1, 1, 1000, &r) == ENR_OK);
		REQUIRE(r.verdict == ST_ADMIT_OK);
	}
	writes(s, false);
	log_set_level(LOG_LVL_NOTICE); /* the refused writes are expected */
	CHECK_INT(adm_flush(a, 1000), ENR_E_UNAVAILABLE);
	CHECK_INT(adm_add_credits(a, acc, 7, 1000), ENR_OK);
	for (int i = 0; i < 5; i++)
		REQUIRE(adm_check(a, acc, &l, 1, 1, 1100, &r) == ENR_OK);
	CHECK_INT(adm_flush(a, 1100), ENR_E_UNAVAILABLE);
	log_set_level(LOG_LVL_WARN);
	writes(s, true);
	CHECK_INT(adm_flush(a, 1200), ENR_OK);
	st_usage_each(s, acc, "1970-01-01", add, &u);
	CHECK_INT(u.requests, 16);
	CHECK_INT(u.records, 16);
	/* Written once, not again. */
	CHECK_INT(adm_flush(a, 1300), ENR_OK);
	u = (struct sum){ 0, 0, 0 };
	st_usage_each(s, acc, "1970-01-01", add, &u);
	CHECK_INT(u.requests, 16);
	adm_free(a);
	st_close(s);
}

int main(void)
{
	char cmd[300];

	if (mkdtemp(dir) == NULL)
		return 1;
	log_set_level(LOG_LVL_WARN);
	RUN(small_limits_are_exact_without_leases);
	RUN(leases_never_admit_more_than_the_bucket);
	RUN(expired_lease_is_dropped);
	RUN(batches_of_records_go_to_the_store);
	RUN(cgi_mode_always_asks_the_store);
	RUN(usage_survives_a_failed_flush);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return harness_done();
}
