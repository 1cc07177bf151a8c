/*
 * pdl_int.h - what the People Data Labs enrichment adapter (pdl.c) shares
 * with its search adapter (pdl_search.c); no other module includes it.
 *
 * Prefix: pdl_.  The meters and the reset times are the same on every PDL
 * endpoint (docs/providers.md, "People Data Labs").
 */
#ifndef ENR_PROVIDERS_PDL_INT_H
#define ENR_PROVIDERS_PDL_INT_H

#include "lib/provider.h"

/* The meters of any PDL answer into out: requests left, credits left,
 * x-call-credits-spent. */
void pdl_read_meters(const struct prov_response *r, struct prov_result *out);

/* Status-table handlers: when a 402's credits and a 429's window come
 * back (x-ratelimit-reset, else Retry-After for a 429). */
void pdl_quota_until(const struct prov_answer *a, struct prov_result *out);
void pdl_rate_until(const struct prov_answer *a, struct prov_result *out);

/* Where a person's fields are in a PDL person record, in preference
 * order: the first value found for a field wins (docs/providers.md). */
struct pdl_path {
	enum fld_id f;
	const char *path;
};
extern const struct pdl_path pdl_person_paths[];
extern const size_t pdl_person_npaths;

#endif
