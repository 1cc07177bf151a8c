/*
 * config.c - libconfig loading, table-driven validation, snapshots.
 *
 * Validation has two passes.  The first walks every setting in the file
 * and checks it against cfg_rules (so an unknown or mistyped setting is
 * found wherever it is); the second copies values into struct cfg and
 * checks what one rule cannot see: references between sections, unique
 * names, secrets that must resolve.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libconfig.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fields.h"
#include "limits.h"
#include "util.h"

const char *const cfg_endpoint_names[CFG_EP__MAX] = {
	[CFG_EP_ENRICH] = "enrich",
	[CFG_EP_ENQUEUE] = "enqueue",
	[CFG_EP_JOBS] = "jobs",
	[CFG_EP_ADMIN] = "admin",
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

/* ---- pass 1: the rule table ------------------------------------------ */

enum rule_type { R_GROUP, R_LIST, R_STR, R_INT, R_BOOL, R_STR_ARRAY, R_INT_ARRAY };

struct cfg_rule {
	const char *path;   /* "a.b"; list elements are "[]"; "*" any member name */
	enum rule_type type;
	int64_t min, max;   /* R_INT, R_INT_ARRAY elements; R_STR: length */
	const char *choices; /* R_STR: "a|b|c" when only these are allowed */
};

#define I64 INT64_MAX
#define STRMAX 4096

static const struct cfg_rule cfg_rules[] = {
	{ "listen", R_STR, 1, 107, NULL },
	{ "listen_backlog", R_INT, 1, 65535, NULL },
	{ "threads", R_INT, 1, LIM_THREADS_MAX, NULL },
	{ "log_level", R_STR, 0, 16, "debug|info|warn|error" },
	{ "log_file", R_STR, 0, STRMAX, NULL },
	{ "store", R_STR, 1, STRMAX, NULL },
	{ "data_dir", R_STR, 1, STRMAX, NULL },
	{ "state_dir", R_STR, 1, STRMAX, NULL },
	{ "listen_group", R_STR, 0, LIM_NAME_MAX, NULL },

	{ "http", R_GROUP, 0, 0, NULL },
	{ "http.server_name", R_STR, 1, 255, NULL },
	{ "http.cors_origins", R_STR_ARRAY, 1, 255, NULL },

	{ "limits", R_GROUP, 0, 0, NULL },
	{ "limits.body_max_bytes", R_INT, 1024, LIM_BODY_MAX_CEILING, NULL },
	{ "limits.records_per_job_max", R_INT, 1, 1000000, NULL },
	{ "limits.field_max_bytes", R_INT, 16, 65536, NULL },

	{ "accounts_default", R_GROUP, 0, 0, NULL },
	{ "accounts_default.requests_per_minute", R_INT, 1, 1000000000, NULL },
	{ "accounts_default.burst", R_INT, 1, 1000000000, NULL },
	{ "accounts_default.records_per_hour", R_INT, 0, 1000000000000LL, NULL },
	{ "accounts_default.records_per_day", R_INT, 0, 1000000000000LL, NULL },

	{ "endpoints", R_GROUP, 0, 0, NULL },
	{ "endpoints.enrich", R_GROUP, 0, 0, NULL },
	{ "endpoints.enrich.enabled", R_BOOL, 0, 0, NULL },
	{ "endpoints.enrich.deadline_ms", R_INT, 50, 120000, NULL },
	{ "endpoints.enrich.fallback", R_STR, 0, 16, "none|mock" },
	{ "endpoints.enqueue", R_GROUP, 0, 0, NULL },
	{ "endpoints.enqueue.enabled", R_BOOL, 0, 0, NULL },
	{ "endpoints.jobs", R_GROUP, 0, 0, NULL },
	{ "endpoints.jobs.enabled", R_BOOL, 0, 0, NULL },
	{ "endpoints.admin", R_GROUP, 0, 0, NULL },
	{ "endpoints.admin.enabled", R_BOOL, 0, 0, NULL },

	{ "rotation", R_GROUP, 0, 0, NULL },
	{ "rotation.enabled", R_BOOL, 0, 0, NULL },
	{ "rotation.strategy", R_STR, 0, 32, "round_robin|ordered|least_used" },
	{ "rotation.endpoints", R_GROUP, 0, 0, NULL },
	{ "rotation.endpoints.enrich", R_BOOL, 0, 0, NULL },
	{ "rotation.endpoints.enqueue", R_BOOL, 0, 0, NULL },
	{ "rotation.breaker_threshold", R_INT, 1, 1000, NULL },
	{ "rotation.cooldown_max_s", R_INT, 1, 86400, NULL },

	{ "waterfall", R_GROUP, 0, 0, NULL },
	{ "waterfall.person", R_STR_ARRAY, 1, LIM_NAME_MAX, NULL },
	{ "waterfall.phone", R_STR_ARRAY, 1, LIM_NAME_MAX, NULL },
	{ "waterfall.email", R_STR_ARRAY, 1, LIM_NAME_MAX, NULL },
	{ "waterfall.company", R_STR_ARRAY, 1, LIM_NAME_MAX, NULL },

	{ "cache", R_GROUP, 0, 0, NULL },
	{ "cache.enabled", R_BOOL, 0, 0, NULL },
	{ "cache.hit_ttl_s", R_INT, 0, 31536000LL * 10, NULL },
	{ "cache.miss_ttl_s", R_INT, 0, 31536000LL * 10, NULL },

	{ "alerts", R_GROUP, 0, 0, NULL },
	{ "alerts.webhook_url", R_STR, 0, 2048, NULL },

	{ "webhooks", R_GROUP, 0, 0, NULL },
	{ "webhooks.secret", R_STR, 0, STRMAX, NULL },
	{ "webhooks.allow_private", R_BOOL, 0, 0, NULL },
	{ "webhooks.timeout_ms", R_INT, 100, 60000, NULL },
	{ "webhooks.max_attempts", R_INT, 1, 50, NULL },

	{ "worker", R_GROUP, 0, 0, NULL },
	{ "worker.concurrency", R_INT, 1, 1024, NULL },
	{ "worker.claim_batch", R_INT, 1, 1000, NULL },
	{ "worker.lease_s", R_INT, 2, 3600, NULL },
	{ "worker.heartbeat_s", R_INT, 1, 600, NULL },
	{ "worker.max_attempts", R_INT, 1, 100, NULL },
	{ "worker.grace_s", R_INT, 0, 600, NULL },
	{ "worker.backoff_base_ms", R_INT, 1, 600000, NULL },
	{ "worker.backoff_max_ms", R_INT, 1, 3600000, NULL },
	{ "worker.poll_ms", R_INT, 10, 60000, NULL },

	{ "providers", R_LIST, 0, 0, NULL },
	{ "providers.[]", R_GROUP, 0, 0, NULL },
	{ "providers.[].name", R_STR, 1, LIM_NAME_MAX, NULL },
	{ "providers.[].kind", R_STR, 1, 16, "pdl|lusha|surfe|generic|local|mock" },
	{ "providers.[].base_url", R_STR, 1, 2048, NULL },
	{ "providers.[].enabled", R_BOOL, 0, 0, NULL },
	{ "providers.[].timeout_ms", R_INT, 50, 120000, NULL },
	{ "providers.[].requests_per_minute", R_INT, 0, 1000000, NULL },
	{ "providers.[].account_requests_per_minute", R_INT, 0, 1000000, NULL },
	{ "providers.[].min_likelihood", R_INT, 1, 10, NULL },
	{ "providers.[].credits_per_hit", R_INT, 0, 1000, NULL },
	{ "providers.[].poll_interval_ms", R_INT, 10, 60000, NULL },
	{ "providers.[].keys", R_LIST, 0, 0, NULL },
	{ "providers.[].keys.[]", R_GROUP, 0, 0, NULL },
	{ "providers.[].keys.[].id", R_STR, 1, LIM_NAME_MAX, NULL },
	{ "providers.[].keys.[].account", R_STR, 1, LIM_NAME_MAX, NULL },
	{ "providers.[].keys.[].secret", R_STR, 1, STRMAX, NULL },
	{ "providers.[].keys.[].category", R_STR, 0, LIM_NAME_MAX, NULL },
	{ "providers.[].keys.[].requests_per_minute", R_INT, 0, 1000000, NULL },
	{ "providers.[].request", R_GROUP, 0, 0, NULL },
	{ "providers.[].request.method", R_STR, 0, 8, "GET|POST" },
	{ "providers.[].request.url", R_STR, 1, 4096, NULL },
	{ "providers.[].request.body", R_STR, 0, 16384, NULL },
	{ "providers.[].request.auth_header", R_STR, 1, 128, NULL },
	{ "providers.[].request.auth_prefix", R_STR, 0, 64, NULL },
	{ "providers.[].fields", R_GROUP, 0, 0, NULL },
	{ "providers.[].fields.*", R_STR, 1, 512, NULL },
	{ "providers.[].statuses", R_GROUP, 0, 0, NULL },
	{ "providers.[].statuses.miss", R_INT_ARRAY, 100, 599, NULL },
	{ "providers.[].statuses.key_invalid", R_INT_ARRAY, 100, 599, NULL },
	{ "providers.[].statuses.quota_exhausted", R_INT_ARRAY, 100, 599, NULL },
	{ "providers.[].statuses.rate_limited", R_INT_ARRAY, 100, 599, NULL },
	{ "providers.[].statuses.request_rejected", R_INT_ARRAY, 100, 599, NULL },
};

