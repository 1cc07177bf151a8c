/*
 * test_mock.c - the built-in mock provider (lib/providers/mock.c).
 *
 * Determinism, coverage of every wanted field and nothing more, variety
 * between inputs, and the shapes of the made-up values.  Telling business
 * from free-mail domains needs the real lists from data/ (run from the
 * repository root, as tests/run.sh does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ascii.h"
#include "lib/domains.h"
#include "lib/fields.h"
#include "lib/provider.h"

#include "harness.h"

extern const struct prov_ops prov_mock_ops;

static const struct prov_ops *ops = &prov_mock_ops;
static struct cfg_provider prov = { .name = "mock", .kind = "mock", .enabled = true };
static struct dom_lists *lists;

static struct prov_query email_query(const char *email, fld_set want)
{
	struct prov_query q;

	memset(&q, 0, sizeof q);
	q.id[ID_EMAIL] = email;
	q.want = want;
	return q;
}

static void answer(const struct prov_ctx *ctx, const struct prov_query *q,
		   struct prov_result *res)
{
	CHECK_INT(ops->answer(ctx, &prov, q, res), ENR_OK);
}

TEST(all_fields_when_all_wanted)
{
	struct prov_query q = email_query("jane.doe@acme.com", FLD_ALL);
	struct prov_result res;

	prov_result_init(&res);
	answer(NULL, &q, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_INT(res.found, FLD_ALL);
	CHECK_INT(fld_count(res.found), 19);
	for (int f = 0; f < FLD__MAX; f++) {
		if (res.value[f] == NULL || res.value[f][0] == '\0')
			HARNESS_FAIL("field %s empty", fld_names[f]);
		CHECK_DBL(res.confidence[f], 0.1, 1e-9);
	}
	CHECK_INT(res.credits, 0);
	CHECK_STR(res.reason, "mock data");
	prov_result_release(&res);
}

TEST(deterministic)
{
	struct prov_query q = email_query("jane.doe@acme.com", FLD_ALL);
	struct prov_result a, b;

	q.id[ID_LINKEDIN_URL] = "https://www.linkedin.com/in/jane-doe";
	prov_result_init(&a);
	prov_result_init(&b);
	answer(NULL, &q, &a);
	answer(NULL, &q, &b);
	for (int f = 0; f < FLD__MAX; f++)
		CHECK_STR(a.value[f], b.value[f]);
	/* the same values whatever else was wanted */
	q.want = FLD_BIT(FLD_PHONE) | FLD_BIT(FLD_TITLE);
	answer(NULL, &q, &b);
	CHECK_STR(b.value[FLD_PHONE], a.value[FLD_PHONE]);
	CHECK_STR(b.value[FLD_TITLE], a.value[FLD_TITLE]);
	prov_result_release(&a);
	prov_result_release(&b);
}

