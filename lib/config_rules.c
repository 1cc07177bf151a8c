/*
 * config_rules.c - the directive tables: every setting of enrichd.conf,
 * once, with its type, bounds or choices, where it is stored and its
 * default; the setters that need more than a copy; the checks that span
 * a block (duplicates, references, kind-specific needs).
 *
 * A row is read twice by config_load.c: pass 1 validates the file against
 * it, pass 2 stores the value (or the default) at the row's offset, or
 * hands it to the row's setter when storing needs more than a copy (a
 * default that depends on another setting, a path, a secret).
 */
#include "config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fields.h"
#include "json_path.h"
#include "limits.h"
#include "provider.h"
#include "store.h"

const char *const cfg_endpoint_names[CFG_EP__MAX] = {
	[CFG_EP_ENRICH] = "enrich",
	[CFG_EP_ENQUEUE] = "enqueue",
	[CFG_EP_JOBS] = "jobs",
	[CFG_EP_ADMIN] = "admin",
	[CFG_EP_SEARCH_PEOPLE] = "search_people",
	[CFG_EP_SEARCH_COMPANIES] = "search_companies",
};
const char *const cfg_fallback_names[CFG_FALLBACK__MAX] = {
	[CFG_FALLBACK_NONE] = "none",
	[CFG_FALLBACK_MOCK] = "mock",
};
const char *const cfg_strategy_names[CFG_STRATEGY__MAX] = {
	[CFG_STRATEGY_ROUND_ROBIN] = "round_robin",
	[CFG_STRATEGY_ORDERED] = "ordered",
	[CFG_STRATEGY_LEAST_USED] = "least_used",
};
const char *const cfg_group_names[CFG_GROUP__MAX] = {
	[CFG_GROUP_PERSON] = "person",
	[CFG_GROUP_PHONE] = "phone",
	[CFG_GROUP_EMAIL] = "email",
	[CFG_GROUP_COMPANY] = "company",
};

/* The levels a file may choose ("notice" is always written). */
static const char *const log_level_choices[] = {
	[LOG_LVL_DEBUG] = "debug",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_ERROR] = "error",
};

/* Provider kinds, and what a kind implies when the file does not say. */
enum kind { K_PDL, K_LUSHA, K_SURFE, K_GENERIC, K_LOCAL, K_MOCK, K__MAX };
static const char *const kind_names[K__MAX] = {
	[K_PDL] = "pdl", [K_LUSHA] = "lusha", [K_SURFE] = "surfe",
	[K_GENERIC] = "generic", [K_LOCAL] = "local", [K_MOCK] = "mock",
};
static const char *const kind_base_url[K__MAX] = {
	[K_PDL] = "https://api.peopledatalabs.com",
	[K_LUSHA] = "https://api.lusha.com",
	[K_SURFE] = "https://api.surfe.com",
};

static const char *const method_names[] = { "GET", "POST" };

/* lib/budget.h enum bud_period, in order. */
static const char *const period_names[] = { "day", "month" };
/* enum prov_http2 */
static const char *const http2_names[] = { "auto", "off" };

static int kind_of(const char *kind)
{
	for (int i = 0; i < K__MAX; i++) {
		if (kind && strcmp(kind, kind_names[i]) == 0)
			return i;
	}
	return -1;
}

/* local and mock are built in: free, no key, no URL. */
static bool builtin_kind(const char *kind)
{
	int k = kind_of(kind);

	return k == K_LOCAL || k == K_MOCK;
}

/* ---- setters: a default that depends on other settings, or more -------- */

/* The socket path is rendered into nginx (fastcgi_pass unix:PATH;). */
static bool set_listen(struct cfg_ld *ld, const struct cfg_dir *d, const config_setting_t *s,
		       const char *disp, void *base)
{
	struct cfg *c = base;
	const char *bad;

	if (!cfg_ld_store(ld, d, s, disp, base))
		return false;
	if (strlen(c->listen) > LIM_LISTEN_PATH_MAX) {
		cfg_ld_fail(ld, s, disp, "%s is %zu bytes; the socket path may hold at most %d",
			    c->listen, strlen(c->listen), LIM_LISTEN_PATH_MAX);
		return false;
	}
	if ((bad = cfg_nginx_unsafe(c->listen)) != NULL) {
		cfg_ld_fail(ld, s, disp, "%s has %s, which nginx cannot carry", c->listen, bad);
		return false;
	}
	return true;
}

/* "sqlite:PATH" with PATH resolved like any other path. */
/* A secret reference the store resolves when it opens (store_password):
 * kept as "env:NAME", or "file:PATH" with PATH resolved like any path, so
 * that tools that load the file without its secrets still pass it on. */
