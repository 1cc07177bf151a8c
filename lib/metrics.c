/*
 * metrics.c - registry and Prometheus text rendering.
 *
 * One mutex per family keeps updates simple and cheap when uncontended;
 * series are found by a linear scan, which is fine for the few dozen
 * label sets a family holds in practice (capped at LIM_METRIC_SERIES_MAX).
 */
#include "metrics.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "limits.h"
#include "util.h"

#define MX_FAMILIES_MAX 128
#define MX_HOOKS_MAX 16

#define MX_CHUNK 64
#define MX_CHUNKS ((LIM_METRIC_SERIES_MAX + MX_CHUNK - 1) / MX_CHUNK)

/* Values are updated with atomic operations, so the request path never
 * waits on a lock: with many threads on few cores a lock holder that gets
 * preempted would stall every other thread.  Doubles are kept as their bit
 * patterns and added with compare-and-swap. */
struct mx_series {
	char *labels;
	uint32_t hash;               /* of labels: most lookups compare only this */
	uint64_t value;              /* bits of a double: counter/gauge value; histogram sum */
	uint64_t count;
	uint64_t *buckets;           /* histogram: per bound, not cumulative */
	int hidden;                  /* gauge series cleared by mx_clear */
};

struct mx_family {
	char *name;
	char *help;
	enum mx_type type;
	double *bounds;
	size_t nbounds;
	pthread_mutex_t lock;        /* creating series only */
	struct mx_series *chunks[MX_CHUNKS]; /* chunks never move once allocated */
	size_t nseries;              /* published with release, read with acquire */
};

static pthread_mutex_t mx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mx_family *mx_families[MX_FAMILIES_MAX];
static size_t mx_nfamilies;
static struct {
	void (*fn)(void *);
	void *arg;
} mx_hooks[MX_HOOKS_MAX];
static size_t mx_nhooks;

const double mx_latency_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				     0.1,   0.25,   0.5,   1,    2.5,   5,    10 };
const size_t mx_latency_nbounds = sizeof mx_latency_bounds / sizeof mx_latency_bounds[0];

static const char *const type_names[MX_TYPE__MAX] = {
	[MX_COUNTER] = "counter",
	[MX_GAUGE] = "gauge",
	[MX_HISTOGRAM] = "histogram",
};

static bool name_ok(const char *n)
{
	if (n == NULL || *n == '\0')
		return false;
	for (const char *p = n; *p; p++) {
		bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     *p == '_' || *p == ':';
		bool digit = *p >= '0' && *p <= '9';

		if (!alpha && !(digit && p != n))
			return false;
	}
	return true;
}

static struct mx_family *mx_register(const char *name, const char *help, enum mx_type type,
				     const double *bounds, size_t nbounds)
{
	struct mx_family *f = NULL;

	if (!name_ok(name))
		return NULL;
	pthread_mutex_lock(&mx_lock);
	for (size_t i = 0; i < mx_nfamilies; i++) {
		if (strcmp(mx_families[i]->name, name) == 0) {
			f = mx_families[i]->type == type ? mx_families[i] : NULL;
			goto out;
		}
	}
	if (mx_nfamilies == MX_FAMILIES_MAX)
		goto out;
	f = calloc(1, sizeof *f);
	if (f == NULL)
		goto out;
	f->name = strdup(name);
	f->help = strdup(help ? help : "");
	f->type = type;
	if (nbounds) {
		f->bounds = malloc(nbounds * sizeof *bounds);
		if (f->bounds)
			memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
	}
	f->nbounds = nbounds;
	if (f->name == NULL || f->help == NULL || (nbounds && f->bounds == NULL)) {
		free(f->name);
		free(f->help);
		free(f->bounds);
		free(f);
		f = NULL;
		goto out;
	}
	pthread_mutex_init(&f->lock, NULL);
	mx_families[mx_nfamilies++] = f;
out:
	pthread_mutex_unlock(&mx_lock);
	return f;
}

struct mx_family *mx_counter(const char *name, const char *help)
{
	return mx_register(name, help, MX_COUNTER, NULL, 0);
}

struct mx_family *mx_gauge(const char *name, const char *help)
{
	return mx_register(name, help, MX_GAUGE, NULL, 0);
}

struct mx_family *mx_histogram(const char *name, const char *help,
			       const double *bounds, size_t nbounds)
{
	return mx_register(name, help, MX_HISTOGRAM, bounds, nbounds);
}

