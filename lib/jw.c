/*
 * jw.c - JSON written straight into a buffer.
 */
#include "jw.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

void jw_init(struct jw *w, struct buf *b)
{
	memset(w, 0, sizeof *w);
	w->b = b;
}

static void fail(struct jw *w, enum enr_err e)
{
	if (w->err == ENR_OK)
		w->err = e;
}

static void put(struct jw *w, const void *p, size_t n)
{
	if (w->err == ENR_OK)
		fail(w, buf_append(w->b, p, n));
}

static void putc1(struct jw *w, char c)
{
	if (w->err == ENR_OK)
		fail(w, buf_putc(w->b, c));
}

/* What comes before a value: a comma after an earlier member, nothing
 * after a key.  A value straight in an object (no key) is a misuse. */
static bool value_begins(struct jw *w)
{
	if (w->err)
		return false;
	if (w->after_key) {
		w->after_key = false;
		return true;
	}
	if (w->depth > 0) {
		if (w->close[w->depth - 1] == '}') {
			fail(w, ENR_E_INVALID);
			return false;
		}
		if (w->used[w->depth - 1])
			putc1(w, ',');
		w->used[w->depth - 1] = true;
	}
	return w->err == ENR_OK;
}

static void begin(struct jw *w, char open_c, char close_c)
{
	if (!value_begins(w))
		return;
	if (w->depth == JW_DEPTH_MAX) {
		fail(w, ENR_E_TOO_LARGE);
		return;
	}
	putc1(w, open_c);
	w->close[w->depth] = close_c;
	w->used[w->depth] = false;
	w->depth++;
}

void jw_object(struct jw *w)
{
	begin(w, '{', '}');
}

void jw_array(struct jw *w)
{
	begin(w, '[', ']');
}

void jw_end(struct jw *w)
{
	if (w->err)
		return;
	if (w->depth == 0 || w->after_key) {
		fail(w, ENR_E_INVALID);
		return;
	}
	w->depth--;
	putc1(w, w->close[w->depth]);
}

/* Bytes of the valid UTF-8 sequence at p (at most n bytes), 0 when the
 * bytes there are not one: overlong forms, surrogates and code points
 * past U+10FFFF are not. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	size_t need;
	uint32_t cp, min;

	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		need = 1;
		cp = p[0] & 0x1F;
		min = 0x80;
	} else if ((p[0] & 0xF0) == 0xE0) {
		need = 2;
		cp = p[0] & 0x0F;
		min = 0x800;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		need = 3;
		cp = p[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (need >= n)
		return 0;
	for (size_t k = 1; k <= need; k++) {
		if ((p[k] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[k] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return need + 1;
}

static void escaped(struct jw *w, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0;

	putc1(w, '"');
	while (i < n && w->err == ENR_OK) {
		size_t run = i;

		/* Plain printable ASCII goes in as one piece. */
		while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
			run++;
		if (run > i)
			put(w, s + i, run - i);
		i = run;
		if (i == n)
			break;
		if (s[i] >= 0x80) {
			size_t len = utf8_seq(s + i, n - i);

			if (len == 0) {
				put(w, "\xEF\xBF\xBD", 3);
				i++;
			} else {
				put(w, s + i, len);
				i += len;
			}
			continue;
		}
		switch (s[i]) {
		case '"': put(w, "\\\"", 2); break;
		case '\\': put(w, "\\\\", 2); break;
		case '\b': put(w, "\\b", 2); break;
		case '\f': put(w, "\\f", 2); break;
		case '\n': put(w, "\\n", 2); break;
		case '\r': put(w, "\\r", 2); break;
		case '\t': put(w, "\\t", 2); break;
		default: {
			char u[6] = { '\\', 'u', '0', '0', hex[s[i] >> 4], hex[s[i] & 15] };

			put(w, u, sizeof u);
		}
		}
		i++;
	}
	putc1(w, '"');
}

void jw_key(struct jw *w, const char *name)
{
	if (w->err)
		return;
	if (w->depth == 0 || w->close[w->depth - 1] != '}' || w->after_key) {
		fail(w, ENR_E_INVALID);
		return;
	}
	if (w->used[w->depth - 1])
		putc1(w, ',');
	w->used[w->depth - 1] = true;
	escaped(w, (const unsigned char *)name, strlen(name));
	putc1(w, ':');
	w->after_key = true;
}

void jw_string_n(struct jw *w, const char *s, size_t n)
{
	if (s == NULL) {
		jw_null(w);
		return;
	}
	if (value_begins(w))
		escaped(w, (const unsigned char *)s, n);
}

void jw_string(struct jw *w, const char *s)
{
	jw_string_n(w, s, s ? strlen(s) : 0);
}

void jw_int(struct jw *w, int64_t v)
{
	char d[21];
	size_t n = util_fmt_i64(v, d);

	if (value_begins(w))
		put(w, d, n);
}

/* v in d as a decimal of at most 6 places that reads back as v (scores
 * and confidences are such values, and printf's "%.17g" is both slow and
 * long for them): its length, 0 when v is no such value.  The digits are
 * those of r / 10^k for an integer r below 2^53, a division IEEE rounds
 * to the nearest double as a reader's conversion of the text does, so
 * equal to v means the text reads back as v; the first k that fits has
 * no trailing zero. */
static int short_real(char d[40], double v)
{
	static const double p10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };
	double a = fabs(v);

	if (a >= 1e9 || (a < 1e-6 && v != 0))
		return 0;
	for (int k = 0; k <= 6; k++) {
		double r = nearbyint(a * p10[k]);
		unsigned long long u = (unsigned long long)r, ip, fp;
		char *q = d;

		if (r / p10[k] != a)
			continue;
		ip = u / (unsigned long long)p10[k];
		fp = u % (unsigned long long)p10[k];
		if (signbit(v))
			*q++ = '-';
		q += snprintf(q, 24, "%llu.", ip);
		if (k == 0) {
			*q++ = '0';
		} else {
			for (int i = k - 1; i >= 0; i--) {
				q[i] = (char)('0' + fp % 10);
				fp /= 10;
			}
			q += k;
		}
		*q = '\0';
		return (int)(q - d);
	}
	return 0;
}

void jw_real(struct jw *w, double v)
{
	char d[40];
	int n;

	if (!isfinite(v)) {
		jw_null(w);
		return;
	}
	if (!value_begins(w))
		return;
	n = short_real(d, v);
	if (n > 0) {
		put(w, d, (size_t)n);
		return;
	}
	n = snprintf(d, sizeof d, "%.17g", v);
	if (n <= 0 || (size_t)n >= sizeof d - 2) {
		fail(w, ENR_E_INTERNAL);
		return;
	}
	/* "1" would read back as an integer: a real keeps its point. */
	if (strspn(d, "-0123456789") == (size_t)n) {
		d[n++] = '.';
		d[n++] = '0';
	}
	put(w, d, (size_t)n);
}

void jw_bool(struct jw *w, bool v)
{
	if (value_begins(w))
		put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_null(struct jw *w)
{
	if (value_begins(w))
		put(w, "null", 4);
}

enum enr_err jw_finish(const struct jw *w)
{
	if (w->err)
		return w->err;
	return w->depth == 0 && !w->after_key ? ENR_OK : ENR_E_INVALID;
}