static const char *const rule_type_names[] = {
	[R_GROUP] = "a group { ... }",
	[R_LIST] = "a list ( ... )",
	[R_STR] = "a string",
	[R_INT] = "an integer",
	[R_BOOL] = "true or false",
	[R_STR_ARRAY] = "an array of strings [ ... ]",
	[R_INT_ARRAY] = "an array of integers [ ... ]",
};

/* The error of a load: first problem wins. */
struct cfg_errctx {
	const char *path;
	char *err;
	size_t errlen;
	bool set;
	unsigned flags;
};

__attribute__((format(printf, 4, 5)))
static void cfg_fail(struct cfg_errctx *e, const config_setting_t *s, const char *name,
		     const char *fmt, ...)
{
	char msg[LIM_CONFIG_ERR_MAX];
	va_list ap;
	const char *file = e->path;
	unsigned line = 0;

	if (e->set)
		return;
	e->set = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (s) {
		line = config_setting_source_line(s);
		if (config_setting_source_file(s))
			file = config_setting_source_file(s);
	}
	if (line)
		snprintf(e->err, e->errlen, "%s:%u: %s: %s", file, line, name, msg);
	else
		snprintf(e->err, e->errlen, "%s: %s: %s", file, name, msg);
}

/* The display path of a setting ("providers[1].keys[0].id") and its rule
 * pattern ("providers.[].keys.[].id"). */
