/*
 * alert.h - telling an operator that the key pool is in trouble.
 *
 * Prefix: alert_.  Every alert is a warning log line; when the
 * configuration names alerts.webhook_url it is also POSTed there as JSON by
 * a background thread (never on the request's time), retried a few times.
 * "Pool dry" alerts are sent at most once a minute per provider and
 * process.  Thread-safe.
 */
#ifndef ENR_ALERT_H
#define ENR_ALERT_H

#include <stdint.h>

#include "config.h"
#include "keypool.h"

/* A key became invalid or exhausted. */
void alert_key(const struct cfg *cfg, const struct kp_key *k);

/* A provider has no usable key; back_ms is when one comes back (0 unknown). */
void alert_pool_dry(const struct cfg *cfg, const char *provider, int64_t back_ms);

/* Deliver what is queued (waiting at most timeout_ms) and stop the thread. */
void alert_shutdown(int timeout_ms);

#endif
