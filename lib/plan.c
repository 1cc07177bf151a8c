/*
 * plan.c - the waterfall's planner (lib/plan.h): the walk over the field
 * groups, the lookup table that keeps a provider from being asked the same
 * thing twice, the company key, the merge.
 */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

const char *const pl_end_names[PL_END__MAX] = {
	[PL_ANSWERED] = "answered",
	[PL_NO_KEY] = "no_usable_key",
	[PL_DEADLINE] = "deadline",
	[PL_REJECTED] = "rejected",
	[PL_FAILED] = "failed",
	[PL_TIMEOUT] = "timeout",
	[PL_NOT_APPLICABLE] = "not_applicable",
	[PL_BUDGET] = "budget_exceeded",
	[PL_DRY] = "dry_run",
};

/* Built-in providers need no declaration in the configuration. */
static const struct cfg_provider builtin_local = { .name = "local", .kind = "local",
						   .enabled = true };
static const struct cfg_provider builtin_mock = { .name = "mock", .kind = "mock",
						  .enabled = true };

const struct cfg_provider *pl_provider(const struct cfg *cfg, const char *name)
{
	const struct cfg_provider *p = cfg_provider_find(cfg, name);

	if (p)
		return p;
	if (strcmp(name, "local") == 0)
		return &builtin_local;
	if (strcmp(name, "mock") == 0)
		return &builtin_mock;
	return NULL;
}

bool pl_is_builtin(const struct cfg_provider *p)
{
	return strcmp(p->kind, "local") == 0 || strcmp(p->kind, "mock") == 0;
}

/* ---- the company ------------------------------------------------------------ */

/* "Acme,  Inc." -> "acme inc": ASCII letters lower-cased, every run of
 * other ASCII characters one space, trimmed; other bytes (UTF-8) kept. */
static void name_key(const char *name, char *out, size_t outsz)
{
	size_t o = 0;
	bool space = false;

	for (const unsigned char *s = (const unsigned char *)name; *s && o + 2 < outsz; s++) {
		unsigned char c = *s;

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80) {
			if (space && o > 0)
				out[o++] = ' ';
			space = false;
			out[o++] = (char)c;
		} else {
			space = true;
		}
	}
	out[o] = '\0';
}

/* The company key of a domain (registrable part, when it has one) into
 * plan-sized buffers. */
static void key_of_domain(const char *d, char domain[254], char key[PL_COMPANY_KEY_MAX])
{
	char reg[254];

	if (dom_registrable(d, reg, sizeof reg) != ENR_OK)
		util_strlcpy(reg, d, sizeof reg);
	util_strlcpy(domain, reg, 254);
	snprintf(key, PL_COMPANY_KEY_MAX, "d:%s", reg);
}

/* The company key of a name; false (key "") when nothing in it keys one. */
static bool key_of_name(const char *n, char key[PL_COMPANY_KEY_MAX])
{
	char k[PL_COMPANY_KEY_MAX - 2];

	name_key(n, k, sizeof k);
	if (k[0] == '\0') {
		key[0] = '\0';
		return false;
	}
	snprintf(key, PL_COMPANY_KEY_MAX, "n:%s", k);
	return true;
}

void pl_company_of(const struct rec *rec, char domain[254], const char **name,
		   char key[PL_COMPANY_KEY_MAX])
{
	const char *d = rec_get(rec, ID_DOMAIN), *n = rec_get(rec, ID_COMPANY_NAME);

	domain[0] = key[0] = '\0';
	*name = NULL;
	if (d && *d)
		key_of_domain(d, domain, key);
	else if (n && *n && key_of_name(n, key))
		*name = n;
}

enum enr_err pl_company_cache_key(const char *provider, const char *company_key,
				  unsigned char out[CACHE_KEY_LEN])
{
	return cache_key_text(provider, "company", company_key, out);
}

/* A person answer that names the company gives the plan its key: the
 * company's own domain, else a business address's domain (not free mail
 * or disposable), else the company's name. */
static void feed_company(struct pl_plan *pl, const struct prov_result *res)
{
	const char *be = res->value[FLD_BUSINESS_EMAIL], *at;

	if (pl->company_key[0])
		return;
	if (res->company_domain[0]) {
		key_of_domain(res->company_domain, pl->company_domain, pl->company_key);
	} else if (pl->lists != NULL && be && (at = strrchr(be, '@')) != NULL &&
		   dom_valid(at + 1, strlen(at + 1)) && !dom_is_free(pl->lists, at + 1) &&
		   !dom_is_disposable(pl->lists, at + 1)) {
		key_of_domain(at + 1, pl->company_domain, pl->company_key);
	} else if (res->value[FLD_COMPANY_NAME] &&
		   strlen(res->value[FLD_COMPANY_NAME]) <= PL_FED_NAME_MAX &&
		   key_of_name(res->value[FLD_COMPANY_NAME], pl->company_key)) {
		/* The answer goes; the plan keeps the name to ask for. */
		util_strlcpy(pl->fed_name, res->value[FLD_COMPANY_NAME], sizeof pl->fed_name);
		pl->company_name = pl->fed_name;
	}
	pl->company_fed = pl->company_key[0] != '\0';
}

