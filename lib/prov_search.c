/*
 * prov_search.c - what the search adapters share (lib/provider.h, "search"):
 * the filter and kind names, pages of records, head count buckets and
 * country names.
 *
 * Prefix: prov_.  Pages own their records; a record's values follow the
 * rules of a lookup's values (trimmed, capped, valid UTF-8).
 */
#include "provider.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ascii.h"
#include "buf.h"
#include "domains.h"
#include "json_path.h"
#include "record.h"
#include "util.h"

const char *const prov_search_kind_names[PROV_SEARCH__MAX] = {
	[PROV_SEARCH_PEOPLE] = "people",
	[PROV_SEARCH_COMPANIES] = "companies",
};

const char *const prov_filter_names[PF__MAX] = {
	[PF_DOMAINS] = "domains",
	[PF_NAMES] = "names",
	[PF_TITLES] = "titles",
	[PF_SENIORITIES] = "seniorities",
	[PF_DEPARTMENTS] = "departments",
	[PF_COUNTRIES] = "countries",
	[PF_INDUSTRIES] = "industries",
	[PF_SIZES] = "sizes",
	[PF_COMPANY_COUNTRIES] = "company_countries",
};

prov_filter_set prov_search_filters(enum prov_search_kind k)
{
	if (k == PROV_SEARCH_PEOPLE)
		return ((prov_filter_set)1u << PF__MAX) - 1u;
	return PF_BIT(PF_DOMAINS) | PF_BIT(PF_NAMES) | PF_BIT(PF_INDUSTRIES) | PF_BIT(PF_SIZES) |
	       PF_BIT(PF_COUNTRIES);
}

void prov_page_init(struct prov_page *pg)
{
	memset(pg, 0, sizeof *pg);
	pg->total = -1;
}

void prov_page_release(struct prov_page *pg)
{
	for (size_t i = 0; i < pg->n; i++) {
		for (int f = 0; f < FLD__MAX; f++)
			free(pg->rec[i].value[f]);
	}
	free(pg->rec);
	free(pg->next_cursor);
	prov_page_init(pg);
}

struct prov_record *prov_page_add(struct prov_page *pg)
{
	struct prov_record *r;

	if (pg->n >= (size_t)LIM_SEARCH_LIMIT_CEILING)
		return NULL;
	if (pg->n == pg->cap) {
		size_t cap = pg->cap ? pg->cap * 2 : 16;
		struct prov_record *p = realloc(pg->rec, cap * sizeof *p);

		if (p == NULL)
			return NULL;
		pg->rec = p;
		pg->cap = cap;
	}
	r = &pg->rec[pg->n++];
	memset(r, 0, sizeof *r);
	return r;
}

void prov_page_drop_last(struct prov_page *pg)
{
	if (pg->n == 0)
		return;
	pg->n--;
	for (int f = 0; f < FLD__MAX; f++)
		free(pg->rec[pg->n].value[f]);
}

enum enr_err prov_record_set(struct prov_record *rec, enum fld_id f, const char *v, size_t n)
{
	char *copy;

	if ((unsigned)f >= FLD__MAX || v == NULL || rec->value[f] != NULL)
		return ENR_OK;
	while (n > 0 && ascii_is_space(v[0])) {
		v++;
		n--;
	}
	while (n > 0 && ascii_is_space(v[n - 1]))
		n--;
	if (n == 0 || n > LIM_PROV_VALUE_MAX || !util_utf8_valid(v, n) || memchr(v, '\0', n))
		return ENR_OK;
	copy = malloc(n + 1);
	if (copy == NULL)
		return ENR_E_NOMEM;
	memcpy(copy, v, n);
	copy[n] = '\0';
	rec->value[f] = copy;
	return ENR_OK;
}

