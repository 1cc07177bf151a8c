/*
 * fuzz_pdl.c - libFuzzer target for the People Data Labs adapter's
 * answer parsing (lib/providers/pdl.c).
 *
 * Input (adapter_fuzz.h): byte 0 picks the HTTP status from a table,
 * byte 1 holds flags (bit 0: the call timed out; bit 1: a company
 * lookup), then four lines ending in '\n' give the values of
 * x-ratelimit-remaining, x-ratelimit-reset, retry-after and
 * x-call-credits-spent; the rest is the body.  The first line is also
 * used as an e-mail address to build a request.
 *
 * Promises checked (any broken one aborts): the outcome is one pdl can
 * give; a hit carries at least one field and only a hit or a miss carries
 * fields; every value is non-empty, trimmed, valid UTF-8 and within
 * LIM_PROV_VALUE_MAX, with a confidence in [0, 1]; the meters are -1 or
 * more, credits and until_ms are not negative; the reason is short
 * printable text.  A built URL holds only unreserved or %XX-encoded bytes
 * after the '?'.  Leaks are caught by LeakSanitizer.
 */
#include <stdint.h>
#include <string.h>

#include "adapter_fuzz.h"
#include "responder_stack.h"

extern const struct prov_ops prov_pdl_ops;

static const long statuses[16] = { 200, 200, 200, 404, 400, 401, 403, 402,
				   429, 500, 503, 0,   302, 201, 204, 418 };
static const char *const header_names[4] = { "x-ratelimit-remaining", "x-ratelimit-reset",
					     "retry-after", "x-call-credits-spent" };

static int fuzz_one(const uint8_t *data, size_t size)
{
	static struct cfg_key key = { .id = "pdl-1", .account = "acct", .secret = "SECRET", .category = "" };
	static struct cfg_provider prov = {
		.name = "pdl", .kind = "pdl", .base_url = "https://api.peopledatalabs.com",
		.enabled = true, .timeout_ms = 1500, .min_likelihood = 6, .credits_per_hit = 1,
		.keys = &key, .nkeys = 1,
	};
	struct prov_query q = { { NULL }, FLD_ALL };
	struct af_input in;

	if (!af_split(data, size, statuses, header_names, &in))
		goto out;
	if (in.flags & 2) {
		q.want = FLD_BIT(FLD_INDUSTRY) | FLD_BIT(FLD_TECHNOLOGIES);
		q.id[ID_DOMAIN] = "acme.com";
	} else {
		q.id[ID_EMAIL] = "john@acme.com";
	}
	af_parse_twice(&prov_pdl_ops, &prov, &q, &in.resp, true, NULL);
	/* The same answer read as a bulk call's (three person lookups). */
	af_parse_bulk(&prov_pdl_ops, &prov, &in.resp, true, false);
	if (in.vals[0]) {
		struct prov_query bq = { { NULL }, FLD_ALL };
		struct prov_request req;

		bq.id[ID_EMAIL] = in.vals[0];
		bq.id[ID_FIRST_NAME] = in.vals[1];
		bq.id[ID_LAST_NAME] = in.vals[2];
		bq.id[ID_COMPANY_NAME] = in.vals[3];
		prov_request_init(&req);
		if (prov_pdl_ops.build(&prov, &key, &bq, &req) == ENR_OK)
			af_check_query(buf_cstr(&req.url), false);
		prov_request_release(&req);
	}
out:
	af_free(&in);
	return 0;
}

FUZZ_TARGET(fuzz_one)
