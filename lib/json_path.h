/*
 * json_path.h - dotted-path lookups into jansson values, and the few JSON
 * chores the provider adapters share.
 *
 * Prefix: jp_.  A path names a value inside a document: member names
 * separated by dots, array elements as [N]:
 *
 *   data.job.title     data.emails[0].address     [2].name     tags[0]
 *
 * Member names are 1..LIM_JP_SEGMENT_MAX bytes of anything but '.', '['
 * and ']' (so names with those characters cannot be reached); indexes are
 * decimal, at most LIM_JP_INDEX_MAX.  The whole path is at most
 * LIM_JP_PATH_MAX bytes.
 *
 * Every returned json_t is borrowed from the document unless the comment
 * says otherwise.  All functions are reentrant and allocate nothing
 * except jp_load.
 *
 * jp_depth_ok is the nesting check every parser of JSON from outside runs
 * first (request bodies in lib/enrich and lib/jobs, provider answers
 * through jp_load).
 */
#ifndef ENR_JSON_PATH_H
#define ENR_JSON_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* True when path is well formed (see above). */
bool jp_valid(const char *path);

/* The value at path inside root; NULL when the path is malformed, a step
 * is missing, or a step meets the wrong type (a name on an array, an
 * index on an object).  Borrowed from root. */
json_t *jp_get(const json_t *root, const char *path);

/* The text of a scalar: a string's bytes as they are (a pointer into v,
 * valid while v lives), an integer in decimal, a real with up to 15
 * significant digits, true/false as "true"/"false"; numbers and booleans
 * are written into scratch (scratchsz bytes).  *len gets the byte count.
 * NULL for NULL, null, arrays and objects, or when scratch is too small. */
const char *jp_text(const json_t *v, char *scratch, size_t scratchsz, size_t *len);

/* Parse len bytes of body as one JSON document, refusing duplicate member
 * names, NUL bytes inside strings, trailing bytes, arrays and objects
 * nested deeper than LIM_JSON_DEPTH_MAX and anything over max bytes.
 * Returns a new reference (the caller json_decref()s it), or NULL when the
 * body is not such a document. */
json_t *jp_load(const char *body, size_t len, size_t max);

/* True when no array or object in the len bytes of text is nested deeper
 * than max levels (the outermost value is level 1).  A single pass over the
 * bytes without recursion that counts '[' and '{' outside strings, so it
 * runs before jansson (which recurses once per level) ever sees the text.
 * Text that is not JSON at all may pass: the parser refuses it then. */
bool jp_depth_ok(const char *text, size_t len, unsigned max);

#endif