static bool set_secret_ref(struct cfg_ld *ld, const struct cfg_dir *d, const config_setting_t *s,
			   const char *disp, void *base)
{
	const char *v = s ? config_setting_get_string(s) : d->dflt_s;
	char *out;

	(void)disp;
	if (strncmp(v, "file:", 5) == 0) {
		char *abs = cfg_ld_path(ld, v + 5);
		size_t n;

		if (abs == NULL)
			return false;
		n = strlen(abs) + 6;
		out = malloc(n);
		if (out == NULL) {
			free(abs);
			ld->oom = true;
			return false;
		}
		snprintf(out, n, "file:%s", abs);
		free(abs);
	} else {
		out = cfg_ld_strdup(ld, v);
		if (out == NULL)
			return false;
	}
	*(char **)((char *)base + d->off) = out;
	return true;
}

static bool set_store(struct cfg_ld *ld, const struct cfg_dir *d, const config_setting_t *s,
		      const char *disp, void *base)
{
	const char *v = s ? config_setting_get_string(s) : d->dflt_s;
	const char *env = getenv("ENRICHD_STORE");
	size_t scheme;
	const char *p;
	char *abs, *out;
	size_t n;

	/* The environment may point every program at another store without
	 * an edit of the file (deploy.sh up with ENRICHD_STORE). */
	if (env && *env) {
		char why[160];

		if (!cfg_check_store(d, env, why, sizeof why)) {
			cfg_ld_fail(ld, NULL, "ENRICHD_STORE", "%s", why);
			return false;
		}
		v = env;
	}
	(void)disp;
	/* A PostgreSQL URL is kept as it is. */
	if (strncmp(v, "postgres", 8) == 0) {
		out = cfg_ld_strdup(ld, v);
		if (out == NULL)
			return false;
		*(char **)((char *)base + d->off) = out;
		return true;
	}
	p = cfg_store_path(v, &scheme);
	if (p == NULL)
		return false; /* pass 1 refused it already */
	abs = strcmp(p, ":memory:") == 0 ? cfg_ld_strdup(ld, p) : cfg_ld_path(ld, p);
	if (abs == NULL)
		return false;
	n = scheme + 1 + strlen(abs) + 1;
	out = malloc(n);
	if (out == NULL) {
		free(abs);
		ld->oom = true;
		return false;
	}
	snprintf(out, n, "%.*s%s", (int)(scheme + 1), v, abs);
	free(abs);
	*(char **)((char *)base + d->off) = out;
	return true;
}

static bool set_base_url(struct cfg_ld *ld, const struct cfg_dir *d, const config_setting_t *s,
			 const char *disp, void *base)
{
	const struct cfg_provider *p = base;
	int k = kind_of(p->kind);

	if (s)
		return cfg_ld_store(ld, d, s, disp, base);
	*(char **)((char *)base + d->off) =
		cfg_ld_strdup(ld, k >= 0 && kind_base_url[k] ? kind_base_url[k] : "");
	return !ld->oom;
}

static bool set_credits_per_hit(struct cfg_ld *ld, const struct cfg_dir *d,
				const config_setting_t *s, const char *disp, void *base)
{
	struct cfg_provider *p = base;

	if (s)
		return cfg_ld_store(ld, d, s, disp, base);
	p->credits_per_hit = builtin_kind(p->kind) ? 0 : 1;
	return true;
}

/* A key's upstream account is the key itself unless the file groups it. */
static bool set_key_account(struct cfg_ld *ld, const struct cfg_dir *d, const config_setting_t *s,
			    const char *disp, void *base)
{
	struct cfg_key *k = base;

	if (s)
		return cfg_ld_store(ld, d, s, disp, base);
	k->account = cfg_ld_strdup(ld, k->id);
	return !ld->oom;
}

/* A key is paced like its provider unless the file says otherwise. */
static bool set_key_pace(struct cfg_ld *ld, const struct cfg_dir *d, const config_setting_t *s,
			 const char *disp, void *base)
{
	struct cfg_key *k = base;
	const struct cfg_provider *p = ld->parent;

	if (s)
		return cfg_ld_store(ld, d, s, disp, base);
	k->requests_per_minute = p->requests_per_minute;
	return true;
}

/* fields = { title = "data.job.title"; ... } into the row's array of
 * paths, one per enum fld_id (a generic provider's lookups and searches). */