/* ---- queries and what they can answer ------------------------------------------- */

static void person_query(const struct pl_plan *pl, struct prov_query *q)
{
	memset(q, 0, sizeof *q);
	for (int i = 0; i < ID__MAX; i++)
		q->id[i] = rec_get(pl->rec, (enum fld_ident)i);
}

static void company_query(const struct pl_plan *pl, struct prov_query *q)
{
	memset(q, 0, sizeof *q);
	if (pl->company_domain[0])
		q->id[ID_DOMAIN] = pl->company_domain;
	else if (pl->company_name)
		q->id[ID_COMPANY_NAME] = pl->company_name;
}

static fld_set supplies(const struct cfg_provider *p, enum prov_kind kind,
			const struct prov_query *q)
{
	const struct prov_ops *ops = prov_ops_find(p->kind);

	if (ops == NULL || ops->supplies == NULL)
		return 0;
	return ops->supplies(p, kind, q);
}

/* ---- the plan ----------------------------------------------------------------- */

void pl_init(struct pl_plan *pl, const struct cfg *cfg, const struct dom_lists *lists,
	     const struct rec *rec, fld_set want, struct wf_result *out)
{
	memset(pl, 0, sizeof *pl);
	pl->cfg = cfg;
	pl->lists = lists;
	pl->rec = rec;
	pl->out = out;
	pl->active = -1;
	pl->cap = 2 * ((int)cfg->nproviders + 2); /* the builtins local and mock too */
	if (pl->cap > PL_LOOKUPS_MAX)
		pl->cap = PL_LOOKUPS_MAX;
	out->want = want;
	pl_company_of(rec, pl->company_domain, &pl->company_name, pl->company_key);
}

static struct pl_lookup *find(struct pl_plan *pl, const struct cfg_provider *p,
			      enum prov_kind kind)
{
	/* One person and one company per provider: a plan's person query
	 * never changes, and its company key is set once. */
	for (int i = 0; i < pl->nlk; i++) {
		if (pl->lk[i].kind == kind && strcmp(pl->lk[i].p->name, p->name) == 0)
			return &pl->lk[i];
	}
	return NULL;
}

/* A new lookup of p for kind, asking for ask; NULL when the table is full
 * or the key cannot be built (then the plan ends). */
static struct pl_lookup *add(struct pl_plan *pl, const struct cfg_provider *p, enum prov_kind kind,
			     fld_set ask)
{
	struct pl_lookup *lk;
	enum enr_err rc = ENR_OK;

	if (pl->nlk == pl->cap)
		return NULL;
	if (pl->lk == NULL && (pl->lk = calloc((size_t)pl->cap, sizeof *pl->lk)) == NULL)
		return NULL;
	lk = &pl->lk[pl->nlk];
	memset(lk, 0, sizeof *lk);
	lk->p = p;
	lk->kind = kind;
	lk->builtin = pl_is_builtin(p);
	if (kind == PROV_KIND_COMPANY)
		company_query(pl, &lk->q);
	else
		person_query(pl, &lk->q);
	lk->q.want = ask;
	if (!lk->builtin) {
		if (kind == PROV_KIND_COMPANY)
			rc = pl_company_cache_key(p->name, pl->company_key, lk->key);
		else
			rc = cache_key(p->name, "person", pl->rec, lk->key);
	}
	if (rc)
		return NULL;
	pl->nlk++;
	return lk;
}

/* The lookup of p worth making at the walk's place in group g, or NULL
 * when p has nothing to add there (or was asked already). */
