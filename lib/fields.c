/*
 * fields.c - names and groups of the record fields.
 */
#include "fields.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ascii.h"
#include "limits.h"

const char *const fld_names[FLD__MAX] = {
	[FLD_FIRST_NAME] = "first_name",
	[FLD_LAST_NAME] = "last_name",
	[FLD_COMPANY_NAME] = "company_name",
	[FLD_TITLE] = "title",
	[FLD_INDUSTRY] = "industry",
	[FLD_COMPANY_SIZE] = "company_size",
	[FLD_LOCATION] = "location",
	[FLD_LINKEDIN_URL] = "linkedin_url",
	[FLD_PHONE] = "phone",
	[FLD_PERSONAL_EMAIL] = "personal_email",
	[FLD_BUSINESS_EMAIL] = "business_email",
	[FLD_CITY] = "city",
	[FLD_STATE] = "state",
	[FLD_COUNTRY] = "country",
	[FLD_ZIP_CODE] = "zip_code",
	[FLD_COMPANY_REVENUE] = "company_revenue",
	[FLD_TECHNOLOGIES] = "technologies",
	[FLD_SENIORITY] = "seniority",
	[FLD_DEPARTMENT] = "department",
};

const char *const fld_ident_names[ID__MAX] = {
	[ID_EMAIL] = "email",
	[ID_DOMAIN] = "domain",
	[ID_COMPANY_NAME] = "company_name",
	[ID_LINKEDIN_URL] = "linkedin_url",
	[ID_FIRST_NAME] = "first_name",
	[ID_LAST_NAME] = "last_name",
	[ID_PHONE] = "phone",
};

bool fld_ident_parse(const char *name, enum fld_ident *out)
{
	for (int i = 0; i < ID__MAX; i++) {
		if (strcmp(fld_ident_names[i], name) == 0) {
			*out = (enum fld_ident)i;
			return true;
		}
	}
	return false;
}

static const enum cfg_group fld_groups[FLD__MAX] = {
	[FLD_FIRST_NAME] = CFG_GROUP_PERSON,
	[FLD_LAST_NAME] = CFG_GROUP_PERSON,
	[FLD_COMPANY_NAME] = CFG_GROUP_COMPANY,
	[FLD_TITLE] = CFG_GROUP_PERSON,
	[FLD_INDUSTRY] = CFG_GROUP_COMPANY,
	[FLD_COMPANY_SIZE] = CFG_GROUP_COMPANY,
	[FLD_LOCATION] = CFG_GROUP_PERSON,
	[FLD_LINKEDIN_URL] = CFG_GROUP_PERSON,
	[FLD_PHONE] = CFG_GROUP_PHONE,
	[FLD_PERSONAL_EMAIL] = CFG_GROUP_EMAIL,
	[FLD_BUSINESS_EMAIL] = CFG_GROUP_EMAIL,
	[FLD_CITY] = CFG_GROUP_PERSON,
	[FLD_STATE] = CFG_GROUP_PERSON,
	[FLD_COUNTRY] = CFG_GROUP_PERSON,
	[FLD_ZIP_CODE] = CFG_GROUP_PERSON,
	[FLD_COMPANY_REVENUE] = CFG_GROUP_COMPANY,
	[FLD_TECHNOLOGIES] = CFG_GROUP_COMPANY,
	[FLD_SENIORITY] = CFG_GROUP_PERSON,
	[FLD_DEPARTMENT] = CFG_GROUP_PERSON,
};

bool fld_parse_n(const char *name, size_t len, enum fld_id *out)
{
	for (int i = 0; i < FLD__MAX; i++) {
		if (strlen(fld_names[i]) == len && memcmp(fld_names[i], name, len) == 0) {
			*out = (enum fld_id)i;
			return true;
		}
	}
	return false;
}

bool fld_parse(const char *name, enum fld_id *out)
{
	return fld_parse_n(name, strlen(name), out);
}

/* One entry of a list of fields (n bytes at name): its bit, or false with
 * why. */
static bool list_entry(const char *name, size_t n, fld_set *set, char *why, size_t whylen)
{
	enum fld_id f;
	char quoted[LIM_NAME_MAX + 1];

	if (n == 0) {
		snprintf(why, whylen, "an empty entry in the list of fields");
		return false;
	}
	if (!fld_parse_n(name, n, &f)) {
		ascii_printable_copy(name, n, quoted, sizeof quoted);
		snprintf(why, whylen, "\"%s\" is not a field that can be enriched", quoted);
		return false;
	}
	*set |= FLD_BIT(f);
	return true;
}

static bool too_many(size_t entries, char *why, size_t whylen)
{
	if (entries <= LIM_ENRICH_FIELDS_MAX)
		return false;
	snprintf(why, whylen, "more than %u entries", LIM_ENRICH_FIELDS_MAX);
	return true;
}

enum enr_err fld_list_parse(const char *s, size_t len, fld_set *out, char *why, size_t whylen)
{
	fld_set set = 0;
	size_t entries = 0;

	for (size_t i = 0; len > 0 && i <= len;) {
		const char *comma = memchr(s + i, ',', len - i);
		size_t n = comma ? (size_t)(comma - (s + i)) : len - i;

		if (too_many(++entries, why, whylen) || !list_entry(s + i, n, &set, why, whylen))
			return ENR_E_INVALID;
		i += n + 1; /* past the comma; past the end after the last entry */
	}
	*out = set ? set : FLD_ALL;
	return ENR_OK;
}

enum enr_err fld_list_parse_json(const struct json_t *v, fld_set *out, char *why, size_t whylen)
{
	fld_set set = 0;
	size_t i;
	json_t *e;

	if (!json_is_array(v)) {
		snprintf(why, whylen, "must be an array of field names");
		return ENR_E_INVALID;
	}
	if (too_many(json_array_size(v), why, whylen))
		return ENR_E_INVALID;
	json_array_foreach((json_t *)v, i, e) {
		if (!json_is_string(e)) {
			snprintf(why, whylen, "entry %zu is not a string", i);
			return ENR_E_INVALID;
		}
		if (!list_entry(json_string_value(e), json_string_length(e), &set, why, whylen))
			return ENR_E_INVALID;
	}
	*out = set ? set : FLD_ALL;
	return ENR_OK;
}

enum cfg_group fld_group(enum fld_id f)
{
	return fld_groups[f];
}

fld_set fld_group_set(enum cfg_group g)
{
	fld_set s = 0;

	for (int i = 0; i < FLD__MAX; i++) {
		if (fld_groups[i] == g)
			s |= FLD_BIT(i);
	}
	return s;
}

unsigned fld_count(fld_set s)
{
	return (unsigned)__builtin_popcount(s);
}
