/*
 * service.h - the composition root: what a process of the service (the
 * responder, enrich-worker, enrich-batch) builds from its configuration
 * before it serves, how a new configuration is applied, what it writes
 * back now and then, and how it comes apart.
 *
 * Prefix: svc_.  One struct svc per process, opened and closed on one
 * thread; svc_reload and svc_flush from the thread that owns it (the main
 * thread, on SIGHUP and on its tick).  Members are read-only for users.
 */
#ifndef ENR_SERVICE_H
#define ENR_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "admission.h"
#include "config.h"
#include "domains.h"
#include "engine.h"
#include "err.h"
#include "provider.h"
#include "store.h"

/* What the process needs beyond the store and the bundled lists. */
struct svc_opts {
	bool keys;        /* record the configured provider keys (false: a dry run
			   * whose configuration has no secrets) */
	bool http;        /* the HTTP client (false: no provider will be called) */
	bool admission;   /* admission and usage counting */
	bool leases;      /* ... with leases and the usage journal in state_dir (a
			   * long-running process; false asks the store each time) */
	bool engine;      /* start the engine now (false: plain CGI, or started later
			   * with svc_engine_start) */
	bool history;     /* applied configurations are kept in state_dir's history */
};

struct svc {
	struct svc_opts o;
	struct store *store;
	struct dom_lists *lists;  /* NULL when they could not be loaded */
	struct prov_ctx pctx;
	struct adm *adm;          /* NULL without admission */
	struct eng *engine;       /* NULL without an engine: every wait blocks in place */
};

/* Build s from cfg (borrowed).  On failure why (whylen bytes) says what did
 * not start; what was built is taken apart again. */
ENR_MUST_CHECK enum enr_err svc_open(const struct cfg *cfg, const struct svc_opts *o,
				     struct svc *s, char *why, size_t whylen);

/* Start the engine (when svc_open did not).  Signals the caller wants to
 * take itself must be blocked first: the engine's threads inherit the mask. */
ENR_MUST_CHECK enum enr_err svc_engine_start(struct svc *s, const struct cfg *cfg);

/* Stop the engine (continuations still in flight are abandoned: drain
 * first); what follows waits in place again.  Nothing when there is none. */
void svc_engine_stop(struct svc *s);

/* Record cfg, read from path, as applied in the history (with o.history);
 * sha (CH_SHA_HEX bytes) gets its checksum, or "unknown". */
void svc_record_applied(const struct svc *s, const struct cfg *cfg, const char *path, char *sha);

/* The one reload: read path; refuse it (and keep the running snapshot)
 * when it does not load or its keys cannot be recorded; warn about what
 * changes only on restart; apply the log settings; record it; publish it.
 * ENR_OK when the new snapshot is the current one. */
enum enr_err svc_reload(struct svc *s, const char *path);

/* Write what the process counts in memory (key counters, savings, usage);
 * what the store refuses is logged and kept for the next time. */
void svc_flush(struct svc *s);

/* Wait until no continuation is in flight or the monotonic deadline
 * passes; true when none is left. */
bool svc_drain(struct svc *s, int64_t deadline_mono_ms);

/* Stop the engine, write what is counted in memory, close everything.
 * Safe on a struct svc that svc_open failed on or that is all zeros. */
void svc_close(struct svc *s);

#endif
