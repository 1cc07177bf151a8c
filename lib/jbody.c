/*
 * jbody.c - JSON request bodies against a table of members.
 */
#include "jbody.h"

#include <stdio.h>
#include <string.h>

#include "json_path.h"
#include "limits.h"
#include "util.h"

/* Printable ASCII only: a problem may quote a member name the client sent. */
static void ascii_copy(const char *in, char *out, size_t outsz)
{
	size_t o = 0;

	for (; *in && o + 1 < outsz; in++)
		out[o++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
	out[o] = '\0';
}

void jb_problem(json_t *details, const char *field, const char *problem)
{
	char f[LIM_NAME_MAX + 1], w[256];

	ascii_copy(field, f, sizeof f);
	ascii_copy(problem, w, sizeof w);
	json_array_append_new(details, json_pack("{s:s, s:s}", "field", f, "problem", w));
}

static bool check_words(json_t *v, const struct jb_field *f, json_t *d)
{
	size_t i;
	json_t *e;
	char what[96];

	if (!json_is_array(v)) {
		jb_problem(d, f->name, "must be an array of strings");
		return false;
	}
	if (json_array_size(v) < (size_t)f->min || json_array_size(v) > (size_t)f->max) {
		snprintf(what, sizeof what, "must have %lld to %lld entries", (long long)f->min,
			 (long long)f->max);
		jb_problem(d, f->name, what);
		return false;
	}
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || json_string_length(e) == 0 ||
		    json_string_length(e) > LIM_NAME_MAX) {
			snprintf(what, sizeof what, "entry %zu must be a string of 1 to %u bytes", i,
				 LIM_NAME_MAX);
			jb_problem(d, f->name, what);
			return false;
		}
	}
	return true;
}

/* Check v against f into out; false (with a detail) when it does not fit. */
static bool check_one(json_t *v, const struct jb_field *f, struct jb_value *out, json_t *d)
{
	char what[128];

	switch (f->type) {
	case JB_STRING:
		if (!json_is_string(v)) {
			jb_problem(d, f->name, "must be a string");
			return false;
		}
		if (json_string_length(v) < (size_t)f->min || json_string_length(v) > (size_t)f->max) {
			snprintf(what, sizeof what, "must be %lld to %lld bytes", (long long)f->min,
				 (long long)f->max);
			jb_problem(d, f->name, what);
			return false;
		}
		/* jansson refuses invalid UTF-8 already; a NUL inside would cut
		 * the value where C code reads it. */
		if (strlen(json_string_value(v)) != json_string_length(v)) {
			jb_problem(d, f->name, "must not contain a NUL character");
			return false;
		}
		out->s = json_string_value(v);
		out->len = json_string_length(v);
		return true;
	case JB_LIMIT:
		if (json_is_string(v) && strcmp(json_string_value(v), "default") == 0) {
			out->is_default = true;
			return true;
		}
		/* fall through */
	case JB_INT:
		if (!json_is_integer(v) || json_integer_value(v) < f->min ||
		    json_integer_value(v) > f->max) {
			snprintf(what, sizeof what, "must be a whole number from %lld to %lld%s",
				 (long long)f->min, (long long)f->max,
				 f->type == JB_LIMIT ? ", or \"default\"" : "");
			jb_problem(d, f->name, what);
			return false;
		}
		out->i = (int64_t)json_integer_value(v);
		return true;
	case JB_BOOL:
		if (!json_is_boolean(v)) {
			jb_problem(d, f->name, "must be true or false");
			return false;
		}
		out->b = json_is_true(v);
		return true;
	case JB_WORDS:
		if (!check_words(v, f, d))
			return false;
		out->arr = v;
		return true;
	case JB__MAX:
		break;
	}
	jb_problem(d, f->name, "cannot be checked");
	return false;
}

enum enr_err jb_load(const char *body, size_t len, json_t **doc, json_t *details)
{
	json_error_t jerr;
	char what[256];

	*doc = NULL;
	if (len == 0) {
		jb_problem(details, "body", "a JSON object is required");
		return ENR_E_INVALID;
	}
	if (!jp_depth_ok(body, len, LIM_JSON_DEPTH_MAX)) {
		snprintf(what, sizeof what, "nested deeper than %u levels", LIM_JSON_DEPTH_MAX);
		jb_problem(details, "body", what);
		return ENR_E_INVALID;
	}
	*doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (*doc == NULL) {
		snprintf(what, sizeof what, "not valid JSON at line %d, column %d: %s", jerr.line,
			 jerr.column, jerr.text);
		jb_problem(details, "body", what);
		return ENR_E_INVALID;
	}
	return ENR_OK;
}

enum enr_err jb_parse(const char *body, size_t len, const struct jb_field *table, size_t n,
		      json_t **doc, struct jb_value *out, json_t **details)
{
	json_t *j = NULL, *d = json_array(), *v;
	const char *name;
	bool bad = false;

	*doc = NULL;
	*details = NULL;
	if (d == NULL)
		return ENR_E_NOMEM;
	for (size_t i = 0; i < n; i++)
		memset(&out[i], 0, sizeof out[i]);
	if (jb_load(body, len, &j, d) != ENR_OK)
		goto invalid;
	if (!json_is_object(j)) {
		jb_problem(d, "body", "must be a JSON object");
		goto invalid;
	}
	json_object_foreach(j, name, v) {
		size_t i;

		for (i = 0; i < n && strcmp(table[i].name, name) != 0; i++)
			;
		if (i == n) {
			jb_problem(d, name, "unknown member");
			bad = true;
			continue;
		}
		if (!check_one(v, &table[i], &out[i], d)) {
			bad = true;
			continue;
		}
		out[i].present = true;
	}
	for (size_t i = 0; i < n; i++) {
		if (table[i].required && !out[i].present && json_object_get(j, table[i].name) == NULL) {
			jb_problem(d, table[i].name, "is required");
			bad = true;
		}
	}
	if (bad)
		goto invalid;
	json_decref(d);
	*doc = j;
	return ENR_OK;
invalid:
	json_decref(j);
	for (size_t i = 0; i < n; i++)
		memset(&out[i], 0, sizeof out[i]);
	*details = d;
	return ENR_E_INVALID;
}
