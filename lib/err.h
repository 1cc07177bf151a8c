/*
 * err.h - the project-wide error type.
 *
 * Prefix: enr_.  Every fallible function in lib/ returns an enum enr_err;
 * ENR_OK is zero so `if (rc)` reads naturally.  Each code has a human
 * message, a stable machine code (the "code" member of the JSON error
 * body) and the HTTP status the responder answers with.  Only cgi/ turns
 * a code into a status; lib/ only returns codes.
 */
#ifndef ENR_ERR_H
#define ENR_ERR_H

enum enr_err {
	ENR_OK = 0,
	ENR_E_INVALID,       /* bad input from a client: 400 invalid_request */
	ENR_E_UNAUTHORIZED,  /* 401 */
	ENR_E_FORBIDDEN,     /* 403 */
	ENR_E_NOT_FOUND,     /* 404 */
	ENR_E_METHOD,        /* 405 */
	ENR_E_CONFLICT,      /* 409 */
	ENR_E_TOO_LARGE,     /* 413 */
	ENR_E_MEDIA_TYPE,    /* 415 */
	ENR_E_RATE_LIMITED,  /* 429 rate_limited */
	ENR_E_QUOTA,         /* 429 quota_exceeded */
	ENR_E_BUDGET,        /* 429 budget_exceeded: the account's credit budget is spent */
	ENR_E_NOMEM,         /* 500 */
	ENR_E_INTERNAL,      /* 500: a bug or an impossible state */
	ENR_E_IO,            /* 500: a system call failed */
	ENR_E_STORE,         /* 500: the store failed a statement */
	ENR_E_CONFIG,        /* a configuration file failed validation */
	ENR_E_UPSTREAM,      /* 502: a provider answered garbage */
	ENR_E_DISABLED,      /* 503 endpoint_disabled */
	ENR_E_UNAVAILABLE,   /* 503: nothing could answer (store down, no key) */
	ENR_E_TIMEOUT,       /* 504 */
	ENR_E_RANGE,         /* a number outside its range (parse helpers) */
	ENR__MAX
};

/* On every function returning enum enr_err (prototypes in lib/): a caller
 * that drops the result is a build error.  Where a result genuinely does
 * not matter, the call site says why in a comment and passes the result to
 * enr_ignore(); a (void) cast does not count (GCC ignores it on purpose). */
#if defined(__GNUC__) || defined(__clang__)
#define ENR_MUST_CHECK __attribute__((warn_unused_result))
#else
#define ENR_MUST_CHECK
#endif

/* Drop a result on purpose (see ENR_MUST_CHECK): say why next to the call. */
static inline void enr_ignore(enum enr_err e)
{
	(void)e;
}

/* A static English sentence describing the code.  Never NULL. */
const char *enr_strerror(enum enr_err e);

/* The stable machine code used in JSON error bodies ("invalid_request",
 * "rate_limited", ...).  Never NULL. */
const char *enr_code(enum enr_err e);

/* The HTTP status an error answers with (200 for ENR_OK). */
int enr_http_status(enum enr_err e);

/* The reason phrase of an HTTP status ("Not Found"); "Unknown" otherwise. */
const char *enr_http_reason(int status);

#endif
