/*
 * jbody.h - JSON request bodies checked against a table of members.
 *
 * Prefix: jb_.  An endpoint that takes a JSON object declares its members
 * (name, type, bounds, whether required); jb_parse() reads the body and
 * refuses, with one {"field", "problem"} detail per problem, anything the
 * table does not allow: a body that is empty, not JSON, not an object,
 * nested deeper than LIM_JSON_DEPTH_MAX, or with a member name given twice;
 * an unknown member; a member of the wrong type or out of its bounds; a
 * required member left out.  Nothing is dropped or defaulted silently.
 *
 * Ownership: the values point into the parsed document, which the caller
 * frees with json_decref(*doc) after using them.  Pure; thread-safe.
 */
#ifndef ENR_JBODY_H
#define ENR_JBODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

enum jb_type {
	JB_STRING,   /* a string of min..max bytes of UTF-8 */
	JB_INT,      /* a whole number in min..max */
	JB_LIMIT,    /* a whole number in min..max, or the string "default" */
	JB_WORDS,    /* an array of at most max strings, each 1..LIM_NAME_MAX bytes */
	JB_BOOL,
	JB__MAX
};

struct jb_field {
	const char *name;
	enum jb_type type;
	int64_t min, max;
	bool required;
};

struct jb_value {
	bool present;
	bool is_default;      /* JB_LIMIT given as "default" */
	const char *s;        /* JB_STRING (borrowed from the document) */
	size_t len;
	int64_t i;            /* JB_INT, JB_LIMIT */
	bool b;               /* JB_BOOL */
	json_t *arr;          /* JB_WORDS (borrowed) */
};

/* The JSON document of len bytes of a request body: ENR_OK with *doc (a
 * new reference); ENR_E_INVALID with one "body" problem appended to
 * details (empty, nested deeper than LIM_JSON_DEPTH_MAX levels, or not
 * valid JSON, with its line and column).  Duplicate members are refused. */
ENR_MUST_CHECK enum enr_err jb_load(const char *body, size_t len, json_t **doc, json_t *details);

/* Parse len bytes of body (at most max) against the n fields of table:
 * out[i] is table[i]'s value.  ENR_OK with *doc (a new reference);
 * ENR_E_INVALID with *details (a new JSON array) naming every problem;
 * ENR_E_NOMEM.  *doc and *details are NULL unless set as said. */
ENR_MUST_CHECK enum enr_err jb_parse(const char *body, size_t len, const struct jb_field *table,
				     size_t n, json_t **doc, struct jb_value *out,
				     json_t **details);

/* Append {"field": field, "problem": problem} to details; client bytes in
 * either are reduced to printable ASCII. */
void jb_problem(json_t *details, const char *field, const char *problem);

#endif
