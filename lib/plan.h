/*
 * plan.h - the waterfall's planner: which lookup to make next for one
 * enrichment, given what it wants, what it has found and which lookups it
 * made and how they ended.
 *
 * Prefix: pl_.  Pure: no I/O, no clock, no store.  A driver (lib/waterfall
 * today, synchronously; an event loop later) asks pl_next() for the next
 * lookup, performs it (cache, in-flight coalescing, budgets, the provider
 * through lib/rotation or lib/bulk) and reports how it ended with
 * pl_done(); pl_next() returns NULL once nothing is left to ask.  One
 * lookup is outstanding at a time per plan (a waterfall asks the next
 * provider only for what the previous one left missing); a driver runs
 * many plans at once to batch their lookups.
 *
 * The rules (docs/architecture.md, "The waterfall planner"):
 *   - A lookup is keyed by what it asks about: a person lookup by the
 *     person's identifiers, a company lookup by the company's key (the
 *     registrable domain, else the normalised name) and nothing else, so
 *     every person of one company shares one company answer.
 *   - Within one plan no provider gets the same lookup twice, whatever
 *     the order of the groups.
 *   - For each wanted field group the providers are walked in order; a
 *     provider is asked only when its lookup can supply a field still
 *     missing (prov_ops.supplies), for everything still missing.  In the
 *     company group the company lookup comes first; without a company
 *     key, the person lookup (it carries company name, industry, size).
 *   - A person miss does not stop the company groups; a person hit that
 *     names the company (its domain, a business e-mail's domain, else its
 *     name) gives the plan its company key when the input had none.
 *   - pl_identifiable() says whether any configured provider could look
 *     the input up for a wanted field at all (a first name alone: no).
 *
 * The plan borrows the configuration, the record and the result it fills
 * (struct wf_result, lib/waterfall.h); all three outlive it.  Not
 * thread-safe (one driver at a time per plan).
 */
#ifndef ENR_PLAN_H
#define ENR_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "domains.h"
#include "fields.h"
#include "provider.h"
#include "record.h"
#include "rotation.h"
#include "waterfall.h"

#define PL_LOOKUPS_MAX (WF_PROVIDERS_MAX * 2)
#define PL_COMPANY_KEY_MAX 300
/* A company name from a person answer, kept to ask for the company: one
 * longer than this is no name (the plan then has no company key). */
#define PL_FED_NAME_MAX 255

/* How a lookup ended, as the driver reports it. */
enum pl_end {
	PL_ANSWERED,       /* a hit or a miss is in the answer (live or cached) */
	PL_NO_KEY,         /* no usable key (comes_back_ms says when one returns) */
	PL_DEADLINE,       /* the deadline passed first: the walk stops */
	PL_REJECTED,       /* every usable key was refused this request */
	PL_FAILED,         /* transient failures on every key tried */
	PL_TIMEOUT,        /* as PL_FAILED, the last call timed out */
	PL_NOT_APPLICABLE, /* the provider could not search by the query after all */
	PL_BUDGET,         /* the client's credit budget refused it: no paid lookup follows */
	PL_DRY,            /* a dry run: it would have been made (not in the cache) */
	PL_END__MAX
};

extern const char *const pl_end_names[PL_END__MAX];

/* One lookup of a plan.  q's identifiers point into the record (person)
 * or into the plan (company). */
struct pl_lookup {
	const struct cfg_provider *p;
	enum prov_kind kind;              /* PROV_KIND_PERSON or PROV_KIND_COMPANY */
	struct prov_query q;              /* what is asked; want: everything still missing */
	unsigned char key[CACHE_KEY_LEN]; /* its cache and in-flight key */
	bool builtin;                     /* local or mock: answered in process, never cached */
	bool done;
};

