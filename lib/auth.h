/*
 * auth.h - client API keys: generation, hashing, header parsing, scopes.
 *
 * Prefix: auth_.  A key is "enr_" followed by 40 lower-case hex digits
 * (160 random bits from getrandom).  Only its SHA-256 and its last four
 * characters are stored; the key itself is shown once, at creation.
 * Pure functions except auth_key_generate (randomness); thread-safe.
 */
#ifndef ENR_AUTH_H
#define ENR_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define AUTH_KEY_PREFIX "enr_"
#define AUTH_KEY_LEN 44            /* "enr_" + 40 hex */
#define AUTH_HASH_LEN 32           /* SHA-256 */

#define AUTH_SCOPE_ENRICH  1u
#define AUTH_SCOPE_ENQUEUE 2u
#define AUTH_SCOPE_ADMIN   4u
#define AUTH_SCOPE_METRICS 8u      /* scrape /metrics, not rate-limited */
#define AUTH_SCOPE_SEARCH  16u     /* POST /search/people, /search/companies */
#define AUTH_SCOPE_ALL     31u

/* A new key into out (AUTH_KEY_LEN + 1 bytes). */
ENR_MUST_CHECK enum enr_err auth_key_generate(char out[AUTH_KEY_LEN + 1]);

/* True when s has the shape of a key (prefix, length, hex digits). */
bool auth_key_shape_ok(const char *s, size_t len);

/* SHA-256 of the key's bytes. */
void auth_key_hash(const char *key, size_t len, unsigned char out[AUTH_HASH_LEN]);

/* Find the key a request presents: "Authorization: Bearer <key>" (scheme
 * case-insensitive, RFC 6750 2.1) or "X-API-Key: <key>".  Either header may
 * be NULL.  Writes the key (AUTH_KEY_LEN + 1 bytes) and returns ENR_OK;
 * ENR_E_UNAUTHORIZED when no key is presented, when the header is
 * malformed, when the key does not have the key shape, or when both
 * headers carry different keys. */
ENR_MUST_CHECK enum enr_err auth_parse_headers(const char *authorization, const char *x_api_key,
				char out[AUTH_KEY_LEN + 1]);

/* Parse "enrich,enqueue,admin,metrics,search" (any order, no blanks) into scope bits. */
ENR_MUST_CHECK enum enr_err auth_scopes_parse(const char *s, unsigned *out);

/* Write scope names "enrich,enqueue" into out (size >= 40). */
void auth_scopes_format(unsigned scopes, char *out, size_t outsz);

#endif
