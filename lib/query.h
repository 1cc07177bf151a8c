/*
 * query.h - URL query strings checked against a table of parameters.
 *
 * Prefix: qs_.  A route declares the parameters it takes (name, the most
 * bytes a value may have once decoded, a validator); qs_parse() reads a
 * raw query string (application/x-www-form-urlencoded: '&'-separated
 * name=value pairs, '+' for a space, %XX escapes) and refuses, with one
 * {"field", "problem"} detail per problem, anything the table does not
 * allow: an unknown name, a name given twice, a bad escape, a value that
 * is not UTF-8 text (a NUL byte included), a value over its maximum, a
 * value its validator refuses, a query over LIM_QUERY_MAX bytes.  Nothing
 * is dropped or replaced by a default behind the client's back.
 *
 * Ownership: struct qs is caller-owned and holds copies of the decoded
 * values; qs_get() returns pointers into it.  Pure functions; thread-safe.
 */
#ifndef ENR_QUERY_H
#define ENR_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "limits.h"

#define QS_PARAMS_MAX 16   /* parameters one query may carry */

/* A validator: true when v (len decoded bytes, NUL-terminated) is good;
 * otherwise false with a short English reason in why. */
typedef bool (*qs_validator)(const char *v, size_t len, const void *arg, char *why,
			     size_t whylen);

struct qs_param {
	const char *name;
	size_t max_len;        /* decoded bytes */
	qs_validator valid;    /* NULL: any UTF-8 text up to max_len */
	const void *arg;       /* passed to valid */
};

/* The parsed query of one request (qs_init, then qs_parse any number of
 * times, then qs_release). */
struct qs {
	unsigned n;
	struct {
		const struct qs_param *param;
		const char *value;   /* into buf */
		size_t len;
	} v[QS_PARAMS_MAX];
	char *buf;               /* the decoded values; NULL while there are none */
};

void qs_init(struct qs *q);
void qs_release(struct qs *q);

/* Parse query (NULL or "" is an empty query) against the n parameters of
 * table; out was initialised (qs_init).  ENR_OK with *out filled;
 * ENR_E_INVALID with *details (a new JSON array the caller owns)
 * otherwise; ENR_E_NOMEM.  *details is NULL unless ENR_E_INVALID. */
ENR_MUST_CHECK enum enr_err qs_parse(const char *query, const struct qs_param *table, size_t n, struct qs *out,
		      json_t **details);

/* The value of parameter name, NULL when the query did not give it.
 * Borrowed from q. */
const char *qs_get(const struct qs *q, const char *name);

/* Validators. */

/* A whole number in [min, max]; arg is a const struct qs_range *. */
struct qs_range {
	int64_t min, max;
};
bool qs_valid_int(const char *v, size_t len, const void *arg, char *why, size_t whylen);

/* One of the words of a NULL-terminated array (arg: const char *const *). */
bool qs_valid_choice(const char *v, size_t len, const void *arg, char *why, size_t whylen);

/* A name as accounts and ids are spelled: 1 or more of [A-Za-z0-9._-]. */
bool qs_valid_name(const char *v, size_t len, const void *arg, char *why, size_t whylen);

/* A list of fields to enrich by the rule of fld_list_parse (lib/fields.h);
 * empty means all of them. */
bool qs_valid_fields(const char *v, size_t len, const void *arg, char *why, size_t whylen);

#endif
