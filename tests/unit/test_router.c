/*
 * test_router.c - path pattern matching.
 */
#include <string.h>

#include "lib/router.h"

#include "harness.h"

TEST(literal_paths)
{
	struct rt_match m;

	CHECK(rt_match("/health", "/health", &m));
	CHECK_INT(m.n, 0);
	CHECK(!rt_match("/health", "/health/", &m));
	CHECK(!rt_match("/health", "/healthz", &m));
	CHECK(!rt_match("/health", "/", &m));
	CHECK(!rt_match("/enrich", "/enrich/enqueue", &m));
}

TEST(captures)
{
	struct rt_match m;

	CHECK(rt_match("/enrich/jobs/{id}", "/enrich/jobs/j_123", &m));
	CHECK_INT(m.n, 1);
	CHECK_STR(m.cap[0], "j_123");
	CHECK(rt_match("/enrich/jobs/{id}/results", "/enrich/jobs/abc/results", &m));
	CHECK_STR(m.cap[0], "abc");
	CHECK(!rt_match("/enrich/jobs/{id}", "/enrich/jobs/", &m));
	CHECK(!rt_match("/enrich/jobs/{id}", "/enrich/jobs/a/b", &m));
	CHECK(!rt_match("/enrich/jobs/{id}/results", "/enrich/jobs/a/result", &m));
	CHECK(rt_match("/a/{x}/b/{y}", "/a/1/b/2", &m));
	CHECK_INT(m.n, 2);
	CHECK_STR(m.cap[0], "1");
	CHECK_STR(m.cap[1], "2");
}

TEST(no_write_on_mismatch)
{
	struct rt_match m;

	m.n = 99;
	CHECK(!rt_match("/x/{id}", "/y/1", &m));
	CHECK_INT(m.n, 99);
}

TEST(long_capture_refused)
{
	static char path[4096];
	struct rt_match m;

	memcpy(path, "/x/", 3);
	memset(path + 3, 'a', sizeof path - 4);
	path[sizeof path - 1] = '\0';
	CHECK(!rt_match("/x/{id}", path, &m));
}

TEST(a_capture_the_store_holds_matches_one_byte_more_does_not)
{
	enum { STORE = sizeof(((struct rt_match *)0)->store) };
	static char path[3 + STORE + 1];
	struct rt_match m;

	memcpy(path, "/x/", 3);
	memset(path + 3, 'a', STORE - 1); /* the store's size less its terminator */
	REQUIRE(rt_match("/x/{id}", path, &m));
	CHECK_INT(m.n, 1);
	CHECK_INT(strlen(m.cap[0]), STORE - 1);
	path[3 + STORE - 1] = 'a';
	CHECK(!rt_match("/x/{id}", path, &m));
}

int main(void)
{
	RUN(literal_paths);
	RUN(captures);
	RUN(no_write_on_mismatch);
	RUN(long_capture_refused);
	RUN(a_capture_the_store_holds_matches_one_byte_more_does_not);
	return harness_done();
}
