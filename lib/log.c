/*
 * log.c - structured, escaped, single-write log lines.
 */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "limits.h"
#include "util.h"

/* Read by every thread on every line, set on reload: atomics, so a
 * reload changes them without a data race (no lock on the log path). */
static atomic_int log_fd = 2;
static atomic_int log_min = LOG_LVL_INFO;
static atomic_int log_fmt = LOG_FMT_TEXT;
static _Thread_local char log_rid[LIM_REQUEST_ID_MAX + 1];

static const char *const level_names[LOG_LVL__MAX] = {
	[LOG_LVL_DEBUG] = "debug",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_NOTICE] = "notice",
};

const char *const log_format_names[LOG_FMT__MAX] = {
	[LOG_FMT_TEXT] = "text",
	[LOG_FMT_JSON] = "json",
};

void log_set_format(enum log_format f)
{
	atomic_store(&log_fmt, (int)f);
}

void log_set_fd(int fd)
{
	atomic_store(&log_fd, fd);
}

void log_set_level(enum log_level min)
{
	atomic_store(&log_min, (int)min);
}

bool log_level_parse(const char *s, enum log_level *out)
{
	for (int i = 0; i < LOG_LVL_NOTICE; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

const char *log_level_name(enum log_level l)
{
	return (unsigned)l < LOG_LVL__MAX ? level_names[l] : "unknown";
}

void log_set_request_id(const char *rid)
{
	if (rid == NULL) {
		log_rid[0] = '\0';
		return;
	}
	util_strlcpy(log_rid, rid, sizeof log_rid);
}

const char *log_request_id(void)
{
	return log_rid[0] ? log_rid : "-";
}

unsigned log_escape(const char *s, unsigned len, char *out, unsigned outsz)
{
	static const char hex[] = "0123456789abcdef";
	unsigned o = 0;

	if (outsz == 0)
		return 0;
	for (unsigned i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[4];
		unsigned n;

		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			n = 2;
		} else if (c < 0x20 || c >= 0x7f) {
			tmp[0] = '\\';
			tmp[1] = 'x';
			tmp[2] = hex[c >> 4];
			tmp[3] = hex[c & 15];
			n = 4;
		} else {
			tmp[0] = (char)c;
			n = 1;
		}
		if (o + n + 4 > outsz) {
			/* Leave room for "..." and the terminator. */
			if (o + 4 <= outsz) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o] = '\0';
	return o;
}

/* Bytes of the valid UTF-8 sequence at s (len bytes left), 0 when there
 * is none (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF). */
static unsigned utf8_seq(const unsigned char *s, unsigned len)
{
	unsigned n, cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (unsigned i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

unsigned log_escape_json(const char *s, unsigned len, char *out, unsigned outsz)
{
	static const char hex[] = "0123456789abcdef";
	unsigned o = 0;

	if (outsz == 0)
		return 0;
	for (unsigned i = 0; i < len;) {
		const unsigned char *c = (const unsigned char *)s + i;
		char tmp[8];
		unsigned n, used = 1;

		if (*c == '"' || *c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)*c;
			n = 2;
		} else if (*c < 0x20 || *c == 0x7f) {
			memcpy(tmp, "\\u00", 4);
			tmp[4] = hex[*c >> 4];
			tmp[5] = hex[*c & 15];
			n = 6;
		} else if (*c < 0x80) {
			tmp[0] = (char)*c;
			n = 1;
		} else if ((used = utf8_seq(c, len - i)) > 0) {
			memcpy(tmp, c, used);
			n = used;
		} else {
			memcpy(tmp, "\\ufffd", 6);
			n = 6;
			used = 1;
		}
		if (o + n + 4 > outsz) {
			if (o + 4 <= outsz) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(out + o, tmp, n);
		o += n;
		i += used;
	}
	out[o] = '\0';
	return o;
}

static void log_write(const char *line, size_t len)
{
	while (len > 0) {
		ssize_t w = write(atomic_load(&log_fd), line, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere left to report it */
		}
		line += w;
		len -= (size_t)w;
	}
}

/* A line is put together in its thread's scratch space, not on the stack.
 * A request runs on a fiber, and a pooled fiber stack keeps every page a
 * call ever touched: log_access, called by every request, touched its
 * 30 KiB frame's far end even when the level left it nothing to write.
 * Nothing in here yields, so a thread's scratch serves one line at a time. */
struct log_scratch {
	char msg[LIM_LOG_MSG_MAX];
	char esc[LIM_LOG_LINE_MAX];
	char path[LIM_PATH_MAX * 6];
	/* Room for the escaped message (or path) plus every other member
	 * escaped at its longest, so a JSON line is never cut. */
	char line[LIM_LOG_LINE_MAX + LIM_PATH_MAX * 6];
};

static _Thread_local struct log_scratch tl_scratch;

void log_vmsg(enum log_level level, const char *module, const char *fmt, va_list ap)
{
	struct log_scratch *sc = &tl_scratch;
	char *msg = sc->msg, *esc = sc->esc, *line = sc->line;
	char ts[25];
	int n;

	if ((int)level < atomic_load(&log_min) && level != LOG_LVL_NOTICE)
		return;
	n = vsnprintf(msg, sizeof sc->msg, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof sc->msg)
		n = (int)sizeof sc->msg - 1;
	util_fmt_time_ms(util_now_ms(), ts);
	if (atomic_load(&log_fmt) == LOG_FMT_JSON) {
		char rid[LIM_REQUEST_ID_MAX * 6 + 1], mod[256];

		log_escape_json(msg, (unsigned)n, esc, sizeof sc->esc);
		log_escape_json(log_request_id(), (unsigned)strlen(log_request_id()), rid, sizeof rid);
		log_escape_json(module, (unsigned)strlen(module), mod, sizeof mod);
		n = snprintf(line, sizeof sc->line,
			     "{\"ts\":\"%s\",\"level\":\"%s\",\"rid\":\"%s\",\"mod\":\"%s\","
			     "\"msg\":\"%s\"}\n",
			     ts, log_level_name(level), rid, mod, esc);
	} else {
		log_escape(msg, (unsigned)n, esc, sizeof sc->esc);
		n = snprintf(line, sizeof sc->line, "%s level=%s rid=%s mod=%s msg=\"%s\"\n", ts,
			     log_level_name(level), log_request_id(), module, esc);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof sc->line) {
		n = (int)sizeof sc->line - 1;
		line[n - 1] = '\n';
	}
	log_write(line, (size_t)n);
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, module, fmt, ap);
	va_end(ap);
}

void log_access(const char *method, const char *path, int status, double elapsed_ms,
		const char *account)
{
	struct log_scratch *sc = &tl_scratch;
	char m[64], a[LIM_NAME_MAX * 6 + 1], *p = sc->path, *line = sc->line;
	char ts[25];
	int n;

	if (LOG_LVL_INFO < atomic_load(&log_min))
		return;
	if (account == NULL || *account == '\0')
		account = "-";
	util_fmt_time_ms(util_now_ms(), ts);
	if (atomic_load(&log_fmt) == LOG_FMT_JSON) {
		char rid[LIM_REQUEST_ID_MAX * 6 + 1];

		log_escape_json(method, (unsigned)strlen(method), m, sizeof m);
		log_escape_json(path, (unsigned)strlen(path), p, sizeof sc->path);
		log_escape_json(account, (unsigned)strlen(account), a, sizeof a);
		log_escape_json(log_request_id(), (unsigned)strlen(log_request_id()), rid, sizeof rid);
		n = snprintf(line, sizeof sc->line,
			     "{\"ts\":\"%s\",\"level\":\"info\",\"rid\":\"%s\",\"mod\":\"access\","
			     "\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"ms\":%.2f,"
			     "\"account\":\"%s\"}\n",
			     ts, rid, m, p, status, elapsed_ms, a);
	} else {
		log_escape(method, (unsigned)strlen(method), m, sizeof m);
		log_escape(path, (unsigned)strlen(path), p, sizeof sc->path);
		log_escape(account, (unsigned)strlen(account), a, sizeof a);
		n = snprintf(line, sizeof sc->line,
			     "%s level=info rid=%s mod=access method=%s path=\"%s\" status=%d ms=%.2f "
			     "account=%s\n",
			     ts, log_request_id(), m, p, status, elapsed_ms, a);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof sc->line) {
		n = (int)sizeof sc->line - 1;
		line[n - 1] = '\n';
	}
	log_write(line, (size_t)n);
}