static void setting_paths(const config_setting_t *s, char *disp, size_t dlen, char *pat,
			  size_t plen)
{
	const config_setting_t *chain[32];
	int n = 0;
	size_t d = 0, p = 0;

	for (; s && config_setting_parent(s) && n < 32; s = config_setting_parent(s))
		chain[n++] = s;
	disp[0] = pat[0] = '\0';
	while (n-- > 0) {
		const config_setting_t *c = chain[n];
		const char *nm = config_setting_name(c);
		int w;

		if (nm) {
			w = snprintf(disp + d, dlen - d, "%s%s", d ? "." : "", nm);
			if (w > 0 && (size_t)w < dlen - d)
				d += (size_t)w;
			w = snprintf(pat + p, plen - p, "%s%s", p ? "." : "", nm);
		} else {
			w = snprintf(disp + d, dlen - d, "[%d]", config_setting_index(c));
			if (w > 0 && (size_t)w < dlen - d)
				d += (size_t)w;
			w = snprintf(pat + p, plen - p, "%s[]", p ? "." : "");
		}
		if (w > 0 && (size_t)w < plen - p)
			p += (size_t)w;
	}
}

static const struct cfg_rule *rule_find(const char *pat)
{
	const char *dot = strrchr(pat, '.');

	for (size_t i = 0; i < sizeof cfg_rules / sizeof cfg_rules[0]; i++) {
		const char *rp = cfg_rules[i].path;
		size_t rl = strlen(rp);

		if (strcmp(rp, pat) == 0)
			return &cfg_rules[i];
		/* "x.*" matches any member directly under x */
		if (rl >= 2 && rp[rl - 1] == '*' && dot && (size_t)(dot - pat) == rl - 2 &&
		    strncmp(rp, pat, rl - 2) == 0)
			return &cfg_rules[i];
	}
	return NULL;
}

static bool choice_ok(const char *choices, const char *v)
{
	size_t vl = strlen(v);

	for (const char *p = choices; *p;) {
		const char *bar = strchr(p, '|');
		size_t l = bar ? (size_t)(bar - p) : strlen(p);

		if (l == vl && strncmp(p, v, l) == 0)
			return true;
		if (!bar)
			break;
		p = bar + 1;
	}
	return false;
}

static bool is_int(const config_setting_t *s)
{
	int t = config_setting_type(s);

	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

static void check_scalar(struct cfg_errctx *e, const config_setting_t *s, const char *disp,
			 const struct cfg_rule *r, enum rule_type t)
{
	if (t == R_STR) {
		const char *v = config_setting_get_string(s);
		size_t l;

		if (v == NULL || config_setting_type(s) != CONFIG_TYPE_STRING) {
			cfg_fail(e, s, disp, "must be a string");
			return;
		}
		l = strlen(v);
		if ((int64_t)l < r->min || (int64_t)l > r->max) {
			cfg_fail(e, s, disp, "length %zu is outside %lld..%lld", l,
				 (long long)r->min, (long long)r->max);
			return;
		}
		if (!util_utf8_valid(v, l)) {
			cfg_fail(e, s, disp, "is not valid UTF-8");
			return;
		}
		if (r->choices && !choice_ok(r->choices, v))
			cfg_fail(e, s, disp, "\"%s\" is not one of %s", v, r->choices);
	} else if (t == R_INT) {
		long long v;

		if (!is_int(s)) {
			cfg_fail(e, s, disp, "must be an integer");
			return;
		}
		v = config_setting_get_int64(s);
		if (v < r->min || v > r->max)
			cfg_fail(e, s, disp, "%lld is outside %lld..%lld", v, (long long)r->min,
				 (long long)r->max);
	}
}

static void walk(struct cfg_errctx *e, const config_setting_t *s)
{
	char disp[256], pat[256];
	const struct cfg_rule *r;
	int type = config_setting_type(s);
	int n;

	if (e->set)
		return;
	if (config_setting_parent(s) != NULL) {
		setting_paths(s, disp, sizeof disp, pat, sizeof pat);
		r = rule_find(pat);
		if (r == NULL) {
			cfg_fail(e, s, disp, "unknown setting");
			return;
		}
		switch (r->type) {
		case R_GROUP:
			if (type != CONFIG_TYPE_GROUP) {
				cfg_fail(e, s, disp, "must be %s", rule_type_names[r->type]);
				return;
			}
			break;
		case R_LIST:
			if (type != CONFIG_TYPE_LIST) {
				cfg_fail(e, s, disp, "must be %s", rule_type_names[r->type]);
				return;
			}
			break;
		case R_BOOL:
			if (type != CONFIG_TYPE_BOOL)
				cfg_fail(e, s, disp, "must be %s", rule_type_names[r->type]);
			return;
		case R_STR:
		case R_INT:
			if ((r->type == R_STR && type != CONFIG_TYPE_STRING) ||
			    (r->type == R_INT && !is_int(s))) {
				cfg_fail(e, s, disp, "must be %s", rule_type_names[r->type]);
				return;
			}
			check_scalar(e, s, disp, r, r->type);
			return;
		case R_STR_ARRAY:
		case R_INT_ARRAY:
			if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
				cfg_fail(e, s, disp, "must be %s", rule_type_names[r->type]);
				return;
			}
			n = config_setting_length(s);
			for (int i = 0; i < n && !e->set; i++) {
				const config_setting_t *el = config_setting_get_elem(s, (unsigned)i);
				char ed[300];

				snprintf(ed, sizeof ed, "%s[%d]", disp, i);
				if (r->type == R_STR_ARRAY && config_setting_type(el) != CONFIG_TYPE_STRING)
					cfg_fail(e, el, ed, "must be a string");
				else if (r->type == R_INT_ARRAY && !is_int(el))
					cfg_fail(e, el, ed, "must be an integer");
				else
					check_scalar(e, el, ed, r,
						     r->type == R_STR_ARRAY ? R_STR : R_INT);
			}
			return;
		}
	}
	n = config_setting_length(s);
	for (int i = 0; i < n && !e->set; i++)
		walk(e, config_setting_get_elem(s, (unsigned)i));
}

