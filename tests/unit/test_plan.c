/*
 * test_plan.c - the waterfall planner: which lookup comes next, that no
 * provider is asked the same thing twice, company keys, a person miss that
 * keeps the company groups, what is refused as unidentifiable.  The plan
 * is driven by hand with made-up answers: no I/O.
 */
#include "tests/unit/harness.h"

#include <stdlib.h>
#include <string.h>

#include "lib/domains.h"
#include "lib/plan.h"
#include "lib/record.h"
#include "lib/util.h"

static struct dom_lists *lists;

static char *L_local_pdl_lusha[] = { "local", "pdl", "lusha" };
static char *L_local_lusha_pdl[] = { "local", "lusha", "pdl" };
static char *L_pdl_lusha[] = { "pdl", "lusha" };
static char *L_pdl[] = { "pdl" };
static char *L_local[] = { "local" };

static struct cfg_provider providers[2] = {
	{ .name = "pdl", .kind = "pdl", .enabled = true, .credits_per_hit = 1 },
	{ .name = "lusha", .kind = "lusha", .enabled = true, .credits_per_hit = 1 },
};

static void cfg_of(struct cfg *c, char **person, size_t np, char **phone, size_t nph,
		   char **email, size_t ne, char **company, size_t nc)
{
	memset(c, 0, sizeof *c);
	c->providers = providers;
	c->nproviders = 2;
	c->cache.enabled = true;
	c->waterfall[CFG_GROUP_PERSON] = (struct cfg_list){ person, np };
	c->waterfall[CFG_GROUP_PHONE] = (struct cfg_list){ phone, nph };
	c->waterfall[CFG_GROUP_EMAIL] = (struct cfg_list){ email, ne };
	c->waterfall[CFG_GROUP_COMPANY] = (struct cfg_list){ company, nc };
}

static void rec_of(struct rec *r, enum fld_ident id, const char *v)
{
	rec_init(r);
	r->lists = lists;
	enr_ignore(rec_set(r, id, v, strlen(v)));
	enr_ignore(rec_normalise(r, 0, NULL));
}

/* A made-up answer: a hit with the given fields, or a miss. */
static void answer(struct pl_plan *pl, struct pl_lookup *lk, bool hit, fld_set fields,
		   const char *company_domain)
{
	struct prov_result res;
	struct pl_answer a = { .end = PL_ANSWERED, .res = &res };

	prov_result_init(&res);
	res.outcome = hit ? PROV_HIT : PROV_MISS;
	for (int f = 0; hit && f < FLD__MAX; f++) {
		if (fields & FLD_BIT(f))
			enr_ignore(prov_result_set(&res, (enum fld_id)f, fld_names[f],
						   strlen(fld_names[f]), 0.8));
	}
	if (company_domain)
		util_strlcpy(res.company_domain, company_domain, sizeof res.company_domain);
	res.credits = hit && !lk->builtin ? 1 : 0;
	pl_done(pl, lk, &a);
	prov_result_release(&res);
}

#define PERSON_ALL                                                                        \
	(FLD_ALL & ~(FLD_BIT(FLD_COMPANY_REVENUE) | FLD_BIT(FLD_TECHNOLOGIES)))
#define COMPANY_ALL                                                                       \
	(FLD_BIT(FLD_COMPANY_NAME) | FLD_BIT(FLD_INDUSTRY) | FLD_BIT(FLD_COMPANY_SIZE) |  \
	 FLD_BIT(FLD_COMPANY_REVENUE) | FLD_BIT(FLD_TECHNOLOGIES))

