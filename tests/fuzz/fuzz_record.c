/*
 * fuzz_record.c - libFuzzer target for record normalisation and the
 * domain derivations (lib/record.c, lib/domains.c).
 *
 * Input: one byte choosing field_max, then up to seven identifier values
 * separated by '\n', in enum fld_ident order (email, domain, company_name,
 * linkedin_url, first_name, last_name, phone).  The record is normalised
 * with the real domain lists when data/ is found in the working directory.
 *
 * Promises checked (any broken one aborts):
 *   refused: the problem names an identifier (or the whole record) and a
 *     reason, and the record is exactly what was set;
 *   accepted: every value is trimmed, collapsed, valid UTF-8 and within
 *     field_max; the e-mail address is lower case with exactly one '@';
 *     the domain is a valid host name; the phone is digits after an
 *     optional '+'; LinkedIn URLs are canonical; normalising again, in
 *     place or from a fresh record built from the output, changes nothing
 *     and gives the same cache key.
 * The derivations (registrable domain, country, free/disposable, names
 * from the address) run on both the raw and the normalised values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ascii.h"
#include "lib/buf.h"
#include "lib/domains.h"
#include "lib/fields.h"
#include "lib/limits.h"
#include "lib/record.h"
#include "lib/util.h"

#include "responder_stack.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct dom_lists *lists;

static void check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	enum enr_err err;

	(void)argc;
	(void)argv;
	/* Optional: without the lists no domain is derived, which the
	 * checks below allow for. */
	lists = dom_lists_load("data", &err);
	return 0;
}

static void derive(const char *s)
{
	char out[LIM_REC_DOMAIN_MAX + 1];
	char first[LIM_REC_NAME_MAX + 1], last[LIM_REC_NAME_MAX + 1];
	const char *host = strchr(s, '@');
	const char *c;

	if (dom_registrable(s, out, sizeof out) == ENR_OK) {
		check(dom_valid(out, strlen(out)));
		check(strlen(out) <= strlen(s));
	}
	c = dom_country(s);
	check(c == NULL || strlen(c) > 2);
	(void)dom_is_free(lists, s);
	(void)dom_is_disposable(lists, s);
	if (host != NULL) {
		(void)dom_is_free(lists, host + 1);
		(void)dom_is_disposable(lists, host + 1);
	}
	if (rec_names_from_email(s, first, sizeof first, last, sizeof last)) {
		check(ascii_is_upper(first[0]) && strlen(first) >= 2);
		check(ascii_is_upper(last[0]) && strlen(last) >= 2);
		for (size_t i = 1; first[i]; i++)
			check(ascii_is_lower(first[i]));
		for (size_t i = 1; last[i]; i++)
			check(ascii_is_lower(last[i]));
	}
}

