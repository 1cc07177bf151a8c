/*
 * routes.c - route table, matching and the per-request pipeline.
 */
#include "routes.h"

#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/router.h"
#include "lib/util.h"

static const struct route routes[] = {
	{ "GET", "/health", h_health, -1, 0 },
	{ "GET", "/metrics", h_metrics, -1, 0 },
};

#define NROUTES (sizeof routes / sizeof routes[0])

static struct mx_family *mx_requests;
static struct mx_family *mx_latency;

void route_init(void)
{
	mx_requests = mx_counter("enrichd_http_requests_total",
				 "HTTP requests answered, by route and status.");
	mx_latency = mx_histogram("enrichd_http_request_duration_seconds",
				  "Time to answer a request, by route.", mx_latency_bounds,
				  mx_latency_nbounds);
}

/* Match path against pattern; on success keep the {id} captures in r. */
static bool match(struct http_req *r, const char *pattern, const char *path)
{
	if (!rt_match(pattern, path, &r->match))
		return false;
	r->nparams = r->match.n;
	for (unsigned i = 0; i < r->match.n; i++)
		r->params[i] = r->match.cap[i];
	return true;
}

static const struct route *find_route(struct http_req *r, char *allow, size_t allowlen)
{
	const struct route *hit = NULL;
	size_t o = 0;

	allow[0] = '\0';
	for (size_t i = 0; i < NROUTES; i++) {
		if (!match(r, routes[i].pattern, r->path))
			continue;
		if (strcmp(routes[i].method, r->method) == 0 ||
		    (strcmp(r->method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
			hit = &routes[i];
			break;
		}
		if (!strstr(allow, routes[i].method)) {
			int n = snprintf(allow + o, allowlen - o, "%s%s", o ? ", " : "",
					 routes[i].method);

			if (n > 0 && (size_t)n < allowlen - o)
				o += (size_t)n;
		}
	}
	if (hit)
		match(r, hit->pattern, r->path); /* captures of the chosen route */
	return hit;
}

static void observe(struct http_req *r)
{
	char labels[LIM_METRIC_LABELS_MAX];
	char route[128];
	double secs = (double)(util_mono_us() - r->start_us) / 1e6;

	mx_label(r->route ? r->route : "unmatched", route, sizeof route);
	snprintf(labels, sizeof labels, "route=\"%s\",status=\"%d\"", route, r->status);
	mx_add(mx_requests, labels, 1);
	snprintf(labels, sizeof labels, "route=\"%s\"", route);
	mx_observe(mx_latency, labels, secs);
	log_access(r->method, r->path, r->status, secs * 1000.0);
}

void route_dispatch(struct http_req *r)
{
	char allow[64];
	const struct route *rt = find_route(r, allow, sizeof allow);
	enum enr_err rc;

	if (rt == NULL) {
		if (allow[0]) {
			http_set_header(r, "Allow", allow);
			http_error(r, ENR_E_METHOD, NULL, NULL);
		} else {
			http_error(r, ENR_E_NOT_FOUND, NULL, NULL);
		}
		goto out;
	}
	r->route = rt->pattern;
	if (rt->endpoint >= 0 && !r->cfg->endpoints[rt->endpoint].enabled) {
		http_error(r, ENR_E_DISABLED, "this endpoint is disabled by configuration", NULL);
		goto out;
	}
	rc = rt->handler(r);
	if (!r->responded)
		http_error(r, rc ? rc : ENR_E_INTERNAL, NULL, NULL);
out:
	observe(r);
}
