/*
 * fields.c - names and groups of the record fields.
 */
#include "fields.h"

#include <string.h>

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