static struct mx_series *series_at(struct mx_family *f, size_t i)
{
	return &f->chunks[i / MX_CHUNK][i % MX_CHUNK];
}

/* FNV-1a of the labels. */
static uint32_t labels_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct mx_series *series_find(struct mx_family *f, const char *labels, uint32_t hash,
				     size_t from, size_t n)
{
	for (size_t i = from; i < n; i++) {
		struct mx_series *s = series_at(f, i);

		if (s->hash == hash && strcmp(s->labels, labels) == 0)
			return s;
	}
	return NULL;
}

/* Find the series without a lock; create it under the family's lock. */
static struct mx_series *series_get(struct mx_family *f, const char *labels)
{
	size_t n = __atomic_load_n(&f->nseries, __ATOMIC_ACQUIRE);
	uint32_t hash = labels_hash(labels);
	struct mx_series *s = series_find(f, labels, hash, 0, n);
	size_t m;

	if (s)
		return s;
	pthread_mutex_lock(&f->lock);
	m = __atomic_load_n(&f->nseries, __ATOMIC_ACQUIRE);
	s = series_find(f, labels, hash, n, m);
	if (s || m >= LIM_METRIC_SERIES_MAX)
		goto out;
	if (f->chunks[m / MX_CHUNK] == NULL) {
		f->chunks[m / MX_CHUNK] = calloc(MX_CHUNK, sizeof(struct mx_series));
		if (f->chunks[m / MX_CHUNK] == NULL)
			goto out;
	}
	s = series_at(f, m);
	memset(s, 0, sizeof *s);
	s->labels = strdup(labels);
	s->hash = hash;
	if (s->labels && f->type == MX_HISTOGRAM)
		s->buckets = calloc(f->nbounds ? f->nbounds : 1, sizeof *s->buckets);
	if (s->labels == NULL || (f->type == MX_HISTOGRAM && s->buckets == NULL)) {
		free(s->labels);
		s = NULL;
		goto out;
	}
	__atomic_store_n(&f->nseries, m + 1, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&f->lock);
	return s;
}

static double bits_to_double(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof d);
	return d;
}

static uint64_t double_to_bits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof b);
	return b;
}

