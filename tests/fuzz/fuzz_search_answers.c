/*
 * fuzz_search_answers.c - libFuzzer target for the search adapters' answer
 * parsing (lib/providers/pdl_search.c, surfe_search.c, generic_search.c).
 *
 * Input (adapter_fuzz.h): byte 0 picks the HTTP status, byte 1 holds flags
 * (bit 0: the call timed out; bits 1-2: pdl, surfe, generic; bit 3: a
 * company search), then four lines give the values of
 * x-ratelimit-remaining, x-ratelimit-reset, retry-after and
 * x-call-credits-spent; the rest is the body.  The first line is also a
 * cursor to build a next-page request with.
 *
 * Promises checked (any broken one aborts): the outcome is one a search
 * can give (never pending); only a hit or a miss carries records or a next
 * cursor; every value is non-empty, trimmed, valid UTF-8 and within
 * LIM_PROV_VALUE_MAX; a domain is a valid host name; a next cursor is
 * printable and within LIM_SEARCH_PROV_CURSOR_MAX; a page holds at most
 * LIM_SEARCH_LIMIT_CEILING records; credits and until_ms are not negative;
 * the reason is short printable text.  A second parse into the same page
 * leaves nothing of the first.  Leaks are caught by LeakSanitizer.
 */
#include <stdint.h>
#include <string.h>

#include "lib/domains.h"

#include "adapter_fuzz.h"
#include "responder_stack.h"

static const long statuses[16] = { 200, 200, 200, 200, 404, 400, 401, 403,
				   402, 429, 500, 0,   302, 201, 204, 422 };
static const char *const header_names[4] = { "x-ratelimit-remaining", "x-ratelimit-reset",
					     "retry-after", "x-call-credits-spent" };

static struct cfg_key key = { "k-1", "acct", "SECRET", "", 0 };
static struct cfg_generic_search gpeople = {
	.method = "POST", .url = "{base_url}/people/search",
	.body = "{\"filters\":{\"domains\":{domains},\"titles\":{titles}},\"limit\":{limit},\"cursor\":{cursor}}",
	.max_limit = 100, .results = "results", .next_cursor = "paging.next", .total = "total",
	.credits_per_result = 1, .domain = "company.domain",
};
static struct cfg_generic_search gcompanies = {
	.method = "GET", .url = "{base_url}/companies/search?domain={domains}&cursor={cursor}",
	.body = "", .max_limit = 100, .results = "results", .next_cursor = "paging.next",
	.total = "", .credits_per_result = 1, .domain = "domain",
};
static struct cfg_provider provs[3] = {
	{ .name = "pdl", .kind = "pdl", .base_url = "https://api.peopledatalabs.com",
	  .enabled = true, .timeout_ms = 1500, .credits_per_hit = 1, .keys = &key, .nkeys = 1 },
	{ .name = "surfe", .kind = "surfe", .base_url = "https://api.surfe.com", .enabled = true,
	  .timeout_ms = 1500, .credits_per_hit = 1, .keys = &key, .nkeys = 1 },
	{ .name = "generic", .kind = "generic", .base_url = "https://g.example", .enabled = true,
	  .timeout_ms = 1500, .credits_per_hit = 1, .keys = &key, .nkeys = 1,
	  .search = { &gpeople, &gcompanies } },
};

static void check_page(const struct prov_result *call, const struct prov_page *pg)
{
	af_check(call->outcome >= PROV_HIT && call->outcome < PROV_OUTCOME__MAX);
	af_check(call->outcome != PROV_PENDING);
	af_check(call->outcome == PROV_HIT || call->outcome == PROV_MISS ||
		 (pg->n == 0 && pg->next_cursor == NULL));
	af_check(call->found == 0);
	af_check(call->credits >= 0 && call->until_ms >= 0);
	af_check(pg->n <= (size_t)LIM_SEARCH_LIMIT_CEILING);
	for (size_t i = 0; i < pg->n; i++) {
		const struct prov_record *r = &pg->rec[i];
		size_t dn = strlen(r->domain);

		af_check(dn == 0 || dom_valid(r->domain, dn));
		for (int f = 0; f < FLD__MAX; f++) {
			const char *v = r->value[f];
			size_t n;

			if (v == NULL)
				continue;
			n = strlen(v);
			af_check(n > 0 && n <= LIM_PROV_VALUE_MAX && util_utf8_valid(v, n));
			af_check(!ascii_is_space(v[0]) && !ascii_is_space(v[n - 1]));
		}
	}
	if (pg->next_cursor) {
		size_t n = strlen(pg->next_cursor);

		af_check(n > 0 && n <= LIM_SEARCH_PROV_CURSOR_MAX);
		for (size_t i = 0; i < n; i++)
			af_check(ascii_is_print(pg->next_cursor[i]));
	}
	af_check(memchr(call->reason, '\0', sizeof call->reason) != NULL && call->reason[0] != '\0');
	for (const char *c = call->reason; *c; c++)
		af_check(ascii_is_print(*c));
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	static const char *const domains[] = { "acme.com" };
	struct af_input in;
	struct prov_result call;
	struct prov_page pg;
	const struct cfg_provider *p;
	const struct prov_search_ops *ops;
	struct prov_search s;

	if (!af_split(data, size, statuses, header_names, &in))
		goto out;
	p = &provs[((in.flags >> 1) & 3) % 3];
	ops = prov_ops_find(p->kind)->search;
	memset(&s, 0, sizeof s);
	s.kind = in.flags & 8 ? PROV_SEARCH_COMPANIES : PROV_SEARCH_PEOPLE;
	s.f[PF_DOMAINS].v = domains;
	s.f[PF_DOMAINS].n = 1;
	s.limit = 10;
	prov_result_init(&call);
	prov_page_init(&pg);
	for (int i = 0; i < 2; i++) {
		ops->parse(p, &s, &in.resp, AF_NOW, &call, &pg);
		check_page(&call, &pg);
	}
	prov_page_release(&pg);
	prov_result_release(&call);
	/* A next page's request from whatever token came. */
	if (in.vals[0] && in.vals[0][0]) {
		struct prov_request req;

		s.cursor = in.vals[0];
		prov_request_init(&req);
		if (ops->build(p, &key, &s, &req) == ENR_OK)
			af_check(req.url.len > 0);
		prov_request_release(&req);
	}
out:
	af_free(&in);
	return 0;
}

FUZZ_TARGET(fuzz_one)
