/*
 * generic.c - an HTTP JSON provider described in the configuration
 * (kind "generic").
 *
 * Symbol: prov_generic_ops.  The request comes from templates (struct
 * cfg_generic: method, url, body, auth_header, auth_prefix); the answer is
 * classified by the configured status lists and mapped through dotted
 * JSON paths (lib/json_path.h).  docs/providers.md ("Generic") describes
 * the format.
 *
 * Template placeholders: {base_url}, and the identifiers {email},
 * {domain}, {company_name}, {linkedin_url}, {first_name}, {last_name},
 * {phone}.  In the URL identifiers are percent-encoded (RFC 3986) and
 * {base_url} is inserted as it is; in the body every value is escaped for
 * a JSON string (the template supplies the quotes).  Any other brace is
 * literal text, so a JSON body template reads naturally.
 *
 * Pure: builds requests and reads answers, never does I/O, never copies
 * upstream text into a reason.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/json_path.h"
#include "lib/limits.h"
#include "lib/pct.h"
#include "lib/provider.h"
#include "lib/util.h"

#include "generic_int.h"

#ifndef ENRICHD_VERSION
#define ENRICHD_VERSION "0.0.0"
#endif

#define CONFIDENCE 0.8

/* Placeholders other than the identifiers. */
#define PH_BASE_URL ID__MAX

static const char *const placeholders[ID__MAX + 1] = {
	[ID_EMAIL] = "email",
	[ID_DOMAIN] = "domain",
	[ID_COMPANY_NAME] = "company_name",
	[ID_LINKEDIN_URL] = "linkedin_url",
	[ID_FIRST_NAME] = "first_name",
	[ID_LAST_NAME] = "last_name",
	[ID_PHONE] = "phone",
	[PH_BASE_URL] = "base_url",
};

enum expand_mode { EXPAND_URL, EXPAND_JSON };

/* RFC 8259 7: the quote, the backslash and control characters escaped;
 * everything else (UTF-8 included) as it is. */
static enum enr_err put_json_escaped(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		enum enr_err rc;

		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };

			rc = buf_append(b, esc, sizeof esc);
		} else if (*p < 0x20) {
			rc = buf_printf(b, "\\u%04x", (unsigned)*p);
		} else {
			rc = buf_putc(b, (char)*p);
		}
		if (rc)
			return rc;
	}
	return ENR_OK;
}

/* Expand tmpl into b.  *used counts identifier placeholders filled.
 * ENR_E_INVALID when the template names an identifier q lacks. */
static enum enr_err expand(const char *tmpl, const char *base_url, const struct prov_query *q,
			   enum expand_mode mode, struct buf *b, int *used)
{
	const char *p = tmpl;

	while (*p) {
		const char *close;
		size_t n;
		int ph = -1;
		enum enr_err rc;

		if (*p != '{' || (close = strchr(p + 1, '}')) == NULL) {
			if (buf_putc(b, *p))
				return ENR_E_TOO_LARGE;
			p++;
			continue;
		}
		n = (size_t)(close - (p + 1));
		for (int i = 0; i <= ID__MAX; i++) {
			if (strlen(placeholders[i]) == n && memcmp(placeholders[i], p + 1, n) == 0) {
				ph = i;
				break;
			}
		}
		if (ph < 0) {
			/* Not ours: a literal brace. */
			if (buf_putc(b, *p))
				return ENR_E_TOO_LARGE;
			p++;
			continue;
		}
		if (ph == PH_BASE_URL) {
			size_t bl = strlen(base_url);

			/* "{base_url}/x" with a base ending in '/' needs no second one. */
			while (bl > 0 && base_url[bl - 1] == '/')
				bl--;
			if (mode == EXPAND_URL) {
				rc = buf_append(b, base_url, bl);
			} else {
				char *tmp = strndup(base_url, bl);

				if (tmp == NULL)
					return ENR_E_NOMEM;
				rc = put_json_escaped(b, tmp);
				free(tmp);
			}
		} else {
			const char *v = q->id[ph];

			if (v == NULL || v[0] == '\0')
				return ENR_E_INVALID;
			rc = mode == EXPAND_URL ? pct_encode(b, v, strlen(v), NULL, 0) : put_json_escaped(b, v);
			(*used)++;
		}
		if (rc)
			return rc == ENR_E_NOMEM ? rc : ENR_E_TOO_LARGE;
		p = close + 1;
	}
	return ENR_OK;
}