/* ---- pass 2: copy into struct cfg --------------------------------------- */

static char *xstrdup(const char *s, bool *oom)
{
	char *p = strdup(s ? s : "");

	if (p == NULL)
		*oom = true;
	return p;
}

static const char *get_str(const config_setting_t *g, const char *name, const char *dflt)
{
	const char *v = NULL;

	if (g && config_setting_lookup_string(g, name, &v) == CONFIG_TRUE)
		return v;
	return dflt;
}

static int64_t get_int(const config_setting_t *g, const char *name, int64_t dflt)
{
	const config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;

	return s ? (int64_t)config_setting_get_int64(s) : dflt;
}

static bool get_bool(const config_setting_t *g, const char *name, bool dflt)
{
	int v;

	if (g && config_setting_lookup_bool(g, name, &v) == CONFIG_TRUE)
		return v != 0;
	return dflt;
}

static int choice_index(const char *const *names, int n, const char *v)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i], v) == 0)
			return i;
	}
	return 0;
}

static void list_free(struct cfg_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static bool get_str_list(const config_setting_t *arr, struct cfg_list *out)
{
	int n = arr ? config_setting_length(arr) : 0;

	out->v = NULL;
	out->n = 0;
	if (n <= 0)
		return true;
	out->v = calloc((size_t)n, sizeof *out->v);
	if (out->v == NULL)
		return false;
	for (int i = 0; i < n; i++) {
		const char *s = config_setting_get_string_elem(arr, i);

		out->v[i] = strdup(s ? s : "");
		if (out->v[i] == NULL)
			return false;
		out->n++;
	}
	return true;
}

static bool get_int_list(const config_setting_t *arr, struct cfg_int_list *out)
{
	int n = arr ? config_setting_length(arr) : 0;

	out->v = NULL;
	out->n = 0;
	if (n <= 0)
		return true;
	out->v = calloc((size_t)n, sizeof *out->v);
	if (out->v == NULL)
		return false;
	for (int i = 0; i < n; i++)
		out->v[i] = config_setting_get_int_elem(arr, i);
	out->n = (size_t)n;
	return true;
}

/* Read a secret reference: "env:NAME" or "file:PATH".  The file must not
 * be readable by others (it holds a credential). */
static bool resolve_secret(struct cfg_errctx *e, const config_setting_t *s, const char *disp,
			   const char *ref, char **out)
{
	if ((e->flags & CFG_LOAD_NO_SECRETS) &&
	    ((strncmp(ref, "env:", 4) == 0 && ref[4]) || (strncmp(ref, "file:", 5) == 0 && ref[5]))) {
		*out = strdup("");
		return *out != NULL;
	}
	if (strncmp(ref, "env:", 4) == 0) {
		const char *v = getenv(ref + 4);

		if (ref[4] == '\0' || v == NULL || *v == '\0') {
			cfg_fail(e, s, disp, "environment variable %s is not set", ref + 4);
			return false;
		}
		*out = strdup(v);
		return *out != NULL;
	}
	if (strncmp(ref, "file:", 5) == 0) {
		char buf[4096];
		ssize_t n;
		struct stat st;
		int fd = open(ref + 5, O_RDONLY | O_CLOEXEC);

		if (fd < 0) {
			cfg_fail(e, s, disp, "cannot open secret file %s: %s", ref + 5,
				 strerror(errno));
			return false;
		}
		if (fstat(fd, &st) == 0 && (st.st_mode & S_IROTH)) {
			close(fd);
			cfg_fail(e, s, disp, "secret file %s is readable by others (chmod o-r)",
				 ref + 5);
			return false;
		}
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0) {
			cfg_fail(e, s, disp, "secret file %s is empty", ref + 5);
			return false;
		}
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
			n--;
		buf[n] = '\0';
		if (n == 0) {
			cfg_fail(e, s, disp, "secret file %s is empty", ref + 5);
			return false;
		}
		*out = strdup(buf);
		return *out != NULL;
	}
	cfg_fail(e, s, disp, "must be \"env:NAME\" or \"file:PATH\" (secrets are never written in the file)");
	return false;
}

static void generic_free(struct cfg_generic *g)
{
	if (g == NULL)
		return;
	free(g->method);
	free(g->url);
	free(g->body);
	free(g->auth_header);
	free(g->auth_prefix);
	for (size_t i = 0; i < sizeof g->fields / sizeof g->fields[0]; i++)
		free(g->fields[i]);
	free(g->miss.v);
	free(g->key_invalid.v);
	free(g->quota_exhausted.v);
	free(g->rate_limited.v);
	free(g->request_rejected.v);
	free(g);
}

static void provider_release(struct cfg_provider *p)
{
	free(p->name);
	free(p->kind);
	free(p->base_url);
	for (size_t k = 0; k < p->nkeys; k++) {
		struct cfg_key *key = &p->keys[k];

		free(key->id);
		free(key->account);
		if (key->secret) {
			explicit_bzero(key->secret, strlen(key->secret));
			free(key->secret);
		}
		free(key->category);
	}
	free(p->keys);
	generic_free(p->generic);
}

static void cfg_free(struct cfg *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->listen);
	free(c->log_file);
	free(c->store);
	free(c->data_dir);
	free(c->state_dir);
	free(c->listen_group);
	free(c->server_name);
	list_free(&c->cors_origins);
	for (int g = 0; g < CFG_GROUP__MAX; g++)
		list_free(&c->waterfall[g]);
	free(c->alerts.webhook_url);
	if (c->webhooks.secret) {
		explicit_bzero(c->webhooks.secret, strlen(c->webhooks.secret));
		free(c->webhooks.secret);
	}
	for (size_t i = 0; i < c->nproviders; i++)
		provider_release(&c->providers[i]);
	free(c->providers);
	free(c);
}

