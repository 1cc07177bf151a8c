/*
 * test_enrich.c - the POST /enrich request parser (lib/enrich.c): what
 * the fuzz target cannot state, the refusals by name.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/enrich.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/util.h"

#include "harness.h"

static struct cfg *cfg;

struct parse {
	const char *body;
	size_t len;
	enum enr_err rc;
	char *details;
};

static void *parse_on_thread(void *arg)
{
	struct parse *p = arg;
	struct en_request req;
	json_t *d = NULL;

	en_request_init(&req);
	p->rc = en_parse(p->body, p->len, cfg, NULL, &req, &d);
	p->details = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	en_request_release(&req);
	return NULL;
}

static char *nest(const char *head, size_t n, const char *tail)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *s = malloc(hl + 2 * n + tl + 1);

	if (s == NULL)
		return NULL;
	memcpy(s, head, hl);
	memset(s + hl, '[', n);
	memset(s + hl + n, ']', n);
	memcpy(s + hl + 2 * n, tail, tl + 1);
	return s;
}

TEST(deep_nesting_is_refused_by_name)
{
	struct parse p = { 0 };
	char *body = nest("{\"email\":\"a@b.com\",\"enrich\":", 3000, "}");

	REQUIRE(body != NULL);
	p.body = body;
	p.len = strlen(body);
	REQUIRE(harness_on_stack(parse_on_thread, &p, LIM_RESPONDER_STACK) == 0);
	CHECK_INT(p.rc, ENR_E_INVALID);
	CHECK_STR(p.details, "[{\"field\":\"body\",\"problem\":\"nested deeper than 32 levels\"}]");
	free(p.details);
	free(body);

	/* At the cap the body is parsed; the member is then refused for its type. */
	body = nest("{\"email\":\"a@b.com\",\"phone\":", LIM_JSON_DEPTH_MAX - 1, "}");
	REQUIRE(body != NULL);
	memset(&p, 0, sizeof p);
	p.body = body;
	p.len = strlen(body);
	REQUIRE(harness_on_stack(parse_on_thread, &p, LIM_RESPONDER_STACK) == 0);
	CHECK_INT(p.rc, ENR_E_INVALID);
	CHECK(p.details && strstr(p.details, "must be a string"));
	free(p.details);
	free(body);
}

TEST(the_answer_names_every_wanted_field_and_its_meta)
{
	struct wf_result r;
	struct buf b;
	json_t *j, *meta;

	wf_result_init(&r);
	r.want = FLD_BIT(FLD_FIRST_NAME) | FLD_BIT(FLD_TITLE) | FLD_BIT(FLD_PHONE);
	r.value[FLD_FIRST_NAME] = strdup("Zoë \"Z\"");
	r.source[FLD_FIRST_NAME] = "pdl";
	r.value[FLD_TITLE] = strdup("CTO\n\x01");
	r.source[FLD_TITLE] = "lusha";
	r.value[FLD_CITY] = strdup("not wanted");
	r.source[FLD_CITY] = "pdl";
	r.status = WF_PARTIAL;
	r.tried[r.ntried++] = "pdl";
	r.tried[r.ntried++] = "lusha";
	r.skipped[r.nskipped++] = "surfe";
	r.errors[0].provider = "surfe";
	r.errors[r.nerrors++].kind = WF_ERR_NO_KEY;
	r.credits = 3;
	REQUIRE(r.value[FLD_FIRST_NAME] && r.value[FLD_TITLE] && r.value[FLD_CITY]);

	buf_init(&b, 0);
	REQUIRE(buf_puts(&b, "") == ENR_OK);
	CHECK_INT(en_response(&r, "rid-1", 12, &b), ENR_OK);
	j = json_loads(b.data, 0, NULL);
	REQUIRE(j != NULL);
	CHECK_INT(json_object_size(j), 4); /* three wanted fields and _meta */
	CHECK_STR(json_string_value(json_object_get(j, "first_name")), "Zoë \"Z\"");
	CHECK_STR(json_string_value(json_object_get(j, "title")), "CTO\n\x01");
	CHECK(json_is_null(json_object_get(j, "phone")));
	CHECK(json_object_get(j, "city") == NULL);
	meta = json_object_get(j, "_meta");
	CHECK_STR(json_string_value(json_object_get(meta, "request_id")), "rid-1");
	CHECK_STR(json_string_value(json_object_get(meta, "status")), "partial");
	CHECK_STR(json_string_value(json_object_get(json_object_get(meta, "sources"), "title")),
		  "lusha");
	CHECK_INT(json_object_size(json_object_get(meta, "sources")), 2);
	CHECK_INT(json_array_size(json_object_get(meta, "providers_tried")), 2);
	CHECK_STR(json_string_value(json_array_get(json_object_get(meta, "providers_skipped"), 0)),
		  "surfe");
	CHECK_STR(json_string_value(json_object_get(
			  json_array_get(json_object_get(meta, "errors"), 0), "outcome")),
		  wf_error_names[WF_ERR_NO_KEY]);
	CHECK(json_is_false(json_object_get(meta, "cached")));
	CHECK(json_is_false(json_object_get(meta, "mock")));
	CHECK_INT(json_integer_value(json_object_get(meta, "credits_used")), 3);
	CHECK_INT(json_integer_value(json_object_get(meta, "elapsed_ms")), 12);
	json_decref(j);

	/* Nothing skipped and nothing failed: neither list is there. */
	r.nskipped = r.nerrors = 0;
	buf_reset(&b);
	CHECK_INT(en_response(&r, "rid-2", 0, &b), ENR_OK);
	j = json_loads(b.data, 0, NULL);
	REQUIRE(j != NULL);
	meta = json_object_get(j, "_meta");
	CHECK(json_object_get(meta, "providers_skipped") == NULL);
	CHECK(json_object_get(meta, "errors") == NULL);
	json_decref(j);

	/* A cap too small for the answer is the error, not a cut answer. */
	buf_release(&b);
	buf_init(&b, 32);
	CHECK_INT(en_response(&r, "rid-3", 0, &b), ENR_E_TOO_LARGE);
	buf_release(&b);
	wf_result_release(&r);
}

int main(void)
{
	char err[256];

	log_set_level(LOG_LVL_ERROR);
	if (cfg_load("conf/enrichd.conf", &cfg, err, sizeof err) != ENR_OK)
		return 1;
	RUN(deep_nesting_is_refused_by_name);
	RUN(the_answer_names_every_wanted_field_and_its_meta);
	cfg_release(cfg);
	return harness_done();
}