static enum enr_err generic_build(const struct cfg_provider *p, const struct cfg_key *key,
				  const struct prov_query *q, struct prov_request *out)
{
	const struct cfg_generic *g = p ? p->generic : NULL;
	const char *base = p && p->base_url ? p->base_url : "";
	char auth[PROV_HEADER_LINE];
	bool post;
	int used = 0;
	enum enr_err rc;

	if (g == NULL || g->url == NULL || key == NULL || key->secret == NULL || q == NULL)
		return ENR_E_INTERNAL;
	prov_request_release(out);
	post = g->method && strcasecmp(g->method, "POST") == 0;
	util_strlcpy(out->method, post ? "POST" : "GET", sizeof out->method);

	rc = expand(g->url, base, q, EXPAND_URL, &out->url, &used);
	if (rc == ENR_OK && post && g->body && g->body[0])
		rc = expand(g->body, base, q, EXPAND_JSON, &out->body, &used);
	/* A template that names no identifier cannot look anyone up. */
	if (rc == ENR_OK && used == 0)
		rc = ENR_E_INVALID;
	if (rc)
		goto out;
	rc = prov_request_header(out, "Accept", "application/json");
	if (rc == ENR_OK)
		rc = prov_request_header(out, "User-Agent", "enrichd/" ENRICHD_VERSION);
	if (rc == ENR_OK && out->body.len > 0)
		rc = prov_request_header(out, "Content-Type", "application/json");
	if (rc == ENR_OK) {
		snprintf(auth, sizeof auth, "%s%s", g->auth_prefix ? g->auth_prefix : "",
			 key->secret);
		rc = prov_request_header(out, g->auth_header && g->auth_header[0] ? g->auth_header
										   : "Authorization",
					 auth);
		explicit_bzero(auth, sizeof auth);
	}
out:
	if (rc)
		prov_request_release(out);
	return rc;
}

/* The fields the configuration maps, when the templates can be filled
 * from q (every identifier they name is known, and they name one). */
static fld_set generic_supplies(const struct cfg_provider *p, enum prov_kind kind,
				const struct prov_query *q)
{
	const struct cfg_generic *g = p ? p->generic : NULL;
	struct buf scratch;
	fld_set out = 0;
	int used = 0;
	enum enr_err rc;

	if (g == NULL || g->url == NULL || q == NULL)
		return 0;
	buf_init(&scratch, LIM_PROV_URL_MAX);
	rc = expand(g->url, p->base_url ? p->base_url : "", q, EXPAND_URL, &scratch, &used);
	if (rc == ENR_OK && g->method && strcasecmp(g->method, "POST") == 0 && g->body && g->body[0]) {
		buf_reset(&scratch);
		rc = expand(g->body, p->base_url ? p->base_url : "", q, EXPAND_JSON, &scratch, &used);
	}
	buf_release(&scratch);
	if (rc != ENR_OK || used == 0)
		return 0;
	for (int f = 0; f < FLD__MAX; f++) {
		if (g->fields[f])
			out |= FLD_BIT(f);
	}
	return kind == PROV_KIND_COMPANY ? out & prov_company_fields() : out;
}

static bool in_list(const struct cfg_int_list *l, long status)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i] == status)
			return true;
	}
	return false;
}

