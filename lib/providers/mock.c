/*
 * mock.c - the built-in "mock" provider: deterministic made-up data.
 *
 * For demos and for the fallback old clients relied on (README, "Providers and key rotation").
 * Every wanted field gets a value drawn from small fixed tables by a hash
 * (64-bit FNV-1a) of the normalised identifiers, so the same lookup always
 * gets the same person and different lookups usually get different ones.
 * Phone numbers are in the +1 555 0100..0199 block set aside for fiction;
 * e-mail addresses use the example.com / example.net names reserved by
 * RFC 2606.  The company is named after the looked-up domain (or a
 * business e-mail domain) when there is one, else drawn from the tables.
 *
 * The outcome is always PROV_HIT with confidence 0.1 and no credits; the
 * response layer marks answers that used it "mock": true.
 *
 * Prefix: mock_ (file-local).  Exported: prov_mock_ops.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/ascii.h"
#include "lib/config.h"
#include "lib/domains.h"
#include "lib/err.h"
#include "lib/fields.h"
#include "lib/limits.h"
#include "lib/provider.h"
#include "lib/util.h"

#define MOCK_CONFIDENCE 0.1

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const first_names[] = {
	"Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie",
	"Avery", "Quinn", "Robin", "Dana", "Elliot", "Harper", "Kendall", "Reese",
};

static const char *const last_names[] = {
	"Smith", "Johnson", "Lee", "Garcia", "Miller", "Davis", "Lopez", "Wilson",
	"Anderson", "Clark", "Walker", "Young", "Hill", "Scott", "Baker", "Carter",
};

/* A title with the seniority and department it implies, so one answer
 * does not contradict itself. */
static const struct {
	const char *title, *seniority, *department;
} roles[] = {
	{ "Chief Technology Officer", "c_suite", "engineering" },
	{ "VP of Sales", "vp", "sales" },
	{ "Director of Marketing", "director", "marketing" },
	{ "Engineering Manager", "manager", "engineering" },
	{ "Senior Software Engineer", "senior", "engineering" },
	{ "Account Executive", "senior", "sales" },
	{ "Product Manager", "manager", "product" },
	{ "Financial Analyst", "entry", "finance" },
	{ "Head of Operations", "director", "operations" },
	{ "Customer Success Manager", "manager", "customer_success" },
	{ "Data Scientist", "senior", "engineering" },
	{ "Technical Recruiter", "entry", "human_resources" },
};

static const struct {
	const char *city, *state, *country, *zip;
} places[] = {
	{ "San Francisco", "California", "United States", "94105" },
	{ "New York", "New York", "United States", "10001" },
	{ "Austin", "Texas", "United States", "73301" },
	{ "Seattle", "Washington", "United States", "98101" },
	{ "Boston", "Massachusetts", "United States", "02108" },
	{ "Chicago", "Illinois", "United States", "60601" },
	{ "London", "England", "United Kingdom", "EC1A 1BB" },
	{ "Berlin", "Berlin", "Germany", "10115" },
	{ "Toronto", "Ontario", "Canada", "M5H 2N2" },
	{ "Paris", "Ile-de-France", "France", "75001" },
};

static const char *const industries[] = {
	"Computer Software", "Information Technology and Services", "Financial Services",
	"Marketing and Advertising", "Hospital & Health Care", "Retail",
	"Telecommunications", "Logistics and Supply Chain",
};

static const char *const sizes[] = {
	"1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001-10000", "10001+",
};

static const char *const revenues[] = {
	"$1M-$10M", "$10M-$25M", "$25M-$50M", "$50M-$100M", "$100M-$250M",
	"$250M-$500M", "$500M-$1B", "$1B-$10B",
};

static const char *const technologies[] = {
	"Salesforce", "HubSpot", "Google Analytics", "AWS", "Slack", "Zendesk",
	"Stripe", "Segment", "Snowflake", "Intercom", "Shopify", "Marketo",
};

/* mock_answer() steps 1..4 entries twice from its first draw. */
_Static_assert(N_OF(technologies) > 8, "three distinct technologies need nine entries");

static const char *const company_first[] = {
	"Blue", "North", "Bright", "Silver", "Summit", "Harbor", "Granite", "Maple",
};

static const char *const company_second[] = {
	"Labs", "Systems", "Works", "Analytics", "Dynamics", "Partners", "Networks", "Logic",
};