TEST(no_provider_gets_the_same_lookup_twice)
{
	struct cfg c;
	struct rec r;
	struct wf_result out;
	struct pl_plan pl;
	struct pl_lookup *lk;
	int person_pdl = 0, company_pdl = 0, lusha = 0, steps = 0;

	cfg_of(&c, L_local_pdl_lusha, 3, L_local_lusha_pdl, 3, L_local, 1, L_local_pdl_lusha, 3);
	rec_of(&r, ID_LINKEDIN_URL, "linkedin.com/in/ann-lee");
	wf_result_init(&out);
	pl_init(&pl, &c, lists, &r, FLD_ALL, &out);
	while ((lk = pl_next(&pl)) != NULL && steps++ < 20) {
		if (lk->builtin) {
			answer(&pl, lk, true, FLD_BIT(FLD_LINKEDIN_URL), NULL);
		} else if (strcmp(lk->p->name, "pdl") == 0 && lk->kind == PROV_KIND_PERSON) {
			person_pdl++;
			/* Everything a person answer carries, and the company's domain. */
			answer(&pl, lk, true, PERSON_ALL, "www.initech.com");
		} else if (strcmp(lk->p->name, "pdl") == 0) {
			company_pdl++;
			CHECK_STR(lk->q.id[ID_DOMAIN], "initech.com");
			CHECK(lk->q.id[ID_LINKEDIN_URL] == NULL && lk->q.id[ID_EMAIL] == NULL);
			CHECK_INT(lk->q.want, FLD_BIT(FLD_COMPANY_REVENUE) | FLD_BIT(FLD_TECHNOLOGIES));
			answer(&pl, lk, true, COMPANY_ALL, NULL);
		} else {
			lusha++;
			answer(&pl, lk, false, 0, NULL);
		}
	}
	CHECK_INT(person_pdl, 1);
	CHECK_INT(company_pdl, 1);
	/* PDL left nothing Lusha's person lookup could add. */
	CHECK_INT(lusha, 0);
	pl_finish(&pl);
	CHECK_INT(out.status, WF_COMPLETE);
	CHECK_INT(out.credits, 2);
	CHECK(pl.company_fed);
	wf_result_release(&out);
	rec_release(&r);
}

TEST(without_a_company_key_the_company_group_uses_the_person_lookup_once)
{
	struct cfg c;
	struct rec r;
	struct wf_result out;
	struct pl_plan pl;
	struct pl_lookup *lk;
	int pdl = 0, lusha = 0, steps = 0;

	cfg_of(&c, L_pdl_lusha, 2, L_local_lusha_pdl, 3, L_local, 1, L_pdl_lusha, 2);
	rec_of(&r, ID_PHONE, "+1 555 0100");
	wf_result_init(&out);
	pl_init(&pl, &c, lists, &r, FLD_ALL, &out);
	while ((lk = pl_next(&pl)) != NULL && steps++ < 20) {
		CHECK(lk->kind == PROV_KIND_PERSON || lk->builtin);
		if (lk->builtin)
			answer(&pl, lk, false, 0, NULL);
		else if (strcmp(lk->p->name, "pdl") == 0) {
			pdl++;
			/* A miss: no company named, nothing to key a company lookup. */
			answer(&pl, lk, false, 0, NULL);
		} else {
			lusha++;
			answer(&pl, lk, false, 0, NULL);
		}
	}
	/* A phone number is not something Lusha searches by. */
	CHECK_INT(pdl, 1);
	CHECK_INT(lusha, 0);
	pl_finish(&pl);
	CHECK_INT(out.status, WF_NOT_FOUND);
	wf_result_release(&out);
	rec_release(&r);
}

TEST(a_person_miss_keeps_the_company_groups)
{
	struct cfg c;
	struct rec r;
	struct wf_result out;
	struct pl_plan pl;
	struct pl_lookup *lk;

	cfg_of(&c, L_pdl, 1, NULL, 0, NULL, 0, L_pdl, 1);
	rec_of(&r, ID_EMAIL, "missing.person@initech.com");
	wf_result_init(&out);
	pl_init(&pl, &c, lists, &r, FLD_ALL, &out);
	lk = pl_next(&pl);
	REQUIRE(lk && lk->kind == PROV_KIND_PERSON);
	answer(&pl, lk, false, 0, NULL);
	lk = pl_next(&pl);
	REQUIRE(lk != NULL);
	CHECK_INT(lk->kind, PROV_KIND_COMPANY);
	CHECK_STR(lk->q.id[ID_DOMAIN], "initech.com");
	CHECK_INT(lk->q.want, COMPANY_ALL);
	answer(&pl, lk, true, COMPANY_ALL, NULL);
	CHECK(pl_next(&pl) == NULL);
	pl_finish(&pl);
	CHECK_INT(out.status, WF_PARTIAL);
	CHECK_INT(out.found, COMPANY_ALL);
	wf_result_release(&out);
	rec_release(&r);
}

