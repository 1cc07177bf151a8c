/*
 * log.h - structured log lines.
 *
 * Prefix: log_.  One line per event, written with a single write(2) so
 * lines from many threads and processes never interleave.  Two formats
 * (log_format in the configuration):
 *
 *   text: 2026-11-23T09:23:36.123Z level=info rid=5f2c... mod=cfg msg="reloaded"
 *   json: {"ts":"2026-11-23T09:23:36.123Z","level":"info","rid":"5f2c...",
 *          "mod":"cfg","msg":"reloaded"}                      (one line)
 *
 * JSON lines escape like RFC 8259 strings: quotes, backslashes and control
 * characters are escaped, valid UTF-8 passes, any other byte becomes
 * U+FFFD, so every line is one valid JSON object.
 *
 * The request id is thread-local (set by the responder for the request
 * being handled).  The message is escaped: bytes outside printable ASCII,
 * quotes and backslashes become \xNN, \" and \\, so untrusted input cannot
 * forge a line.  Secrets must never be passed in; name keys by id and last
 * four characters.  Thread-safe.
 */
#ifndef ENR_LOG_H
#define ENR_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LVL_DEBUG,
	LOG_LVL_INFO,
	LOG_LVL_WARN,
	LOG_LVL_ERROR,
	LOG_LVL_NOTICE, /* life-cycle events (start, stop, reload): always written */
	LOG_LVL__MAX
};

/* Where lines go (default: fd 2) and the lowest level written.  Safe to
 * call while other threads log (a reload changes the level); a line being
 * written when the fd changes goes to the old one. */
void log_set_fd(int fd);
void log_set_level(enum log_level min);

enum log_format { LOG_FMT_TEXT, LOG_FMT_JSON, LOG_FMT__MAX };

extern const char *const log_format_names[LOG_FMT__MAX];

/* The format of the lines written from now on (default text).  Safe to
 * call while other threads log. */
void log_set_format(enum log_format f);

/* Parse "debug" | "info" | "warn" | "error"; false when unknown. */
bool log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level l);

/* The current thread's request id ("-" when none).  The string is copied
 * (truncated to LIM_REQUEST_ID_MAX); NULL clears it. */
void log_set_request_id(const char *rid);
const char *log_request_id(void);

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *module, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* The access line of one request; account is the authenticated client
 * account (NULL or "" when the request was not authenticated: "-"). */
void log_access(const char *method, const char *path, int status, double elapsed_ms,
		const char *account);

#define log_debug(mod, ...) log_msg(LOG_LVL_DEBUG, (mod), __VA_ARGS__)
#define log_info(mod, ...)  log_msg(LOG_LVL_INFO, (mod), __VA_ARGS__)
#define log_warn(mod, ...)  log_msg(LOG_LVL_WARN, (mod), __VA_ARGS__)
#define log_error(mod, ...) log_msg(LOG_LVL_ERROR, (mod), __VA_ARGS__)
#define log_notice(mod, ...) log_msg(LOG_LVL_NOTICE, (mod), __VA_ARGS__)

/* Escape len bytes of s into out (size outsz) the way log lines do;
 * returns the bytes written (always NUL-terminated, truncated with
 * "..." when out is too small).  Exposed for tests and for other
 * line-oriented outputs. */
unsigned log_escape(const char *s, unsigned len, char *out, unsigned outsz);

/* The same for the inside of a JSON string (no quotes added). */
unsigned log_escape_json(const char *s, unsigned len, char *out, unsigned outsz);

#endif