static bool group_exists(const char *name)
{
	struct group gr, *found = NULL;
	char scratch[4096];

	return getgrnam_r(name, &gr, scratch, sizeof scratch, &found) == 0 && found != NULL;
}

static bool url_ok(const char *u)
{
	return strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0;
}

static const char *default_base_url(const char *kind)
{
	if (strcmp(kind, "pdl") == 0)
		return "https://api.peopledatalabs.com";
	if (strcmp(kind, "lusha") == 0)
		return "https://api.lusha.com";
	if (strcmp(kind, "surfe") == 0)
		return "https://api.surfe.com";
	return "";
}

static bool load_generic(struct cfg_errctx *e, const config_setting_t *ps, const char *pdisp,
			 struct cfg_provider *p, bool *oom)
{
	const config_setting_t *req = config_setting_get_member(ps, "request");
	const config_setting_t *fields = config_setting_get_member(ps, "fields");
	const config_setting_t *st = config_setting_get_member(ps, "statuses");
	struct cfg_generic *g;
	int n;

	if (strcmp(p->kind, "generic") != 0) {
		if (req || fields || st)
			cfg_fail(e, req ? req : fields ? fields : st, pdisp,
				 "request/fields/statuses are only for kind \"generic\"");
		return !e->set;
	}
	if (req == NULL || fields == NULL) {
		cfg_fail(e, ps, pdisp, "kind \"generic\" needs request = { ... } and fields = { ... }");
		return false;
	}
	g = calloc(1, sizeof *g);
	if (g == NULL) {
		*oom = true;
		return false;
	}
	p->generic = g;
	g->method = xstrdup(get_str(req, "method", "GET"), oom);
	g->url = xstrdup(get_str(req, "url", ""), oom);
	g->body = xstrdup(get_str(req, "body", ""), oom);
	g->auth_header = xstrdup(get_str(req, "auth_header", "Authorization"), oom);
	g->auth_prefix = xstrdup(get_str(req, "auth_prefix", ""), oom);
	if (!*oom && g->url[0] == '\0') {
		cfg_fail(e, req, pdisp, "request.url is required");
		return false;
	}
	n = config_setting_length(fields);
	for (int i = 0; i < n; i++) {
		const config_setting_t *f = config_setting_get_elem(fields, (unsigned)i);
		enum fld_id id;

		if (!fld_parse(config_setting_name(f), &id)) {
			char d[300];

			snprintf(d, sizeof d, "%s.fields.%s", pdisp, config_setting_name(f));
			cfg_fail(e, f, d, "not a record field name");
			return false;
		}
		g->fields[id] = xstrdup(config_setting_get_string(f), oom);
	}
	if (!get_int_list(st ? config_setting_get_member(st, "miss") : NULL, &g->miss) ||
	    !get_int_list(st ? config_setting_get_member(st, "key_invalid") : NULL,
			  &g->key_invalid) ||
	    !get_int_list(st ? config_setting_get_member(st, "quota_exhausted") : NULL,
			  &g->quota_exhausted) ||
	    !get_int_list(st ? config_setting_get_member(st, "rate_limited") : NULL,
			  &g->rate_limited) ||
	    !get_int_list(st ? config_setting_get_member(st, "request_rejected") : NULL,
			  &g->request_rejected))
		*oom = true;
	return !*oom;
}

static bool name_used(const struct cfg *c, size_t upto, const char *name)
{
	for (size_t i = 0; i < upto; i++) {
		if (strcmp(c->providers[i].name, name) == 0)
			return true;
	}
	return false;
}

static bool key_id_used(const struct cfg *c, const char *id)
{
	for (size_t i = 0; i < c->nproviders; i++) {
		for (size_t k = 0; k < c->providers[i].nkeys; k++) {
			if (c->providers[i].keys[k].id && strcmp(c->providers[i].keys[k].id, id) == 0)
				return true;
		}
	}
	return false;
}

