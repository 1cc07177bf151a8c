/*
 * test_metrics.c - registry and Prometheus text rendering.
 */
#include <pthread.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/metrics.h"

#include "harness.h"

static const char *render(struct buf *b)
{
	buf_reset(b);
	CHECK_INT(mx_render(b), ENR_OK);
	return buf_cstr(b);
}

TEST(counter_and_gauge_render)
{
	struct mx_family *c = mx_counter("t_requests_total", "Requests.");
	struct mx_family *g = mx_gauge("t_in_flight", "In flight.");
	struct buf b;
	const char *s;

	buf_init(&b, 0);
	REQUIRE(c && g);
	CHECK(mx_counter("t_requests_total", "again") == c);   /* same family */
	CHECK(mx_gauge("t_requests_total", "wrong type") == NULL);
	mx_add(c, "route=\"/a\",status=\"200\"", 1);
	mx_add(c, "route=\"/a\",status=\"200\"", 2);
	mx_add(c, "route=\"/b\",status=\"404\"", 1);
	mx_set(g, "", 5);
	mx_add(g, "", -2);
	s = render(&b);
	CHECK(strstr(s, "# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\n"));
	CHECK(strstr(s, "t_requests_total{route=\"/a\",status=\"200\"} 3\n"));
	CHECK(strstr(s, "t_requests_total{route=\"/b\",status=\"404\"} 1\n"));
	CHECK(strstr(s, "# TYPE t_in_flight gauge\nt_in_flight 3\n"));
	buf_release(&b);
}

TEST(histogram_buckets_are_cumulative)
{
	static const double bounds[] = { 0.1, 1, 10 };
	struct mx_family *h = mx_histogram("t_latency_seconds", "Latency.", bounds, 3);
	struct buf b;
	const char *s;

	buf_init(&b, 0);
	REQUIRE(h);
	mx_observe(h, "r=\"x\"", 0.05);
	mx_observe(h, "r=\"x\"", 0.5);
	mx_observe(h, "r=\"x\"", 0.5);
	mx_observe(h, "r=\"x\"", 100);
	s = render(&b);
	CHECK(strstr(s, "t_latency_seconds_bucket{r=\"x\",le=\"0.1\"} 1\n"));
	CHECK(strstr(s, "t_latency_seconds_bucket{r=\"x\",le=\"1\"} 3\n"));
	CHECK(strstr(s, "t_latency_seconds_bucket{r=\"x\",le=\"10\"} 3\n"));
	CHECK(strstr(s, "t_latency_seconds_bucket{r=\"x\",le=\"+Inf\"} 4\n"));
	CHECK(strstr(s, "t_latency_seconds_sum{r=\"x\"} 101.05\n"));
	CHECK(strstr(s, "t_latency_seconds_count{r=\"x\"} 4\n"));
	buf_release(&b);
}

TEST(label_values_are_escaped)
{
	char out[64];

	mx_label("a\"b\\c\nd", out, sizeof out);
	CHECK_STR(out, "a\\\"b\\\\c\\nd");
	mx_label("0123456789", out, 6);
	CHECK(strlen(out) < 6);
}

TEST(bad_names_are_refused)
{
	CHECK(mx_counter("1bad", "x") == NULL);
	CHECK(mx_counter("has space", "x") == NULL);
	CHECK(mx_counter("", "x") == NULL);
	mx_add(NULL, "", 1); /* ignored, no crash */
}

static struct mx_family *race_fam;

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10000; i++)
		mx_add(race_fam, "t=\"x\"", 1);
	return NULL;
}

TEST(concurrent_updates_are_not_lost)
{
	pthread_t t[4];
	struct buf b;

	race_fam = mx_counter("t_race_total", "Race.");
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	buf_init(&b, 0);
	CHECK(strstr(render(&b), "t_race_total{t=\"x\"} 40000\n"));
	buf_release(&b);
}

static int hook_calls;
static void hook(void *arg)
{
	mx_set((struct mx_family *)arg, "", ++hook_calls);
}

TEST(render_hooks_refresh_gauges)
{
	struct mx_family *g = mx_gauge("t_hooked", "Hooked.");
	struct buf b;

	buf_init(&b, 0);
	mx_on_render(hook, g);
	render(&b);
	CHECK(strstr(render(&b), "t_hooked 2\n"));
	buf_release(&b);
}

int main(void)
{
	RUN(counter_and_gauge_render);
	RUN(histogram_buckets_are_cumulative);
	RUN(label_values_are_escaped);
	RUN(bad_names_are_refused);
	RUN(concurrent_updates_are_not_lost);
	RUN(render_hooks_refresh_gauges);
	return harness_done();
}
