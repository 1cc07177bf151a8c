/*
 * jw.h - a JSON writer straight into a buffer.
 *
 * Prefix: jw_.  For answers on the request path, where building a tree of
 * JSON values only to serialise it and free it again is most of the cost
 * of a cache hit.  The writer puts commas and colons itself; the caller
 * says what comes in order.  The first failure (out of memory, the
 * buffer's cap, more than JW_DEPTH_MAX levels) sticks: later calls do
 * nothing and jw_finish reports it.  Strings that are not valid UTF-8 have
 * each bad byte replaced by U+FFFD, so the output is always valid JSON.
 * Output is compact, as json_dumps(JSON_COMPACT) writes it.
 * One owner at a time.
 */
#ifndef ENR_JW_H
#define ENR_JW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define JW_DEPTH_MAX 16

struct jw {
	struct buf *b;
	enum enr_err err;
	int depth;
	bool after_key;                   /* a key was written, its value is next */
	bool used[JW_DEPTH_MAX];          /* the level has a member already */
	char close[JW_DEPTH_MAX];         /* '}' or ']' */
};

/* Start writing at the end of b (what it holds stays). */
void jw_init(struct jw *w, struct buf *b);

void jw_object(struct jw *w);
void jw_array(struct jw *w);
/* Close the innermost object or array. */
void jw_end(struct jw *w);

/* A member name in an object; its value is the next thing written. */
void jw_key(struct jw *w, const char *name);

/* s as a JSON string; NULL writes null. */
void jw_string(struct jw *w, const char *s);
void jw_string_n(struct jw *w, const char *s, size_t n);
void jw_int(struct jw *w, int64_t v);
/* A number as jansson writes reals (%.17g, with ".0" when it looks whole);
 * NaN and infinities, which JSON cannot carry, write null. */
void jw_real(struct jw *w, double v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);

/* ENR_OK when everything was written and every level closed; the first
 * failure otherwise (ENR_E_INVALID for a misuse: unbalanced, a value
 * without a key in an object). */
ENR_MUST_CHECK enum enr_err jw_finish(const struct jw *w);

#endif