static bool load_providers(struct cfg_errctx *e, const config_setting_t *list, struct cfg *c,
			   bool *oom)
{
	int n = list ? config_setting_length(list) : 0;

	if (n <= 0)
		return true;
	c->providers = calloc((size_t)n, sizeof *c->providers);
	if (c->providers == NULL) {
		*oom = true;
		return false;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *ps = config_setting_get_elem(list, (unsigned)i);
		const config_setting_t *keys = config_setting_get_member(ps, "keys");
		struct cfg_provider *p = &c->providers[i];
		char disp[64];
		const char *name = get_str(ps, "name", NULL);
		const char *kind = get_str(ps, "kind", NULL);
		int nk;

		snprintf(disp, sizeof disp, "providers[%d]", i);
		if (name == NULL || kind == NULL) {
			cfg_fail(e, ps, disp, "name and kind are required");
			return false;
		}
		if (name_used(c, (size_t)i, name)) {
			cfg_fail(e, ps, disp, "provider name \"%s\" is used twice", name);
			return false;
		}
		c->nproviders = (size_t)i + 1;
		p->name = xstrdup(name, oom);
		p->kind = xstrdup(kind, oom);
		p->base_url = xstrdup(get_str(ps, "base_url", default_base_url(kind)), oom);
		if (*oom)
			return false;
		if (p->base_url[0] && !url_ok(p->base_url)) {
			cfg_fail(e, config_setting_get_member(ps, "base_url"), disp,
				 "base_url must start with https:// (http:// only for loopback tests)");
			return false;
		}
		if (p->base_url[0] == '\0' && (strcmp(kind, "local") != 0 && strcmp(kind, "mock") != 0) &&
		    strcmp(kind, "generic") != 0) {
			cfg_fail(e, ps, disp, "base_url is required");
			return false;
		}
		p->enabled = get_bool(ps, "enabled", true);
		p->timeout_ms = (int)get_int(ps, "timeout_ms", 1500);
		p->requests_per_minute = (int)get_int(ps, "requests_per_minute", 0);
		p->account_requests_per_minute = (int)get_int(ps, "account_requests_per_minute", 0);
		p->min_likelihood = (int)get_int(ps, "min_likelihood", 6);
		p->credits_per_hit = (int)get_int(ps, "credits_per_hit",
						  strcmp(kind, "local") == 0 || strcmp(kind, "mock") == 0 ? 0 : 1);
		p->poll_interval_ms = (int)get_int(ps, "poll_interval_ms", 250);
		if (!load_generic(e, ps, disp, p, oom))
			return false;

		nk = keys ? config_setting_length(keys) : 0;
		if (nk > 0) {
			p->keys = calloc((size_t)nk, sizeof *p->keys);
			if (p->keys == NULL) {
				*oom = true;
				return false;
			}
		}
		for (int k = 0; k < nk; k++) {
			const config_setting_t *ks = config_setting_get_elem(keys, (unsigned)k);
			struct cfg_key *key = &p->keys[k];
			const char *id = get_str(ks, "id", NULL);
			const char *secret = get_str(ks, "secret", NULL);
			char kd[96];

			snprintf(kd, sizeof kd, "%s.keys[%d]", disp, k);
			if (id == NULL || secret == NULL) {
				cfg_fail(e, ks, kd, "id and secret are required");
				return false;
			}
			if (key_id_used(c, id)) {
				cfg_fail(e, ks, kd, "key id \"%s\" is used twice", id);
				return false;
			}
			p->nkeys = (size_t)k + 1;
			key->id = xstrdup(id, oom);
			key->account = xstrdup(get_str(ks, "account", id), oom);
			key->category = xstrdup(get_str(ks, "category", ""), oom);
			key->requests_per_minute =
				(int)get_int(ks, "requests_per_minute", p->requests_per_minute);
			if (*oom)
				return false;
			snprintf(kd, sizeof kd, "%s.keys[%d].secret", disp, k);
			if (!resolve_secret(e, config_setting_get_member(ks, "secret"), kd, secret,
					    &key->secret))
				return false;
		}
		if (nk == 0 && strcmp(kind, "local") != 0 && strcmp(kind, "mock") != 0) {
			cfg_fail(e, ps, disp, "provider \"%s\" of kind %s needs at least one key",
				 name, kind);
			return false;
		}
	}
	return true;
}

/* Built-in providers that need no declaration. */
static bool builtin_provider(const char *name)
{
	return strcmp(name, "local") == 0 || strcmp(name, "mock") == 0;
}

static bool check_waterfall(struct cfg_errctx *e, const config_setting_t *root, struct cfg *c)
{
	for (int g = 0; g < CFG_GROUP__MAX; g++) {
		for (size_t i = 0; i < c->waterfall[g].n; i++) {
			const char *name = c->waterfall[g].v[i];
			char path[64];

			if (builtin_provider(name) || cfg_provider_find(c, name))
				continue;
			const config_setting_t *wf = config_setting_get_member(root, "waterfall");
			const config_setting_t *arr =
				wf ? config_setting_get_member(wf, cfg_group_names[g]) : NULL;

			snprintf(path, sizeof path, "waterfall.%s[%zu]", cfg_group_names[g], i);
			cfg_fail(e, arr ? config_setting_get_elem(arr, (unsigned)i) : NULL, path,
				 "no provider is named \"%s\"", name);
			return false;
		}
	}
	return true;
}

static void set_defaults(struct cfg *c)
{
	c->listen_backlog = 1024;
	c->threads = 64;
	c->log_level = LOG_LVL_INFO;
	c->limits.body_max_bytes = 10 * 1024 * 1024;
	c->limits.records_per_job_max = 100000;
	c->limits.field_max_bytes = 512;
	c->accounts_default.requests_per_minute = 100;
	c->accounts_default.burst = 20;
	c->accounts_default.records_per_hour = 1000;
	c->accounts_default.records_per_day = 10000;
	for (int i = 0; i < CFG_EP__MAX; i++) {
		c->endpoints[i].enabled = true;
		c->endpoints[i].deadline_ms = 2000;
		c->endpoints[i].fallback = CFG_FALLBACK_NONE;
		c->rotation.endpoints[i] = true;
	}
	c->rotation.enabled = true;
	c->rotation.strategy = CFG_STRATEGY_ROUND_ROBIN;
	c->rotation.breaker_threshold = 3;
	c->rotation.cooldown_max_s = 60;
	c->cache.enabled = true;
	c->cache.hit_ttl_s = 604800;
	c->cache.miss_ttl_s = 86400;
	c->webhooks.allow_private = false;
	c->webhooks.timeout_ms = 5000;
	c->webhooks.max_attempts = 5;
	c->worker.concurrency = 10;
	c->worker.claim_batch = 10;
	c->worker.lease_s = 60;
	c->worker.heartbeat_s = 10;
	c->worker.max_attempts = 5;
	c->worker.grace_s = 20;
	c->worker.backoff_base_ms = 1000;
	c->worker.backoff_max_ms = 60000;
	c->worker.poll_ms = 500;
}