TEST(people_of_one_company_share_its_cache_key)
{
	struct cfg c;
	struct rec a, b;
	struct wf_result oa, ob;
	struct pl_plan pa, pb;
	struct pl_lookup *la, *lb;

	cfg_of(&c, L_pdl, 1, NULL, 0, NULL, 0, L_pdl, 1);
	rec_of(&a, ID_EMAIL, "ann.lee@initech.com");
	rec_of(&b, ID_DOMAIN, "https://mail.Initech.com/about");
	wf_result_init(&oa);
	wf_result_init(&ob);
	pl_init(&pa, &c, lists, &a, COMPANY_ALL, &oa);
	pl_init(&pb, &c, lists, &b, COMPANY_ALL, &ob);
	la = pl_next(&pa);
	lb = pl_next(&pb);
	REQUIRE(la && lb);
	CHECK_INT(la->kind, PROV_KIND_COMPANY);
	CHECK_INT(lb->kind, PROV_KIND_COMPANY);
	CHECK(memcmp(la->key, lb->key, CACHE_KEY_LEN) == 0);
	CHECK_STR(pa.company_key, "d:initech.com");
	pl_finish(&pa);
	pl_finish(&pb);
	wf_result_release(&oa);
	wf_result_release(&ob);
	rec_release(&a);
	rec_release(&b);
}

TEST(company_keys)
{
	char d[254], k[PL_COMPANY_KEY_MAX];
	const char *n;
	struct rec r;

	rec_of(&r, ID_COMPANY_NAME, "  Acme,   Inc. ");
	pl_company_of(&r, d, &n, k);
	CHECK_STR(k, "n:acme inc");
	CHECK_STR(d, "");
	CHECK(n == rec_get(&r, ID_COMPANY_NAME));
	rec_release(&r);
	rec_of(&r, ID_DOMAIN, "shop.example.co.uk");
	pl_company_of(&r, d, &n, k);
	CHECK_STR(k, "d:example.co.uk");
	CHECK_STR(d, "example.co.uk");
	CHECK(n == NULL);
	rec_release(&r);
	rec_of(&r, ID_LINKEDIN_URL, "linkedin.com/in/x-y");
	pl_company_of(&r, d, &n, k);
	CHECK_STR(k, "");
	CHECK(n == NULL);
	rec_release(&r);
}

/* A person answer that names the company by its name alone. */
static void answer_named(struct pl_plan *pl, struct pl_lookup *lk, const char *name)
{
	struct prov_result res;
	struct pl_answer a = { .end = PL_ANSWERED, .res = &res };

	prov_result_init(&res);
	res.outcome = PROV_HIT;
	enr_ignore(prov_result_set(&res, FLD_COMPANY_NAME, name, strlen(name), 0.8));
	enr_ignore(prov_result_set(&res, FLD_TITLE, "cto", 3, 0.8));
	res.credits = 1;
	pl_done(pl, lk, &a);
	prov_result_release(&res); /* the plan keeps no pointer into it */
}

TEST(a_company_name_from_a_person_answer_is_kept_to_ask_for_the_company)
{
	char longname[PL_FED_NAME_MAX + 2];

	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	for (int t = 0; t < 2; t++) {
		const char *name = t == 0 ? "Initech Holdings" : longname;
		struct cfg c;
		struct rec r;
		struct wf_result out;
		struct pl_plan pl;
		struct pl_lookup *lk;
		int by_name = 0, steps = 0;

		cfg_of(&c, L_pdl, 1, L_pdl, 1, L_pdl, 1, L_pdl, 1);
		rec_of(&r, ID_LINKEDIN_URL, "linkedin.com/in/ann-lee");
		wf_result_init(&out);
		pl_init(&pl, &c, lists, &r, FLD_ALL, &out);
		while ((lk = pl_next(&pl)) != NULL && steps++ < 20) {
			if (lk->q.id[ID_COMPANY_NAME]) {
				by_name++;
				CHECK_STR(lk->q.id[ID_COMPANY_NAME], "Initech Holdings");
				answer(&pl, lk, false, 0, NULL);
			} else if (lk->kind == PROV_KIND_PERSON) {
				answer_named(&pl, lk, name);
			} else {
				answer(&pl, lk, false, 0, NULL);
			}
		}
		pl_finish(&pl);
		if (t == 0) {
			CHECK_INT(by_name, 1);
			CHECK(pl.company_fed);
			CHECK_STR(pl.company_key, "n:initech holdings");
		} else {
			/* Longer than a plan keeps: no company key, no lookup by it. */
			CHECK_INT(by_name, 0);
			CHECK(!pl.company_fed);
			CHECK_STR(pl.company_key, "");
		}
		wf_result_release(&out);
		rec_release(&r);
	}
}

