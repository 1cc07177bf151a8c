/*
 * fuzz_lusha.c - libFuzzer target for the Lusha adapter's answer parsing
 * (lib/providers/lusha.c).
 *
 * Input: byte 0 picks the HTTP status from a table, byte 1 holds flags
 * (bit 0: the call timed out; bit 1: a company lookup), then four lines
 * ending in '\n' give the values of x-minute-requests-left,
 * x-hourly-requests-left, x-daily-requests-left and retry-after; the rest
 * is the body.  The lines are also used as identifiers to build a
 * request, with a key of category "phone" or "email" (bit 2).
 *
 * Promises checked (any broken one aborts): the outcome is one lusha can
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

extern const struct prov_ops prov_lusha_ops;

static const long statuses[16] = { 200, 200, 200, 404, 400, 401, 403, 402,
				   429, 500, 503, 0,   302, 201, 204, 418 };
static const char *const header_names[4] = { "x-minute-requests-left", "x-hourly-requests-left",
					     "x-daily-requests-left", "retry-after" };

static int fuzz_one(const uint8_t *data, size_t size)
{
	static struct cfg_key key = { .id = "lusha-1", .account = "acct", .secret = "SECRET", .category = "" };
	static struct cfg_key phone_key = { .id = "lusha-2", .account = "acct", .secret = "SECRET", .category = "phone" };
	static struct cfg_provider prov = {
		.name = "lusha", .kind = "lusha", .base_url = "https://api.lusha.com",
		.enabled = true, .timeout_ms = 1500, .credits_per_hit = 1, .keys = &key, .nkeys = 1,
	};
	struct prov_query q = { { NULL }, FLD_ALL };
	struct af_input in;

	if (!af_split(data, size, statuses, header_names, &in))
		goto out;
	if (in.flags & 2) {
		q.want = FLD_BIT(FLD_COMPANY_REVENUE) | FLD_BIT(FLD_TECHNOLOGIES);
		q.id[ID_DOMAIN] = "acme.com";
	} else {
		q.id[ID_EMAIL] = "john@acme.com";
	}
	af_parse_twice(&prov_lusha_ops, &prov, &q, &in.resp, true, NULL);
	/* The same answer read as a bulk call's (three person lookups). */
	af_parse_bulk(&prov_lusha_ops, &prov, &in.resp, true, false);
	if (in.vals[0]) {
		struct prov_query bq = { { NULL }, FLD_ALL };
		struct prov_request req;

		bq.id[ID_EMAIL] = in.vals[0];
		bq.id[ID_FIRST_NAME] = in.vals[1];
		bq.id[ID_LAST_NAME] = in.vals[2];
		bq.id[ID_DOMAIN] = in.vals[3];
		prov_request_init(&req);
		if (prov_lusha_ops.build(&prov, (in.flags & 4) ? &phone_key : &key, &bq, &req) ==
		    ENR_OK)
			af_check_query(buf_cstr(&req.url), false);
		prov_request_release(&req);
	}
out:
	af_free(&in);
	return 0;
}

FUZZ_TARGET(fuzz_one)