static bool load_values(struct cfg_errctx *e, const config_setting_t *root, struct cfg *c,
			bool *oom)
{
	const config_setting_t *g;
	const char *lvl;

	set_defaults(c);
	c->listen = xstrdup(get_str(root, "listen", "var/run/enrichd.sock"), oom);
	c->listen_backlog = (int)get_int(root, "listen_backlog", c->listen_backlog);
	c->threads = (int)get_int(root, "threads", c->threads);
	lvl = get_str(root, "log_level", "info");
	log_level_parse(lvl, &c->log_level);
	c->log_file = xstrdup(get_str(root, "log_file", ""), oom);
	c->store = xstrdup(get_str(root, "store", "sqlite:var/enrichd.db"), oom);
	c->data_dir = xstrdup(get_str(root, "data_dir", "data"), oom);
	c->state_dir = xstrdup(get_str(root, "state_dir", "var"), oom);
	c->listen_group = xstrdup(get_str(root, "listen_group", ""), oom);
	if (*oom)
		return false;
	if (c->listen_group[0] && !group_exists(c->listen_group)) {
		cfg_fail(e, config_setting_get_member(root, "listen_group"), "listen_group",
			 "no group is named \"%s\"", c->listen_group);
		return false;
	}
	if (cfg_store_path(c->store, NULL) == NULL) {
		cfg_fail(e, config_setting_get_member(root, "store"), "store",
			 "must be \"sqlite:PATH\"");
		return false;
	}

	g = config_setting_get_member(root, "http");
	c->server_name = xstrdup(get_str(g, "server_name", "localhost"), oom);
	if (!get_str_list(g ? config_setting_get_member(g, "cors_origins") : NULL,
			  &c->cors_origins))
		*oom = true;
	if (*oom)
		return false;
	for (size_t i = 0; i < c->cors_origins.n; i++) {
		if (!url_ok(c->cors_origins.v[i]) || strchr(c->cors_origins.v[i], '"') ||
		    strchr(c->cors_origins.v[i], ' ')) {
			char d[64];

			snprintf(d, sizeof d, "http.cors_origins[%zu]", i);
			cfg_fail(e, config_setting_get_elem(config_setting_get_member(g, "cors_origins"),
							    (unsigned)i),
				 d, "must be an origin like \"https://app.example.com\"");
			return false;
		}
	}

	g = config_setting_get_member(root, "limits");
	c->limits.body_max_bytes = get_int(g, "body_max_bytes", c->limits.body_max_bytes);
	c->limits.records_per_job_max =
		(int)get_int(g, "records_per_job_max", c->limits.records_per_job_max);
	c->limits.field_max_bytes = (int)get_int(g, "field_max_bytes", c->limits.field_max_bytes);

	g = config_setting_get_member(root, "accounts_default");
	c->accounts_default.requests_per_minute =
		get_int(g, "requests_per_minute", c->accounts_default.requests_per_minute);
	c->accounts_default.burst = get_int(g, "burst", c->accounts_default.burst);
	c->accounts_default.records_per_hour =
		get_int(g, "records_per_hour", c->accounts_default.records_per_hour);
	c->accounts_default.records_per_day =
		get_int(g, "records_per_day", c->accounts_default.records_per_day);

	g = config_setting_get_member(root, "endpoints");
	for (int i = 0; i < CFG_EP__MAX; i++) {
		const config_setting_t *ep = g ? config_setting_get_member(g, cfg_endpoint_names[i]) : NULL;

		c->endpoints[i].enabled = get_bool(ep, "enabled", true);
		c->endpoints[i].deadline_ms = (int)get_int(ep, "deadline_ms", 2000);
		c->endpoints[i].fallback = (enum cfg_fallback)choice_index(
			cfg_fallback_names, CFG_FALLBACK__MAX, get_str(ep, "fallback", "none"));
	}

	g = config_setting_get_member(root, "rotation");
	c->rotation.enabled = get_bool(g, "enabled", true);
	c->rotation.strategy = (enum cfg_strategy)choice_index(
		cfg_strategy_names, CFG_STRATEGY__MAX, get_str(g, "strategy", "round_robin"));
	c->rotation.breaker_threshold =
		(int)get_int(g, "breaker_threshold", c->rotation.breaker_threshold);
	c->rotation.cooldown_max_s = (int)get_int(g, "cooldown_max_s", c->rotation.cooldown_max_s);
	{
		const config_setting_t *re = g ? config_setting_get_member(g, "endpoints") : NULL;

		for (int i = 0; i < CFG_EP__MAX; i++)
			c->rotation.endpoints[i] = get_bool(re, cfg_endpoint_names[i], true);
	}

	g = config_setting_get_member(root, "waterfall");
	for (int i = 0; i < CFG_GROUP__MAX; i++) {
		const config_setting_t *arr = g ? config_setting_get_member(g, cfg_group_names[i]) : NULL;

		if (arr == NULL) {
			/* With no waterfall configured, the free local provider answers. */
			arr = NULL;
			c->waterfall[i].v = calloc(1, sizeof(char *));
			if (c->waterfall[i].v == NULL || (c->waterfall[i].v[0] = strdup("local")) == NULL) {
				*oom = true;
				return false;
			}
			c->waterfall[i].n = 1;
		} else if (!get_str_list(arr, &c->waterfall[i])) {
			*oom = true;
			return false;
		}
	}

	g = config_setting_get_member(root, "cache");
	c->cache.enabled = get_bool(g, "enabled", true);
	c->cache.hit_ttl_s = get_int(g, "hit_ttl_s", c->cache.hit_ttl_s);
	c->cache.miss_ttl_s = get_int(g, "miss_ttl_s", c->cache.miss_ttl_s);

	g = config_setting_get_member(root, "alerts");
	c->alerts.webhook_url = xstrdup(get_str(g, "webhook_url", ""), oom);
	if (*oom)
		return false;
	if (c->alerts.webhook_url[0] && !url_ok(c->alerts.webhook_url)) {
		cfg_fail(e, config_setting_get_member(g, "webhook_url"), "alerts.webhook_url",
			 "must be an http(s) URL");
		return false;
	}

	g = config_setting_get_member(root, "webhooks");
	c->webhooks.allow_private = get_bool(g, "allow_private", false);
	c->webhooks.timeout_ms = (int)get_int(g, "timeout_ms", c->webhooks.timeout_ms);
	c->webhooks.max_attempts = (int)get_int(g, "max_attempts", c->webhooks.max_attempts);
	{
		const char *ref = get_str(g, "secret", "");

		if (ref[0] == '\0')
			c->webhooks.secret = xstrdup("", oom);
		else if (!resolve_secret(e, config_setting_get_member(g, "secret"), "webhooks.secret",
					 ref, &c->webhooks.secret))
			return false;
	}

	g = config_setting_get_member(root, "worker");
	c->worker.concurrency = (int)get_int(g, "concurrency", c->worker.concurrency);
	c->worker.claim_batch = (int)get_int(g, "claim_batch", c->worker.claim_batch);
	c->worker.lease_s = (int)get_int(g, "lease_s", c->worker.lease_s);
	c->worker.heartbeat_s = (int)get_int(g, "heartbeat_s", c->worker.heartbeat_s);
	c->worker.max_attempts = (int)get_int(g, "max_attempts", c->worker.max_attempts);
	c->worker.grace_s = (int)get_int(g, "grace_s", c->worker.grace_s);
	c->worker.backoff_base_ms = (int)get_int(g, "backoff_base_ms", c->worker.backoff_base_ms);
	c->worker.backoff_max_ms = (int)get_int(g, "backoff_max_ms", c->worker.backoff_max_ms);
	c->worker.poll_ms = (int)get_int(g, "poll_ms", c->worker.poll_ms);
	if (c->worker.heartbeat_s >= c->worker.lease_s) {
		cfg_fail(e, config_setting_get_member(g, "heartbeat_s"), "worker.heartbeat_s",
			 "must be shorter than worker.lease_s (%d)", c->worker.lease_s);
		return false;
	}

	if (!load_providers(e, config_setting_get_member(root, "providers"), c, oom))
		return false;
	return check_waterfall(e, root, c);
}