bool prov_record_set_json(struct prov_record *rec, enum fld_id f, const json_t *v)
{
	char scratch[64];
	const char *t;
	size_t n;

	if (json_is_boolean(v))
		return true; /* true/false is no field's value */
	if (json_is_array(v)) {
		/* A list of words (technologies, tags): joined with ", ". */
		struct buf b;
		size_t i;
		json_t *el;
		bool ok = true;

		buf_init(&b, LIM_PROV_VALUE_MAX);
		json_array_foreach(v, i, el) {
			if (!json_is_string(el) || json_string_length(el) == 0)
				continue;
			if ((b.len && buf_puts(&b, ", ")) ||
			    buf_append(&b, json_string_value(el), json_string_length(el)))
				break;
		}
		if (b.len)
			ok = prov_record_set(rec, f, b.data, b.len) == ENR_OK;
		buf_release(&b);
		return ok;
	}
	t = jp_text(v, scratch, sizeof scratch, &n);
	if (t == NULL)
		return true;
	return prov_record_set(rec, f, t, n) == ENR_OK;
}

void prov_record_domain(struct prov_record *rec, const json_t *v)
{
	struct rec r;
	const char *d;

	if (rec->domain[0] || !json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > LIM_PROV_VALUE_MAX)
		return;
	/* The record rules make "https://www.Acme.com:443/x" "acme.com" and
	 * refuse what is no host name. */
	rec_init(&r);
	if (rec_set(&r, ID_DOMAIN, json_string_value(v), json_string_length(v)) == ENR_OK &&
	    rec_normalise(&r, LIM_REC_DOMAIN_MAX + 64, NULL) == ENR_OK &&
	    (d = rec_get(&r, ID_DOMAIN)) != NULL)
		util_strlcpy(rec->domain, d, sizeof rec->domain);
	rec_release(&r);
}

bool prov_record_any(const struct prov_record *rec)
{
	if (rec->domain[0])
		return true;
	for (int f = 0; f < FLD__MAX; f++) {
		if (rec->value[f])
			return true;
	}
	return false;
}

bool prov_page_cursor(struct prov_page *pg, const json_t *v, bool *oom)
{
	const char *s;
	size_t n;

	*oom = false;
	free(pg->next_cursor);
	pg->next_cursor = NULL;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0)
		return true;
	if (n > LIM_SEARCH_PROV_CURSOR_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!ascii_is_print(s[i]))
			return false;
	}
	pg->next_cursor = strndup(s, n);
	if (pg->next_cursor == NULL) {
		*oom = true;
		return false;
	}
	return true;
}

bool prov_page_fill(struct prov_result *call, struct prov_page *pg, const json_t *list,
		    prov_map_fn map, const void *arg, const char *name)
{
	const json_t *el;
	size_t i;

	json_array_foreach(list, i, el) {
		struct prov_record *r;

		if (!json_is_object(el)) {
			prov_result_reason(call, "%s: search result %zu is not an object", name, i);
			return false;
		}
		if ((r = prov_page_add(pg)) == NULL || !map(el, r, arg)) {
			prov_result_reason(call, "%s: out of memory", name);
			return false;
		}
		/* A record with nothing we can use is left out. */
		if (!prov_record_any(r))
			prov_page_drop_last(pg);
	}
	return true;
}

void prov_page_total(struct prov_page *pg, const json_t *v)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		pg->total = json_integer_value(v);
}

/* The head count buckets PDL names (docs/providers.md, "PDL person search"). */
static const struct {
	const char *name;
	int64_t lo, hi;
} sizes[] = {
	{ "1-10", 1, 10 },         { "11-50", 11, 50 },        { "51-200", 51, 200 },
	{ "201-500", 201, 500 },   { "501-1000", 501, 1000 },  { "1001-5000", 1001, 5000 },
	{ "5001-10000", 5001, 10000 }, { "10001+", 10001, -1 },
};

bool prov_size_range(const char *bucket, int64_t *lo, int64_t *hi)
{
	for (size_t i = 0; bucket && i < sizeof sizes / sizeof sizes[0]; i++) {
		if (strcmp(sizes[i].name, bucket) == 0) {
			*lo = sizes[i].lo;
			*hi = sizes[i].hi;
			return true;
		}
	}
	return false;
}

const char *prov_size_bucket(int64_t employees)
{
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		if (employees >= sizes[i].lo && (sizes[i].hi < 0 || employees <= sizes[i].hi))
			return sizes[i].name;
	}
	return NULL;
}

const char *prov_country_name(const char *code)
{
	return dom_country_by_code(code);
}

const char *prov_country_code(const char *name)
{
	return dom_country_code_of(name);
}
