/*
 * pct.h - percent-encoding (RFC 3986 section 2.1).
 *
 * Prefix: pct_.  One encoder for the URLs enrichd builds (provider
 * requests, generic templates) and the escaped keys it keeps (the cache
 * key), one decoder for what clients and records send (query strings,
 * LinkedIn slugs).  Pure and thread-safe; the encoder appends to a
 * caller's struct buf.
 */
#ifndef ENR_PCT_H
#define ENR_PCT_H

#include <stdbool.h>
#include <stddef.h>

#include "ascii.h"
#include "buf.h"
#include "err.h"

/* pct_encode flags */
#define PCT_LOWER_HEX 1u  /* %2f rather than %2F (a form enrichd keeps as canonical) */

/* Append the n bytes at s to b, the bytes for which keep(byte) is true as
 * they are and every other byte as %XX (upper-case hex unless
 * PCT_LOWER_HEX).  keep NULL keeps the unreserved set of RFC 3986 section
 * 2.3 (ascii_is_unreserved), the form a query value takes.  keep sees
 * each byte as 0..255.  ENR_E_TOO_LARGE / ENR_E_NOMEM leave b as it was. */
ENR_MUST_CHECK enum enr_err pct_encode(struct buf *b, const char *s, size_t n, bool (*keep)(int c),
				       unsigned flags);

/* pct_decode flags */
#define PCT_PLUS_SPACE 1u /* '+' is a space (application/x-www-form-urlencoded) */

/* Decode the n bytes at s into out (outsz bytes, NUL-terminated), *outlen
 * the decoded length (which may hold NUL bytes from "%00").  Decoding
 * never lengthens: outsz = n + 1 always fits.  False, with out and
 * *outlen undefined, on a '%' not followed by two hex digits or when the
 * result does not fit. */
bool pct_decode(const char *s, size_t n, unsigned flags, char *out, size_t outsz,
		size_t *outlen);

/* True when s starts with an escape: '%' and two hex digits. */
static inline bool pct_is_escape(const char *s)
{
	return s[0] == '%' && ascii_is_xdigit(s[1]) && ascii_is_xdigit(s[2]);
}

#endif
