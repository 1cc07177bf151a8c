/*
 * buf.h - a growable byte buffer with a hard cap.
 *
 * Prefix: buf_.  A struct buf is caller-owned (buf_init/buf_release); its
 * data is always NUL-terminated so it can be used as a C string.  Growth
 * beyond the cap fails with ENR_E_TOO_LARGE and leaves the buffer as it
 * was, so a caller can report the cap without losing what it had.
 * Not thread-safe; one owner at a time.
 */
#ifndef ENR_BUF_H
#define ENR_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

struct buf {
	char *data;   /* NUL-terminated; NULL until the first append */
	size_t len;   /* bytes used, without the terminator */
	size_t alloc; /* bytes allocated */
	size_t cap;   /* maximum len */
};

/* Initialise an empty buffer that may grow to cap bytes
 * (0: LIM_BUF_DEFAULT_CAP). */
void buf_init(struct buf *b, size_t cap);

/* Free the memory; the buffer is empty and reusable afterwards. */
void buf_release(struct buf *b);

/* Forget the contents, keep the memory. */
void buf_reset(struct buf *b);

/* Cut the contents back to their first len bytes (len <= b->len): how a
 * writer undoes a partial append. */
void buf_truncate(struct buf *b, size_t len);

ENR_MUST_CHECK enum enr_err buf_append(struct buf *b, const void *p, size_t n);
ENR_MUST_CHECK enum enr_err buf_puts(struct buf *b, const char *s);
ENR_MUST_CHECK enum enr_err buf_putc(struct buf *b, char c);
ENR_MUST_CHECK enum enr_err buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
ENR_MUST_CHECK enum enr_err buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Make room for n more bytes without changing len. */
ENR_MUST_CHECK enum enr_err buf_reserve(struct buf *b, size_t n);

/* Hand the contents to the caller (who frees them with free()) and leave
 * the buffer empty.  Returns an empty string, never NULL, on an empty
 * buffer; NULL only when out of memory. */
char *buf_steal(struct buf *b);

/* The contents as a C string ("" when empty). Borrowed. */
const char *buf_cstr(const struct buf *b);

#endif