static bool set_fields(struct cfg_ld *ld, const struct cfg_dir *d, const config_setting_t *s,
		       const char *disp, void *base)
{
	char **fields = (char **)(void *)((char *)base + d->off);
	int n = s ? config_setting_length(s) : 0;

	(void)disp;
	for (int i = 0; i < n; i++) {
		const config_setting_t *f = config_setting_get_elem(s, (unsigned)i);
		enum fld_id id;

		if (fld_parse(config_setting_name(f), &id) &&
		    (size_t)id < d->size / sizeof fields[0]) {
			free(fields[id]);
			fields[id] = cfg_ld_strdup(ld, config_setting_get_string(f));
		}
	}
	return !ld->oom;
}

/* ---- checks of a whole block -------------------------------------------- */

/* A generic provider's search blocks (the tables below). */
static const struct cfg_table search_people_table, search_companies_table;

static bool key_finish(struct cfg_ld *ld, const config_setting_t *blk, void *base,
		       const char *disp)
{
	const struct cfg_key *key = base;
	const struct cfg *c = ld->cfg;

	for (size_t i = 0; i < c->nproviders; i++) {
		for (size_t k = 0; k < c->providers[i].nkeys; k++) {
			const struct cfg_key *o = &c->providers[i].keys[k];

			if (o != key && o->id && strcmp(o->id, key->id) == 0) {
				cfg_ld_fail(ld, blk, disp, "key id \"%s\" is used twice", key->id);
				return false;
			}
		}
	}
	return true;
}

static bool provider_finish(struct cfg_ld *ld, const config_setting_t *blk, void *base,
			    const char *disp)
{
	struct cfg_provider *p = base;
	const struct cfg *c = ld->cfg;
	const config_setting_t *req = config_setting_get_member(blk, "request");
	const config_setting_t *fields = config_setting_get_member(blk, "fields");
	const config_setting_t *st = config_setting_get_member(blk, "statuses");
	const config_setting_t *srch[2] = { config_setting_get_member(blk, "search_people"),
					    config_setting_get_member(blk, "search_companies") };

	for (const struct cfg_provider *o = c->providers; o < p; o++) {
		if (strcmp(o->name, p->name) == 0) {
			cfg_ld_fail(ld, blk, disp, "provider name \"%s\" is used twice", p->name);
			return false;
		}
	}
	/* Else every call would fail its TLS check and cool its key down. */
	if (p->ca_file && p->ca_file[0] && access(p->ca_file, R_OK) != 0) {
		cfg_ld_fail(ld, config_setting_get_member(blk, "ca_file"), disp,
			    "ca_file %s cannot be read: %s", p->ca_file, strerror(errno));
		return false;
	}
	if (kind_of(p->kind) != K_GENERIC) {
		if (req || fields || st || srch[0] || srch[1]) {
			cfg_ld_fail(ld, req ? req : fields ? fields : st ? st : srch[0] ? srch[0] : srch[1],
				    disp, "request/fields/statuses/search_people/search_companies are "
					  "only for kind \"generic\"");
			return false;
		}
	} else {
		/* A generic provider looks records up (request and fields), or
		 * searches, or both. */
		if ((req == NULL) != (fields == NULL) ||
		    (req == NULL && srch[0] == NULL && srch[1] == NULL)) {
			cfg_ld_fail(ld, blk, disp,
				    "kind \"generic\" needs request = { ... } and fields = { ... }, "
				    "or search_people / search_companies = { ... }");
			return false;
		}
		if (req) {
			p->generic = calloc(1, sizeof *p->generic);
			if (p->generic == NULL) {
				ld->oom = true;
				return false;
			}
			if (!cfg_ld_block(ld, &cfg_generic_table, blk, p->generic, disp))
				return false;
		}
		for (int k = 0; k < 2; k++) {
			if (srch[k] == NULL)
				continue;
			p->search[k] = calloc(1, sizeof *p->search[k]);
			if (p->search[k] == NULL) {
				ld->oom = true;
				return false;
			}
			if (!cfg_ld_block(ld, k == 0 ? &search_people_table : &search_companies_table, blk,
					  p->search[k], disp))
				return false;
		}
	}
	{
		/* docs/providers.md: PDL and Lusha take up to 100 items a call,
		 * Surfe up to 10,000 people an enrichment. */
		static const int bulk_max[K__MAX] = { [K_PDL] = 100, [K_LUSHA] = 100,
						      [K_SURFE] = 10000 };
		const config_setting_t *bk = config_setting_get_member(blk, "bulk");
		int k = kind_of(p->kind);

		if (p->bulk.enabled && (k < 0 || bulk_max[k] == 0)) {
			cfg_ld_fail(ld, bk, disp, "bulk.enabled: kind %s has no bulk endpoint", p->kind);
			return false;
		}
		if (k >= 0 && bulk_max[k] > 0 && p->bulk.batch_size > bulk_max[k]) {
			cfg_ld_fail(ld, bk ? config_setting_get_member(bk, "batch_size") : NULL, disp,
				    "bulk.batch_size: %d is more than %s takes in one call (%d)",
				    p->bulk.batch_size, p->kind, bulk_max[k]);
			return false;
		}
	}
	if (p->nkeys == 0 && !builtin_kind(p->kind)) {
		cfg_ld_fail(ld, blk, disp, "provider \"%s\" of kind %s needs at least one key",
			    p->name, p->kind);
		return false;
	}
	return true;
}