static void check_value(enum fld_ident id, const char *v, size_t len, size_t field_max)
{
	check(len == strlen(v));
	check(len > 0 && len <= field_max);
	check(util_utf8_valid(v, len));
	check(v[0] != ' ' && v[len - 1] != ' ' && strstr(v, "  ") == NULL);
	for (size_t i = 0; i < len; i++)
		check((unsigned char)v[i] >= 0x20 && v[i] != 0x7f);

	switch (id) {
	case ID_EMAIL: {
		const char *at = strchr(v, '@');

		check(at != NULL && at != v && strchr(at + 1, '@') == NULL);
		for (size_t i = 0; i < len; i++)
			check(!ascii_is_upper(v[i]) && (unsigned char)v[i] < 0x80);
		check(dom_valid(at + 1, strlen(at + 1)));
		check(len <= LIM_REC_EMAIL_MAX);
		break;
	}
	case ID_DOMAIN:
		check(dom_valid(v, len));
		break;
	case ID_LINKEDIN_URL:
		check(strncmp(v, "https://www.linkedin.com/", 25) == 0);
		for (size_t i = 0; i < len; i++)
			check((unsigned char)v[i] < 0x80 && !ascii_is_upper(v[i]));
		break;
	case ID_PHONE: {
		size_t digits = 0;

		for (size_t i = 0; i < len; i++) {
			check(ascii_is_digit(v[i]) || (v[i] == '+' && i == 0));
			digits += v[i] != '+';
		}
		check(digits >= LIM_REC_PHONE_MIN && digits <= LIM_REC_PHONE_MAX);
		break;
	}
	default:
		break;
	}
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	static const size_t caps[4] = { 0, 16, 64, 300 };
	struct rec r, again;
	struct rec_problem p = { ID__MAX, NULL };
	struct buf k1, k2;
	char *raw[ID__MAX] = { NULL };
	size_t rawlen[ID__MAX] = { 0 };
	size_t field_max, pos = 1;
	enum enr_err rc;
	int n = 0;

	if (size == 0)
		return 0;
	field_max = caps[data[0] & 3];
	rec_init(&r);
	rec_init(&again);
	r.lists = lists;
	again.lists = lists;
	buf_init(&k1, 0);
	buf_init(&k2, 0);

	while (pos <= size && n < ID__MAX) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t end = nl ? (size_t)(nl - data) : size;

		check(rec_set(&r, (enum fld_ident)n, (const char *)data + pos, end - pos) == ENR_OK);
		raw[n] = malloc(end - pos + 1);
		check(raw[n] != NULL);
		memcpy(raw[n], data + pos, end - pos);
		raw[n][end - pos] = '\0';
		rawlen[n] = end - pos;
		n++;
		pos = end + 1;
	}
	for (int i = 0; i < n; i++)
		derive(raw[i]);

	rc = rec_normalise(&r, field_max, &p);
	check(rc == ENR_OK || rc == ENR_E_INVALID);
	if (rc == ENR_E_INVALID) {
		check((unsigned)p.field <= ID__MAX && p.reason != NULL && *p.reason);
		for (int i = 0; i < ID__MAX; i++) {
			if (i < n) {
				check(r.v[i] != NULL && r.len[i] == rawlen[i]);
				check(memcmp(r.v[i], raw[i], rawlen[i]) == 0);
			} else {
				check(r.v[i] == NULL);
			}
		}
		goto out;
	}

	{
		int present = 0;
		bool derived = r.domain_derived, split = r.name_split;
		enum rec_li_kind kind = r.linkedin_kind;
		char *saved[ID__MAX] = { NULL };

		if (field_max == 0)
			field_max = LIM_REC_FIELD_MAX;
		for (int i = 0; i < ID__MAX; i++) {
			if (r.v[i] == NULL)
				continue;
			present++;
			check_value((enum fld_ident)i, r.v[i], r.len[i], field_max);
			derive(r.v[i]);
		}
		check(present > 0);
		check(!derived || (r.v[ID_DOMAIN] != NULL && r.v[ID_EMAIL] != NULL && lists));
		check(!split || (r.v[ID_FIRST_NAME] != NULL && r.v[ID_LAST_NAME] != NULL));
		check((kind == REC_LI_NONE) == (r.v[ID_LINKEDIN_URL] == NULL));
		check(rec_cache_key(&r, &k1) == ENR_OK);
		check(strncmp(buf_cstr(&k1), "v1", 2) == 0);

		/* a fresh record built from the output */
		for (int i = 0; i < ID__MAX; i++) {
			if (r.v[i] != NULL)
				check(rec_set(&again, (enum fld_ident)i, r.v[i], r.len[i]) == ENR_OK);
		}
		check(rec_normalise(&again, field_max, NULL) == ENR_OK);
		for (int i = 0; i < ID__MAX; i++) {
			check((r.v[i] == NULL) == (again.v[i] == NULL));
			if (r.v[i] != NULL)
				check(strcmp(r.v[i], again.v[i]) == 0);
		}
		check(again.linkedin_kind == kind);
		check(rec_cache_key(&again, &k2) == ENR_OK);
		check(strcmp(buf_cstr(&k1), buf_cstr(&k2)) == 0);

		/* the same record again, in place: flags survive too */
		for (int i = 0; i < ID__MAX; i++) {
			if (r.v[i] != NULL) {
				saved[i] = strdup(r.v[i]);
				check(saved[i] != NULL);
			}
		}
		check(rec_normalise(&r, field_max, NULL) == ENR_OK);
		for (int i = 0; i < ID__MAX; i++) {
			check((saved[i] == NULL) == (r.v[i] == NULL));
			if (saved[i] != NULL)
				check(strcmp(saved[i], r.v[i]) == 0);
			free(saved[i]);
		}
		check(r.domain_derived == derived && r.name_split == split);
		check(r.linkedin_kind == kind);
	}
out:
	for (int i = 0; i < ID__MAX; i++)
		free(raw[i]);
	rec_release(&r);
	rec_release(&again);
	buf_release(&k1);
	buf_release(&k2);
	return 0;
}

FUZZ_TARGET(fuzz_one)