/* Distinct salts, one per draw, so the draws are independent. */
enum mock_draw {
	DRAW_FIRST, DRAW_LAST, DRAW_ROLE, DRAW_PLACE, DRAW_INDUSTRY, DRAW_SIZE,
	DRAW_REVENUE, DRAW_TECH1, DRAW_TECH2, DRAW_TECH3, DRAW_COMPANY1, DRAW_COMPANY2,
	DRAW_PHONE, DRAW_SLUG, DRAW_MAILBOX,
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* The hash of a query: each present identifier with its index, so
 * {email: x} and {domain: x} differ. */
static uint64_t query_hash(const struct prov_query *q)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (int i = 0; i < ID__MAX; i++) {
		unsigned char tag = (unsigned char)i;

		if (q->id[i] == NULL || q->id[i][0] == '\0')
			continue;
		h = fnv1a(h, &tag, 1);
		h = fnv1a(h, q->id[i], strlen(q->id[i]));
		h = fnv1a(h, "\xff", 1);
	}
	return h;
}

/* A well-mixed number for one draw (the splitmix64 finaliser). */
static uint64_t draw(uint64_t h, enum mock_draw d)
{
	uint64_t x = h + 0x9e3779b97f4a7c15ull * ((uint64_t)d + 1);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

#define PICK(h, d, table) (table[draw((h), (d)) % N_OF(table)])

static void lower_ascii(char *s)
{
	for (; *s; s++)
		*s = ascii_to_lower(*s);
}

/* The domain a company name can come from: the looked-up domain, else
 * the e-mail domain unless it is a free-mail or disposable one. */
static const char *company_domain(const struct prov_ctx *ctx, const struct prov_query *q)
{
	const char *email = q->id[ID_EMAIL], *at;
	const struct dom_lists *l = ctx != NULL ? ctx->domains : NULL;

	if (q->id[ID_DOMAIN] != NULL && q->id[ID_DOMAIN][0] != '\0')
		return q->id[ID_DOMAIN];
	if (email == NULL || (at = strrchr(email, '@')) == NULL || at[1] == '\0')
		return NULL;
	if (l == NULL || dom_is_free(l, at + 1) || dom_is_disposable(l, at + 1))
		return NULL;
	return at + 1;
}

/* "acme-labs.co.uk" -> "Acme Labs": the first label of the registrable
 * domain, words capitalised.  False when there is nothing usable. */
static bool company_from_domain(const char *domain, char *out, size_t outsz)
{
	char reg[LIM_REC_DOMAIN_MAX + 1];
	const char *d = domain;
	size_t n = 0;
	bool word_start = true;

	if (dom_registrable(domain, reg, sizeof reg) == ENR_OK)
		d = reg;
	for (; *d && *d != '.' && n + 1 < outsz; d++) {
		char c = *d;

		if (c == '-' || c == '_') {
			if (!word_start)
				out[n++] = ' ';
			word_start = true;
			continue;
		}
		if ((unsigned char)c >= 0x80)
			return false;
		if (word_start)
			c = ascii_to_upper(c);
		out[n++] = c;
		word_start = false;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	if (n == 0)
		return false;
	out[n] = '\0';
	return true;
}

/* The company name as an e-mail host label: letters and digits only. */
static void slug_of(const char *name, char *out, size_t outsz)
{
	size_t n = 0;

	for (; *name && n + 1 < outsz; name++) {
		char c = *name;

		c = ascii_to_lower(c);
		if (ascii_is_lower(c) || ascii_is_digit(c))
			out[n++] = c;
	}
	if (n == 0)
		n = (size_t)snprintf(out, outsz, "company");
	out[n] = '\0';
}

static enum enr_err put(struct prov_result *out, fld_set want, enum fld_id f, const char *v)
{
	if (!(want & FLD_BIT(f)))
		return ENR_OK;
	return prov_result_set(out, f, v, strlen(v), MOCK_CONFIDENCE);
}

static enum enr_err mock_answer(const struct prov_ctx *ctx, const struct cfg_provider *p,
				const struct prov_query *q, struct prov_result *out)
{
	char company[96], slug[64], first[32], last[32], techs[128];
	char location[160], phone[24], li[128], business[192], personal[128];
	const char *dom;
	fld_set want;
	uint64_t h;
	size_t role, place;
	unsigned t[3];
	enum enr_err rc;

	(void)p;
	if (q == NULL || out == NULL)
		return ENR_E_INVALID;
	prov_result_reset(out);
	want = q->want;
	h = query_hash(q);

	util_strlcpy(first, PICK(h, DRAW_FIRST, first_names), sizeof first);
	util_strlcpy(last, PICK(h, DRAW_LAST, last_names), sizeof last);
	role = draw(h, DRAW_ROLE) % N_OF(roles);
	place = draw(h, DRAW_PLACE) % N_OF(places);

	dom = company_domain(ctx, q);
	if (dom == NULL || !company_from_domain(dom, company, sizeof company))
		snprintf(company, sizeof company, "%s %s", PICK(h, DRAW_COMPANY1, company_first),
			 PICK(h, DRAW_COMPANY2, company_second));
	slug_of(company, slug, sizeof slug);

	/* Three different technologies: each one to four places after the
	 * last, so with twelve in the table none repeats. */
	t[0] = (unsigned)(draw(h, DRAW_TECH1) % N_OF(technologies));
	t[1] = (t[0] + 1 + (unsigned)(draw(h, DRAW_TECH2) % 4)) % N_OF(technologies);
	t[2] = (t[1] + 1 + (unsigned)(draw(h, DRAW_TECH3) % 4)) % N_OF(technologies);
	snprintf(techs, sizeof techs, "%s, %s, %s", technologies[t[0]], technologies[t[1]],
		 technologies[t[2]]);

	snprintf(location, sizeof location, "%s, %s, %s", places[place].city, places[place].state,
		 places[place].country);
	snprintf(phone, sizeof phone, "+1 555 01%02u", (unsigned)(draw(h, DRAW_PHONE) % 100));

	lower_ascii(first);
	lower_ascii(last);
	snprintf(li, sizeof li, "https://www.linkedin.com/in/%s-%s-%04x", first, last,
		 (unsigned)(draw(h, DRAW_SLUG) & 0xffff));
	snprintf(business, sizeof business, "%s.%s@%s.example.com", first, last, slug);
	snprintf(personal, sizeof personal, "%s.%s%02u@example.net", first, last,
		 (unsigned)(draw(h, DRAW_MAILBOX) % 100));

	if ((rc = put(out, want, FLD_FIRST_NAME, PICK(h, DRAW_FIRST, first_names))) ||
	    (rc = put(out, want, FLD_LAST_NAME, PICK(h, DRAW_LAST, last_names))) ||
	    (rc = put(out, want, FLD_COMPANY_NAME, company)) ||
	    (rc = put(out, want, FLD_TITLE, roles[role].title)) ||
	    (rc = put(out, want, FLD_INDUSTRY, PICK(h, DRAW_INDUSTRY, industries))) ||
	    (rc = put(out, want, FLD_COMPANY_SIZE, PICK(h, DRAW_SIZE, sizes))) ||
	    (rc = put(out, want, FLD_LOCATION, location)) ||
	    (rc = put(out, want, FLD_LINKEDIN_URL, li)) ||
	    (rc = put(out, want, FLD_PHONE, phone)) ||
	    (rc = put(out, want, FLD_PERSONAL_EMAIL, personal)) ||
	    (rc = put(out, want, FLD_BUSINESS_EMAIL, business)) ||
	    (rc = put(out, want, FLD_CITY, places[place].city)) ||
	    (rc = put(out, want, FLD_STATE, places[place].state)) ||
	    (rc = put(out, want, FLD_COUNTRY, places[place].country)) ||
	    (rc = put(out, want, FLD_ZIP_CODE, places[place].zip)) ||
	    (rc = put(out, want, FLD_COMPANY_REVENUE, PICK(h, DRAW_REVENUE, revenues))) ||
	    (rc = put(out, want, FLD_TECHNOLOGIES, techs)) ||
	    (rc = put(out, want, FLD_SENIORITY, roles[role].seniority)) ||
	    (rc = put(out, want, FLD_DEPARTMENT, roles[role].department))) {
		prov_result_reset(out);
		return rc;
	}
	out->outcome = PROV_HIT;
	out->credits = 0;
	prov_result_reason(out, "mock data");
	return ENR_OK;
}

/* Made-up data for anything asked. */
static fld_set mock_supplies(const struct cfg_provider *p, enum prov_kind kind,
			     const struct prov_query *q)
{
	(void)p;
	if (q == NULL)
		return 0;
	return kind == PROV_KIND_COMPANY ? prov_company_fields() : FLD_ALL;
}

const struct prov_ops prov_mock_ops = {
	.kind = "mock",
	.needs_key = false,
	.supplies = mock_supplies,
	.build = NULL,
	.build_poll = NULL,
	.parse = NULL,
	.answer = mock_answer,
};