/* search.people / search.companies name providers that search that kind;
 * the limits fit each other. */
static bool search_finish(struct cfg_ld *ld, const config_setting_t *root, const struct cfg *c)
{
	const config_setting_t *sg = config_setting_get_member(root, "search");
	const struct cfg_list *lists[PROV_SEARCH__MAX] = { &c->search.people, &c->search.companies };

	for (int k = 0; k < PROV_SEARCH__MAX; k++) {
		const char *kn = prov_search_kind_names[k];
		const config_setting_t *arr = sg ? config_setting_get_member(sg, kn) : NULL;

		for (size_t i = 0; i < lists[k]->n; i++) {
			const char *name = lists[k]->v[i];
			const struct cfg_provider *p = cfg_provider_find(c, name);
			const struct prov_ops *ops = p ? prov_ops_find(p->kind) : NULL;
			const config_setting_t *el = arr ? config_setting_get_elem(arr, (unsigned)i)
							 : NULL;
			char path[64];

			snprintf(path, sizeof path, "search.%s[%zu]", kn, i);
			if (p == NULL) {
				cfg_ld_fail(ld, el, path, "no provider is named \"%s\"", name);
				return false;
			}
			if (ops == NULL || ops->search == NULL ||
			    !ops->search->supports(p, (enum prov_search_kind)k)) {
				cfg_ld_fail(ld, el, path, "provider \"%s\" (kind %s) has no %s search%s",
					    name, p->kind, k == PROV_SEARCH_PEOPLE ? "people" : "company",
					    kind_of(p->kind) == K_GENERIC
						    ? (k == PROV_SEARCH_PEOPLE ? ": describe search_people"
									       : ": describe search_companies")
						    : "");
				return false;
			}
			for (size_t j = 0; j < i; j++) {
				if (strcmp(lists[k]->v[j], name) == 0) {
					cfg_ld_fail(ld, el, path, "provider \"%s\" is named twice", name);
					return false;
				}
			}
		}
	}
	if (c->search.limit_default > c->search.limit_max) {
		cfg_ld_fail(ld, sg ? config_setting_get_member(sg, "limit_default") : NULL,
			    "search.limit_default", "must not be more than search.limit_max (%d)",
			    c->search.limit_max);
		return false;
	}
	return true;
}

static bool root_finish(struct cfg_ld *ld, const config_setting_t *root, void *base,
			const char *disp)
{
	const struct cfg *c = base;
	const config_setting_t *g = config_setting_get_member(root, "worker");
	const config_setting_t *wf = config_setting_get_member(root, "waterfall");

	(void)disp;
	if (c->worker.heartbeat_s >= c->worker.lease_s) {
		cfg_ld_fail(ld, g ? config_setting_get_member(g, "heartbeat_s") : NULL,
			    "worker.heartbeat_s", "must be shorter than worker.lease_s (%d)",
			    c->worker.lease_s);
		return false;
	}
	for (int i = 0; i < CFG_GROUP__MAX; i++) {
		const config_setting_t *arr = wf ? config_setting_get_member(wf, cfg_group_names[i])
						 : NULL;

		for (size_t k = 0; k < c->waterfall[i].n; k++) {
			const char *name = c->waterfall[i].v[k];
			char path[64];

			const struct cfg_provider *p = cfg_provider_find(c, name);

			snprintf(path, sizeof path, "waterfall.%s[%zu]", cfg_group_names[i], k);
			if (builtin_kind(name) || (p && (kind_of(p->kind) != K_GENERIC || p->generic)))
				continue;
			cfg_ld_fail(ld, arr ? config_setting_get_elem(arr, (unsigned)k) : NULL, path,
				    p ? "provider \"%s\" describes no lookup (request = { ... })"
				      : "no provider is named \"%s\"",
				    name);
			return false;
		}
	}
	return search_finish(ld, root, c);
}

/* ---- the tables --------------------------------------------------------- */

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))
#define STRMAX 4096
#define AT(m) .off = offsetof(S, m), .size = sizeof(((S *)0)->m)

