/*
 * buf.c - growable, capped byte buffer.
 */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"

void buf_init(struct buf *b, size_t cap)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap ? cap : LIM_BUF_DEFAULT_CAP;
}

void buf_release(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
}

void buf_reset(struct buf *b)
{
	buf_truncate(b, 0);
}

void buf_truncate(struct buf *b, size_t len)
{
	if (b->data == NULL || len > b->len)
		return;
	b->len = len;
	b->data[len] = '\0';
}

enum enr_err buf_reserve(struct buf *b, size_t n)
{
	size_t need, nalloc;
	char *p;

	if (n > b->cap || b->len > b->cap - n)
		return ENR_E_TOO_LARGE;
	need = b->len + n + 1;
	if (need <= b->alloc)
		return ENR_OK;
	nalloc = b->alloc ? b->alloc : 256;
	while (nalloc < need)
		nalloc *= 2;
	p = realloc(b->data, nalloc);
	if (p == NULL)
		return ENR_E_NOMEM;
	b->data = p;
	b->alloc = nalloc;
	return ENR_OK;
}

enum enr_err buf_append(struct buf *b, const void *p, size_t n)
{
	enum enr_err rc = buf_reserve(b, n);

	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return ENR_OK;
}

enum enr_err buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

enum enr_err buf_putc(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

enum enr_err buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	enum enr_err rc;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return ENR_E_INTERNAL;
	rc = buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return ENR_OK;
}

enum enr_err buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	enum enr_err rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *buf_steal(struct buf *b)
{
	char *p = b->data;

	if (p == NULL)
		p = calloc(1, 1);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	return p;
}

const char *buf_cstr(const struct buf *b)
{
	return b->data ? b->data : "";
}
