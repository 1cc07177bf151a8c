/*
 * test_local.c - the built-in local provider (lib/providers/local.c).
 *
 * Loads the real free-mail and disposable lists from data/ (run from the
 * repository root, as tests/run.sh does) and checks what is derived from
 * each kind of input, with which confidence, and that nothing is guessed
 * that the input does not support.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/domains.h"
#include "lib/fields.h"
#include "lib/provider.h"

#include "harness.h"

extern const struct prov_ops prov_local_ops;

static const struct prov_ops *ops = &prov_local_ops;
static struct cfg_provider prov = { .name = "local", .kind = "local", .enabled = true };
static struct dom_lists *lists;
static struct prov_ctx ctx;

static struct prov_query blank(fld_set want)
{
	struct prov_query q;

	memset(&q, 0, sizeof q);
	q.want = want;
	return q;
}

static void answer(const struct prov_ctx *c, const struct prov_query *q, struct prov_result *r)
{
	CHECK_INT(ops->answer(c, &prov, q, r), ENR_OK);
}

TEST(lists_loaded)
{
	REQUIRE(lists != NULL);
	CHECK(dom_is_free(lists, "gmail.com"));
	CHECK(dom_is_disposable(lists, "mailinator.com"));
}

TEST(free_mail_is_personal)
{
	struct prov_query q = blank(FLD_ALL);
	struct prov_result r;

	q.id[ID_EMAIL] = "jane.roe@gmail.com";
	prov_result_init(&r);
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_HIT);
	CHECK_STR(r.value[FLD_PERSONAL_EMAIL], "jane.roe@gmail.com");
	CHECK_DBL(r.confidence[FLD_PERSONAL_EMAIL], 1.0, 1e-9);
	CHECK(r.value[FLD_BUSINESS_EMAIL] == NULL);
	/* gmail.com says nothing about a country or a company */
	CHECK(r.value[FLD_COUNTRY] == NULL);
	CHECK(r.value[FLD_COMPANY_NAME] == NULL);
	CHECK_INT(r.credits, 0);
	prov_result_release(&r);
}

TEST(corporate_mail_is_business)
{
	struct prov_query q = blank(FLD_ALL);
	struct prov_result r;

	q.id[ID_EMAIL] = "sam@initech.com";
	q.id[ID_DOMAIN] = "initech.com";
	prov_result_init(&r);
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_HIT);
	CHECK_STR(r.value[FLD_BUSINESS_EMAIL], "sam@initech.com");
	CHECK_DBL(r.confidence[FLD_BUSINESS_EMAIL], 1.0, 1e-9);
	CHECK(r.value[FLD_PERSONAL_EMAIL] == NULL);
	/* never a company name from the domain */
	CHECK(r.value[FLD_COMPANY_NAME] == NULL);
	CHECK_INT(r.found, FLD_BIT(FLD_BUSINESS_EMAIL));
	prov_result_release(&r);
}

TEST(disposable_is_neither)
{
	struct prov_query q = blank(FLD_BIT(FLD_PERSONAL_EMAIL) | FLD_BIT(FLD_BUSINESS_EMAIL));
	struct prov_result r;

	prov_result_init(&r);
	/* mailinator.com is on both lists: disposable wins */
	q.id[ID_EMAIL] = "qwerty@mailinator.com";
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_MISS);
	CHECK_INT(r.found, 0);
	q.id[ID_EMAIL] = "qwerty@x.mailinator.com";
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_MISS);
	prov_result_release(&r);
}

TEST(names_from_email)
{
	struct prov_query q = blank(FLD_BIT(FLD_FIRST_NAME) | FLD_BIT(FLD_LAST_NAME));
	struct prov_result r;

	prov_result_init(&r);
	q.id[ID_EMAIL] = "john.doe@acme.com";
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_HIT);
	CHECK_STR(r.value[FLD_FIRST_NAME], "John");
	CHECK_STR(r.value[FLD_LAST_NAME], "Doe");
	CHECK_DBL(r.confidence[FLD_FIRST_NAME], 0.6, 1e-9);
	CHECK_DBL(r.confidence[FLD_LAST_NAME], 0.6, 1e-9);
	/* the e-mail itself was not wanted */
	CHECK_INT(r.found, FLD_BIT(FLD_FIRST_NAME) | FLD_BIT(FLD_LAST_NAME));

	q.id[ID_EMAIL] = "info@acme.com";
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_MISS);
	CHECK(r.value[FLD_FIRST_NAME] == NULL && r.value[FLD_LAST_NAME] == NULL);

	q.id[ID_EMAIL] = "jdoe@acme.com";
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_MISS);
	prov_result_release(&r);
}

