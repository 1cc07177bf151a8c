/*
 * fuzz_search.c - libFuzzer target for the search request parser
 * (lib/search.c: POST /search/people and /search/companies bodies, their
 * filters and cursors) and the cached-page reader.
 *
 * Input: byte 0 picks the kind (bit 0: companies); the rest is the body.
 * Promises checked (any broken one aborts): a body is either a request or
 * a non-empty list of problems; a request has at least one filter of its
 * kind, a limit in 1..search.limit_max, normalised values (normalising
 * again changes nothing; each list sorted, without repeats) and canonical
 * filters within LIM_SEARCH_FILTERS_BYTES; its cursor parses back to the
 * same search, and the same cursor with one byte changed does not.  The
 * body read as a cached page loads or is refused.  Leaks are caught by
 * LeakSanitizer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/search.h"

#include "engine_fuzz.h"
#include "responder_stack.h"

#define NOW_S INT64_C(1795425816)

static void check_request(const struct srch_request *r, enum prov_search_kind kind)
{
	char again[LIM_SEARCH_VALUE_MAX * 2 + 2];
	size_t values = 0;

	check(r->kind == kind && r->canon != NULL);
	check(strlen(r->canon) <= LIM_SEARCH_FILTERS_BYTES);
	check(r->limit >= 1 && r->limit <= cfg->search.limit_max);
	check(r->per_company >= 0 && r->per_company <= 5);
	for (int f = 0; f < PF__MAX; f++) {
		check(r->f.n[f] == 0 || (prov_search_filters(kind) & PF_BIT(f)));
		check(r->f.n[f] <= LIM_SEARCH_VALUES_MAX);
		for (size_t i = 0; i < r->f.n[f]; i++) {
			const char *v = r->f.v[f][i], *why = NULL;

			check(srch_norm_value((enum prov_filter)f, v, strlen(v), again, sizeof again, &why));
			check(strcmp(again, v) == 0);
			check(i == 0 || strcmp(r->f.v[f][i - 1], v) < 0);
			values++;
		}
	}
	check(values > 0);
}

static void cursor_round_trip(const struct srch_request *r, const unsigned char *key)
{
	struct srch_request back;
	json_t *details = NULL;
	char *c = NULL, *body;
	size_t n;

	check(srch_cursor_make(key, r, "pdl", r->prov_cursor, r->limit, r->offset, NOW_S, &c) ==
	      ENR_OK);
	n = strlen(c) + 16;
	body = malloc(n);
	check(body != NULL);
	snprintf(body, n, "{\"cursor\":\"%s\"}", c);
	srch_request_init(&back);
	check(srch_parse(body, strlen(body), r->kind, cfg, key, NOW_S, &back, &details) == ENR_OK);
	check(back.has_cursor && strcmp(back.canon, r->canon) == 0 && back.limit == r->limit);
	srch_request_release(&back);
	/* One character of the payload changed: refused. */
	body[11] = body[11] == 'A' ? 'B' : 'A';
	check(srch_parse(body, strlen(body), r->kind, cfg, key, NOW_S, &back, &details) ==
	      ENR_E_INVALID);
	check(json_array_size(details) > 0);
	json_decref(details);
	srch_request_release(&back);
	free(body);
	free(c);
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	unsigned char key[SRCH_KEY_LEN];
	enum prov_search_kind kind;
	struct srch_request req;
	struct prov_page pg;
	json_t *details = NULL;
	char *text;
	int credits;
	enum enr_err rc;

	if (size < 1)
		return 0;
	kind = data[0] & 1 ? PROV_SEARCH_COMPANIES : PROV_SEARCH_PEOPLE;
	srch_cursor_key(cfg, key);
	srch_request_init(&req);
	rc = srch_parse((const char *)data + 1, size - 1, kind, cfg, key, NOW_S, &req, &details);
	if (rc == ENR_OK) {
		check(details == NULL);
		check_request(&req, kind);
		cursor_round_trip(&req, key);
	} else {
		check(rc == ENR_E_INVALID);
		check(json_is_array(details) && json_array_size(details) > 0);
	}
	json_decref(details);
	srch_request_release(&req);
	/* The same bytes as a cached page. */
	text = malloc(size);
	check(text != NULL);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	prov_page_init(&pg);
	rc = srch_page_load(text, &pg, &credits);
	check(rc == ENR_OK || rc == ENR_E_INVALID);
	check(rc == ENR_OK || pg.n == 0);
	prov_page_release(&pg);
	free(text);
	return 0;
}

FUZZ_TARGET(fuzz_one)
