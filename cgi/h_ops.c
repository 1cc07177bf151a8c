/*
 * h_ops.c - operational endpoints: /health and /metrics.
 */
#include <jansson.h>

#include "lib/metrics.h"
#include "routes.h"

#ifndef ENRICHD_VERSION
#define ENRICHD_VERSION "0.0.0"
#endif

enum enr_err h_health(struct http_req *r)
{
	json_t *j = json_pack("{s:s, s:s}", "status", "ok", "version", ENRICHD_VERSION);

	if (j == NULL)
		return ENR_E_NOMEM;
	http_json(r, 200, j);
	return ENR_OK;
}

enum enr_err h_metrics(struct http_req *r)
{
	struct buf b;
	enum enr_err rc;

	buf_init(&b, 0);
	rc = mx_render(&b);
	if (rc == ENR_OK)
		http_send(r, 200, "text/plain; version=0.0.4", buf_cstr(&b), b.len);
	buf_release(&b);
	return rc;
}
