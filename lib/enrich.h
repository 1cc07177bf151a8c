/*
 * enrich.h - the POST /enrich request and response.
 *
 * Prefix: en_.  en_parse validates a body against the table of members
 * (identifiers as strings up to limits.field_max_bytes, "enrich" as an
 * array of field names), rejects unknown members, wrong types and
 * duplicate keys, normalises the identifiers (lib/record) and reports every
 * problem as {"field", "problem"}.  en_response renders a waterfall result
 * in the flat shape existing clients parse.  Pure functions; thread-safe.
 */
#ifndef ENR_ENRICH_H
#define ENR_ENRICH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "config.h"
#include "domains.h"
#include "fields.h"
#include "record.h"
#include "waterfall.h"

struct en_request {
	struct rec rec;   /* normalised identifiers */
	fld_set want;     /* fields to enrich (all when the client named none) */
};

void en_request_init(struct en_request *r);
void en_request_release(struct en_request *r);

/* Parse body (len bytes).  ENR_E_INVALID with *details (a JSON array the
 * caller owns, NULL on success) naming each problem; ENR_E_NOMEM. */
ENR_MUST_CHECK enum enr_err en_parse(const char *body, size_t len, const struct cfg *cfg,
		      const struct dom_lists *lists, struct en_request *out, json_t **details);

/* Parse one record given as a JSON object (batch rows use the same rules
 * without "enrich"): fills rec, normalised.  ENR_E_INVALID with *details. */
ENR_MUST_CHECK enum enr_err en_parse_record(json_t *obj, const struct cfg *cfg, const struct dom_lists *lists,
			     bool allow_enrich, struct en_request *out, json_t **details);

/* The response body for r: wanted fields at the top level (null when not
 * found) and _meta: request_id, status (complete, partial, not_found,
 * incomplete), sources, providers_tried, providers_skipped and errors
 * ([{"provider", "outcome"}], only when a provider gave no answer), cached,
 * mock, credits_used, elapsed_ms.  Written at the end of out (compact JSON,
 * no newline); ENR_E_NOMEM or the buffer's cap on failure, with out
 * holding part of it. */
ENR_MUST_CHECK enum enr_err en_response(const struct wf_result *r, const char *request_id,
					int64_t elapsed_ms, struct buf *out);

#endif
