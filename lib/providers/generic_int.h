/*
 * generic_int.h - what the generic adapter (generic.c) shares with its
 * search blocks (generic_search.c); no other module includes it.
 *
 * Prefix: generic_.
 */
#ifndef ENR_PROVIDERS_GENERIC_INT_H
#define ENR_PROVIDERS_GENERIC_INT_H

#include <stdbool.h>

#include "lib/provider.h"

/* The configured status lists of a generic block. */
struct generic_statuses {
	const struct cfg_int_list *miss, *key_invalid, *quota_exhausted, *rate_limited,
		*request_rejected;
	bool miss_default_404;  /* a miss list left out means 404 (lookups) or none (search) */
};

/* The configured lists decide; a list left out of the configuration takes
 * the value docs/providers.md shows (key_invalid 401 and 403,
 * quota_exhausted 402, rate_limited 429, request_rejected 400, miss as
 * st says).  Every configured list is consulted before any default.
 * False: no rule names the status. */
bool generic_classify(const struct generic_statuses *st, long status, enum prov_outcome *out);

#endif
