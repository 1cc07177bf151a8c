/*
 * fuzz_query.c - libFuzzer target for the query-string parser (lib/query.c)
 * with the parameter tables the responder's routes use: any query is either
 * accepted with values the table allows, which read back the same when
 * encoded again, or refused with details that name each problem in
 * printable ASCII.  On the responder's stack.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ascii.h"
#include "lib/buf.h"
#include "lib/limits.h"
#include "lib/pct.h"
#include "lib/query.h"
#include "lib/util.h"

#include "responder_stack.h"

static const struct qs_range days = { 1, 366 };
static const char *const formats[] = { "csv", "ndjson", NULL };
static const struct qs_param table[] = {
	{ "enrich", 512, qs_valid_fields, NULL },
	{ "format", 16, qs_valid_choice, formats },
	{ "account", LIM_NAME_MAX, qs_valid_name, NULL },
	{ "days", 3, qs_valid_int, &days },
	{ "note", 64, NULL, NULL },
};
#define NT (sizeof table / sizeof table[0])

static void check(int ok)
{
	if (!ok)
		abort();
}

static bool plain(int c)
{
	return ascii_is_alnum(c) || c == '-' || c == '_' || c == '.' || c == ',';
}

static void encode(struct buf *b, const char *s, size_t n)
{
	check(pct_encode(b, s, n, plain, 0) == ENR_OK);
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	char *query = malloc(size + 1);
	struct qs q, again;
	json_t *d = NULL, *e;
	size_t i;
	enum enr_err rc;

	check(query != NULL);
	memcpy(query, data, size);
	query[size] = '\0';
	qs_init(&q);
	qs_init(&again);
	rc = qs_parse(query, table, NT, &q, &d);
	if (rc == ENR_OK) {
		struct buf b;

		check(d == NULL && q.n <= NT);
		buf_init(&b, 0);
		for (unsigned k = 0; k < q.n; k++) {
			const struct qs_param *p = q.v[k].param;

			check(p >= table && p < table + NT);
			check(q.v[k].len <= p->max_len && strlen(q.v[k].value) == q.v[k].len);
			check(util_utf8_valid(q.v[k].value, q.v[k].len));
			check(qs_get(&q, p->name) == q.v[k].value);
			for (unsigned j = 0; j < k; j++)
				check(q.v[j].param != p);
			check(buf_printf(&b, "%s%s=", k ? "&" : "", p->name) == ENR_OK);
			encode(&b, q.v[k].value, q.v[k].len);
		}
		/* What was accepted reads back the same once encoded again (when
		 * the encoding still fits the query cap). */
		if (b.len <= LIM_QUERY_MAX) {
			check(qs_parse(buf_cstr(&b), table, NT, &again, &d) == ENR_OK);
			check(again.n == q.n);
			for (unsigned k = 0; k < q.n; k++)
				check(strcmp(qs_get(&again, q.v[k].param->name), q.v[k].value) == 0);
		}
		buf_release(&b);
	} else if (rc == ENR_E_INVALID) {
		check(json_is_array(d) && json_array_size(d) > 0);
		json_array_foreach(d, i, e) {
			const char *f = json_string_value(json_object_get(e, "field"));
			const char *p = json_string_value(json_object_get(e, "problem"));

			check(f && p && p[0] && strlen(f) <= LIM_NAME_MAX);
			for (const char *c = f; *c; c++)
				check(*c >= 0x20 && *c < 0x7f);
		}
	} else {
		check(rc == ENR_E_NOMEM);
	}
	json_decref(d);
	qs_release(&q);
	qs_release(&again);
	free(query);
	return 0;
}

FUZZ_TARGET(fuzz_one)