static void atomic_add_double(uint64_t *p, double v)
{
	uint64_t old = __atomic_load_n(p, __ATOMIC_RELAXED), upd;

	do {
		upd = double_to_bits(bits_to_double(old) + v);
	} while (!__atomic_compare_exchange_n(p, &old, upd, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
}

void mx_add(struct mx_family *f, const char *labels, double v)
{
	struct mx_series *s;

	if (f == NULL)
		return;
	s = series_get(f, labels ? labels : "");
	if (s) {
		atomic_add_double(&s->value, v);
		__atomic_store_n(&s->hidden, 0, __ATOMIC_RELAXED);
	}
}

void mx_set(struct mx_family *f, const char *labels, double v)
{
	struct mx_series *s;

	if (f == NULL)
		return;
	s = series_get(f, labels ? labels : "");
	if (s) {
		__atomic_store_n(&s->value, double_to_bits(v), __ATOMIC_RELAXED);
		__atomic_store_n(&s->hidden, 0, __ATOMIC_RELAXED);
	}
}

void mx_observe(struct mx_family *f, const char *labels, double v)
{
	struct mx_series *s;
	size_t i;

	if (f == NULL || f->type != MX_HISTOGRAM)
		return;
	s = series_get(f, labels ? labels : "");
	if (s == NULL)
		return;
	for (i = 0; i < f->nbounds && v > f->bounds[i]; i++)
		;
	if (i < f->nbounds)
		__atomic_fetch_add(&s->buckets[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->count, 1, __ATOMIC_RELAXED);
	atomic_add_double(&s->value, v);
}

/* Series are never freed while the process runs (readers hold no lock);
 * a cleared gauge series is hidden until it is set again. */
void mx_clear(struct mx_family *f)
{
	size_t n;

	if (f == NULL)
		return;
	n = __atomic_load_n(&f->nseries, __ATOMIC_ACQUIRE);
	for (size_t i = 0; i < n; i++) {
		struct mx_series *s = series_at(f, i);

		__atomic_store_n(&s->hidden, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&s->value, double_to_bits(0), __ATOMIC_RELAXED);
	}
}

char *mx_label(const char *value, char *out, size_t outsz)
{
	size_t o = 0;

	if (outsz == 0)
		return out;
	for (const char *p = value; *p && o + 3 < outsz; p++) {
		if (*p == '\\' || *p == '"') {
			out[o++] = '\\';
			out[o++] = *p;
		} else if (*p == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
	return out;
}

void mx_on_render(void (*hook)(void *arg), void *arg)
{
	pthread_mutex_lock(&mx_lock);
	if (mx_nhooks < MX_HOOKS_MAX) {
		mx_hooks[mx_nhooks].fn = hook;
		mx_hooks[mx_nhooks].arg = arg;
		mx_nhooks++;
	}
	pthread_mutex_unlock(&mx_lock);
}

static enum enr_err fmt_value(struct buf *out, double v)
{
	if (isinf(v))
		return buf_puts(out, v > 0 ? "+Inf" : "-Inf");
	if (v == (double)(long long)v && fabs(v) < 1e15)
		return buf_printf(out, "%lld", (long long)v);
	return buf_printf(out, "%.9g", v);
}

/* name{labels[,extra]} */
static enum enr_err fmt_series_name(struct buf *out, const char *name, const char *suffix,
				    const char *labels, const char *extra)
{
	bool has = labels[0] != '\0';
	bool hasx = extra && extra[0] != '\0';

	if (!has && !hasx)
		return buf_printf(out, "%s%s ", name, suffix);
	return buf_printf(out, "%s%s{%s%s%s} ", name, suffix, labels, has && hasx ? "," : "",
			  hasx ? extra : "");
}

static enum enr_err render_family(struct buf *out, struct mx_family *f)
{
	size_t n = __atomic_load_n(&f->nseries, __ATOMIC_ACQUIRE), shown = 0;
	enum enr_err rc = ENR_OK;

	for (size_t i = 0; i < n; i++)
		shown += !__atomic_load_n(&series_at(f, i)->hidden, __ATOMIC_RELAXED);
	if (shown == 0)
		return ENR_OK;
	rc = buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
			type_names[f->type]);
	for (size_t i = 0; rc == ENR_OK && i < n; i++) {
		struct mx_series *s = series_at(f, i);
		double value = bits_to_double(__atomic_load_n(&s->value, __ATOMIC_RELAXED));

		if (__atomic_load_n(&s->hidden, __ATOMIC_RELAXED))
			continue;
		if (f->type != MX_HISTOGRAM) {
			rc = fmt_series_name(out, f->name, "", s->labels, NULL);
			if (!rc)
				rc = fmt_value(out, value);
			if (!rc)
				rc = buf_putc(out, '\n');
			continue;
		}
		{
			uint64_t cum = 0, count = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
			char le[48];

			for (size_t b = 0; rc == ENR_OK && b <= f->nbounds; b++) {
				if (b < f->nbounds) {
					cum += __atomic_load_n(&s->buckets[b], __ATOMIC_RELAXED);
					snprintf(le, sizeof le, "le=\"%g\"", f->bounds[b]);
				} else {
					/* Updates race with the render: keep +Inf the largest. */
					cum = count > cum ? count : cum;
					snprintf(le, sizeof le, "le=\"+Inf\"");
				}
				rc = fmt_series_name(out, f->name, "_bucket", s->labels, le);
				if (!rc)
					rc = buf_printf(out, "%llu\n", (unsigned long long)cum);
			}
			if (!rc)
				rc = fmt_series_name(out, f->name, "_sum", s->labels, NULL);
			if (!rc)
				rc = fmt_value(out, value);
			if (!rc)
				rc = buf_putc(out, '\n');
			if (!rc)
				rc = fmt_series_name(out, f->name, "_count", s->labels, NULL);
			if (!rc)
				rc = buf_printf(out, "%llu\n", (unsigned long long)cum);
		}
	}
	return rc;
}

enum enr_err mx_render(struct buf *out)
{
	size_t nh, nf;
	enum enr_err rc = ENR_OK;

	pthread_mutex_lock(&mx_lock);
	nh = mx_nhooks;
	pthread_mutex_unlock(&mx_lock);
	for (size_t i = 0; i < nh; i++)
		mx_hooks[i].fn(mx_hooks[i].arg);

	pthread_mutex_lock(&mx_lock);
	nf = mx_nfamilies;
	pthread_mutex_unlock(&mx_lock);
	/* Families are only ever appended, so the first nf stay valid. */
	for (size_t i = 0; rc == ENR_OK && i < nf; i++)
		rc = render_family(out, mx_families[i]);
	return rc;
}

/* ---- process metrics --------------------------------------------------- */

static struct mx_family *mx_p_cpu, *mx_p_rss, *mx_p_vsz, *mx_p_fds, *mx_p_maxfds, *mx_p_start,
	*mx_p_threads;

/* The whole of a small /proc file into buf; false when it cannot be read. */
static bool read_small(const char *path, char *buf, size_t bufsz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, bufsz - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* Field number `field` (1-based, proc(5)) of /proc/self/stat, whose second
 * field (the command) is in parentheses and may hold spaces. */
static bool stat_field(const char *stat, int field, int64_t *out)
{
	const char *p = strrchr(stat, ')');
	char num[32];
	int f = 2;

	if (p == NULL)
		return false;
	p++;
	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		f++;
		n = strcspn(p, " \n");
		if (f == field) {
			if (n == 0 || n >= sizeof num)
				return false;
			memcpy(num, p, n);
			num[n] = '\0';
			return util_parse_i64(num, INT64_MIN, INT64_MAX, out) == ENR_OK;
		}
		p += n;
		if (*p == '\n')
			break;
	}
	return false;
}

static bool boot_time(int64_t *out)
{
	char buf[8192];
	const char *p;
	char num[32];
	size_t n;

	if (!read_small("/proc/stat", buf, sizeof buf) || (p = strstr(buf, "\nbtime ")) == NULL)
		return false;
	p += 7;
	n = strcspn(p, "\n");
	if (n == 0 || n >= sizeof num)
		return false;
	memcpy(num, p, n);
	num[n] = '\0';
	return util_parse_i64(num, 0, INT64_MAX, out) == ENR_OK;
}

static void process_refresh(void *arg)
{
	char stat[2048];
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	int64_t ut, st, threads, start, vsz, rss, btime;
	struct rlimit rl;
	DIR *d;

	(void)arg;
	if (ticks > 0 && read_small("/proc/self/stat", stat, sizeof stat)) {
		if (stat_field(stat, 14, &ut) && stat_field(stat, 15, &st))
			mx_set(mx_p_cpu, "", (double)(ut + st) / (double)ticks);
		if (stat_field(stat, 20, &threads))
			mx_set(mx_p_threads, "", (double)threads);
		if (stat_field(stat, 22, &start) && boot_time(&btime))
			mx_set(mx_p_start, "", (double)btime + (double)start / (double)ticks);
		if (stat_field(stat, 23, &vsz))
			mx_set(mx_p_vsz, "", (double)vsz);
		if (page > 0 && stat_field(stat, 24, &rss))
			mx_set(mx_p_rss, "", (double)rss * (double)page);
	}
	d = opendir("/proc/self/fd");
	if (d) {
		int64_t n = 0;
		struct dirent *e;

		while ((e = readdir(d)) != NULL)
			n += e->d_name[0] != '.';
		closedir(d);
		mx_set(mx_p_fds, "", (double)(n > 0 ? n - 1 : 0)); /* less the one opendir holds */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		mx_set(mx_p_maxfds, "", (double)rl.rlim_cur);
}

void mx_process_init(const char *program, const char *version)
{
	char labels[LIM_METRIC_LABELS_MAX], p[64], v[64];
	struct mx_family *info = mx_gauge("enrichd_build_info",
					  "The program and version that serve these metrics (always 1).");

	mx_label(program, p, sizeof p);
	mx_label(version, v, sizeof v);
	snprintf(labels, sizeof labels, "program=\"%s\",version=\"%s\"", p, v);
	mx_set(info, labels, 1);
	mx_p_cpu = mx_counter("process_cpu_seconds_total", "User and system CPU time spent in seconds.");
	mx_p_rss = mx_gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
	mx_p_vsz = mx_gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.");
	mx_p_fds = mx_gauge("process_open_fds", "Number of open file descriptors.");
	mx_p_maxfds = mx_gauge("process_max_fds", "Maximum number of open file descriptors.");
	mx_p_start = mx_gauge("process_start_time_seconds",
			      "Start time of the process since unix epoch in seconds.");
	mx_p_threads = mx_gauge("process_threads", "Number of OS threads in the process.");
	mx_on_render(process_refresh, NULL);
}
