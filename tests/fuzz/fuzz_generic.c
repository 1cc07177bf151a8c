/*
 * fuzz_generic.c - libFuzzer target for the configured HTTP JSON provider
 * (lib/providers/generic.c) and the dotted JSON paths it reads with
 * (lib/json_path.c).
 *
 * Input (adapter_fuzz.h): byte 0 picks the HTTP status from a table, byte 1 holds flags
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
#include <string.h>

#include <jansson.h>

#include "lib/json_path.h"

#include "adapter_fuzz.h"
#include "responder_stack.h"

extern const struct prov_ops prov_generic_ops;

static const long statuses[16] = { 200, 200, 201, 404, 400, 401, 403, 402,
				   429, 500, 503, 0,   302, 410, 204, 420 };

/* The status and lists of the input being parsed (one at a time). */
static long cur_status;
static bool cur_lists;

/* A 2xx that no configured list names is a hit, a miss or transient. */
static void check_2xx(const struct prov_result *r)
{
	if (!cur_lists && cur_status >= 200 && cur_status <= 299)
		af_check(r->outcome == PROV_HIT || r->outcome == PROV_MISS ||
			 r->outcome == PROV_TRANSIENT);
}

static void check_request(const struct prov_request *req, const struct prov_query *q,
			  bool post)
{
	json_t *doc;

	af_check_query(buf_cstr(&req->url), true);
	if (!post)
		return;
	if (!util_utf8_valid(q->id[ID_EMAIL], strlen(q->id[ID_EMAIL])) ||
	    !util_utf8_valid(q->id[ID_FIRST_NAME], strlen(q->id[ID_FIRST_NAME])))
		return;
	doc = jp_load(req->body.data, req->body.len, LIM_PROV_REQ_BODY_MAX);
	af_check(doc != NULL);
	af_check(strcmp(json_string_value(jp_get(doc, "who.email")), q->id[ID_EMAIL]) == 0);
	af_check(strcmp(json_string_value(jp_get(doc, "who.names[0]")), q->id[ID_FIRST_NAME]) == 0);
	json_decref(doc);
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	static int miss[] = { 410 }, rate[] = { 420, 503 }, keyinv[] = { 401 };
	static struct cfg_key key = { .id = "g-1", .account = "acct", .secret = "SECRET", .category = "" };
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
	struct prov_header h[1];
	struct prov_query q = { { NULL }, FLD_ALL };
	struct prov_request req;
	struct af_input in;
	char **vals = in.vals;
	bool lists, post;

	if (!af_split(data, size, statuses, NULL, &in))
		goto out;
	lists = (in.flags & 2) != 0;
	post = (in.flags & 4) != 0;
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
	in.resp.headers = h;
	in.resp.nheaders = 1;
	cur_status = in.resp.timed_out ? 0 : in.resp.status;
	cur_lists = lists;
	af_parse_twice(&prov_generic_ops, &prov, &q, &in.resp, false, check_2xx);

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
	af_free(&in);
	return 0;
}

FUZZ_TARGET(fuzz_one)
