/*
 * util.c - strict parsing, clocks, deadlines and sleeping, randomness and
 * jitter, strings, whole-file reading.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ascii.h"
#include "limits.h"

enum enr_err util_parse_i64n(const char *s, size_t len, int64_t min, int64_t max,
			     int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	uint64_t acc = 0;
	uint64_t limit;

	if (s == NULL || len == 0)
		return ENR_E_INVALID;
	if (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-';
		i = 1;
		if (len == 1)
			return ENR_E_INVALID;
	}
	/* Magnitude limit for the sign we saw; INT64_MIN has one more. */
	limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		unsigned d;

		if (!ascii_is_digit(s[i]))
			return ENR_E_INVALID;
		d = (unsigned)(s[i] - '0');
		if (acc > (limit - d) / 10u)
			return ENR_E_RANGE;
		acc = acc * 10u + d;
	}
	{
		int64_t v;

		if (neg)
			v = acc == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)acc;
		else
			v = (int64_t)acc;
		if (v < min || v > max)
			return ENR_E_RANGE;
		*out = v;
	}
	return ENR_OK;
}

enum enr_err util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (s == NULL)
		return ENR_E_INVALID;
	return util_parse_i64n(s, strlen(s), min, max, out);
}

enum enr_err util_parse_double(const char *s, double min, double max, double *out)
{
	char *end = NULL;
	double v;

	if (s == NULL || *s == '\0' || *s == ' ' || *s == '\t')
		return ENR_E_INVALID;
	errno = 0;
	v = strtod(s, &end); /* lint-ok: the whole string and the range are checked below */
	if (end == s || *end != '\0')
		return ENR_E_INVALID;
	if (errno == ERANGE || !isfinite(v) || v < min || v > max)
		return ENR_E_RANGE;
	*out = v;
	return ENR_OK;
}

enum enr_err util_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t a;
	int rc;

	if (pthread_condattr_init(&a) != 0)
		return ENR_E_NOMEM;
	rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	if (rc == ENOMEM || rc == EAGAIN)
		return ENR_E_NOMEM;
	return rc == 0 ? ENR_OK : ENR_E_INTERNAL;
}

/* The monotonic time ms (>= 0) milliseconds from now. */
static struct timespec mono_in(int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

int util_cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms)
{
	struct timespec ts = mono_in(ms < 0 ? 0 : ms);

	return pthread_cond_timedwait(c, m, &ts);
}

int64_t util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_deadline_in(int64_t ms)
{
	int64_t now = util_mono_ms();

	if (ms < 0)
		ms = 0;
	return ms > INT64_MAX - now ? INT64_MAX : now + ms;
}

int64_t util_deadline_left(int64_t d)
{
	return d == 0 ? INT64_MAX : d - util_mono_ms();
}

bool util_deadline_passed(int64_t d)
{
	return d != 0 && util_mono_ms() >= d;
}

/* Sleep until the monotonic time of until (an absolute clock_nanosleep
 * deadline: an interruption resumes without drift).  Returns at until, or
 * early with false when a signal interrupted the sleep. */
static bool sleep_until(const struct timespec *until)
{
	int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, until, NULL);

	return rc != EINTR;
}

void util_sleep_ms(int64_t ms)
{
	struct timespec until;

	if (ms <= 0)
		return;
	until = mono_in(ms);
	while (!sleep_until(&until))
		;
}

bool util_sleep_ms_unless(int64_t ms, const atomic_bool *stop)
{
	int64_t end = util_deadline_in(ms);

	for (;;) {
		int64_t left = end - util_mono_ms();
		struct timespec until;

		if (atomic_load(stop))
			return false;
		if (left <= 0 || ms <= 0)
			return true;
		until = mono_in(left < UTIL_SLEEP_SLICE_MS ? left : UTIL_SLEEP_SLICE_MS);
		(void)sleep_until(&until); /* interrupted or not, look at *stop again */
	}
}

