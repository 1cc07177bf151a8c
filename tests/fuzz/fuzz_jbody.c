/*
 * fuzz_jbody.c - libFuzzer target for JSON request bodies against a table
 * of members (lib/jbody.c) with the admin API's tables: any body is either
 * accepted with values inside the table's bounds, or refused with details
 * that name each problem in printable ASCII.  On the responder's stack.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/admin.h"
#include "lib/jbody.h"
#include "lib/limits.h"

#include "responder_stack.h"

static const struct jb_field table[] = {
	{ "name", JB_STRING, 1, LIM_NAME_MAX, true },
	{ "requests_per_minute", JB_LIMIT, 1, OPS_LIMIT_VALUE_MAX, false },
	{ "records_per_day", JB_LIMIT, 0, OPS_LIMIT_VALUE_MAX, false },
	{ "expires_in_days", JB_INT, 1, 36500, false },
	{ "scopes", JB_WORDS, 1, 4, false },
	{ "on", JB_BOOL, 0, 0, false },
};
#define NT (sizeof table / sizeof table[0])

static void check(int ok)
{
	if (!ok)
		abort();
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	struct jb_value v[NT];
	json_t *doc = NULL, *d = NULL, *e;
	size_t i;
	enum enr_err rc = jb_parse((const char *)data, size, table, NT, &doc, v, &d);

	if (rc == ENR_OK) {
		check(doc != NULL && d == NULL && v[0].present && v[0].s && v[0].len >= 1 &&
		      v[0].len <= LIM_NAME_MAX && strlen(v[0].s) == v[0].len);
		for (size_t k = 1; k < NT; k++) {
			if (!v[k].present || v[k].is_default)
				continue;
			if (table[k].type == JB_INT || table[k].type == JB_LIMIT)
				check(v[k].i >= table[k].min && v[k].i <= table[k].max);
			if (table[k].type == JB_WORDS)
				check(json_array_size(v[k].arr) >= 1 && json_array_size(v[k].arr) <= 4);
		}
	} else if (rc == ENR_E_INVALID) {
		check(doc == NULL && json_is_array(d) && json_array_size(d) > 0);
		json_array_foreach(d, i, e) {
			const char *f = json_string_value(json_object_get(e, "field"));
			const char *p = json_string_value(json_object_get(e, "problem"));

			check(f && p && p[0] && strlen(f) <= LIM_NAME_MAX);
			for (const char *c = f; *c; c++)
				check(*c >= 0x20 && *c < 0x7f);
			for (const char *c = p; *c; c++)
				check(*c >= 0x20 && *c < 0x7f);
		}
	} else {
		check(rc == ENR_E_NOMEM);
	}
	json_decref(doc);
	json_decref(d);
	return 0;
}

FUZZ_TARGET(fuzz_one)
