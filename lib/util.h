/*
 * util.h - small helpers every module needs: strict number parsing,
 * clocks, deadlines and sleeping, randomness and jitter, hex, bounded
 * string copies, whole-file reading.
 *
 * Prefix: util_.  All functions are thread-safe and allocate nothing
 * unless they say so.
 */
#ifndef ENR_UTIL_H
#define ENR_UTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Parse the whole of s as a base-10 signed integer in [min, max].
 * Leading/trailing spaces, signs on empty digits, overflow and junk are
 * ENR_E_INVALID or ENR_E_RANGE; *out is written only on ENR_OK. */
ENR_MUST_CHECK enum enr_err util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Same for a (pointer, length) string that need not be NUL-terminated. */
ENR_MUST_CHECK enum enr_err util_parse_i64n(const char *s, size_t len, int64_t min, int64_t max,
			     int64_t *out);

/* Parse a whole decimal number (e.g. "1.5") in [min, max]. */
ENR_MUST_CHECK enum enr_err util_parse_double(const char *s, double min, double max, double *out);

/* Wall clock in milliseconds since the epoch, and a monotonic clock in
 * milliseconds and microseconds (for elapsed times and deadlines). */
int64_t util_now_ms(void);
int64_t util_mono_ms(void);
int64_t util_mono_us(void);

/* Deadlines are util_mono_ms() times; 0 means "none".  util_deadline_in
 * gives the one ms milliseconds from now; util_deadline_left the
 * milliseconds left before d (0 or less once it passed, INT64_MAX when d
 * is 0); util_deadline_passed whether d is set and has passed. */
int64_t util_deadline_in(int64_t ms);
int64_t util_deadline_left(int64_t d);
bool util_deadline_passed(int64_t d);

/* Sleep ms milliseconds of the monotonic clock, the whole time even when
 * signals interrupt the sleep; ms <= 0 returns at once. */
void util_sleep_ms(int64_t ms);

/* The same, but return early once *stop is set (looked at every
 * UTIL_SLEEP_SLICE_MS at most, and at once when a signal interrupts the
 * sleep): for threads that must notice a shutdown.  True when the whole
 * time was slept, false when *stop ended it. */
#define UTIL_SLEEP_SLICE_MS 50
bool util_sleep_ms_unless(int64_t ms, const atomic_bool *stop);

/* Initialise c so that its timed waits run on the monotonic clock: a step
 * of the wall clock (NTP, an admin) neither cuts a wait short nor makes it
 * last for hours.  Pair with util_cond_wait_ms; destroy with
 * pthread_cond_destroy.  ENR_E_NOMEM or ENR_E_INTERNAL when it cannot. */
ENR_MUST_CHECK enum enr_err util_cond_init(pthread_cond_t *c);

/* Wait on c (with m locked) for at most ms milliseconds of the monotonic
 * clock; c must come from util_cond_init.  0 when woken, ETIMEDOUT when
 * the time ran out (as pthread_cond_timedwait; spurious wake-ups too). */
int util_cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms);

/* Format ms-since-epoch as RFC 3339 UTC with milliseconds
 * ("2026-11-23T09:23:36.123Z"); out must hold 25 bytes. */
void util_fmt_time_ms(int64_t ms, char out[25]);

/* Format seconds-since-epoch as RFC 3339 UTC ("2026-11-23T09:23:36Z");
 * out must hold 21 bytes. */
void util_fmt_time_s(int64_t s, char out[21]);

/* v in decimal, NUL-terminated, in out (21 bytes hold any int64_t);
 * returns its length.  What snprintf("%lld") writes, at a fraction of
 * the cost, for numbers written on every request. */
size_t util_fmt_i64(int64_t v, char out[21]);

/* Fill buf with n cryptographically random bytes (getrandom). */
ENR_MUST_CHECK enum enr_err util_random(void *buf, size_t n);

/* A random draw in [0, 1) that spreads retries and cool-downs so that
 * callers do not come back in lock-step.  0 when the system has no
 * randomness to give: the retries are then merely not spread. */
double util_jitter(void);

/* ms plus up to a quarter of it: ms + ms * jitter / 4, with jitter (a
 * util_jitter draw) taken as 0 below 0 or NaN and as 1 above 1. */
int64_t util_jitter_add(int64_t ms, double jitter);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void util_hex(const void *in, size_t n, char *out);

/* base64url without padding (RFC 4648 5): util_b64url_len(n) characters
 * for n bytes; encode writes them and a NUL into out (len + 1 bytes). */
size_t util_b64url_len(size_t n);
void util_b64url_encode(const void *in, size_t n, char *out);

/* Decode n characters of unpadded base64url into out (outsz bytes):
 * false for any other character, a length no encoding has, bits left
 * over that are not zero (so one text decodes from one encoding only) or
 * an output that does not fit.  *outlen gets the byte count. */
bool util_b64url_decode(const char *in, size_t n, unsigned char *out, size_t outsz,
			size_t *outlen);

/* Copy src into dst of size dstsz, always NUL-terminating when dstsz > 0.
 * Returns false when src was truncated. */
bool util_strlcpy(char *dst, const char *src, size_t dstsz);

/* Case-insensitive ASCII comparison of a (pointer, length) string with a
 * NUL-terminated one. */
bool util_strn_ieq(const char *a, size_t alen, const char *b);

/* True when s (len bytes) is valid UTF-8 without NUL bytes. */
bool util_utf8_valid(const char *s, size_t len);

/* Constant-time comparison of two n-byte buffers. */
bool util_ct_equal(const void *a, const void *b, size_t n);

/* util_read_file options. */
#define UTIL_RF_REGULAR 1u /* only a regular file: anything else is ENR_E_INVALID */
#define UTIL_RF_PRIVATE 2u /* a credential: a file others may read is ENR_E_FORBIDDEN */

/* Read the whole file at path into a fresh NUL-terminated buffer.
 * Returns ENR_OK with *data (the caller frees it with free()) and *len
 * (bytes, without the terminator); ENR_E_TOO_LARGE when the file holds
 * more than max bytes (also when it grew past max while being read);
 * ENR_E_NOT_FOUND when it does not exist; ENR_E_INVALID and
 * ENR_E_FORBIDDEN as the flags (UTIL_RF_*) say; ENR_E_IO when it cannot be
 * opened, examined or read, errno then says why; ENR_E_NOMEM.  Works on
 * pipes and other files without a size.  Out-parameters are written only
 * on ENR_OK.  Thread-safe. */
ENR_MUST_CHECK enum enr_err util_read_file(const char *path, size_t max, unsigned flags,
					   char **data, size_t *len);

/* The secret in the file at path as a new string in *out (the caller
 * frees it, and should wipe it first), trailing spaces and line ends cut;
 * it may be empty.  The file must not be readable by others
 * (ENR_E_FORBIDDEN) and holds at most LIM_SECRET_FILE_MAX bytes
 * (ENR_E_TOO_LARGE); otherwise errors as util_read_file. */
ENR_MUST_CHECK enum enr_err util_secret_file(const char *path, char **out);

/* Read a secret named by reference: "env:NAME" (the variable's value) or
 * "file:PATH" (util_secret_file).  *out is a new string the caller frees
 * (and should wipe).  ENR_E_INVALID for another form, ENR_E_NOT_FOUND
 * when the variable is unset or the file missing or empty,
 * ENR_E_FORBIDDEN when the file is readable by others, ENR_E_TOO_LARGE
 * when it is longer than a secret, ENR_E_IO when it cannot be read. */
ENR_MUST_CHECK enum enr_err util_secret_read(const char *ref, char **out);

#endif
