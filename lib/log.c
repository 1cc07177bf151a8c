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
static _Thread_local char log_rid[LIM_REQUEST_ID_MAX + 1];

static const char *const level_names[LOG_LVL__MAX] = {
	[LOG_LVL_DEBUG] = "debug",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_NOTICE] = "notice",
};

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

void log_vmsg(enum log_level level, const char *module, const char *fmt, va_list ap)
{
	char msg[LIM_LOG_MSG_MAX];
	char esc[LIM_LOG_LINE_MAX];
	char line[LIM_LOG_LINE_MAX + 256];
	char ts[25];
	int n;

	if ((int)level < atomic_load(&log_min) && level != LOG_LVL_NOTICE)
		return;
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof msg)
		n = (int)sizeof msg - 1;
	log_escape(msg, (unsigned)n, esc, sizeof esc);
	util_fmt_time_ms(util_now_ms(), ts);
	n = snprintf(line, sizeof line, "%s level=%s rid=%s mod=%s msg=\"%s\"\n", ts,
		     log_level_name(level), log_request_id(), module, esc);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = (int)sizeof line - 1;
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

void log_access(const char *method, const char *path, int status, double elapsed_ms)
{
	char m[64], p[LIM_PATH_MAX * 2];
	char line[LIM_LOG_LINE_MAX];
	char ts[25];
	int n;

	if (LOG_LVL_INFO < atomic_load(&log_min))
		return;
	log_escape(method, (unsigned)strlen(method), m, sizeof m);
	log_escape(path, (unsigned)strlen(path), p, sizeof p);
	util_fmt_time_ms(util_now_ms(), ts);
	n = snprintf(line, sizeof line,
		     "%s level=info rid=%s mod=access method=%s path=\"%s\" status=%d ms=%.2f\n",
		     ts, log_request_id(), m, p, status, elapsed_ms);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = (int)sizeof line - 1;
		line[n - 1] = '\n';
	}
	log_write(line, (size_t)n);
}