TEST(names_given_are_facts)
{
	struct prov_query q = blank(FLD_BIT(FLD_FIRST_NAME) | FLD_BIT(FLD_LAST_NAME));
	struct prov_result r;

	prov_result_init(&r);
	q.id[ID_FIRST_NAME] = "Jane";
	q.id[ID_LAST_NAME] = "Roe";
	q.id[ID_EMAIL] = "john.doe@acme.com";
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_HIT);
	CHECK_STR(r.value[FLD_FIRST_NAME], "Jane");
	CHECK_STR(r.value[FLD_LAST_NAME], "Roe");
	CHECK_DBL(r.confidence[FLD_FIRST_NAME], 1.0, 1e-9);

	/* a guess that contradicts the given first name is not used */
	q.id[ID_LAST_NAME] = NULL;
	answer(&ctx, &q, &r);
	CHECK_STR(r.value[FLD_FIRST_NAME], "Jane");
	CHECK(r.value[FLD_LAST_NAME] == NULL);

	/* one that agrees completes the other half */
	q.id[ID_FIRST_NAME] = "john";
	answer(&ctx, &q, &r);
	CHECK_STR(r.value[FLD_FIRST_NAME], "john");
	CHECK_DBL(r.confidence[FLD_FIRST_NAME], 1.0, 1e-9);
	CHECK_STR(r.value[FLD_LAST_NAME], "Doe");
	CHECK_DBL(r.confidence[FLD_LAST_NAME], 0.6, 1e-9);

	/* names are not echoed when not wanted */
	q.want = FLD_BIT(FLD_TITLE);
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_MISS);
	CHECK_INT(r.found, 0);
	prov_result_release(&r);
}

TEST(country_from_cctld)
{
	struct prov_query q = blank(FLD_BIT(FLD_COUNTRY));
	struct prov_result r;

	prov_result_init(&r);
	q.id[ID_DOMAIN] = "beispiel.de";
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_HIT);
	CHECK_STR(r.value[FLD_COUNTRY], "Germany");
	CHECK_DBL(r.confidence[FLD_COUNTRY], 0.5, 1e-9);

	/* from the e-mail domain when no domain was sent */
	q = blank(FLD_BIT(FLD_COUNTRY));
	q.id[ID_EMAIL] = "anna@firma.co.uk";
	answer(&ctx, &q, &r);
	CHECK_STR(r.value[FLD_COUNTRY], "United Kingdom");

	/* vanity and generic TLDs say nothing */
	q = blank(FLD_BIT(FLD_COUNTRY));
	q.id[ID_DOMAIN] = "startup.io";
	q.id[ID_EMAIL] = "dev@startup.io";
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_MISS);
	CHECK(r.value[FLD_COUNTRY] == NULL);
	q.id[ID_DOMAIN] = "acme.com";
	q.id[ID_EMAIL] = NULL;
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_MISS);
	prov_result_release(&r);
}

TEST(linkedin_echo)
{
	struct prov_query q = blank(FLD_BIT(FLD_LINKEDIN_URL) | FLD_BIT(FLD_TITLE));
	struct prov_result r;

	prov_result_init(&r);
	q.id[ID_LINKEDIN_URL] = "https://www.linkedin.com/in/jane-roe-42";
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_HIT);
	CHECK_STR(r.value[FLD_LINKEDIN_URL], "https://www.linkedin.com/in/jane-roe-42");
	CHECK_DBL(r.confidence[FLD_LINKEDIN_URL], 1.0, 1e-9);
	CHECK_INT(r.found, FLD_BIT(FLD_LINKEDIN_URL));

	/* a company page is not a person's profile */
	q.id[ID_LINKEDIN_URL] = "https://www.linkedin.com/company/initech";
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_MISS);
	prov_result_release(&r);
}