#define GROUP(p)                  { .path = (p), .type = CT_GROUP }
#define INT(p, m, lo, hi, d)      { .path = (p), .type = CT_INT, .min = (lo), .max = (hi), AT(m), .dflt = (d) }
#define BOOL(p, m, d)             { .path = (p), .type = CT_BOOL, AT(m), .dflt = (d) }
#define CHOICE(p, m, nm, d)       { .path = (p), .type = CT_CHOICE, .names = (nm), \
				    .nnames = (int)NITEMS(nm), AT(m), .dflt = (d) }
#define STR(p, m, lo, hi, d, fl, chk) \
	{ .path = (p), .type = CT_STR, .min = (lo), .max = (hi), AT(m), .dflt_s = (d), \
	  .flags = (fl), .check = (chk) }
#define STRS(p, m, lo, hi, d, chk) \
	{ .path = (p), .type = CT_STRS, .min = (lo), .max = (hi), AT(m), .dflt_s = (d), .check = (chk) }
#define INTS(p, m, lo, hi)        { .path = (p), .type = CT_INTS, .min = (lo), .max = (hi), AT(m) }
#define LIST(p, m, n, t)          { .path = (p), .type = CT_LIST, AT(m), .off_n = offsetof(S, n), .sub = &(t) }

/* A group left out of waterfall asks the free local provider only. */
#define WATERFALL(name, g) STRS("waterfall." name, waterfall[g], 1, LIM_NAME_MAX, "local", NULL)

/* A generic provider's search_people / search_companies block, the same
 * rows under either name (docs/providers.md, "Generic search"). */
#define S struct cfg_generic_search
#define SEARCH_DIRS(pf)                                                                    \
	GROUP(pf),                                                                          \
	{ .path = pf ".method", .type = CT_STR, .min = 0, .max = 8, .names = method_names,    \
	  .nnames = (int)NITEMS(method_names), AT(method), .dflt_s = "POST" },                \
	STR(pf ".url", url, 1, 4096, NULL, CF_REQUIRED, cfg_check_url_template),             \
	STR(pf ".body", body, 0, 16384, "", 0, NULL),                                         \
	INT(pf ".max_limit", max_limit, 1, LIM_SEARCH_LIMIT_CEILING, 100),                    \
	STR(pf ".results", results, 1, LIM_JP_PATH_MAX, NULL, CF_REQUIRED, cfg_check_json_path), \
	STR(pf ".next_cursor", next_cursor, 0, LIM_JP_PATH_MAX, "", 0, cfg_check_json_path), \
	STR(pf ".total", total, 0, LIM_JP_PATH_MAX, "", 0, cfg_check_json_path),             \
	INT(pf ".credits_per_result", credits_per_result, 0, 1000, 1),                        \
	{ .path = pf ".fields", .type = CT_GROUP, AT(fields), .set = set_fields },            \
	{ .path = pf ".fields.*", .type = CT_STR, .min = 1, .max = 512, .flags = CF_ANY_NAME,  \
	  .check = cfg_check_field_name },                                                   \
	STR(pf ".domain", domain, 0, LIM_JP_PATH_MAX, "", 0, cfg_check_json_path),           \
	GROUP(pf ".statuses"),                                                              \
	INTS(pf ".statuses.miss", miss, 100, 599),                                           \
	INTS(pf ".statuses.key_invalid", key_invalid, 100, 599),                             \
	INTS(pf ".statuses.quota_exhausted", quota_exhausted, 100, 599),                     \
	INTS(pf ".statuses.rate_limited", rate_limited, 100, 599),                           \
	INTS(pf ".statuses.request_rejected", request_rejected, 100, 599)

static const struct cfg_dir search_people_dirs[] = { SEARCH_DIRS("search_people") };
static const struct cfg_dir search_companies_dirs[] = { SEARCH_DIRS("search_companies") };
#undef SEARCH_DIRS
#undef S

static const struct cfg_table search_companies_table = {
	"generic company search", search_companies_dirs, NITEMS(search_companies_dirs), 0, NULL, NULL
};
static const struct cfg_table search_people_table = {
	"generic people search", search_people_dirs, NITEMS(search_people_dirs), 0,
	&search_companies_table, NULL
};

