/*
 * ascii.h - classes and case of ASCII bytes, the same in every locale.
 *
 * Prefix: ascii_.  <ctype.h> answers by the current locale (a program
 * that calls setlocale may see 'é' as a letter) and is undefined for a
 * negative char; bytes from outside (requests, provider answers, files)
 * are classified here instead.  A byte of 0x80 and above, or a negative
 * char, is in no class.  Static inline, pure and thread-safe.
 */
#ifndef ENR_ASCII_H
#define ENR_ASCII_H

#include <stdbool.h>
#include <stddef.h>

static inline bool ascii_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static inline bool ascii_is_lower(int c)
{
	return c >= 'a' && c <= 'z';
}

static inline bool ascii_is_upper(int c)
{
	return c >= 'A' && c <= 'Z';
}

static inline bool ascii_is_alpha(int c)
{
	return ascii_is_lower(c) || ascii_is_upper(c);
}

static inline bool ascii_is_alnum(int c)
{
	return ascii_is_alpha(c) || ascii_is_digit(c);
}

/* [0-9A-Fa-f] */
static inline bool ascii_is_xdigit(int c)
{
	return ascii_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* [0-9a-f]: the hex enrichd writes itself (ids, digests). */
static inline bool ascii_is_lower_xdigit(int c)
{
	return ascii_is_digit(c) || (c >= 'a' && c <= 'f');
}

/* Space, tab, LF, VT, FF, CR: the "C" locale's isspace. */
static inline bool ascii_is_space(int c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Space and tab (RFC 9110 OWS). */
static inline bool ascii_is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* 0x20..0x7E */
static inline bool ascii_is_print(int c)
{
	return c >= 0x20 && c < 0x7f;
}

/* RFC 3986 2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
static inline bool ascii_is_unreserved(int c)
{
	return ascii_is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* The value of a hex digit, -1 for any other byte. */
static inline int ascii_hex_value(int c)
{
	if (ascii_is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static inline char ascii_to_lower(char c)
{
	return ascii_is_upper(c) ? (char)(c - 'A' + 'a') : c;
}

static inline char ascii_to_upper(char c)
{
	return ascii_is_lower(c) ? (char)(c - 'a' + 'A') : c;
}

/* Copy len bytes of in to out (outsz > 0 bytes, always NUL-terminated),
 * each byte outside 0x20..0x7E as '?', cut to fit: for messages that quote
 * bytes from outside and must stay harmless, valid text. */
static inline void ascii_printable_copy(const char *in, size_t len, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < outsz; i++)
		out[o++] = ascii_is_print(in[i]) ? in[i] : '?';
	out[o] = '\0';
}

#endif