/* How a lookup went, for pl_done(). */
struct pl_answer {
	enum pl_end end;
	const struct prov_result *res;    /* PL_ANSWERED: the answer (hit or miss) */
	bool cached;                      /* answered from the cache */
	bool coalesced;                   /* from the cache, after waiting for another caller */
	int64_t comes_back_ms;            /* PL_NO_KEY: wall-clock ms, 0 unknown */
	int64_t until_ms;                 /* PL_BUDGET: when the budget resets */
};

struct pl_plan {
	const struct cfg *cfg;
	const struct dom_lists *lists;
	const struct rec *rec;
	struct wf_result *out;

	/* The company: where its lookup's query points, and its key
	 * ("d:acme.com" or "n:acme corp"; "" while unknown). */
	char company_domain[254];
	const char *company_name;         /* into rec, or fed_name; NULL while unknown */
	char fed_name[PL_FED_NAME_MAX + 1]; /* a name a person answer gave */
	char company_key[PL_COMPANY_KEY_MAX];
	bool company_fed;                 /* the key came from a person answer */

	int group, pos;                   /* where the walk is */
	/* Its lookups, nlk of cap: allocated at the first, sized to the
	 * configuration (a person and a company lookup per provider). */
	struct pl_lookup *lk;
	int nlk, cap;
	int active;                       /* index of the lookup being made, -1 none */
	bool no_paid;                     /* a budget refused: builtins only from now on */
	bool finished;
};

/* Start a plan for rec (normalised) and want; out is initialised by the
 * caller (wf_result_init) and receives want, the merged fields and the
 * bookkeeping.  lists (may be NULL) tell free-mail domains apart. */
void pl_init(struct pl_plan *pl, const struct cfg *cfg, const struct dom_lists *lists,
	     const struct rec *rec, fld_set want, struct wf_result *out);

/* The next lookup to make, or NULL when the plan is finished (or while
 * its lookup is outstanding).  The pointer stays valid until
 * pl_finish.  ENR_E_NOMEM only when a cache key could not be built (the plan
 * is then finished). */
struct pl_lookup *pl_next(struct pl_plan *pl);

/* Report how lk ended; merges an answer field by field (the first value
 * found wins) and notes errors, skips and credits in out.  A person hit
 * may give the plan its company key. */
void pl_done(struct pl_plan *pl, struct pl_lookup *lk, const struct pl_answer *a);

/* Set out->status (complete, partial, not_found, incomplete) from what
 * was found and what failed, and free the plan's lookups (what pl_next
 * returned is gone).  Call once for every plan started, when it is
 * finished or abandoned. */
void pl_finish(struct pl_plan *pl);

/* True when the plan still needs a company key it does not have: a
 * wanted company field that only a company lookup answers, and neither
 * the input nor (so far) an answer named the company. */
bool pl_company_unknown(const struct pl_plan *pl);

/* Whether some provider of cfg's waterfall lists could look rec up at all:
 * search by its identifiers and answer a field the input does not already
 * hold (echoing a first name sent identifies no one).  want is kept for
 * callers; the answer does not depend on it.  False with why (a short
 * English reason) when none could: the request is refused before any
 * call. */
bool pl_identifiable(const struct cfg *cfg, const struct dom_lists *lists, const struct rec *rec,
		     fld_set want, const char **why);

/* The company rec names, as pl_plan keys it: the registrable domain of its
 * domain into domain (""), else *name at its company name (NULL), and the
 * key into key ("" when it names none).  Sizes as in struct pl_plan. */
void pl_company_of(const struct rec *rec, char domain[254], const char **name,
		   char key[PL_COMPANY_KEY_MAX]);

/* The cache key of provider's answer for the company keyed company_key. */
enum enr_err pl_company_cache_key(const char *provider, const char *company_key,
				  unsigned char out[CACHE_KEY_LEN]) ENR_MUST_CHECK;

/* The provider named in a waterfall list: a configured one, or the
 * built-in local and mock; NULL when unknown. */
const struct cfg_provider *pl_provider(const struct cfg *cfg, const char *name);

/* True for the built-in kinds (local, mock): free, no key, in process. */
bool pl_is_builtin(const struct cfg_provider *p);

#endif
