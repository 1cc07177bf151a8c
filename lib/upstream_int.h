/*
 * upstream_int.h - the rules of one provider call, shared by the blocking
 * client (lib/upstream.c) and the event loop's libcurl transfers
 * (lib/evcurl.c), so both call providers the same way.
 *
 * Prefix: up_.  Internal to lib/.  The rules: https:// only (http:// to a
 * loopback host, for tests: cfg_url_check), GET or POST, a positive
 * timeout, no redirects, TLS peer and host verification, a capped body,
 * response headers kept with lower-cased names and trimmed values, only
 * the final header block after a 1xx.  A call is: up_call_check (also what
 * the fake transfer layer of the tests applies), up_call_begin on a reset
 * easy handle, the transfer (curl_easy_perform or the multi interface),
 * up_call_end.  Request headers carry API keys: the list built by
 * up_call_begin is wiped by up_call_end.
 */
#ifndef ENR_UPSTREAM_INT_H
#define ENR_UPSTREAM_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "upstream.h"

/* What the capture callbacks share during one call (caller-owned). */
struct up_capture {
	struct up_response *out;
	size_t body_max;
	bool too_large;
	bool nomem;
};

/* ENR_OK when req may be made with timeout_ms: method GET or POST, a URL
 * the rule above allows, timeout_ms > 0; ENR_E_INVALID otherwise. */
ENR_MUST_CHECK enum enr_err up_call_check(const struct prov_request *req, int timeout_ms);

/* Forget what out held from an earlier call (keeps its memory). */
void up_response_clear(struct up_response *out);

/* Start capturing into out with body cap body_max (0 or above the ceiling:
 * LIM_UPSTREAM_BODY_MAX): clears out and fills c. */
void up_capture_init(struct up_capture *c, struct up_response *out, size_t body_max);

/* libcurl write and header callbacks (userdata: struct up_capture *).
 * Also fed by hand by the fake transfer layer. */
size_t up_capture_body(char *data, size_t size, size_t nmemb, void *ud);
size_t up_capture_header(char *data, size_t size, size_t nmemb, void *ud);

/* End a capture: complete says whether a whole answer arrived (status is
 * its HTTP status); otherwise what was captured is dropped, so the adapter
 * classifies the call as transient rather than reading half an answer, and
 * error (a static text, "response too large" when the body cap was hit)
 * and timed_out say why.  Fills the view c->out->resp.  ENR_E_NOMEM when
 * the capture ran out of memory (out is then empty). */
ENR_MUST_CHECK enum enr_err up_capture_end(struct up_capture *c, bool complete, long status,
					   bool timed_out, const char *error, double elapsed_ms);

/* Check req and set every option of the call on h (freshly created or
 * curl_easy_reset): URL, protocols, no redirects, timeouts, TLS checks,
 * keep-alive probes, headers, capture callbacks into c, method and body
 * (copied into the handle, so req may go once this returns).  *hdrs gets
 * the header list to hand to up_call_end.  ENR_E_INVALID (up_call_check),
 * ENR_E_NOMEM; on error nothing is left to free. */
ENR_MUST_CHECK enum enr_err up_call_begin(CURL *h, const struct prov_request *req, int timeout_ms,
					  struct up_capture *c, struct curl_slist **hdrs);

/* The call on h ended with cc: fill c->out (status, elapsed time, error,
 * the view in resp), unhook h from c and hdrs, wipe and free hdrs.
 * ENR_E_NOMEM when the capture ran out of memory (out is then empty). */
ENR_MUST_CHECK enum enr_err up_call_end(CURL *h, CURLcode cc, struct up_capture *c,
					struct curl_slist *hdrs);

/* Wipe and free a header list (its lines hold the key). */
void up_free_slist(struct curl_slist *l);

#endif