static struct pl_lookup *candidate(struct pl_plan *pl, const struct cfg_provider *p, int g,
				   bool *full)
{
	fld_set want = pl->out->want, found = pl->out->found;
	fld_set gmissing = want & fld_group_set((enum cfg_group)g) & ~found;
	struct prov_query q;
	fld_set can;

	*full = false;
	if (pl->no_paid && !pl_is_builtin(p))
		return NULL;
	/* The company group asks a provider's company lookup when the plan
	 * knows the company and the provider has one; only otherwise its
	 * person lookup (which carries company name, industry and size). */
	if (g == CFG_GROUP_COMPANY && pl->company_key[0]) {
		company_query(pl, &q);
		if (supplies(p, PROV_KIND_COMPANY, &q) != 0) {
			struct pl_lookup *lk;

			can = supplies(p, PROV_KIND_COMPANY, &q) & gmissing;
			if (!can || find(pl, p, PROV_KIND_COMPANY) != NULL)
				return NULL;
			lk = add(pl, p, PROV_KIND_COMPANY, want & prov_company_fields() & ~found);
			*full = lk == NULL;
			return lk;
		}
	}
	person_query(pl, &q);
	can = supplies(p, PROV_KIND_PERSON, &q) & gmissing;
	if (can && find(pl, p, PROV_KIND_PERSON) == NULL) {
		/* Everything still missing, not only this group's: a provider's
		 * person lookup is made once and may fill other groups too. */
		struct pl_lookup *lk = add(pl, p, PROV_KIND_PERSON, want & ~found);

		*full = lk == NULL;
		return lk;
	}
	return NULL;
}

struct pl_lookup *pl_next(struct pl_plan *pl)
{
	if (pl->finished || pl->active >= 0)
		return NULL;
	for (; pl->group < CFG_GROUP__MAX; pl->group++, pl->pos = 0) {
		int g = pl->group;
		fld_set gwant = pl->out->want & fld_group_set((enum cfg_group)g);
		const struct cfg_list *list = &pl->cfg->waterfall[g];

		for (; gwant && pl->pos < (int)list->n; pl->pos++) {
			const struct cfg_provider *p;
			struct pl_lookup *lk;
			bool full;

			if ((gwant & ~pl->out->found) == 0)
				break;
			p = pl_provider(pl->cfg, list->v[pl->pos]);
			if (p == NULL || !p->enabled)
				continue;
			/* The walk stays at this place: once the lookup is done, the
			 * same provider may have another lookup worth making here (a
			 * person answer that named the company). */
			lk = candidate(pl, p, g, &full);
			if (full) {
				pl->finished = true;
				return NULL;
			}
			if (lk) {
				pl->active = (int)(lk - pl->lk);
				return lk;
			}
		}
	}
	pl->finished = true;
	return NULL;
}

static void add_name(const char *list[], int *n, const char *name)
{
	for (int i = 0; i < *n; i++) {
		if (strcmp(list[i], name) == 0)
			return;
	}
	if (*n < WF_PROVIDERS_MAX)
		list[(*n)++] = name;
}

/* Note that provider name gave no answer (once per provider and kind). */
static void add_error(struct wf_result *out, const char *name, enum wf_error_kind kind)
{
	for (int i = 0; i < out->nerrors; i++) {
		if (out->errors[i].kind == kind && strcmp(out->errors[i].provider, name) == 0)
			return;
	}
	if (out->nerrors == WF_PROVIDERS_MAX)
		return;
	out->errors[out->nerrors].provider = name;
	out->errors[out->nerrors].kind = kind;
	out->nerrors++;
}

static void merge(struct wf_result *out, const struct prov_result *res, const char *source,
		  bool mock)
{
	for (int f = 0; f < FLD__MAX; f++) {
		if (!(out->want & FLD_BIT(f)) || (out->found & FLD_BIT(f)) || res->value[f] == NULL)
			continue;
		out->value[f] = strdup(res->value[f]);
		if (out->value[f] == NULL)
			continue;
		out->confidence[f] = res->confidence[f];
		out->source[f] = source;
		out->found |= FLD_BIT(f);
		if (mock)
			out->mock = true;
	}
}