enum enr_err cfg_load(const char *path, struct cfg **out, char *err, size_t errlen)
{
	return cfg_load_flags(path, 0, out, err, errlen);
}

enum enr_err cfg_load_flags(const char *path, unsigned flags, struct cfg **out, char *err,
			    size_t errlen)
{
	config_t lc;
	struct cfg *c = NULL;
	struct cfg_errctx e = { path, err, errlen, false, flags };
	bool oom = false;
	enum enr_err rc = ENR_E_CONFIG;
	struct stat st;

	if (errlen)
		err[0] = '\0';
	config_init(&lc);
	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)LIM_CONFIG_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %u bytes", path,
			 LIM_CONFIG_FILE_MAX);
		goto out;
	}
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		else
			snprintf(err, errlen, "%s:%d: syntax error: %s",
				 config_error_file(&lc) ? config_error_file(&lc) : path,
				 config_error_line(&lc), config_error_text(&lc));
		goto out;
	}
	walk(&e, config_root_setting(&lc));
	if (e.set)
		goto out;
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	c->refs = 1;
	c->path = strdup(path);
	if (c->path == NULL)
		oom = true;
	if (!oom && !load_values(&e, config_root_setting(&lc), c, &oom))
		goto out;
	if (oom) {
		rc = ENR_E_NOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	*out = c;
	c = NULL;
	rc = ENR_OK;
out:
	if (rc == ENR_E_CONFIG && !e.set && err[0] == '\0')
		snprintf(err, errlen, "%s: invalid", path);
	cfg_free(c);
	config_destroy(&lc);
	return rc;
}

/* ---- snapshots ------------------------------------------------------------ */

static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfg *cfg_current;
static unsigned cfg_gen;

void cfg_release(struct cfg *c)
{
	int left;

	if (c == NULL)
		return;
	left = __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	if (left == 0)
		cfg_free(c);
}

void cfg_publish(struct cfg *c)
{
	struct cfg *old;

	pthread_mutex_lock(&cfg_lock);
	old = cfg_current;
	cfg_current = c;
	__atomic_add_fetch(&cfg_gen, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&cfg_lock);
	cfg_release(old);
}

struct cfg *cfg_acquire(void)
{
	struct cfg *c;

	/* The lock makes "read the pointer, take a reference" one step, so a
	 * concurrent publish cannot free the snapshot in between. */
	pthread_mutex_lock(&cfg_lock);
	c = cfg_current;
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&cfg_lock);
	return c;
}

unsigned cfg_generation(void)
{
	return __atomic_load_n(&cfg_gen, __ATOMIC_ACQUIRE);
}

const struct cfg_provider *cfg_provider_find(const struct cfg *c, const char *name)
{
	for (size_t i = 0; i < c->nproviders; i++) {
		if (strcmp(c->providers[i].name, name) == 0)
			return &c->providers[i];
	}
	return NULL;
}

const char *cfg_store_path(const char *store, size_t *scheme_len)
{
	if (strncmp(store, "sqlite:", 7) == 0 && store[7] != '\0') {
		if (scheme_len)
			*scheme_len = 6;
		return store + 7;
	}
	return NULL;
}