TEST(only_wanted_fields)
{
	fld_set want = FLD_BIT(FLD_FIRST_NAME) | FLD_BIT(FLD_PHONE) | FLD_BIT(FLD_TECHNOLOGIES);
	struct prov_query q = email_query("jane.doe@acme.com", want);
	struct prov_result res;

	prov_result_init(&res);
	answer(NULL, &q, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_INT(res.found, want);
	for (int f = 0; f < FLD__MAX; f++) {
		if (!(want & FLD_BIT(f)))
			CHECK(res.value[f] == NULL);
	}
	/* nothing wanted: still a (mock) hit, with nothing in it */
	q.want = 0;
	answer(NULL, &q, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_INT(res.found, 0);
	prov_result_release(&res);
}

TEST(different_inputs_differ)
{
	struct prov_result res;
	char seen[64][160];
	int distinct = 0;

	prov_result_init(&res);
	for (int i = 0; i < 64; i++) {
		char email[64];
		struct prov_query q;
		bool dup = false;

		snprintf(email, sizeof email, "person%d@acme.com", i);
		q = email_query(email, FLD_ALL);
		answer(NULL, &q, &res);
		snprintf(seen[i], sizeof seen[i], "%s|%s|%s|%s", res.value[FLD_FIRST_NAME],
			 res.value[FLD_LAST_NAME], res.value[FLD_PHONE], res.value[FLD_TITLE]);
		for (int j = 0; j < i; j++)
			dup = dup || strcmp(seen[i], seen[j]) == 0;
		distinct += !dup;
	}
	CHECK(distinct >= 60);

	/* the same text as a different identifier is a different input */
	{
		struct prov_query a, b;
		char pa[64], pb[64];

		memset(&a, 0, sizeof a);
		memset(&b, 0, sizeof b);
		a.id[ID_DOMAIN] = "acme.com";
		b.id[ID_COMPANY_NAME] = "acme.com";
		a.want = b.want = FLD_ALL;
		answer(NULL, &a, &res);
		snprintf(pa, sizeof pa, "%s %s %s", res.value[FLD_FIRST_NAME],
			 res.value[FLD_LAST_NAME], res.value[FLD_PHONE]);
		answer(NULL, &b, &res);
		snprintf(pb, sizeof pb, "%s %s %s", res.value[FLD_FIRST_NAME],
			 res.value[FLD_LAST_NAME], res.value[FLD_PHONE]);
		CHECK(strcmp(pa, pb) != 0);
	}
	prov_result_release(&res);
}

TEST(value_shapes)
{
	struct prov_query q = email_query("jane.doe@acme.com", FLD_ALL);
	struct prov_result res;
	const char *v, *at;

	prov_result_init(&res);
	for (int i = 0; i < 40; i++) {
		char email[64];

		snprintf(email, sizeof email, "user%d@initech.com", i);
		q = email_query(email, FLD_ALL);
		q.id[ID_DOMAIN] = "initech.com";
		answer(NULL, &q, &res);

		/* +1 555 0100..0199: the block reserved for fiction */
		v = res.value[FLD_PHONE];
		REQUIRE(v != NULL);
		CHECK(strlen(v) == 11 && strncmp(v, "+1 555 01", 9) == 0 &&
		      ascii_is_digit(v[9]) && ascii_is_digit(v[10]));

		v = res.value[FLD_BUSINESS_EMAIL];
		REQUIRE(v != NULL);
		at = strchr(v, '@');
		CHECK(at != NULL && strcmp(at, "@initech.example.com") == 0);
		v = res.value[FLD_PERSONAL_EMAIL];
		REQUIRE(v != NULL);
		at = strchr(v, '@');
		CHECK(at != NULL && strcmp(at, "@example.net") == 0);

		CHECK(strncmp(res.value[FLD_LINKEDIN_URL], "https://www.linkedin.com/in/", 28) == 0);
		CHECK_STR(res.value[FLD_COMPANY_NAME], "Initech");

		/* location agrees with city, state and country */
		{
			char loc[200];

			snprintf(loc, sizeof loc, "%s, %s, %s", res.value[FLD_CITY],
				 res.value[FLD_STATE], res.value[FLD_COUNTRY]);
			CHECK_STR(res.value[FLD_LOCATION], loc);
		}

		/* three technologies, none twice */
		{
			char t[3][64];

			REQUIRE(sscanf(res.value[FLD_TECHNOLOGIES], "%63[^,], %63[^,], %63[^,]", t[0],
				       t[1], t[2]) == 3);
			CHECK(strcmp(t[0], t[1]) != 0 && strcmp(t[1], t[2]) != 0 &&
			      strcmp(t[0], t[2]) != 0);
		}
	}
	prov_result_release(&res);
}

TEST(company_names)
{
	struct prov_ctx ctx = { lists };
	struct prov_query q;
	struct prov_result res;

	REQUIRE(lists != NULL);
	prov_result_init(&res);
	memset(&q, 0, sizeof q);
	q.want = FLD_BIT(FLD_COMPANY_NAME) | FLD_BIT(FLD_BUSINESS_EMAIL);
	q.id[ID_DOMAIN] = "mail.acme-labs.co.uk";
	answer(&ctx, &q, &res);
	CHECK_STR(res.value[FLD_COMPANY_NAME], "Acme Labs");
	CHECK(strstr(res.value[FLD_BUSINESS_EMAIL], "@acmelabs.example.com") != NULL);

	/* a business e-mail domain names the company too */
	memset(&q, 0, sizeof q);
	q.want = FLD_BIT(FLD_COMPANY_NAME);
	q.id[ID_EMAIL] = "bob@globex.com";
	answer(&ctx, &q, &res);
	CHECK_STR(res.value[FLD_COMPANY_NAME], "Globex");

	/* a free-mail one does not: the name comes from the tables */
	q.id[ID_EMAIL] = "bob@gmail.com";
	answer(&ctx, &q, &res);
	REQUIRE(res.value[FLD_COMPANY_NAME] != NULL);
	CHECK(strcmp(res.value[FLD_COMPANY_NAME], "Gmail") != 0);
	CHECK(strchr(res.value[FLD_COMPANY_NAME], ' ') != NULL);

	/* without lists an e-mail domain is not trusted either */
	q.id[ID_EMAIL] = "bob@globex.com";
	answer(NULL, &q, &res);
	CHECK(strcmp(res.value[FLD_COMPANY_NAME], "Globex") != 0);
	prov_result_release(&res);
}

TEST(ops_table)
{
	struct prov_result res;

	CHECK_STR(ops->kind, "mock");
	CHECK(prov_ops_find("mock") == ops);
	CHECK(!ops->needs_key);
	CHECK(ops->answer != NULL && ops->build == NULL && ops->parse == NULL);
	prov_result_init(&res);
	CHECK_INT(ops->answer(NULL, &prov, NULL, &res), ENR_E_INVALID);
	prov_result_release(&res);
}

int main(void)
{
	enum enr_err err;

	/* company_names fails without them. */
	lists = dom_lists_load("data", &err);
	RUN(all_fields_when_all_wanted);
	RUN(deterministic);
	RUN(only_wanted_fields);
	RUN(different_inputs_differ);
	RUN(value_shapes);
	RUN(company_names);
	RUN(ops_table);
	dom_lists_free(lists);
	return harness_done();
}
