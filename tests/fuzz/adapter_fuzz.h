/*
 * adapter_fuzz.h - what the fuzz targets of the HTTP adapters share
 * (fuzz_pdl.c, fuzz_lusha.c, fuzz_generic.c): the input format and the
 * promises every parse() keeps.
 *
 * Input: byte 0 picks the HTTP status from the target's table of 16,
 * byte 1 holds flags (bit 0: the call timed out; the target gives the
 * others a meaning), then up to four lines ending in '\n', then the body.
 * A broken promise aborts; leaks are caught by LeakSanitizer.
 */
#ifndef ENR_FUZZ_ADAPTER_FUZZ_H
#define ENR_FUZZ_ADAPTER_FUZZ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ascii.h"
#include "lib/limits.h"
#include "lib/provider.h"
#include "lib/util.h"

#define AF_NOW INT64_C(1795425816123)

static inline void af_check(int ok)
{
	if (!ok)
		abort();
}

/* One input, split.  vals[i] are the lines (NULL past the last one); when
 * header names were given, resp carries line i as header names[i]. */
struct af_input {
	char *vals[4];
	struct prov_header h[4];
	char *body;
	struct prov_response resp;
	uint8_t flags;
};

static inline void af_free(struct af_input *in)
{
	for (int i = 0; i < 4; i++)
		free(in->vals[i]);
	free(in->body);
}

/* Split data into in (af_free it either way); false when it is too short
 * or memory ran out. */
static inline bool af_split(const uint8_t *data, size_t size, const long statuses[16],
			    const char *const names[4], struct af_input *in)
{
	size_t pos = 2, nh = 0;

	memset(in, 0, sizeof *in);
	if (size < 2)
		return false;
	for (int i = 0; i < 4 && pos < size; i++) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t n = nl ? (size_t)(nl - (data + pos)) : size - pos;

		in->vals[i] = strndup((const char *)data + pos, n);
		if (in->vals[i] == NULL)
			return false;
		if (names) {
			in->h[nh].name = (char *)names[i];
			in->h[nh].value = in->vals[i];
			nh++;
		}
		pos += n + (nl != NULL);
	}
	/* A NUL-terminated copy: the response promises one. */
	in->body = malloc(size - pos + 1);
	if (in->body == NULL)
		return false;
	memcpy(in->body, data + pos, size - pos);
	in->body[size - pos] = '\0';
	in->flags = data[1];
	in->resp.status = statuses[data[0] & 15];
	in->resp.timed_out = (data[1] & 1) != 0;
	in->resp.body = in->body;
	in->resp.body_len = size - pos;
	in->resp.headers = in->h;
	in->resp.nheaders = nh;
	return true;
}

/* What every synchronous adapter's result keeps: an outcome it can give
 * (never pending); a hit carries at least one field and only a hit or a
 * miss carries fields; every value is non-empty, trimmed, valid UTF-8 and
 * within LIM_PROV_VALUE_MAX, with a confidence in [0, 1]; the meters are
 * -1 or more (exactly -1 without meters), credits and until_ms are not
 * negative; the reason is short printable text. */
static inline void af_check_result(const struct prov_result *r, bool meters)
{
	af_check(r->outcome >= PROV_HIT && r->outcome < PROV_OUTCOME__MAX);
	af_check(r->outcome != PROV_PENDING);
	af_check(r->outcome != PROV_HIT || r->found != 0);
	af_check(r->outcome == PROV_HIT || r->outcome == PROV_MISS || r->found == 0);
	for (int f = 0; f < FLD__MAX; f++) {
		const char *v = r->value[f];
		size_t n;

		af_check((v != NULL) == ((r->found & FLD_BIT(f)) != 0));
		if (v == NULL)
			continue;
		n = strlen(v);
		af_check(n > 0 && n <= LIM_PROV_VALUE_MAX && util_utf8_valid(v, n));
		af_check(v[0] != ' ' && v[n - 1] != ' ');
		af_check(r->confidence[f] >= 0.0 && r->confidence[f] <= 1.0);
	}
	af_check(r->until_ms >= 0 && r->credits >= 0);
	if (meters)
		af_check(r->requests_left >= -1 && r->credits_left >= -1);
	else
		af_check(r->requests_left == -1 && r->credits_left == -1);
	af_check(memchr(r->reason, '\0', sizeof r->reason) != NULL && r->reason[0] != '\0');
	for (const char *c = r->reason; *c; c++)
		af_check(ascii_is_print(*c));
}

/* Parse resp twice into one result (the second parse must leave no trace
 * of the first) and check both. */
static inline void af_parse_twice(const struct prov_ops *ops, const struct cfg_provider *p,
				  const struct prov_query *q, const struct prov_response *resp,
				  bool meters, void (*more)(const struct prov_result *r))
{
	struct prov_result res;

	prov_result_init(&res);
	for (int i = 0; i < 2; i++) {
		ops->parse(p, q, resp, AF_NOW, &res);
		af_check_result(&res, meters);
		if (more)
			more(&res);
	}
	prov_result_release(&res);
}

/* A bulk answer (parse_bulk) for three person lookups with ids r0..r2,
 * twice into the same results: the call's outcome is one the kind can give
 * (pending only when allow_pending), carries no field and no negative
 * credits or deadline; each item keeps the promises of a single result
 * (items read no meters) and is never pending. */
static inline void af_parse_bulk(const struct prov_ops *ops, const struct cfg_provider *p,
				 const struct prov_response *resp, bool meters, bool allow_pending)
{
	static const char *const ids[3] = { "r0", "r1", "r2" };
	struct prov_query q[3];
	const struct prov_query *qs[3] = { &q[0], &q[1], &q[2] };
	struct prov_result call, items[3];

	if (ops->parse_bulk == NULL)
		return;
	memset(q, 0, sizeof q);
	q[0].id[ID_EMAIL] = "ann@acme.com";
	q[1].id[ID_LINKEDIN_URL] = "https://www.linkedin.com/in/ann-lee";
	q[2].id[ID_FIRST_NAME] = "Ann";
	q[2].id[ID_LAST_NAME] = "Lee";
	q[2].id[ID_COMPANY_NAME] = "Acme";
	for (int i = 0; i < 3; i++)
		q[i].want = FLD_ALL;
	prov_result_init(&call);
	for (int i = 0; i < 3; i++)
		prov_result_init(&items[i]);
	for (int round = 0; round < 2; round++) {
		ops->parse_bulk(p, qs, ids, 3, resp, AF_NOW, &call, items);
		af_check(call.outcome >= PROV_HIT && call.outcome < PROV_OUTCOME__MAX);
		af_check(allow_pending || call.outcome != PROV_PENDING);
		af_check(call.found == 0 && call.credits >= 0 && call.until_ms >= 0);
		for (int i = 0; i < 3; i++)
			af_check_result(&items[i], false);
		if (meters)
			af_check(call.requests_left >= -1 && call.credits_left >= -1);
	}
	prov_result_release(&call);
	for (int i = 0; i < 3; i++)
		prov_result_release(&items[i]);
}

/* A built URL holds only unreserved or %XX-encoded bytes after the '?'
 * (and must have one when query is true). */
static inline void af_check_query(const char *url, bool query)
{
	const char *q = strchr(url, '?');

	af_check(q != NULL || !query);
	for (const char *c = q ? q + 1 : url + strlen(url); *c; c++)
		af_check(ascii_is_unreserved(*c) || strchr("%&=", *c) != NULL);
}

#endif
