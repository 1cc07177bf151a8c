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

int main(void)
{
	char err[256];

	log_set_level(LOG_LVL_ERROR);
	if (cfg_load("conf/enrichd.conf", &cfg, err, sizeof err) != ENR_OK)
		return 1;
	RUN(deep_nesting_is_refused_by_name);
	cfg_release(cfg);
	return harness_done();
}
