/*
 * fuzz_surfe.c - libFuzzer target for the Surfe answer parser
 * (lib/providers/surfe.c).
 *
 * Input: the first byte picks the HTTP status (and whether the call timed
 * out or carried a Retry-After header); the rest is the body, parsed once
 * as a start answer would be and once as a poll answer (the parser tells
 * them apart by the body, so both go through the same entry point with a
 * different query and clock).
 *
 * Promises checked (any broken one aborts):
 *   the outcome is one of enum prov_outcome, with a non-empty reason;
 *   only a hit carries fields or credits, and a hit carries at least one
 *     field, each valid UTF-8 with a confidence in 0..1;
 *   a pending id is empty or [A-Za-z0-9_-] and builds a poll request;
 *   only rate_limited/quota_exhausted carry until_ms, and a 429 always
 *     carries one in the future;
 *   the reason never repeats the body (checked with a marker).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ascii.h"
#include "lib/config.h"
#include "lib/fields.h"
#include "lib/provider.h"
#include "lib/util.h"

#include "responder_stack.h"


extern const struct prov_ops prov_surfe_ops;

static const long statuses[16] = {
	0, 200, 202, 200, 202, 201, 400, 401, 402, 403, 404, 429, 500, 503, 302, 200,
};

static struct cfg_key key = { .id = "surfe-1", .account = "acme", .secret = "sk-fuzz", .category = "" };
static struct cfg_provider prov = {
	.name = "surfe", .kind = "surfe", .base_url = "https://api.surfe.com",
	.enabled = true, .credits_per_hit = 1,
};

static void check(int ok)
{
	if (!ok)
		abort();
}

static void one(const struct prov_query *q, const struct prov_response *resp, int64_t now)
{
	struct prov_result res;

	prov_result_init(&res);
	prov_surfe_ops.parse(&prov, q, resp, now, &res);

	check((unsigned)res.outcome < PROV_OUTCOME__MAX);
	check(res.reason[0] != '\0' && strlen(res.reason) < sizeof res.reason);
	check(strstr(res.reason, "FUZZMARK") == NULL);
	if (res.outcome == PROV_HIT) {
		check(res.found != 0 && res.credits == prov.credits_per_hit);
	} else {
		check(res.found == 0 && res.credits == 0);
	}
	for (int f = 0; f < FLD__MAX; f++) {
		check((res.value[f] != NULL) == ((res.found & FLD_BIT(f)) != 0));
		if (res.value[f] == NULL)
			continue;
		check(res.value[f][0] != '\0');
		check(util_utf8_valid(res.value[f], strlen(res.value[f])));
		check(res.confidence[f] >= 0.0 && res.confidence[f] <= 1.0);
	}
	if (res.outcome != PROV_PENDING)
		check(res.pending_id[0] == '\0');
	if (res.pending_id[0] != '\0') {
		struct prov_request req;

		for (const char *c = res.pending_id; *c; c++)
			check(ascii_is_alnum(*c) || *c == '-' || *c == '_');
		prov_request_init(&req);
		check(prov_surfe_ops.build_poll(&prov, &key, res.pending_id, &req) == ENR_OK);
		prov_request_release(&req);
	}
	if (res.outcome != PROV_RATE_LIMITED && res.outcome != PROV_QUOTA_EXHAUSTED)
		check(res.until_ms == 0);
	if (res.outcome == PROV_RATE_LIMITED)
		check(res.until_ms > now);
	if (resp->status == 429 && !resp->timed_out)
		check(res.outcome == PROV_RATE_LIMITED);
	check(res.requests_left == -1 && res.credits_left == -1);
	prov_result_release(&res);
}

/* The same answer read as a job of three people (externalID r0..r2):
 * the call is pending, a completed job or the call's error, and carries
 * no field; each person is a hit with fields and one credit, a miss, or
 * that person's failure; nothing is pending but the call. */
static void bulk(const struct prov_response *resp, int64_t now)
{
	static const char *const ids[3] = { "r0", "r1", "r2" };
	struct prov_query q[3];
	const struct prov_query *qs[3] = { &q[0], &q[1], &q[2] };
	struct prov_result call, items[3];

	memset(q, 0, sizeof q);
	for (int i = 0; i < 3; i++) {
		q[i].id[ID_LINKEDIN_URL] = "https://www.linkedin.com/in/fuzz";
		q[i].want = FLD_ALL;
	}
	prov_result_init(&call);
	for (int i = 0; i < 3; i++)
		prov_result_init(&items[i]);
	prov_surfe_ops.parse_bulk(&prov, qs, ids, 3, resp, now, &call, items);
	check((unsigned)call.outcome < PROV_OUTCOME__MAX && call.found == 0);
	check(call.reason[0] != '\0' && strlen(call.reason) < sizeof call.reason);
	for (int i = 0; i < 3; i++) {
		const struct prov_result *r = &items[i];

		check((unsigned)r->outcome < PROV_OUTCOME__MAX && r->outcome != PROV_PENDING);
		check(r->outcome == PROV_HIT ? r->found != 0 && r->credits == prov.credits_per_hit
					     : r->found == 0 && r->credits == 0);
		check(r->reason[0] != '\0' && strstr(r->reason, "FUZZMARK") == NULL);
		for (int f = 0; f < FLD__MAX; f++) {
			if (r->value[f])
				check(r->value[f][0] != '\0' &&
				      util_utf8_valid(r->value[f], strlen(r->value[f])));
		}
	}
	prov_result_release(&call);
	for (int i = 0; i < 3; i++)
		prov_result_release(&items[i]);
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	struct prov_header h = { "retry-after", "3" };
	struct prov_response resp;
	struct prov_query start, poll;
	char *body;

	if (size == 0)
		return 0;
	/* A NUL-terminated copy: the response promises one. */
	body = malloc(size);
	if (body == NULL)
		return 0;
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0';

	memset(&resp, 0, sizeof resp);
	resp.status = statuses[data[0] & 15];
	resp.timed_out = (data[0] & 0x30) == 0x30;
	if (data[0] & 0x40) {
		resp.headers = &h;
		resp.nheaders = 1;
	}
	resp.body = body;
	resp.body_len = size - 1;

	memset(&start, 0, sizeof start);
	start.id[ID_LINKEDIN_URL] = "https://www.linkedin.com/in/fuzz";
	start.want = FLD_ALL;
	poll = start;
	poll.want = FLD_BIT(FLD_PHONE);

	one(&start, &resp, INT64_C(1773146096789));
	one(&poll, &resp, INT64_C(1773187199999));
	bulk(&resp, INT64_C(1773146096789));
	free(body);
	return 0;
}

FUZZ_TARGET(fuzz_one)
