/*
 * local.c - the built-in "local" provider: what the input itself tells.
 *
 * Free, keyless, always available (docs/architecture.md, "Keys").  It answers only
 * what can honestly be derived from the normalised identifiers:
 *
 *   personal_email  the e-mail address, when its domain is a free-mail
 *                   provider (bundled list)                        1.0
 *   business_email  the e-mail address, when its domain is neither
 *                   free-mail nor disposable                       1.0
 *                   (a disposable address is neither; without the
 *                   lists the kind is not judged at all)
 *   first/last_name the names sent, trimmed                        1.0
 *                   else guessed from a "first.last@" address      0.6
 *   linkedin_url    the profile URL sent (already canonical)       1.0
 *   country         from a country-code TLD of the domain or the
 *                   e-mail domain, vanity TLDs excepted            0.5
 *
 * A company name is never guessed from a domain: "acme.io" says nothing
 * reliable about how the company calls itself.  The outcome is PROV_HIT
 * when a wanted field was derived, else PROV_MISS; no credits.
 *
 * Prefix: local_ (file-local).  Exported: prov_local_ops.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "lib/config.h"
#include "lib/domains.h"
#include "lib/err.h"
#include "lib/fields.h"
#include "lib/limits.h"
#include "lib/provider.h"
#include "lib/record.h"

#define LOCAL_FACT 1.0
#define LOCAL_NAME_GUESS 0.6
#define LOCAL_COUNTRY_GUESS 0.5

static enum enr_err put(struct prov_result *out, fld_set want, enum fld_id f, const char *v,
			double conf)
{
	if (!(want & FLD_BIT(f)) || !prov_present(v))
		return ENR_OK;
	return prov_result_set(out, f, v, strlen(v), conf);
}

/* The e-mail address: personal or business by the kind of its domain. */
static enum enr_err email_kind(const struct dom_lists *l, const char *email, fld_set want,
			       struct prov_result *out)
{
	const char *at = strrchr(email, '@');

	if (at == NULL || at[1] == '\0')
		return ENR_OK;
	/* Disposable first: some services are on both lists, and a throwaway
	 * address is nobody's personal one. */
	if (dom_is_disposable(l, at + 1))
		return ENR_OK;
	if (dom_is_free(l, at + 1))
		return put(out, want, FLD_PERSONAL_EMAIL, email, LOCAL_FACT);
	return put(out, want, FLD_BUSINESS_EMAIL, email, LOCAL_FACT);
}

/* Names: the ones sent, else a guess from the address.  A guessed part is
 * used beside a sent one only when the guess agrees with the sent part,
 * so "Jane" is never paired with the "Doe" of john.doe@. */
static enum enr_err names(const struct prov_query *q, fld_set want, struct prov_result *out)
{
	const char *f = q->id[ID_FIRST_NAME], *l = q->id[ID_LAST_NAME];
	char gf[LIM_REC_NAME_MAX + 1], gl[LIM_REC_NAME_MAX + 1];
	bool guessed = false;
	enum enr_err rc;

	if ((rc = put(out, want, FLD_FIRST_NAME, f, LOCAL_FACT)) != ENR_OK ||
	    (rc = put(out, want, FLD_LAST_NAME, l, LOCAL_FACT)) != ENR_OK)
		return rc;
	if (prov_present(f) && prov_present(l))
		return ENR_OK;
	if (!(want & (FLD_BIT(FLD_FIRST_NAME) | FLD_BIT(FLD_LAST_NAME))))
		return ENR_OK;
	if (prov_present(q->id[ID_EMAIL]))
		guessed = rec_names_from_email(q->id[ID_EMAIL], gf, sizeof gf, gl, sizeof gl);
	if (!guessed)
		return ENR_OK;
	if (prov_present(f) && strcasecmp(f, gf) != 0)
		return ENR_OK;
	if (prov_present(l) && strcasecmp(l, gl) != 0)
		return ENR_OK;
	if (!prov_present(f) && (rc = put(out, want, FLD_FIRST_NAME, gf, LOCAL_NAME_GUESS)) != ENR_OK)
		return rc;
	if (!prov_present(l) && (rc = put(out, want, FLD_LAST_NAME, gl, LOCAL_NAME_GUESS)) != ENR_OK)
		return rc;
	return ENR_OK;
}