#define S struct cfg_generic
static const struct cfg_dir generic_dirs[] = {
	GROUP("request"),
	{ .path = "request.method", .type = CT_STR, .min = 0, .max = 8, .names = method_names,
	  .nnames = (int)NITEMS(method_names), AT(method), .dflt_s = "GET" },
	STR("request.url", url, 1, 4096, NULL, CF_REQUIRED, cfg_check_url_template),
	STR("request.body", body, 0, 16384, "", 0, NULL),
	STR("request.auth_header", auth_header, 1, 128, "Authorization", 0, NULL),
	STR("request.auth_prefix", auth_prefix, 0, 64, "", 0, NULL),
	{ .path = "fields", .type = CT_GROUP, AT(fields), .set = set_fields },
	{ .path = "fields.*", .type = CT_STR, .min = 1, .max = 512, .flags = CF_ANY_NAME,
	  .check = cfg_check_field_name },
	GROUP("statuses"),
	INTS("statuses.miss", miss, 100, 599),
	INTS("statuses.key_invalid", key_invalid, 100, 599),
	INTS("statuses.quota_exhausted", quota_exhausted, 100, 599),
	INTS("statuses.rate_limited", rate_limited, 100, 599),
	INTS("statuses.request_rejected", request_rejected, 100, 599),
};
#undef S

/* Pass 1 finds the search rows of a provider block through also. */
const struct cfg_table cfg_generic_table = { "generic provider", generic_dirs,
					     NITEMS(generic_dirs), 0, &search_people_table, NULL };

#define S struct cfg_key
static const struct cfg_dir key_dirs[] = {
	STR("id", id, 1, LIM_NAME_MAX, NULL, CF_REQUIRED, NULL),
	{ .path = "account", .type = CT_STR, .min = 1, .max = LIM_NAME_MAX, AT(account),
	  .set = set_key_account },
	STR("secret", secret, 1, STRMAX, NULL, CF_REQUIRED | CF_SECRET, NULL),
	STR("category", category, 0, LIM_NAME_MAX, "", 0, NULL),
	{ .path = "requests_per_minute", .type = CT_INT, .min = 0, .max = 1000000,
	  AT(requests_per_minute), .set = set_key_pace },
	GROUP("budget"),
	INT("budget.credits", budget.credits, 0, 1000000000000LL, 0),
	CHOICE("budget.period", budget.period, period_names, 1),
};
#undef S

static const struct cfg_table key_table = { "key", key_dirs, NITEMS(key_dirs),
					    sizeof(struct cfg_key), NULL, key_finish };

/* Order matters where a setter reads an earlier row: kind before
 * base_url and credits_per_hit, requests_per_minute before keys. */
#define S struct cfg_provider
static const struct cfg_dir provider_dirs[] = {
	STR("name", name, 1, LIM_NAME_MAX, NULL, CF_REQUIRED, NULL),
	{ .path = "kind", .type = CT_STR, .min = 1, .max = 16, .names = kind_names,
	  .nnames = K__MAX, AT(kind), .flags = CF_REQUIRED },
	{ .path = "base_url", .type = CT_STR, .min = 1, .max = 2048, AT(base_url),
	  .check = cfg_check_url, .set = set_base_url },
	BOOL("enabled", enabled, true),
	INT("timeout_ms", timeout_ms, 50, 120000, 1500),
	INT("requests_per_minute", requests_per_minute, 0, 1000000, 0),
	INT("account_requests_per_minute", account_requests_per_minute, 0, 1000000, 0),
	INT("min_likelihood", min_likelihood, 1, 10, 6),
	{ .path = "credits_per_hit", .type = CT_INT, .min = 0, .max = 1000, AT(credits_per_hit),
	  .set = set_credits_per_hit },
	INT("poll_interval_ms", poll_interval_ms, 10, 60000, 250),
	CHOICE("http2", http2, http2_names, 0),
	STR("ca_file", ca_file, 0, STRMAX, "", CF_PATH, NULL),
	GROUP("bulk"),
	BOOL("bulk.enabled", bulk.enabled, false),
	INT("bulk.batch_size", bulk.batch_size, 1, 10000, 100),
	INT("bulk.linger_ms", bulk.linger_ms, 0, 60000, 20),
	INT("bulk.realtime_linger_ms", bulk.realtime_linger_ms, 0, 1000, 0),
	GROUP("account_budget"),
	INT("account_budget.credits", account_budget.credits, 0, 1000000000000LL, 0),
	CHOICE("account_budget.period", account_budget.period, period_names, 1),
	LIST("keys", keys, nkeys, key_table),
};
#undef S

static const struct cfg_table provider_table = { "provider", provider_dirs,
						 NITEMS(provider_dirs), sizeof(struct cfg_provider),
						 &cfg_generic_table, provider_finish };