bool generic_classify(const struct generic_statuses *st, long status, enum prov_outcome *out)
{
	/* Never written; not const only because struct cfg_int_list is not. */
	static int d_miss[] = { 404 }, d_key[] = { 401, 403 }, d_quota[] = { 402 },
		   d_rate[] = { 429 }, d_rej[] = { 400 };
	const struct {
		const struct cfg_int_list *conf;
		struct cfg_int_list dflt;
		enum prov_outcome outcome;
	} rules[] = {
		{ st->miss, { d_miss, st->miss_default_404 ? 1 : 0 }, PROV_MISS },
		{ st->key_invalid, { d_key, 2 }, PROV_KEY_INVALID },
		{ st->quota_exhausted, { d_quota, 1 }, PROV_QUOTA_EXHAUSTED },
		{ st->rate_limited, { d_rate, 1 }, PROV_RATE_LIMITED },
		{ st->request_rejected, { d_rej, 1 }, PROV_REQUEST_REJECTED },
	};
	const size_t n = sizeof rules / sizeof rules[0];

	for (size_t i = 0; i < n; i++) {
		if (rules[i].conf->n > 0 && in_list(rules[i].conf, status)) {
			*out = rules[i].outcome;
			return true;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (rules[i].conf->n == 0 && in_list(&rules[i].dflt, status)) {
			*out = rules[i].outcome;
			return true;
		}
	}
	return false;
}

static void parse_2xx(const struct cfg_provider *p, const struct prov_response *resp,
		      struct prov_result *out)
{
	const struct cfg_generic *g = p->generic;
	json_t *doc = jp_load(resp->body, resp->body_len, LIM_PROV_BODY_MAX);

	if (!json_is_object(doc) && !json_is_array(doc)) {
		prov_result_reason(out, "generic: %ld with a body that is not JSON", resp->status);
		goto out;
	}
	for (int f = 0; f < FLD__MAX; f++) {
		char scratch[64];
		const char *t;
		size_t n;

		if (g->fields[f] == NULL)
			continue;
		t = jp_text(jp_get(doc, g->fields[f]), scratch, sizeof scratch, &n);
		if (t && prov_result_set(out, (enum fld_id)f, t, n, CONFIDENCE) != ENR_OK) {
			prov_result_clear_values(out);
			prov_result_reason(out, "generic: out of memory");
			goto out;
		}
	}
	if (out->found) {
		out->outcome = PROV_HIT;
		out->credits = p->credits_per_hit;
		prov_result_reason(out, "generic: hit");
	} else {
		out->outcome = PROV_MISS;
		prov_result_reason(out, "generic: %ld without a mapped field", resp->status);
	}
out:
	json_decref(doc);
}

static void generic_parse(const struct cfg_provider *p, const struct prov_query *q,
			  const struct prov_response *resp, int64_t now_ms,
			  struct prov_result *out)
{
	const struct cfg_generic *g = p->generic;
	struct generic_statuses st;
	enum prov_outcome o;

	(void)q;
	if (!prov_parse_begin("generic", p, resp, out))
		return;
	if (g == NULL) {
		prov_result_reason(out, "generic: no response");
		return;
	}
	st = (struct generic_statuses){ &g->miss, &g->key_invalid, &g->quota_exhausted,
					&g->rate_limited, &g->request_rejected, true };

	if (generic_classify(&st, resp->status, &o)) {
		out->outcome = o;
		if (o == PROV_RATE_LIMITED || o == PROV_QUOTA_EXHAUSTED)
			out->until_ms = prov_retry_after_ms(resp, now_ms);
		prov_result_reason(out, "generic: %s (%ld)", prov_outcome_names[o], resp->status);
		return;
	}
	if (resp->status >= 200 && resp->status <= 299)
		parse_2xx(p, resp, out);
	else
		prov_status_unknown("generic", resp->status, out);
}

const struct prov_ops prov_generic_ops = {
	.kind = "generic",
	.needs_key = true,
	.supplies = generic_supplies,
	.build = generic_build,
	.build_poll = NULL,
	.parse = generic_parse,
	.answer = NULL,
	.search = &prov_generic_search_ops,
};