static void fmt_tm(int64_t s, struct tm *tm)
{
	time_t t = (time_t)s;

	gmtime_r(&t, tm);
}

void util_fmt_time_ms(int64_t ms, char out[25])
{
	struct tm tm;
	int64_t s = ms / 1000;
	int frac = (int)(ms % 1000);

	if (frac < 0) {
		frac += 1000;
		s -= 1;
	}
	fmt_tm(s, &tm);
	/* strftime cannot print milliseconds; the digits are bounded. */
	strftime(out, 21, "%Y-%m-%dT%H:%M:%S", &tm);
	out[19] = '.';
	out[20] = (char)('0' + frac / 100);
	out[21] = (char)('0' + frac / 10 % 10);
	out[22] = (char)('0' + frac % 10);
	out[23] = 'Z';
	out[24] = '\0';
}

void util_fmt_time_s(int64_t s, char out[21])
{
	struct tm tm;

	fmt_tm(s, &tm);
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

size_t util_fmt_i64(int64_t v, char out[21])
{
	char d[20], *p = d + sizeof d;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	size_t n = 0;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		out[n++] = '-';
	memcpy(out + n, p, (size_t)(d + sizeof d - p));
	n += (size_t)(d + sizeof d - p);
	out[n] = '\0';
	return n;
}

enum enr_err util_random(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return ENR_E_IO;
		}
		p += r;
		n -= (size_t)r;
	}
	return ENR_OK;
}

double util_jitter(void)
{
	unsigned char b[2] = { 0, 0 };

	/* Without randomness the draw is 0, a valid jitter. */
	if (util_random(b, sizeof b) != ENR_OK)
		return 0.0;
	return (double)(b[0] | b[1] << 8) / 65536.0;
}

int64_t util_jitter_add(int64_t ms, double jitter)
{
	if (!(jitter >= 0.0)) /* NaN as well */
		jitter = 0.0;
	if (jitter > 1.0)
		jitter = 1.0;
	return ms + (int64_t)((double)ms * 0.25 * jitter);
}

void util_hex(const void *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = in;
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t util_b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

void util_b64url_encode(const void *in, size_t n, char *out)
{
	const unsigned char *p = in;
	size_t o = 0, i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		out[o++] = b64url[v >> 6 & 63];
		out[o++] = b64url[v & 63];
	}
	if (n - i == 1) {
		out[o++] = b64url[p[i] >> 2];
		out[o++] = b64url[(p[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];

		out[o++] = b64url[v >> 10 & 63];
		out[o++] = b64url[v >> 4 & 63];
		out[o++] = b64url[(v & 15) << 2];
	}
	out[o] = '\0';
}

static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

bool util_b64url_decode(const char *in, size_t n, unsigned char *out, size_t outsz,
			size_t *outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > outsz)
		return false;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_value(in[i]);

		if (v < 0)
			return false;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* The bits of a last, partial group must be zero. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return false;
	*outlen = o;
	return true;
}

bool util_strlcpy(char *dst, const char *src, size_t dstsz)
{
	size_t n;

	if (dstsz == 0)
		return false;
	n = strlen(src);
	if (n >= dstsz) {
		memcpy(dst, src, dstsz - 1);
		dst[dstsz - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}

bool util_strn_ieq(const char *a, size_t alen, const char *b)
{
	size_t i;

	for (i = 0; i < alen; i++) {
		if (b[i] == '\0' || ascii_to_lower(a[i]) != ascii_to_lower(b[i]))
			return false;
	}
	return b[alen] == '\0';
}

bool util_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned c = p[i];
		size_t need;
		uint32_t cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			need = 1;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			need = 2;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			need = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + need >= len)
			return false;
		for (size_t k = 1; k <= need; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		/* Reject overlong forms, surrogates and values past U+10FFFF. */
		if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) ||
		    (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += need + 1;
	}
	return true;
}

bool util_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a;
	const volatile unsigned char *y = b;
	unsigned char d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= (unsigned char)(x[i] ^ y[i]);
	return d == 0;
}

