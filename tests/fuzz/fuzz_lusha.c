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
#include <stdlib.h>
#include <string.h>

#include "lib/ascii.h"
#include "lib/limits.h"
#include "lib/provider.h"
#include "lib/util.h"

#include "responder_stack.h"


extern const struct prov_ops prov_lusha_ops;

#define NOW INT64_C(1795425816123)

static const long statuses[16] = { 200, 200, 200, 404, 400, 401, 403, 402,
				   429, 500, 503, 0,   302, 201, 204, 418 };
static const char *const header_names[4] = { "x-minute-requests-left", "x-hourly-requests-left",
					     "x-daily-requests-left", "retry-after" };

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_result(const struct prov_result *r)
{
	check(r->outcome >= PROV_HIT && r->outcome < PROV_OUTCOME__MAX);
	check(r->outcome != PROV_PENDING);
	check(r->outcome != PROV_HIT || r->found != 0);
	check(r->outcome == PROV_HIT || r->outcome == PROV_MISS || r->found == 0);
	for (int f = 0; f < FLD__MAX; f++) {
		const char *v = r->value[f];
		size_t n;

		check((v != NULL) == ((r->found & FLD_BIT(f)) != 0));
		if (v == NULL)
			continue;
		n = strlen(v);
		check(n > 0 && n <= LIM_PROV_VALUE_MAX && util_utf8_valid(v, n));
		check(v[0] != ' ' && v[n - 1] != ' ');
		check(r->confidence[f] >= 0.0 && r->confidence[f] <= 1.0);
	}
	check(r->until_ms >= 0 && r->credits >= 0);
	check(r->requests_left >= -1 && r->credits_left >= -1);
	check(memchr(r->reason, '\0', sizeof r->reason) != NULL && r->reason[0] != '\0');
	for (const char *c = r->reason; *c; c++)
		check(*c >= 0x20 && *c < 0x7f);
}

static void check_url(const char *url)
{
	const char *q = strchr(url, '?');

	for (const char *c = q ? q + 1 : url + strlen(url); *c; c++)
		check(ascii_is_unreserved(*c) || strchr("%&=", *c) != NULL);
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	static struct cfg_key key = { "lusha-1", "acct", "SECRET", "", 0 };
	static struct cfg_key phone_key = { "lusha-2", "acct", "SECRET", "phone", 0 };
	static struct cfg_provider prov = {
		.name = "lusha", .kind = "lusha", .base_url = "https://api.lusha.com",
		.enabled = true, .timeout_ms = 1500, .credits_per_hit = 1, .keys = &key, .nkeys = 1,
	};
	char *vals[4] = { NULL, NULL, NULL, NULL };
	struct prov_header h[4];
	struct prov_query q = { { NULL }, FLD_ALL };
	struct prov_response resp = { 0 };
	struct prov_result res;
	struct prov_request req;
	char *body = NULL;
	size_t pos = 2, nh = 0;

	if (size < 2)
		return 0;
	for (int i = 0; i < 4 && pos < size; i++) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t n = nl ? (size_t)(nl - (data + pos)) : size - pos;

		vals[i] = strndup((const char *)data + pos, n);
		if (vals[i] == NULL)
			goto out;
		h[nh].name = (char *)header_names[i];
		h[nh].value = vals[i];
		nh++;
		pos += n + (nl != NULL);
	}
	body = malloc(size - pos + 1);
	if (body == NULL)
		goto out;
	memcpy(body, data + pos, size - pos);
	body[size - pos] = '\0';

	if (data[1] & 2) {
		q.want = FLD_BIT(FLD_COMPANY_REVENUE) | FLD_BIT(FLD_TECHNOLOGIES);
		q.id[ID_DOMAIN] = "acme.com";
	} else {
		q.id[ID_EMAIL] = "john@acme.com";
	}
	resp.status = statuses[data[0] & 15];
	resp.timed_out = (data[1] & 1) != 0;
	resp.body = body;
	resp.body_len = size - pos;
	resp.headers = h;
	resp.nheaders = nh;

	prov_result_init(&res);
	prov_lusha_ops.parse(&prov, &q, &resp, NOW, &res);
	check_result(&res);
	/* parsing again into a used result leaves no trace of the first */
	prov_lusha_ops.parse(&prov, &q, &resp, NOW, &res);
	check_result(&res);
	prov_result_release(&res);

	if (vals[0]) {
		struct prov_query bq = { { NULL }, FLD_ALL };

		bq.id[ID_EMAIL] = vals[0];
		bq.id[ID_FIRST_NAME] = vals[1];
		bq.id[ID_LAST_NAME] = vals[2];
		bq.id[ID_DOMAIN] = vals[3];
		prov_request_init(&req);
		if (prov_lusha_ops.build(&prov, (data[1] & 4) ? &phone_key : &key, &bq, &req) ==
		    ENR_OK)
			check_url(buf_cstr(&req.url));
		prov_request_release(&req);
	}
out:
	for (int i = 0; i < 4; i++)
		free(vals[i]);
	free(body);
	return 0;
}

FUZZ_TARGET(fuzz_one)