TEST(unidentifiable_inputs)
{
	struct cfg c, local_only;
	struct rec r;
	const char *why = NULL;

	cfg_of(&c, L_local_pdl_lusha, 3, L_pdl_lusha, 2, L_local, 1, L_pdl_lusha, 2);
	cfg_of(&local_only, L_local, 1, L_local, 1, L_local, 1, L_local, 1);
	rec_of(&r, ID_FIRST_NAME, "John");
	CHECK(!pl_identifiable(&c, lists, &r, FLD_ALL, &why));
	CHECK(why != NULL);
	CHECK(!pl_identifiable(&local_only, lists, &r, FLD_ALL, NULL));
	rec_release(&r);
	rec_of(&r, ID_FIRST_NAME, "John Doe"); /* split into first and last */
	CHECK(!pl_identifiable(&c, lists, &r, FLD_ALL, NULL));
	rec_release(&r);
	rec_of(&r, ID_COMPANY_NAME, "Acme");
	CHECK(pl_identifiable(&c, lists, &r, FLD_BIT(FLD_INDUSTRY), NULL));
	CHECK(!pl_identifiable(&local_only, lists, &r, FLD_ALL, NULL));
	rec_release(&r);
	rec_of(&r, ID_LAST_NAME, "Doe");
	CHECK(!pl_identifiable(&c, lists, &r, FLD_BIT(FLD_TITLE), NULL));
	rec_release(&r);
	rec_of(&r, ID_EMAIL, "a.b@example.com");
	CHECK(pl_identifiable(&local_only, lists, &r, FLD_ALL, NULL));
	rec_release(&r);
	rec_of(&r, ID_PHONE, "+1 555 0100");
	CHECK(pl_identifiable(&c, lists, &r, FLD_ALL, NULL));
	CHECK(!pl_identifiable(&local_only, lists, &r, FLD_ALL, NULL));
	rec_release(&r);
}

TEST(a_spent_budget_stops_paid_lookups)
{
	struct cfg c;
	struct rec r;
	struct wf_result out;
	struct pl_plan pl;
	struct pl_lookup *lk;
	struct pl_answer a = { .end = PL_BUDGET, .until_ms = 1234 };

	cfg_of(&c, L_pdl_lusha, 2, L_local, 1, L_local, 1, L_pdl_lusha, 2);
	rec_of(&r, ID_EMAIL, "ann.lee@initech.com");
	wf_result_init(&out);
	pl_init(&pl, &c, lists, &r, FLD_ALL, &out);
	lk = pl_next(&pl);
	REQUIRE(lk && !lk->builtin);
	pl_done(&pl, lk, &a);
	while ((lk = pl_next(&pl)) != NULL) {
		CHECK(lk->builtin);
		answer(&pl, lk, true, FLD_BIT(FLD_BUSINESS_EMAIL), NULL);
	}
	pl_finish(&pl);
	CHECK(out.budget_exceeded);
	CHECK_INT(out.budget_until_ms, 1234);
	CHECK_INT(out.paid_asked, 0);
	wf_result_release(&out);
	rec_release(&r);
}

TEST(a_deadline_ends_the_walk)
{
	struct cfg c;
	struct rec r;
	struct wf_result out;
	struct pl_plan pl;
	struct pl_lookup *lk;
	struct pl_answer a = { .end = PL_DEADLINE };

	cfg_of(&c, L_pdl_lusha, 2, NULL, 0, NULL, 0, L_pdl_lusha, 2);
	rec_of(&r, ID_EMAIL, "ann.lee@initech.com");
	wf_result_init(&out);
	pl_init(&pl, &c, lists, &r, FLD_ALL, &out);
	lk = pl_next(&pl);
	REQUIRE(lk != NULL);
	pl_done(&pl, lk, &a);
	CHECK(pl_next(&pl) == NULL);
	pl_finish(&pl);
	CHECK_INT(out.status, WF_INCOMPLETE);
	CHECK_INT(out.nerrors, 1);
	wf_result_release(&out);
	rec_release(&r);
}

int main(void)
{
	enum enr_err err;

	lists = dom_lists_load("data", &err);
	RUN(no_provider_gets_the_same_lookup_twice);
	RUN(without_a_company_key_the_company_group_uses_the_person_lookup_once);
	RUN(a_person_miss_keeps_the_company_groups);
	RUN(people_of_one_company_share_its_cache_key);
	RUN(company_keys);
	RUN(a_company_name_from_a_person_answer_is_kept_to_ask_for_the_company);
	RUN(unidentifiable_inputs);
	RUN(a_spent_budget_stops_paid_lookups);
	RUN(a_deadline_ends_the_walk);
	dom_lists_free(lists);
	return harness_done();
}
