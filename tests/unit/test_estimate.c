/*
 * test_estimate.c - the dry run's arithmetic: lookups counted once across
 * rows by their key, company lookups without a key counted per row, bulk
 * calls counted as the batch size of lookups each (only where bulk
 * applies), credits, and the time the keys' pacing allows (each upstream
 * account at most its own pace; an unpaced key leaves the time unknown).
 * Rows are built by hand; no store.
 */
#include "tests/unit/harness.h"
#include "tests/unit/tmpconf.h"

#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/estimate.h"

static char dir[] = "/tmp/enrichd-estimate-XXXXXX";
static struct cfg *cfg;
static const struct cfg_provider *pdl, *lusha;

static bool setup(void)
{
	char path[512], text[2048];

	if (mkdtemp(dir) == NULL)
		return false;
	setenv("EST_K", "secret", 1);
	snprintf(path, sizeof path, "%s/enrichd.conf", dir);
	snprintf(text, sizeof text,
		 "store = \"sqlite:%s/e.db\"; state_dir = \"%s\";\n"
		 "providers = (\n"
		 " { name = \"pdl\"; kind = \"pdl\"; credits_per_hit = 2;\n"
		 "   account_requests_per_minute = 40;\n"
		 "   bulk = { enabled = true; batch_size = 100; };\n"
		 "   keys = ( { id = \"p1\"; account = \"acme\"; secret = \"env:EST_K\"; requests_per_minute = 30; },\n"
		 "            { id = \"p2\"; account = \"acme\"; secret = \"env:EST_K\"; requests_per_minute = 30; },\n"
		 "            { id = \"p3\"; account = \"other\"; secret = \"env:EST_K\"; requests_per_minute = 10; } ); },\n"
		 " { name = \"lusha\"; kind = \"lusha\";\n"
		 "   keys = ( { id = \"l1\"; secret = \"env:EST_K\"; } ); } );\n",
		 dir, dir);
	if (!tmpconf_load(path, text, &cfg))
		return false;
	pdl = cfg_provider_find(cfg, "pdl");
	lusha = cfg_provider_find(cfg, "lusha");
	return pdl != NULL && lusha != NULL;
}

static void lookup(struct est_row *r, const struct cfg_provider *p, enum prov_kind kind,
		   bool keyed, unsigned tag, unsigned n)
{
	int i = r->n++;

	r->lk[i].p = p;
	r->lk[i].kind = kind;
	r->lk[i].keyed = keyed;
	memset(r->lk[i].key, 0, sizeof r->lk[i].key);
	r->lk[i].key[0] = (unsigned char)tag;
	memcpy(r->lk[i].key + 1, &n, sizeof n);
}

/* 250 people of 3 companies at PDL, 2 rows whose company only a person
 * answer could name, 10 of them also asked at Lusha, one row cached. */
static void fill(struct est *e)
{
	struct est_row r;

	for (unsigned i = 0; i < 250; i++) {
		memset(&r, 0, sizeof r);
		lookup(&r, pdl, PROV_KIND_PERSON, true, 'p', i);
		if (i < 2)
			lookup(&r, pdl, PROV_KIND_COMPANY, false, 0, 0);
		else
			lookup(&r, pdl, PROV_KIND_COMPANY, true, 'c', i % 3);
		if (i < 10)
			lookup(&r, lusha, PROV_KIND_PERSON, true, 'l', i);
		CHECK_INT(est_add(e, &r), ENR_OK);
	}
	/* The same person again: nothing new to ask. */
	memset(&r, 0, sizeof r);
	lookup(&r, pdl, PROV_KIND_PERSON, true, 'p', 7);
	CHECK_INT(est_add(e, &r), ENR_OK);
	memset(&r, 0, sizeof r);
	r.cached = true;
	CHECK_INT(est_add(e, &r), ENR_OK);
}

static const struct est_provider *of(const struct est *e, const struct cfg_provider *p)
{
	for (int i = 0; i < e->nprov; i++)
		if (e->prov[i].p == p)
			return &e->prov[i];
	return NULL;
}

TEST(lookups_count_once_and_bulk_calls_count_as_one)
{
	struct est e;
	const struct est_provider *ep, *el;

	est_init(&e, cfg, CFG_EP_ENQUEUE);
	fill(&e);
	est_finish(&e, NULL, 0);
	CHECK_INT(e.rows, 252);
	CHECK_INT(e.cached, 1);
	CHECK_INT(e.needing_calls, 251);
	ep = of(&e, pdl);
	el = of(&e, lusha);
	REQUIRE(ep != NULL && el != NULL);
	CHECK_INT(ep->rows, 251);
	CHECK_INT(ep->person, 250);
	CHECK_INT(ep->company, 3 + 2);  /* three companies, two unknown ones */
	CHECK_INT(ep->calls, 3 + 5);    /* 250 people in bulk calls of 100 */
	CHECK_INT(ep->credits, 255 * 2);
	/* acme's two keys would allow 60 a minute, the account 40; other 10. */
	CHECK_INT(ep->per_minute, 50);
	CHECK_INT(ep->usable_keys, 3);
	CHECK_INT(ep->eta_s, 10);       /* 8 calls at 50 a minute, rounded up */
	/* Lusha: no bulk configured, one call each, an unpaced key. */
	CHECK_INT(el->calls, 10);
	CHECK_INT(el->credits, 10);
	CHECK_INT(el->eta_s, -1);
	CHECK_INT(e.calls, 18);
	CHECK_INT(e.credits, 520);
	CHECK_INT(e.eta_s, 10);         /* the paced provider bounds it */
	est_release(&e);
}

TEST(realtime_requests_are_not_bulk)
{
	struct est e;
	const struct est_provider *ep;

	est_init(&e, cfg, CFG_EP_ENRICH);
	fill(&e);
	est_finish(&e, NULL, 0);
	ep = of(&e, pdl);
	REQUIRE(ep != NULL);
	CHECK_INT(ep->calls, 255);
	CHECK_INT(ep->eta_s, (255 * 60 + 49) / 50);
	{
		json_t *j = est_json(&e);
		json_t *p;

		REQUIRE(j != NULL);
		CHECK_INT(json_integer_value(json_object_get(j, "upstream_calls_max")), 265);
		p = json_object_get(json_object_get(j, "providers"), "pdl");
		CHECK(json_is_false(json_object_get(p, "bulk")));
		CHECK_INT(json_integer_value(json_object_get(p, "company_lookups_max")), 5);
		CHECK(json_is_null(json_object_get(json_object_get(json_object_get(j, "providers"),
								   "lusha"),
						   "eta_seconds")));
		json_decref(j);
	}
	est_release(&e);
}

int main(void)
{
	if (!setup()) {
		printf("FAIL tests/unit/test_estimate.c:setup\n");
		return 1;
	}
	RUN(lookups_count_once_and_bulk_calls_count_as_one);
	RUN(realtime_requests_are_not_bulk);
	cfg_release(cfg);
	tmpconf_remove(dir);
	return harness_done();
}
