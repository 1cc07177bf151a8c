/*
 * upstream.h - the HTTP client that calls providers.
 *
 * Prefix: up_.  libcurl with one reusable easy handle per thread, so
 * connections and TLS sessions are reused across calls.  Every call has a
 * timeout, follows no redirect, accepts HTTPS only (plain HTTP only to a
 * loopback address, for tests), caps the response body, and captures
 * response headers with lower-cased names.  A transport failure is not an
 * error of up_perform: it returns ENR_OK with status 0 (or timed_out set),
 * and the adapter classifies that as transient.
 */
#ifndef ENR_UPSTREAM_H
#define ENR_UPSTREAM_H

#include "buf.h"
#include "err.h"
#include "provider.h"

/* A response owned by the caller (up_response_init / up_response_release).
 * resp is a view over the other members, valid until release or the next
 * up_perform with the same struct. */
struct up_response {
	struct prov_response resp;
	struct buf body;
	struct prov_header *headers;
	size_t nheaders, aheaders;
	double elapsed_ms;
	char error[128];    /* transport error for logs ("" when none); no secrets */
};

void up_response_init(struct up_response *r);
void up_response_release(struct up_response *r);

/* Once per process, before any thread calls up_perform. */
ENR_MUST_CHECK enum enr_err up_global_init(void);

/* Perform req with a total timeout and a body cap (bytes).  ENR_E_INVALID
 * for a URL that is not https:// (or http:// to loopback); ENR_E_NOMEM.
 * Everything the network does wrong is reported in *out (status 0,
 * timed_out, error) with ENR_OK.  Thread-safe (per-thread handle). */
ENR_MUST_CHECK enum enr_err up_perform(const struct prov_request *req, int timeout_ms, size_t body_max,
			struct up_response *out);

/* Free the calling thread's handle (call when a thread ends). */
void up_thread_cleanup(void);

#endif
