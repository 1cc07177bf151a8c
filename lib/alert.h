/*
 * alert.h - telling an operator that the key pool is in trouble.
 *
 * Prefix: alert_.  Every alert is a warning log line and an entry in the
 * store's list of recent alerts (GET /admin/alerts, the console); when the
 * configuration names alerts.webhook_url it is also POSTed there as JSON by
 * a background thread (never on the request's time), retried a few times.
 * "Pool dry" and "budget spent" alerts are raised at most once a minute per
 * provider (budget) and process.  An alert the store cannot take is still
 * logged and sent.  Thread-safe.
 */
#ifndef ENR_ALERT_H
#define ENR_ALERT_H

#include <stdint.h>

#include "config.h"
#include "keypool.h"
#include "store.h"

/* Days an alert stays in the store's list (app_tick purges older ones). */
#define ALERT_KEEP_DAYS 30

/* A key became invalid or exhausted.  st may be NULL (no list entry). */
void alert_key(const struct cfg *cfg, struct store *st, const struct kp_key *k);

/* A provider has no usable key; back_ms is when one comes back (0 unknown). */
void alert_pool_dry(const struct cfg *cfg, struct store *st, const char *provider, int64_t back_ms);

/* A credit budget is spent (provider "" for a client account's budget,
 * scope as lib/budget.h names it, what in words, until_ms when it resets,
 * 0 unknown); at most once a minute per budget and process.  st may be
 * NULL (no list entry). */
void alert_budget(const struct cfg *cfg, struct store *st, const char *provider, const char *scope,
		  const char *what, int64_t until_ms);

/* Deliver what is queued (waiting at most timeout_ms) and stop the thread. */
void alert_shutdown(int timeout_ms);

#endif
