/*
 * metrics.c - registry and Prometheus text rendering.
 *
 * One mutex per family keeps updates simple and cheap when uncontended;
 * series are found by a linear scan, which is fine for the few dozen
 * label sets a family holds in practice (capped at LIM_METRIC_SERIES_MAX).
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"

#define MX_FAMILIES_MAX 128
#define MX_HOOKS_MAX 16

struct mx_series {
	char *labels;
	double value;       /* counter/gauge value; histogram sum */
	unsigned long long count;
	unsigned long long *buckets; /* histogram: per bound, not cumulative */
};

struct mx_family {
	char *name;
	char *help;
	enum mx_type type;
	double *bounds;
	size_t nbounds;
	pthread_mutex_t lock;
	struct mx_series *series;
	size_t nseries;
	size_t aseries;
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

/* Find or create the series; called with f->lock held. */
static struct mx_series *series_get(struct mx_family *f, const char *labels)
{
	struct mx_series *s;

	for (size_t i = 0; i < f->nseries; i++) {
		if (strcmp(f->series[i].labels, labels) == 0)
			return &f->series[i];
	}
	if (f->nseries >= LIM_METRIC_SERIES_MAX)
		return NULL;
	if (f->nseries == f->aseries) {
		size_t n = f->aseries ? f->aseries * 2 : 8;
		struct mx_series *p = realloc(f->series, n * sizeof *p);

		if (p == NULL)
			return NULL;
		f->series = p;
		f->aseries = n;
	}
	s = &f->series[f->nseries];
	memset(s, 0, sizeof *s);
	s->labels = strdup(labels);
	if (s->labels == NULL)
		return NULL;
	if (f->type == MX_HISTOGRAM) {
		s->buckets = calloc(f->nbounds ? f->nbounds : 1, sizeof *s->buckets);
		if (s->buckets == NULL) {
			free(s->labels);
			return NULL;
		}
	}
	f->nseries++;
	return s;
}

void mx_add(struct mx_family *f, const char *labels, double v)
{
	struct mx_series *s;

	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	s = series_get(f, labels ? labels : "");
	if (s)
		s->value += v;
	pthread_mutex_unlock(&f->lock);
}

void mx_set(struct mx_family *f, const char *labels, double v)
{
	struct mx_series *s;

	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	s = series_get(f, labels ? labels : "");
	if (s)
		s->value = v;
	pthread_mutex_unlock(&f->lock);
}

void mx_observe(struct mx_family *f, const char *labels, double v)
{
	struct mx_series *s;

	if (f == NULL || f->type != MX_HISTOGRAM)
		return;
	pthread_mutex_lock(&f->lock);
	s = series_get(f, labels ? labels : "");
	if (s) {
		size_t i;

		for (i = 0; i < f->nbounds && v > f->bounds[i]; i++)
			;
		if (i < f->nbounds)
			s->buckets[i]++;
		s->count++;
		s->value += v;
	}
	pthread_mutex_unlock(&f->lock);
}

void mx_clear(struct mx_family *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->nseries; i++) {
		free(f->series[i].labels);
		free(f->series[i].buckets);
	}
	f->nseries = 0;
	pthread_mutex_unlock(&f->lock);
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
	enum enr_err rc = ENR_OK;

	pthread_mutex_lock(&f->lock);
	if (f->nseries == 0)
		goto out;
	rc = buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
			type_names[f->type]);
	for (size_t i = 0; rc == ENR_OK && i < f->nseries; i++) {
		struct mx_series *s = &f->series[i];

		if (f->type != MX_HISTOGRAM) {
			rc = fmt_series_name(out, f->name, "", s->labels, NULL);
			if (!rc)
				rc = fmt_value(out, s->value);
			if (!rc)
				rc = buf_putc(out, '\n');
			continue;
		}
		{
			unsigned long long cum = 0;
			char le[48];

			for (size_t b = 0; rc == ENR_OK && b <= f->nbounds; b++) {
				if (b < f->nbounds) {
					cum += s->buckets[b];
					snprintf(le, sizeof le, "le=\"%g\"", f->bounds[b]);
				} else {
					cum = s->count;
					snprintf(le, sizeof le, "le=\"+Inf\"");
				}
				rc = fmt_series_name(out, f->name, "_bucket", s->labels, le);
				if (!rc)
					rc = buf_printf(out, "%llu\n", cum);
			}
			if (!rc)
				rc = fmt_series_name(out, f->name, "_sum", s->labels, NULL);
			if (!rc)
				rc = fmt_value(out, s->value);
			if (!rc)
				rc = buf_putc(out, '\n');
			if (!rc)
				rc = fmt_series_name(out, f->name, "_count", s->labels, NULL);
			if (!rc)
				rc = buf_printf(out, "%llu\n", s->count);
		}
	}
out:
	pthread_mutex_unlock(&f->lock);
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