TEST(nothing_derivable_is_miss)
{
	struct prov_query q = blank(FLD_ALL & ~(FLD_BIT(FLD_PHONE)));
	struct prov_result r;

	prov_result_init(&r);
	q.id[ID_COMPANY_NAME] = "Initech";
	q.id[ID_PHONE] = "+14155550100";
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_MISS);
	CHECK_INT(r.found, 0);
	CHECK_INT(r.credits, 0);
	CHECK(r.reason[0] != '\0');

	/* derivable, but not wanted */
	q = blank(FLD_BIT(FLD_TITLE) | FLD_BIT(FLD_INDUSTRY));
	q.id[ID_EMAIL] = "john.doe@beispiel.de";
	answer(&ctx, &q, &r);
	CHECK_INT(r.outcome, PROV_MISS);
	CHECK_INT(r.found, 0);
	prov_result_release(&r);
}

TEST(without_lists)
{
	struct prov_ctx none = { NULL };
	struct prov_query q = blank(FLD_ALL);
	struct prov_result r;

	prov_result_init(&r);
	q.id[ID_EMAIL] = "john.doe@gmail.com";
	answer(&none, &q, &r);
	/* the kind of address cannot be judged, the names still can */
	CHECK_INT(r.outcome, PROV_HIT);
	CHECK(r.value[FLD_PERSONAL_EMAIL] == NULL);
	CHECK(r.value[FLD_BUSINESS_EMAIL] == NULL);
	CHECK_STR(r.value[FLD_FIRST_NAME], "John");
	CHECK_STR(r.value[FLD_LAST_NAME], "Doe");
	CHECK(strstr(r.reason, "lists not loaded") != NULL);

	/* a NULL context is the same */
	answer(NULL, &q, &r);
	CHECK_INT(r.outcome, PROV_HIT);
	CHECK(r.value[FLD_BUSINESS_EMAIL] == NULL);
	CHECK_STR(r.value[FLD_FIRST_NAME], "John");

	/* and with nothing else to go on it is a miss */
	q.id[ID_EMAIL] = "info@gmail.com";
	q.want = FLD_BIT(FLD_PERSONAL_EMAIL);
	answer(&none, &q, &r);
	CHECK_INT(r.outcome, PROV_MISS);
	CHECK(strstr(r.reason, "lists not loaded") != NULL);
	prov_result_release(&r);
}

TEST(answer_resets_the_result)
{
	struct prov_query q = blank(FLD_ALL);
	struct prov_result r;

	prov_result_init(&r);
	q.id[ID_EMAIL] = "john.doe@gmail.com";
	answer(&ctx, &q, &r);
	CHECK(r.value[FLD_FIRST_NAME] != NULL);
	q.id[ID_EMAIL] = "info@initech.com";
	answer(&ctx, &q, &r);
	CHECK(r.value[FLD_FIRST_NAME] == NULL);
	CHECK(r.value[FLD_PERSONAL_EMAIL] == NULL);
	CHECK_STR(r.value[FLD_BUSINESS_EMAIL], "info@initech.com");
	prov_result_release(&r);
}

TEST(ops_table)
{
	struct prov_result r;

	CHECK_STR(ops->kind, "local");
	CHECK(prov_ops_find("local") == ops);
	CHECK(!ops->needs_key);
	CHECK(ops->answer != NULL && ops->build == NULL && ops->parse == NULL);
	prov_result_init(&r);
	CHECK_INT(ops->answer(&ctx, &prov, NULL, &r), ENR_E_INVALID);
	prov_result_release(&r);
}

int main(void)
{
	enum enr_err err;

	lists = dom_lists_load("data", &err);
	ctx.domains = lists;
	RUN(lists_loaded);
	RUN(free_mail_is_personal);
	RUN(corporate_mail_is_business);
	RUN(disposable_is_neither);
	RUN(names_from_email);
	RUN(names_given_are_facts);
	RUN(country_from_cctld);
	RUN(linkedin_echo);
	RUN(nothing_derivable_is_miss);
	RUN(without_lists);
	RUN(answer_resets_the_result);
	RUN(ops_table);
	dom_lists_free(lists);
	return harness_done();
}
