/*
 * json_path.c - dotted-path lookups into jansson values.
 *
 * One walker serves both jp_valid (no document) and jp_get, so a path the
 * configuration accepted is read exactly the same way at run time.
 */
#include "json_path.h"

#include <stdio.h>
#include <string.h>

#include "ascii.h"
#include "limits.h"
#include "util.h"

/* Walk path from root (which may be NULL to check the syntax only).
 * *out gets the value reached, or NULL when root was NULL or a step was
 * missing.  Returns false only for a malformed path. */
static bool walk(const json_t *root, const char *path, json_t **out)
{
	const json_t *cur = root;
	size_t len, i = 0;
	bool first = true;

	*out = NULL;
	if (path == NULL)
		return false;
	len = strlen(path);
	if (len == 0 || len > LIM_JP_PATH_MAX)
		return false;
	while (i < len) {
		if (path[i] == '[') {
			size_t start = ++i;
			int64_t idx;

			while (i < len && ascii_is_digit(path[i]))
				i++;
			if (i == start || i >= len || path[i] != ']' ||
			    util_parse_i64n(path + start, i - start, 0, LIM_JP_INDEX_MAX, &idx) !=
				    ENR_OK)
				return false;
			i++;
			if (cur != NULL)
				cur = json_is_array(cur) ? json_array_get(cur, (size_t)idx) : NULL;
		} else {
			size_t start;

			/* A name follows the start of the path or a dot. */
			if (!first) {
				if (path[i] != '.')
					return false;
				i++;
			}
			start = i;
			while (i < len && path[i] != '.' && path[i] != '[' && path[i] != ']')
				i++;
			if (i == start || i - start > LIM_JP_SEGMENT_MAX)
				return false;
			if (cur != NULL)
				cur = json_is_object(cur) ? json_object_getn(cur, path + start, i - start)
							  : NULL;
		}
		/* After the first step a name needs its dot. */
		first = false;
	}
	*out = (json_t *)cur;
	return true;
}

bool jp_valid(const char *path)
{
	json_t *ignored;

	return walk(NULL, path, &ignored);
}

json_t *jp_get(const json_t *root, const char *path)
{
	json_t *v;

	if (root == NULL || !walk(root, path, &v))
		return NULL;
	return v;
}

const char *jp_text(const json_t *v, char *scratch, size_t scratchsz, size_t *len)
{
	int n;

	if (v == NULL)
		return NULL;
	switch (json_typeof(v)) {
	case JSON_STRING:
		*len = json_string_length(v);
		return json_string_value(v);
	case JSON_INTEGER:
		n = snprintf(scratch, scratchsz, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		n = snprintf(scratch, scratchsz, "%.15g", json_real_value(v));
		break;
	case JSON_TRUE:
		n = snprintf(scratch, scratchsz, "true");
		break;
	case JSON_FALSE:
		n = snprintf(scratch, scratchsz, "false");
		break;
	default:
		return NULL;
	}
	if (n < 0 || (size_t)n >= scratchsz)
		return NULL;
	*len = (size_t)n;
	return scratch;
}

bool jp_depth_ok(const char *text, size_t len, unsigned max)
{
	unsigned depth = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			if (c == '\\')
				i++; /* the escaped byte cannot end the string */
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				return false;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return true;
}

json_t *jp_load(const char *body, size_t len, size_t max)
{
	json_error_t err;

	if (body == NULL || len == 0 || len > max || !jp_depth_ok(body, len, LIM_JSON_DEPTH_MAX))
		return NULL;
	/* Without JSON_ALLOW_NUL jansson refuses \u0000 in strings, so every
	 * string is also a C string. */
	return json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
}
