/*
 * fields.h - the record fields a client can ask for, and their groups.
 *
 * Prefix: fld_.  The order of enum fld_id is the order fields appear in
 * responses and CSV output.  Each field belongs to one waterfall group
 * (docs/architecture.md): the group's provider list is walked for it.
 */
#ifndef ENR_FIELDS_H
#define ENR_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum fld_id {
	FLD_FIRST_NAME,
	FLD_LAST_NAME,
	FLD_COMPANY_NAME,
	FLD_TITLE,
	FLD_INDUSTRY,
	FLD_COMPANY_SIZE,
	FLD_LOCATION,
	FLD_LINKEDIN_URL,
	FLD_PHONE,
	FLD_PERSONAL_EMAIL,
	FLD_BUSINESS_EMAIL,
	FLD_CITY,
	FLD_STATE,
	FLD_COUNTRY,
	FLD_ZIP_CODE,
	FLD_COMPANY_REVENUE,
	FLD_TECHNOLOGIES,
	FLD_SENIORITY,
	FLD_DEPARTMENT,
	FLD__MAX
};

/* A set of fields as a bit mask (bit i = enum fld_id i). */
typedef uint32_t fld_set;

#define FLD_BIT(f) ((fld_set)1u << (f))
#define FLD_ALL ((fld_set)((1u << FLD__MAX) - 1u))

extern const char *const fld_names[FLD__MAX];

/* The identifiers a client may send to find a person or company (the
 * input members of POST /enrich and the columns of a batch). */
enum fld_ident {
	ID_EMAIL,
	ID_DOMAIN,
	ID_COMPANY_NAME,
	ID_LINKEDIN_URL,
	ID_FIRST_NAME,
	ID_LAST_NAME,
	ID_PHONE,
	ID__MAX
};

extern const char *const fld_ident_names[ID__MAX];

/* The identifier called name (exact, lower case); false when unknown. */
bool fld_ident_parse(const char *name, enum fld_ident *out);

/* The field called name (exact, lower case); false when unknown. */
bool fld_parse(const char *name, enum fld_id *out);
/* Same for a (pointer, length) name. */
bool fld_parse_n(const char *name, size_t len, enum fld_id *out);

/* A list of fields to enrich, as a client names them: a JSON array of
 * names (POST /enrich, JSON batches) or names separated by commas (a CSV
 * batch's ?enrich=, enrich-batch --fields).  One rule for both: at most
 * LIM_ENRICH_FIELDS_MAX entries, each the exact name of a field (a name
 * may come twice), none empty; no entry at all means every field.
 * ENR_OK with *out; ENR_E_INVALID with why saying what is wrong with the
 * first bad entry (quoting it only as printable ASCII).  Pure;
 * thread-safe. */
ENR_MUST_CHECK enum enr_err fld_list_parse(const char *s, size_t len, fld_set *out, char *why,
					   size_t whylen);
struct json_t;
ENR_MUST_CHECK enum enr_err fld_list_parse_json(const struct json_t *v, fld_set *out, char *why,
						size_t whylen);

/* The waterfall group a field is looked up in. */
enum cfg_group fld_group(enum fld_id f);

/* All fields of a group. */
fld_set fld_group_set(enum cfg_group g);

/* Number of fields in a set. */
unsigned fld_count(fld_set s);

#endif
