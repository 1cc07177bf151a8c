/*
 * test_fields.c - lists of fields to enrich (lib/fields.c fld_list_parse):
 * one rule for the JSON and the comma-separated forms.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "lib/fields.h"
#include "lib/limits.h"

#include "harness.h"

static char why[160];

/* Parse s both ways (as text and as the JSON array of its entries) and
 * check the two agree; the text form's result. */
static enum enr_err both(const char *s, fld_set *out)
{
	json_t *a = json_array();
	fld_set tset = 0, jset = 0;
	char jwhy[160] = "";
	enum enr_err t, j;
	size_t len = strlen(s);

	for (size_t i = 0; len > 0 && i <= len;) {
		const char *c = memchr(s + i, ',', len - i);
		size_t n = c ? (size_t)(c - (s + i)) : len - i;

		json_array_append_new(a, json_stringn_nocheck(s + i, n));
		i += n + 1;
	}
	why[0] = '\0';
	t = fld_list_parse(s, len, &tset, why, sizeof why);
	j = fld_list_parse_json(a, &jset, jwhy, sizeof jwhy);
	json_decref(a);
	if (t != j || (t == ENR_OK && tset != jset) || strcmp(why, jwhy) != 0)
		HARNESS_FAIL("\"%s\": text %d (%s), JSON %d (%s)", s, t, why, j, jwhy);
	*out = tset;
	return t;
}

TEST(names_and_all)
{
	fld_set f = 0;

	CHECK_INT(both("title,phone", &f), ENR_OK);
	CHECK(f == (FLD_BIT(FLD_TITLE) | FLD_BIT(FLD_PHONE)));
	CHECK_INT(both("title,title", &f), ENR_OK); /* a name may come twice */
	CHECK(f == FLD_BIT(FLD_TITLE));
	CHECK_INT(both("", &f), ENR_OK); /* nothing named: every field */
	CHECK(f == FLD_ALL);
	CHECK_INT(both("department", &f), ENR_OK);
	CHECK(f == FLD_BIT(FLD_DEPARTMENT));
}

TEST(bad_entries)
{
	fld_set f = 0;

	CHECK_INT(both("title,salary", &f), ENR_E_INVALID);
	CHECK_STR(why, "\"salary\" is not a field that can be enriched");
	CHECK_INT(both("Title", &f), ENR_E_INVALID); /* exact, lower case */
	CHECK_INT(both("title,", &f), ENR_E_INVALID);
	CHECK_STR(why, "an empty entry in the list of fields");
	CHECK_INT(both(",title", &f), ENR_E_INVALID);
	CHECK_INT(both("title,,phone", &f), ENR_E_INVALID);
	CHECK_INT(both(" title", &f), ENR_E_INVALID); /* no blanks */
	CHECK_INT(both("title,\xff\xfe", &f), ENR_E_INVALID);
	CHECK_STR(why, "\"??\" is not a field that can be enriched"); /* quoted as ASCII */
	f = FLD_BIT(FLD_DEPARTMENT);
	CHECK_INT(fld_list_parse("ti\0le", 5, &f, why, sizeof why), ENR_E_INVALID);
	CHECK_STR(why, "\"ti?le\" is not a field that can be enriched");
	CHECK(f == FLD_BIT(FLD_DEPARTMENT)); /* untouched on failure */
}

TEST(one_cap_for_both_forms)
{
	char list[LIM_ENRICH_FIELDS_MAX * 6 + 8];
	size_t n = 0;
	fld_set f = 0;

	for (unsigned i = 0; i < LIM_ENRICH_FIELDS_MAX; i++)
		n += (size_t)snprintf(list + n, sizeof list - n, "%scity", i ? "," : "");
	CHECK_INT(both(list, &f), ENR_OK);
	CHECK(f == FLD_BIT(FLD_CITY));
	snprintf(list + n, sizeof list - n, ",city");
	CHECK_INT(both(list, &f), ENR_E_INVALID);
	snprintf(list, sizeof list, "more than %u entries", LIM_ENRICH_FIELDS_MAX);
	CHECK_STR(why, list);
}

TEST(json_shapes)
{
	fld_set f = 0;
	json_t *v = json_string("title");

	CHECK_INT(fld_list_parse_json(v, &f, why, sizeof why), ENR_E_INVALID);
	CHECK_STR(why, "must be an array of field names");
	json_decref(v);
	v = json_pack("[s, i]", "title", 3);
	CHECK_INT(fld_list_parse_json(v, &f, why, sizeof why), ENR_E_INVALID);
	CHECK_STR(why, "entry 1 is not a string");
	json_decref(v);
	CHECK_INT(fld_list_parse_json(NULL, &f, why, sizeof why), ENR_E_INVALID);
	v = json_array();
	CHECK_INT(fld_list_parse_json(v, &f, why, sizeof why), ENR_OK);
	CHECK(f == FLD_ALL);
	json_decref(v);
}

int main(void)
{
	RUN(names_and_all);
	RUN(bad_entries);
	RUN(one_cap_for_both_forms);
	RUN(json_shapes);
	return harness_done();
}
