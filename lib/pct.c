/*
 * pct.c - percent-encoding (pct.h).
 */
#include "pct.h"

enum enr_err pct_encode(struct buf *b, const char *s, size_t n, bool (*keep)(int c),
			unsigned flags)
{
	const char *hex = (flags & PCT_LOWER_HEX) ? "0123456789abcdef" : "0123456789ABCDEF";
	size_t mark = b->len;
	enum enr_err rc = ENR_OK;

	for (size_t i = 0; i < n && rc == ENR_OK; i++) {
		unsigned char c = (unsigned char)s[i];

		if (keep ? keep(c) : ascii_is_unreserved(c)) {
			rc = buf_putc(b, (char)c);
		} else {
			char esc[3] = { '%', hex[c >> 4], hex[c & 15] };

			rc = buf_append(b, esc, sizeof esc);
		}
	}
	if (rc)
		buf_truncate(b, mark); /* as it was, not with half a value */
	return rc;
}

bool pct_decode(const char *s, size_t n, unsigned flags, char *out, size_t outsz,
		size_t *outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '+' && (flags & PCT_PLUS_SPACE)) {
			c = ' ';
		} else if (c == '%') {
			if (n - i < 3 || !pct_is_escape(s + i))
				return false;
			c = (char)(ascii_hex_value(s[i + 1]) * 16 + ascii_hex_value(s[i + 2]));
			i += 2;
		}
		if (o + 1 >= outsz)
			return false;
		out[o++] = c;
	}
	if (outsz == 0)
		return false;
	out[o] = '\0';
	*outlen = o;
	return true;
}