#define S struct cfg
static const struct cfg_dir root_dirs[] = {
	{ .path = "listen", .type = CT_STR, .min = 1, .max = LIM_LISTEN_PATH_MAX, AT(listen),
	  .dflt_s = "var/run/enrichd.sock", .flags = CF_PATH, .set = set_listen },
	INT("listen_backlog", listen_backlog, 1, 65535, 1024),
	INT("threads", threads, 1, LIM_THREADS_MAX, 8),
	INT("max_in_flight", max_in_flight, 1, LIM_EV_XFERS_MAX, LIM_EV_XFERS_DEFAULT),
	INT("store_threads", store_threads, 1, LIM_SP_THREADS_MAX, 4),
	CHOICE("log_level", log_level, log_level_choices, LOG_LVL_INFO),
	CHOICE("log_format", log_format, log_format_names, LOG_FMT_TEXT),
	STR("log_file", log_file, 0, STRMAX, "", CF_PATH, NULL),
	{ .path = "store", .type = CT_STR, .min = 1, .max = STRMAX, AT(store),
	  .dflt_s = "sqlite:var/enrichd.db", .check = cfg_check_store, .set = set_store },
	{ .path = "store_password", .type = CT_STR, .min = 0, .max = STRMAX, AT(store_password),
	  .dflt_s = "", .check = cfg_check_secret_ref, .set = set_secret_ref },
	INT("store_pool_size", store_pool_size, 1, 256, ST_POOL_DEFAULT),
	INT("store_pool_wait_ms", store_pool_wait_ms, 10, 60000, ST_POOL_WAIT_MS_DEFAULT),
	INT("store_statement_timeout_ms", store_statement_timeout_ms, 100, 600000,
	    ST_STATEMENT_TIMEOUT_MS_DEFAULT),
	INT("store_busy_timeout_ms", store_busy_timeout_ms, 10, 600000,
	    ST_BUSY_TIMEOUT_MS_DEFAULT),
	STR("data_dir", data_dir, 1, STRMAX, "data", CF_PATH, NULL),
	STR("state_dir", state_dir, 1, STRMAX, "var", CF_PATH, NULL),
	STR("listen_group", listen_group, 0, LIM_NAME_MAX, "", 0, cfg_check_group),

	GROUP("upstream"),
	INT("upstream.max_connections", up_max_connections, 0, LIM_EV_XFERS_MAX, 0),
	INT("upstream.max_host_connections", up_max_host_connections, 0, LIM_EV_XFERS_MAX, 0),
	INT("upstream.max_idle_connections", up_max_idle_connections, 0, LIM_EV_XFERS_MAX, 0),
	INT("upstream.max_streams_per_connection", up_max_streams, 1, LIM_EV_XFERS_MAX, 1000),

	GROUP("http"),
	STR("http.server_name", server_name, 1, 255, "localhost", 0, cfg_check_server_names),
	STRS("http.cors_origins", cors_origins, 1, 255, NULL, cfg_check_origin),

	GROUP("limits"),
	INT("limits.body_max_bytes", limits.body_max_bytes, 1024, LIM_BODY_MAX_CEILING, 10485760),
	INT("limits.records_per_job_max", limits.records_per_job_max, 1, 1000000, 100000),
	INT("limits.field_max_bytes", limits.field_max_bytes, 16, 65536, 512),

	GROUP("accounts_default"),
	INT("accounts_default.requests_per_minute", accounts_default.requests_per_minute, 1,
	    1000000000, 100),
	INT("accounts_default.burst", accounts_default.burst, 1, 1000000000, 20),
	INT("accounts_default.records_per_hour", accounts_default.records_per_hour, 0,
	    1000000000000LL, 1000),
	INT("accounts_default.records_per_day", accounts_default.records_per_day, 0,
	    1000000000000LL, 10000),
	INT("accounts_default.credits_per_day", credits_per_day, 0, 1000000000000LL, 0),
	INT("accounts_default.credits_per_month", credits_per_month, 0, 1000000000000LL, 0),

	GROUP("endpoints"),
	GROUP("endpoints.enrich"),
	BOOL("endpoints.enrich.enabled", endpoints[CFG_EP_ENRICH].enabled, true),
	INT("endpoints.enrich.deadline_ms", endpoints[CFG_EP_ENRICH].deadline_ms, 50, 120000, 2000),
	CHOICE("endpoints.enrich.fallback", endpoints[CFG_EP_ENRICH].fallback, cfg_fallback_names,
	       CFG_FALLBACK_NONE),
	GROUP("endpoints.enqueue"),
	BOOL("endpoints.enqueue.enabled", endpoints[CFG_EP_ENQUEUE].enabled, true),
	GROUP("endpoints.jobs"),
	BOOL("endpoints.jobs.enabled", endpoints[CFG_EP_JOBS].enabled, true),
	GROUP("endpoints.admin"),
	BOOL("endpoints.admin.enabled", endpoints[CFG_EP_ADMIN].enabled, true),
	GROUP("endpoints.search_people"),
	BOOL("endpoints.search_people.enabled", endpoints[CFG_EP_SEARCH_PEOPLE].enabled, true),
	INT("endpoints.search_people.deadline_ms", endpoints[CFG_EP_SEARCH_PEOPLE].deadline_ms, 50,
	    120000, 5000),
	GROUP("endpoints.search_companies"),
	BOOL("endpoints.search_companies.enabled", endpoints[CFG_EP_SEARCH_COMPANIES].enabled, true),
	INT("endpoints.search_companies.deadline_ms", endpoints[CFG_EP_SEARCH_COMPANIES].deadline_ms,
	    50, 120000, 5000),

	GROUP("rotation"),
	BOOL("rotation.enabled", rotation.enabled, true),
	CHOICE("rotation.strategy", rotation.strategy, cfg_strategy_names,
	       CFG_STRATEGY_ROUND_ROBIN),
	GROUP("rotation.endpoints"),
	BOOL("rotation.endpoints.enrich", rotation.endpoints[CFG_EP_ENRICH], true),
	BOOL("rotation.endpoints.enqueue", rotation.endpoints[CFG_EP_ENQUEUE], true),
	BOOL("rotation.endpoints.search_people", rotation.endpoints[CFG_EP_SEARCH_PEOPLE], true),
	BOOL("rotation.endpoints.search_companies", rotation.endpoints[CFG_EP_SEARCH_COMPANIES], true),
	INT("rotation.breaker_threshold", rotation.breaker_threshold, 1, 1000, 3),
	INT("rotation.cooldown_max_s", rotation.cooldown_max_s, 1, 86400, 60),

	GROUP("waterfall"),
	WATERFALL("person", CFG_GROUP_PERSON),
	WATERFALL("phone", CFG_GROUP_PHONE),
	WATERFALL("email", CFG_GROUP_EMAIL),
	WATERFALL("company", CFG_GROUP_COMPANY),

	GROUP("cache"),
	BOOL("cache.enabled", cache.enabled, true),
	INT("cache.hit_ttl_s", cache.hit_ttl_s, 0, 31536000LL * 10, 604800),
	INT("cache.miss_ttl_s", cache.miss_ttl_s, 0, 31536000LL * 10, 86400),
	INT("cache.search_ttl_s", cache.search_ttl_s, 0, 31536000LL * 10, 86400),

	GROUP("search"),
	STRS("search.people", search.people, 1, LIM_NAME_MAX, NULL, NULL),
	STRS("search.companies", search.companies, 1, LIM_NAME_MAX, NULL, NULL),
	INT("search.limit_max", search.limit_max, 1, LIM_SEARCH_LIMIT_CEILING, 100),
	INT("search.limit_default", search.limit_default, 1, LIM_SEARCH_LIMIT_CEILING, 25),
	STR("search.cursor_secret", search.cursor_secret, 0, STRMAX, "", CF_SECRET, NULL),
	INT("search.cursor_ttl_s", search.cursor_ttl_s, 60, 31536000, 86400),
	INT("search.enqueue_max_records", search.enqueue_max_records, 1, 1000000, 1000),

	GROUP("alerts"),
	STR("alerts.webhook_url", alerts.webhook_url, 0, 2048, "", 0, cfg_check_url),

	GROUP("webhooks"),
	STR("webhooks.secret", webhooks.secret, 0, STRMAX, "", CF_SECRET, NULL),
	BOOL("webhooks.allow_private", webhooks.allow_private, false),
	INT("webhooks.timeout_ms", webhooks.timeout_ms, 100, 60000, 5000),
	INT("webhooks.max_attempts", webhooks.max_attempts, 1, 50, 5),

	GROUP("worker"),
	INT("worker.concurrency", worker.concurrency, 1, 1024, 10),
	INT("worker.claim_batch", worker.claim_batch, 1, 1000, 10),
	INT("worker.lease_s", worker.lease_s, 2, 3600, 60),
	INT("worker.heartbeat_s", worker.heartbeat_s, 1, 600, 10),
	INT("worker.max_attempts", worker.max_attempts, 1, 100, 5),
	INT("worker.grace_s", worker.grace_s, 0, 600, 20),
	INT("worker.backoff_base_ms", worker.backoff_base_ms, 1, 600000, 1000),
	INT("worker.backoff_max_ms", worker.backoff_max_ms, 1, 3600000, 60000),
	INT("worker.poll_ms", worker.poll_ms, 10, 60000, 500),
	INT("worker.batch_rows", worker.batch_rows, 1, 1000, 100),

	LIST("providers", providers, nproviders, provider_table),
};
#undef S

const struct cfg_table cfg_root_table = { "configuration", root_dirs, NITEMS(root_dirs), 0,
					  NULL, root_finish };
