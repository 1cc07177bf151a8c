/*
 * test_cache.c - provider answers in the cache (lib/cache.c): what is
 * stored reads back the same from the store (another process's view) and
 * from the memory copy, keys tell providers, variants and records apart,
 * and in-flight lookups coordinate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/cache.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/store.h"
#include "lib/util.h"

#include "harness.h"
#include "tmpconf.h"

static char dir[] = "/tmp/enrichd-test-cache-XXXXXX";
static struct cfg *cfg;
static struct store *store;

static bool setup(void)
{
	char path[512], text[1024], why[256];

	if (mkdtemp(dir) == NULL)
		return false;
	snprintf(path, sizeof path, "%s/enrichd.conf", dir);
	snprintf(text, sizeof text,
		 "store = \"sqlite:%s/e.db\"; state_dir = \"%s\"; data_dir = \"%s/data\";\n"
		 "cache = { hit_ttl_s = 3600; miss_ttl_s = 60; };\n",
		 dir, dir, getcwd(why, sizeof why) ? why : ".");
	if (!tmpconf_load(path, text, &cfg))
		return false;
	return st_open_cfg(cfg, &store, why, sizeof why) == ENR_OK;
}

TEST(an_answer_reads_back_from_the_store_as_it_was_bought)
{
	unsigned char key[CACHE_KEY_LEN];
	struct prov_result res, got;
	char *body = NULL;
	bool hit = false;
	int64_t expires = 0, now = util_now_ms();
	json_t *j, *title;

	REQUIRE(cache_key_text("pdl", "person", "store-read", key) == ENR_OK);
	prov_result_init(&res);
	res.outcome = PROV_HIT;
	res.credits = 2;
	REQUIRE(prov_result_set(&res, FLD_TITLE, "VP \"Sales\"\n\xC3\xA9", 13, 0.75) == ENR_OK);
	REQUIRE(prov_result_set(&res, FLD_CITY, "Paris", 5, 1.0) == ENR_OK);
	util_strlcpy(res.company_domain, "acme.com", sizeof res.company_domain);
	CHECK_INT(cache_put(store, cfg, key, "pdl", &res, now), ENR_OK);

	/* What another process finds: the row as stored. */
	CHECK_INT(st_cache_get(store, key, now, &hit, &body, &expires), ENR_OK);
	CHECK(hit);
	CHECK(expires >= now + 3599 * 1000 && expires <= now + 3600 * 1000);
	j = json_loads(body ? body : "", 0, NULL);
	REQUIRE(j != NULL);
	title = json_object_get(json_object_get(j, "f"), "title");
	CHECK_STR(json_string_value(json_array_get(title, 0)), "VP \"Sales\"\n\xC3\xA9");
	CHECK_DBL(json_number_value(json_array_get(title, 1)), 0.75, 0);
	CHECK_DBL(json_number_value(json_array_get(json_object_get(json_object_get(j, "f"), "city"), 1)),
		  1.0, 0);
	CHECK_INT(json_integer_value(json_object_get(j, "c")), 2);
	CHECK_STR(json_string_value(json_object_get(j, "cd")), "acme.com");
	CHECK_INT(json_object_size(json_object_get(j, "f")), 2);
	json_decref(j);
	free(body);

	/* What this process answers from. */
	prov_result_init(&got);
	CHECK_INT(cache_get(store, key, now, &got), ENR_OK);
	CHECK_INT(got.outcome, PROV_HIT);
	CHECK_INT(got.credits, 0);
	CHECK_INT(got.bought_credits, 2);
	CHECK_STR(got.value[FLD_TITLE], "VP \"Sales\"\n\xC3\xA9");
	CHECK_DBL(got.confidence[FLD_TITLE], 0.75, 0);
	CHECK_STR(got.company_domain, "acme.com");
	CHECK(got.value[FLD_PHONE] == NULL);
	prov_result_release(&got);
	prov_result_release(&res);
}

TEST(a_miss_is_kept_without_fields_or_company)
{
	unsigned char key[CACHE_KEY_LEN];
	struct prov_result res;
	char *body = NULL;
	bool hit = true;
	int64_t expires = 0, now = util_now_ms();

	REQUIRE(cache_key_text("pdl", "person", "store-miss", key) == ENR_OK);
	prov_result_init(&res);
	res.outcome = PROV_MISS;
	CHECK_INT(cache_put(store, cfg, key, "pdl", &res, now), ENR_OK);
	CHECK_INT(st_cache_get(store, key, now, &hit, &body, &expires), ENR_OK);
	CHECK(!hit);
	CHECK_STR(body, "{\"f\":{},\"c\":0}");
	CHECK(expires <= now + 60 * 1000);
	free(body);
	prov_result_release(&res);
}

TEST(outcomes_that_are_not_answers_are_not_kept)
{
	unsigned char key[CACHE_KEY_LEN];
	struct prov_result res, got;

	REQUIRE(cache_key_text("pdl", "person", "store-transient", key) == ENR_OK);
	prov_result_init(&res);
	prov_result_init(&got);
	res.outcome = PROV_TRANSIENT;
	CHECK_INT(cache_put(store, cfg, key, "pdl", &res, util_now_ms()), ENR_OK);
	CHECK_INT(cache_get(store, key, util_now_ms(), &got), ENR_E_NOT_FOUND);
	prov_result_release(&res);
	prov_result_release(&got);
}

TEST(keys_tell_providers_variants_and_texts_apart)
{
	unsigned char a[CACHE_KEY_LEN], b[CACHE_KEY_LEN], c[CACHE_KEY_LEN], d[CACHE_KEY_LEN],
		a2[CACHE_KEY_LEN];

	REQUIRE(cache_key_text("pdl", "company", "d:acme.com", a) == ENR_OK);
	REQUIRE(cache_key_text("pdl", "company", "d:acme.com", a2) == ENR_OK);
	REQUIRE(cache_key_text("lusha", "company", "d:acme.com", b) == ENR_OK);
	REQUIRE(cache_key_text("pdl", "person", "d:acme.com", c) == ENR_OK);
	REQUIRE(cache_key_text("pdl", "company", "d:acme.co", d) == ENR_OK);
	CHECK(memcmp(a, a2, sizeof a) == 0);
	CHECK(memcmp(a, b, sizeof a) != 0);
	CHECK(memcmp(a, c, sizeof a) != 0);
	CHECK(memcmp(a, d, sizeof a) != 0);
}

int main(void)
{
	log_set_level(LOG_LVL_ERROR);
	if (!setup())
		return 1;
	RUN(an_answer_reads_back_from_the_store_as_it_was_bought);
	RUN(a_miss_is_kept_without_fields_or_company);
	RUN(outcomes_that_are_not_answers_are_not_kept);
	RUN(keys_tell_providers_variants_and_texts_apart);
	st_close(store);
	cfg_release(cfg);
	tmpconf_remove(dir);
	return harness_done();
}