void pl_done(struct pl_plan *pl, struct pl_lookup *lk, const struct pl_answer *a)
{
	struct wf_result *out = pl->out;
	const char *name = lk->p->name;

	lk->done = true;
	if (pl->active >= 0 && &pl->lk[pl->active] == lk)
		pl->active = -1;
	out->depth++;
	switch (a->end) {
	case PL_ANSWERED:
		add_name(out->tried, &out->ntried, name);
		if (!lk->builtin) {
			out->paid_asked++;
			if (a->cached)
				out->cache_hits++;
			else
				out->credits += a->res->credits;
			if (a->coalesced)
				out->coalesced++;
		}
		if (a->res->outcome == PROV_HIT) {
			merge(out, a->res, name, strcmp(lk->p->kind, "mock") == 0);
			if (lk->kind == PROV_KIND_PERSON)
				feed_company(pl, a->res);
		}
		break;
	case PL_NO_KEY:
		add_name(out->skipped, &out->nskipped, name);
		add_error(out, name, WF_ERR_NO_KEY);
		out->paid_unavailable++;
		if (a->comes_back_ms > 0 &&
		    (out->comes_back_ms == 0 || a->comes_back_ms < out->comes_back_ms))
			out->comes_back_ms = a->comes_back_ms;
		break;
	case PL_DEADLINE:
		add_name(out->tried, &out->ntried, name);
		add_error(out, name, WF_ERR_DEADLINE);
		out->deadline_passed = true;
		pl->finished = true;
		break;
	case PL_NOT_APPLICABLE:
		out->depth--;
		break;
	case PL_REJECTED:
		add_name(out->tried, &out->ntried, name);
		add_error(out, name, WF_ERR_REJECTED);
		out->paid_failed++;
		break;
	case PL_FAILED:
	case PL_TIMEOUT:
		add_name(out->tried, &out->ntried, name);
		add_error(out, name, a->end == PL_TIMEOUT ? WF_ERR_TIMEOUT : WF_ERR_TRANSIENT);
		out->paid_failed++;
		break;
	case PL_BUDGET:
		add_error(out, name, WF_ERR_BUDGET);
		out->budget_exceeded = true;
		if (a->until_ms > 0 && (out->budget_until_ms == 0 || a->until_ms < out->budget_until_ms))
			out->budget_until_ms = a->until_ms;
		pl->no_paid = true;
		break;
	case PL_DRY:
		out->depth--;
		add_name(out->would_call, &out->nwould_call, name);
		break;
	default:
		break;
	}
}

/* The status rule of waterfall.h: a failure is never a miss. */
void pl_finish(struct pl_plan *pl)
{
	struct wf_result *out = pl->out;
	bool failed = out->paid_failed > 0 || out->paid_unavailable > 0 || out->deadline_passed ||
		      out->budget_exceeded;

	if (out->found == out->want)
		out->status = WF_COMPLETE;
	else if (out->found != 0)
		out->status = WF_PARTIAL;
	else
		out->status = failed ? WF_INCOMPLETE : WF_NOT_FOUND;
	out->cached = out->calls == 0 && out->shared_calls == 0 && out->cache_hits > 0;
	free(pl->lk);
	pl->lk = NULL;
	pl->nlk = 0;
}

bool pl_company_unknown(const struct pl_plan *pl)
{
	fld_set only_company = FLD_BIT(FLD_COMPANY_REVENUE) | FLD_BIT(FLD_TECHNOLOGIES);

	return pl->company_key[0] == '\0' && (pl->out->want & only_company & ~pl->out->found);
}

/* Fields the input itself holds: echoing them back identifies no one. */
static fld_set echoes(const struct rec *rec)
{
	static const struct {
		enum fld_ident id;
		enum fld_id f;
	} map[] = {
		{ ID_FIRST_NAME, FLD_FIRST_NAME }, { ID_LAST_NAME, FLD_LAST_NAME },
		{ ID_COMPANY_NAME, FLD_COMPANY_NAME }, { ID_LINKEDIN_URL, FLD_LINKEDIN_URL },
		{ ID_PHONE, FLD_PHONE },
	};
	fld_set s = 0;

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (rec_get(rec, map[i].id))
			s |= FLD_BIT(map[i].f);
	}
	return s;
}

bool pl_identifiable(const struct cfg *cfg, const struct dom_lists *lists, const struct rec *rec,
		     fld_set want, const char **why)
{
	char domain[254], key[PL_COMPANY_KEY_MAX];
	const char *name;
	struct prov_query pq, cq;
	fld_set useful = FLD_ALL & ~echoes(rec);

	(void)lists;
	pl_company_of(rec, domain, &name, key);
	memset(&pq, 0, sizeof pq);
	for (int i = 0; i < ID__MAX; i++)
		pq.id[i] = rec_get(rec, (enum fld_ident)i);
	memset(&cq, 0, sizeof cq);
	if (domain[0])
		cq.id[ID_DOMAIN] = domain;
	else if (name)
		cq.id[ID_COMPANY_NAME] = name;
	(void)want;
	for (int g = 0; g < CFG_GROUP__MAX; g++) {
		const struct cfg_list *list = &cfg->waterfall[g];

		for (size_t i = 0; i < list->n; i++) {
			const struct cfg_provider *p = pl_provider(cfg, list->v[i]);

			if (p == NULL || !p->enabled)
				continue;
			if (supplies(p, PROV_KIND_PERSON, &pq) & useful)
				return true;
			if (key[0] && (supplies(p, PROV_KIND_COMPANY, &cq) & useful))
				return true;
		}
	}
	if (why)
		*why = "no configured provider can look anyone up by these identifiers (a name "
		       "needs a company name or a domain, for example)";
	return false;
}
