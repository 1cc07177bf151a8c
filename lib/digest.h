/*
 * digest.h - SHA-256 without a lookup or an allocation per call.
 *
 * Prefix: dg_.  EVP_Digest with EVP_sha256() fetches the algorithm and
 * allocates a context on every call; on the request path (client keys,
 * cache keys) that is a cost each request pays.  Here the algorithm is
 * fetched once and each thread keeps one context, freed when the thread
 * ends.  Safe from any thread; a call never yields.
 */
#ifndef ENR_DIGEST_H
#define ENR_DIGEST_H

#include <stddef.h>

#include "err.h"

#define DG_SHA256_LEN 32

/* The SHA-256 of the n bytes at p.  ENR_E_NOMEM when no digest could be
 * had at all (out is then zeroed, never left half-written). */
ENR_MUST_CHECK enum enr_err dg_sha256(const void *p, size_t n, unsigned char out[DG_SHA256_LEN]);

/* The SHA-256 of the parts (lens[i] bytes at parts[i]) run together, as if
 * they were one buffer: how a key built of several strings is hashed
 * without being copied into one. */
ENR_MUST_CHECK enum enr_err dg_sha256_parts(const void *const *parts, const size_t *lens,
					    int nparts, unsigned char out[DG_SHA256_LEN]);

#endif
