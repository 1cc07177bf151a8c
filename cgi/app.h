/*
 * app.h - the responder's process-wide state: what every request shares
 * besides the configuration snapshot (the store, the key pool, ...).
 *
 * Prefix: app_.  app_init() runs once before serving (the configuration
 * read from path), app_reload() on SIGHUP (lib/service.h's svc_reload:
 * runtime state such as buckets and key cool-downs lives in the store and
 * survives it), app_thread_exit() when a responder thread ends,
 * app_shutdown() last.
 */
#ifndef ENR_APP_H
#define ENR_APP_H

#include <stdbool.h>

#include "lib/config.h"
#include "lib/err.h"
#include "lib/admission.h"
#include "lib/domains.h"
#include "lib/engine.h"
#include "lib/provider.h"
#include "lib/store.h"

/* Mark this process as a one-request CGI program (no background work). */
void app_cgi_mode(void);

enum enr_err app_init(const struct cfg *cfg, const char *path);
void app_reload(const char *path);
void app_thread_exit(void);
void app_shutdown(void);

/* Wait for the requests in flight on the engine's loop (SIGTERM), until
 * the monotonic deadline; true when none is left. */
bool app_drain(int64_t deadline_mono_ms);

/* The engine (NULL in CGI mode): its cap on requests in flight. */
struct eng *app_engine(void);

/* The store (valid between app_init and app_shutdown). */
struct store *app_store(void);

/* The bundled free/disposable e-mail domain lists (NULL when they could
 * not be loaded) and the context built-in providers read. */
const struct dom_lists *app_lists(void);
const struct prov_ctx *app_prov_ctx(void);

/* Admission (rate limits, quotas, usage) shared by the process's threads. */
struct adm *app_admission(void);

/* Periodic work for the main thread (about once a second): probe that the
 * store takes writes, write usage, key counters and savings counted in
 * memory, purge expired cache entries and lookup claims. */
void app_tick(void);

/* Whether the store took the last probe write: the verdict of the main
 * thread's once-a-second probe (a plain CGI process probes on the spot).
 * Thread-safe. */
bool app_store_writable(void);

#endif
