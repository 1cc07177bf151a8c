/*
 * admission.h - rate limits, quotas and usage for a process, with short
 * leases so that a busy account does not cost a database write per
 * request.
 *
 * Prefix: adm_.  This module decides; the store keeps (st_adm_update: the
 * account's bucket and windows are read, decided on here and written
 * back under the account row's lock, with the usage of the admission in
 * the same transaction).  So limits hold exactly across threads,
 * processes and hosts.  For accounts with high limits a process takes a
 * few extra tokens/records at once (at most a tenth of a second of the
 * account's rate, a tenth of its burst, and 256) and hands them out from
 * memory for up to half a second; what is not used in that time is
 * dropped (a process can under-admit slightly, never over-admit: the
 * leases of all processes together never exceed the bucket).  Accounts
 * with small limits get no lease, so their limits are exact to the
 * request.
 *
 * Usage of requests served from a lease is counted in a usage journal
 * (lib/usage_journal.h) that survives a crash of the process; adm_flush
 * writes it to the store (about once a second, and at shutdown) and
 * replays journals that processes which died left behind.  Usage of
 * every admission decided by the store is written with it.  A failed
 * write never drops a count.
 *
 * Thread-safe.
 */
#ifndef ENR_ADMISSION_H
#define ENR_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

enum adm_verdict { ADM_OK, ADM_RATE_LIMITED, ADM_QUOTA, ADM__MAX };

struct adm_res {
	enum adm_verdict verdict;
	int64_t retry_after_s;     /* when denied */
	int64_t bucket_remaining;  /* whole tokens left */
	int64_t bucket_reset_s;    /* until the bucket is full */
	int64_t hour_remaining, hour_reset_s;
	int64_t day_remaining, day_reset_s;
	int64_t records_fit;       /* ADM_QUOTA: how many records would fit now */
};

struct adm;

/* A new admission state over s.  leasing false (CGI: one request per
 * process) makes every call a store call and needs no journal.
 * state_dir (may be NULL) holds the usage journal; without one, usage of
 * leased requests is kept in memory until the next flush (a crash loses
 * it) and a warning is logged. */
struct adm *adm_new(struct store *s, bool leasing, const char *state_dir);
/* Flush, close the journal and free.  adm_free(NULL) does nothing. */
void adm_free(struct adm *a);

/* Admit cost tokens and records for account_id under lim.  Fills *res
 * (remaining counts are this process's best knowledge). */
enum enr_err adm_check(struct adm *a, int64_t account_id, const struct cfg_account_limits *lim,
		       int cost, int64_t records, int64_t now_ms, struct adm_res *res) ENR_MUST_CHECK;

/* Give back records admitted by adm_check that were not used after all
 * (a batch that could not be stored): the quota windows and the day's
 * usage go down by records.  The request itself stays counted. */
enum enr_err adm_refund(struct adm *a, int64_t account_id, const struct cfg_account_limits *lim,
			int64_t records, int64_t now_ms) ENR_MUST_CHECK;

/* Count credits spent upstream for the account (journalled when leasing,
 * written at once otherwise).  A failed write keeps the count for the
 * next flush; an error only when the count could not be kept at all. */
enum enr_err adm_add_credits(struct adm *a, int64_t account_id, int64_t credits, int64_t now_ms) ENR_MUST_CHECK;

/* Write the usage counted in memory or in the journal; replay journals of
 * processes that died (at most every few seconds).  Nothing is lost when
 * it fails; the next flush tries again. */
enum enr_err adm_flush(struct adm *a, int64_t now_ms) ENR_MUST_CHECK;

#endif