enum enr_err util_read_file(const char *path, size_t max, unsigned flags, char **data,
			    size_t *len)
{
	int fd = -1, err = 0;
	char *p = NULL;
	size_t n = 0, alloc, limit;
	struct stat st;
	enum enr_err rc;

	/* One byte past max tells a file of exactly max bytes from a longer
	 * one; the same byte holds the terminator otherwise. */
	if (path == NULL || max >= SIZE_MAX - 1) {
		rc = ENR_E_INVALID;
		goto out;
	}
	limit = max + 1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		rc = err == ENOENT ? ENR_E_NOT_FOUND : ENR_E_IO;
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		err = errno;
		rc = ENR_E_IO;
		goto out;
	}
	if ((flags & UTIL_RF_REGULAR) && !S_ISREG(st.st_mode)) {
		rc = ENR_E_INVALID;
		goto out;
	}
	if ((flags & UTIL_RF_PRIVATE) && (st.st_mode & S_IROTH)) {
		rc = ENR_E_FORBIDDEN;
		goto out;
	}
	if (S_ISREG(st.st_mode) && st.st_size >= 0 && (uint64_t)st.st_size > max) {
		rc = ENR_E_TOO_LARGE;
		goto out;
	}
	/* Regular files: the size plus room to see that they did not grow.
	 * Others (pipes, /proc): start small and double. */
	alloc = 64 * 1024;
	if (S_ISREG(st.st_mode) && (size_t)st.st_size >= alloc)
		alloc = (size_t)st.st_size + 1;
	if (alloc > limit)
		alloc = limit;
	p = malloc(alloc);
	if (p == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	for (;;) {
		ssize_t got;

		if (n == alloc) {
			size_t nalloc;
			char *np;

			if (alloc == limit) {
				rc = ENR_E_TOO_LARGE;
				goto out;
			}
			nalloc = alloc > limit / 2 ? limit : alloc * 2;
			np = realloc(p, nalloc);
			if (np == NULL) {
				rc = ENR_E_NOMEM;
				goto out;
			}
			p = np;
			alloc = nalloc;
		}
		got = read(fd, p + n, alloc - n);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			rc = ENR_E_IO;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	/* The loop reads only into free room and the last read found the
	 * end, so n < alloc <= limit: n <= max and the terminator fits. */
	p[n] = '\0';
	*data = p;
	*len = n;
	p = NULL;
	rc = ENR_OK;
out:
	free(p);
	if (fd >= 0)
		close(fd);
	if (err)
		errno = err;
	return rc;
}

enum enr_err util_secret_file(const char *path, char **out)
{
	char *text = NULL;
	size_t n = 0;
	enum enr_err rc = util_read_file(path, LIM_SECRET_FILE_MAX, UTIL_RF_PRIVATE, &text, &n);

	if (rc)
		return rc;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	text[n] = '\0';
	*out = text;
	return ENR_OK;
}

enum enr_err util_secret_read(const char *ref, char **out)
{
	enum enr_err rc;
	char *s = NULL;

	if (strncmp(ref, "env:", 4) == 0 && ref[4]) {
		const char *v = getenv(ref + 4);

		if (v == NULL || *v == '\0')
			return ENR_E_NOT_FOUND;
		*out = strdup(v);
		return *out ? ENR_OK : ENR_E_NOMEM;
	}
	if (strncmp(ref, "file:", 5) != 0 || ref[5] == '\0')
		return ENR_E_INVALID;
	rc = util_secret_file(ref + 5, &s);
	if (rc == ENR_OK && s[0] == '\0') {
		free(s);
		rc = ENR_E_NOT_FOUND;
	}
	if (rc == ENR_OK)
		*out = s;
	return rc;
}