static const char *country_of(const struct prov_query *q)
{
	const char *c = NULL, *email = q->id[ID_EMAIL], *at;

	if (prov_present(q->id[ID_DOMAIN]))
		c = dom_country(q->id[ID_DOMAIN]);
	if (c == NULL && prov_present(email) && (at = strrchr(email, '@')) != NULL && at[1] != '\0')
		c = dom_country(at + 1);
	return c;
}

static enum enr_err local_answer(const struct prov_ctx *ctx, const struct cfg_provider *p,
				 const struct prov_query *q, struct prov_result *out)
{
	const struct dom_lists *lists = ctx != NULL ? ctx->domains : NULL;
	const char *email;
	bool unjudged = false;
	fld_set want;
	enum enr_err rc;

	(void)p;
	if (q == NULL || out == NULL)
		return ENR_E_INVALID;
	prov_result_reset(out);
	want = q->want;
	email = q->id[ID_EMAIL];

	if (prov_present(email) && (want & (FLD_BIT(FLD_PERSONAL_EMAIL) | FLD_BIT(FLD_BUSINESS_EMAIL)))) {
		/* Without the lists a gmail.com address would pass for a
		 * business one: better no answer than a wrong one. */
		if (lists == NULL)
			unjudged = true;
		else if ((rc = email_kind(lists, email, want, out)) != ENR_OK)
			goto fail;
	}
	if ((rc = names(q, want, out)) != ENR_OK)
		goto fail;
	if (prov_is_profile_url(q->id[ID_LINKEDIN_URL]) &&
	    (rc = put(out, want, FLD_LINKEDIN_URL, q->id[ID_LINKEDIN_URL], LOCAL_FACT)) != ENR_OK)
		goto fail;
	if ((want & FLD_BIT(FLD_COUNTRY)) &&
	    (rc = put(out, want, FLD_COUNTRY, country_of(q), LOCAL_COUNTRY_GUESS)) != ENR_OK)
		goto fail;

	out->credits = 0;
	if (out->found & want) {
		out->outcome = PROV_HIT;
		prov_result_reason(out, "local: derived %u of %u wanted fields%s",
				   fld_count(out->found & want), fld_count(want),
				   unjudged ? "; e-mail kind unknown, domain lists not loaded" : "");
	} else {
		out->outcome = PROV_MISS;
		prov_result_reason(out, "local: nothing derivable%s",
				   unjudged ? "; e-mail kind unknown, domain lists not loaded" : "");
	}
	return ENR_OK;
fail:
	prov_result_reset(out);
	return rc;
}

/* What the input itself can tell (the table above); a person's input only:
 * the local provider says nothing of a company. */
static fld_set local_supplies(const struct cfg_provider *p, enum prov_kind kind,
			      const struct prov_query *q)
{
	fld_set out = 0;

	(void)p;
	if (q == NULL || kind == PROV_KIND_COMPANY)
		return 0;
	if (prov_present(q->id[ID_EMAIL]))
		out |= FLD_BIT(FLD_PERSONAL_EMAIL) | FLD_BIT(FLD_BUSINESS_EMAIL) |
		       FLD_BIT(FLD_FIRST_NAME) | FLD_BIT(FLD_LAST_NAME) | FLD_BIT(FLD_COUNTRY);
	if (prov_present(q->id[ID_FIRST_NAME]))
		out |= FLD_BIT(FLD_FIRST_NAME);
	if (prov_present(q->id[ID_LAST_NAME]))
		out |= FLD_BIT(FLD_LAST_NAME);
	if (prov_is_profile_url(q->id[ID_LINKEDIN_URL]))
		out |= FLD_BIT(FLD_LINKEDIN_URL);
	if (prov_present(q->id[ID_DOMAIN]))
		out |= FLD_BIT(FLD_COUNTRY);
	return out;
}

const struct prov_ops prov_local_ops = {
	.kind = "local",
	.needs_key = false,
	.supplies = local_supplies,
	.build = NULL,
	.build_poll = NULL,
	.parse = NULL,
	.answer = local_answer,
};
