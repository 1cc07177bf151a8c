/*
 * fuzz_generic.c - libFuzzer target for the configured HTTP JSON provider
 * (lib/providers/generic.c) and the dotted JSON paths it reads with
 * (lib/json_path.c).
 *
 * Input: byte 0 picks the HTTP status from a table, byte 1 holds flags
 * (bit 0: the call timed out; bit 1: the configuration lists its own
 * statuses; bit 2: the request is a POST with a JSON body), then four
 * lines ending in '\n': a retry-after value, two identifiers (e-mail and
 * first name) and a JSON path read into the city field; the rest is the
 * body.
 *
 * Promises checked (any broken one aborts): the outcome is one generic
 * can give; a hit carries at least one field and only a hit or a miss
 * carries fields; every value is non-empty, trimmed, valid UTF-8 and
 * within LIM_PROV_VALUE_MAX; a 2xx outside the lists is hit, miss or
 * transient; the reason is short printable text.  A built request's query
 * holds only unreserved or %XX-encoded bytes, and its body, built from a
 * JSON template with valid UTF-8 identifiers, is valid JSON that gives the
 * identifiers back.  Leaks are caught by LeakSanitizer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/ascii.h"
#include "lib/json_path.h"
#include "lib/limits.h"
#include "lib/provider.h"
#include "lib/util.h"

#include "responder_stack.h"


extern const struct prov_ops prov_generic_ops;

#define NOW INT64_C(1795425816123)

static const long statuses[16] = { 200, 200, 201, 404, 400, 401, 403, 402,
				   429, 500, 503, 0,   302, 410, 204, 420 };

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_result(const struct prov_result *r, long status, bool lists)
{
	check(r->outcome >= PROV_HIT && r->outcome < PROV_OUTCOME__MAX);
	check(r->outcome != PROV_PENDING);
	check(r->outcome != PROV_HIT || r->found != 0);
	check(r->outcome == PROV_HIT || r->outcome == PROV_MISS || r->found == 0);
	if (!lists && status >= 200 && status <= 299)
		check(r->outcome == PROV_HIT || r->outcome == PROV_MISS ||
		      r->outcome == PROV_TRANSIENT);
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
	check(r->requests_left == -1 && r->credits_left == -1);
	check(memchr(r->reason, '\0', sizeof r->reason) != NULL && r->reason[0] != '\0');
	for (const char *c = r->reason; *c; c++)
		check(*c >= 0x20 && *c < 0x7f);
}

static void check_request(const struct prov_request *req, const struct prov_query *q,
			  bool post)
{
	const char *url = buf_cstr(&req->url);
	const char *qs = strchr(url, '?');
	json_t *doc;

	check(qs != NULL);
	for (const char *c = qs + 1; *c; c++)
		check(ascii_is_unreserved(*c) || strchr("%&=", *c) != NULL);
	if (!post)
		return;
	if (!util_utf8_valid(q->id[ID_EMAIL], strlen(q->id[ID_EMAIL])) ||
	    !util_utf8_valid(q->id[ID_FIRST_NAME], strlen(q->id[ID_FIRST_NAME])))
		return;
	doc = jp_load(req->body.data, req->body.len, LIM_PROV_REQ_BODY_MAX);
	check(doc != NULL);
	check(strcmp(json_string_value(jp_get(doc, "who.email")), q->id[ID_EMAIL]) == 0);
	check(strcmp(json_string_value(jp_get(doc, "who.names[0]")), q->id[ID_FIRST_NAME]) == 0);
	json_decref(doc);
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	static int miss[] = { 410 }, rate[] = { 420, 503 }, keyinv[] = { 401 };
	static struct cfg_key key = { "g-1", "acct", "SECRET", "", 0 };
	struct cfg_generic g = {
		.method = "GET",
		.url = "{base_url}/{nope}/person?email={email}&first={first_name}",
		.body = "",
		.auth_header = "Authorization",
		.auth_prefix = "Bearer ",
		.fields = {
			[FLD_FIRST_NAME] = "data.first_name",
			[FLD_TITLE] = "data.job.title",
			[FLD_PHONE] = "data.phones[0]",
			[FLD_COMPANY_SIZE] = "data.size",
			[FLD_TECHNOLOGIES] = "[0]",
		},
	};
	struct cfg_provider prov = {
		.name = "g", .kind = "generic", .base_url = "http://127.0.0.1:9/generic",
		.enabled = true, .timeout_ms = 1500, .credits_per_hit = 1, .keys = &key,
		.nkeys = 1, .generic = &g,
	};
	char *vals[4] = { NULL, NULL, NULL, NULL };
	struct prov_header h[1];
	struct prov_query q = { { NULL }, FLD_ALL };
	struct prov_response resp = { 0 };
	struct prov_result res;
	struct prov_request req;
	char *body = NULL;
	size_t pos = 2;
	bool lists, post;

	if (size < 2)
		return 0;
	for (int i = 0; i < 4 && pos < size; i++) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t n = nl ? (size_t)(nl - (data + pos)) : size - pos;

		vals[i] = strndup((const char *)data + pos, n);
		if (vals[i] == NULL)
			goto out;
		pos += n + (nl != NULL);
	}
	body = malloc(size - pos + 1);
	if (body == NULL)
		goto out;
	memcpy(body, data + pos, size - pos);
	body[size - pos] = '\0';

	lists = (data[1] & 2) != 0;
	post = (data[1] & 4) != 0;
	if (lists) {
		g.miss = (struct cfg_int_list){ miss, 1 };
		g.rate_limited = (struct cfg_int_list){ rate, 2 };
		g.key_invalid = (struct cfg_int_list){ keyinv, 1 };
	}
	if (post) {
		g.method = "POST";
		g.body = "{\"who\":{\"email\":\"{email}\",\"names\":[\"{first_name}\",\"{base_url}\"]},"
			 "\"{\":\"}\"}";
	}
	if (vals[3])
		g.fields[FLD_CITY] = vals[3];
	h[0].name = "retry-after";
	h[0].value = vals[0] ? vals[0] : "";
	resp.status = statuses[data[0] & 15];
	resp.timed_out = (data[1] & 1) != 0;
	resp.body = body;
	resp.body_len = size - pos;
	resp.headers = h;
	resp.nheaders = 1;

	prov_result_init(&res);
	prov_generic_ops.parse(&prov, &q, &resp, NOW, &res);
	check_result(&res, resp.timed_out ? 0 : resp.status, lists);
	prov_generic_ops.parse(&prov, &q, &resp, NOW, &res);
	check_result(&res, resp.timed_out ? 0 : resp.status, lists);
	prov_result_release(&res);

	if (vals[3])
		(void)jp_valid(vals[3]);
	if (vals[1] && vals[2]) {
		q.id[ID_EMAIL] = vals[1];
		q.id[ID_FIRST_NAME] = vals[2];
		prov_request_init(&req);
		if (prov_generic_ops.build(&prov, &key, &q, &req) == ENR_OK)
			check_request(&req, &q, post);
		prov_request_release(&req);
	}
out:
	for (int i = 0; i < 4; i++)
		free(vals[i]);
	free(body);
	return 0;
}

FUZZ_TARGET(fuzz_one)
