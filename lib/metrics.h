/*
 * metrics.h - a small in-process metrics registry rendered in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * Prefix: mx_.  A family (name, help, type) is registered once and lives
 * for the process; series are label sets inside it, created on first use.
 * Labels are passed as a pre-rendered string `a="x",b="y"`; values that
 * come from outside must go through mx_label() first.  All functions are
 * thread-safe.  A family handle is never freed (the registry is global).
 */
#ifndef ENR_METRICS_H
#define ENR_METRICS_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

enum mx_type { MX_COUNTER, MX_GAUGE, MX_HISTOGRAM, MX_TYPE__MAX };

struct mx_family;

/* Register (or find, when already registered with the same type) a
 * family.  Names must match [a-zA-Z_:][a-zA-Z0-9_:]*.  Histogram bucket
 * upper bounds are copied; +Inf is implicit.  NULL only on out of memory
 * or a bad name. */
struct mx_family *mx_counter(const char *name, const char *help);
struct mx_family *mx_gauge(const char *name, const char *help);
struct mx_family *mx_histogram(const char *name, const char *help,
			       const double *bounds, size_t nbounds);

/* Update one series ("" for no labels).  Silently ignored when fam is
 * NULL or the family already holds LIM_METRIC_SERIES_MAX series. */
void mx_add(struct mx_family *fam, const char *labels, double v);
void mx_set(struct mx_family *fam, const char *labels, double v);
void mx_observe(struct mx_family *fam, const char *labels, double v);

/* Drop every series of a gauge family (before re-filling it from a
 * snapshot, e.g. key states). */
void mx_clear(struct mx_family *fam);

/* Escape a label value (backslash, quote, newline) into out (size outsz),
 * truncating.  Returns out. */
char *mx_label(const char *value, char *out, size_t outsz);

/* Called at the start of every render, so gauges that mirror external
 * state can refresh.  At most 16 hooks. */
void mx_on_render(void (*hook)(void *arg), void *arg);

/* Register the standard process metrics (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds,
 * process_threads), read from /proc/self at every render, and
 * enrichd_build_info{version, program} 1.  Once per process. */
void mx_process_init(const char *program, const char *version);

/* Append the exposition of every family to out. */
ENR_MUST_CHECK enum enr_err mx_render(struct buf *out);

/* The latency buckets (seconds) used for request and call histograms. */
extern const double mx_latency_bounds[];
extern const size_t mx_latency_nbounds;

#endif
