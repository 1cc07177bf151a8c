/*
 * admission.h - rate limits and quotas for a long-running process, with
 * short leases so that a busy account does not cost a database write per
 * request.
 *
 * Prefix: adm_.  Every token and record a process admits is first taken
 * from the shared bucket and windows in the store (st_admit), so limits
 * hold across threads, processes and hosts: the total admitted never
 * exceeds the bucket's arithmetic.  For accounts with high limits the
 * process takes a few extra tokens/records at once (at most a tenth of a
 * second of the account's rate, a tenth of its burst, and 256) and hands
 * them out from memory for up to half a second; what is not used in that
 * time is dropped (a process can under-admit slightly, never over-admit).
 * Accounts with small limits get no lease, so their limits are exact to
 * the request.  Usage counts are kept in memory and written with the next
 * store call or adm_flush() (at least once a second, and at shutdown).
 *
 * Thread-safe.
 */
#ifndef ENR_ADMISSION_H
#define ENR_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

struct adm;

/* A new admission state over s.  leasing false (CGI: one request per
 * process) makes every call a store call. */
struct adm *adm_new(struct store *s, bool leasing);
void adm_free(struct adm *a);

/* Admit cost tokens and records for account_id under lim.  Fills *res like
 * st_admit (remaining counts are this process's best knowledge). */
ENR_MUST_CHECK enum enr_err adm_check(struct adm *a, int64_t account_id, const struct cfg_account_limits *lim,
		       int cost, int64_t records, int64_t now_ms, struct st_admit_res *res);

/* Count credits spent upstream for the account (written with the next
 * flush when leasing, at once otherwise: then the store's error). */
ENR_MUST_CHECK enum enr_err adm_add_credits(struct adm *a, int64_t account_id, int64_t credits,
					    int64_t now_ms);

/* Write the usage counted in memory.  Counts leave memory only once
 * written: on a failed write they stay for the next flush, and the first
 * error is returned. */
ENR_MUST_CHECK enum enr_err adm_flush(struct adm *a, int64_t now_ms);

#endif
