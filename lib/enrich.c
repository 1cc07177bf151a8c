/*
 * enrich.c - validation of enrichment requests and rendering of answers.
 */
#include "enrich.h"

#include <stdio.h>
#include <string.h>

#include "ascii.h"
#include "jbody.h"
#include "jw.h"
#include "json_path.h"
#include "limits.h"

void en_request_init(struct en_request *r)
{
	rec_init(&r->rec);
	r->want = 0;
}

void en_request_release(struct en_request *r)
{
	rec_release(&r->rec);
}

/* Printable ASCII only: messages may quote client bytes (a member name, the
 * JSON parser's "near '...'"), and must stay valid, harmless text. */
static void problem(json_t *details, const char *field, const char *what)
{
	char f[LIM_NAME_MAX * 4 + 1], w[256];

	ascii_printable_copy(field, strlen(field), f, sizeof f);
	ascii_printable_copy(what, strlen(what), w, sizeof w);
	json_array_append_new(details, json_pack("{s:s, s:s}", "field", f, "problem", w));
}

enum enr_err en_parse_record(json_t *obj, const struct cfg *cfg, const struct dom_lists *lists,
			     bool allow_enrich, struct en_request *out, json_t **details)
{
	json_t *d = json_array(), *v;
	const char *name;
	enum enr_err rc = ENR_OK;

	if (d == NULL)
		return ENR_E_NOMEM;
	out->want = FLD_ALL;
	if (!json_is_object(obj)) {
		problem(d, "body", "must be a JSON object");
		rc = ENR_E_INVALID;
		goto out;
	}
	json_object_foreach(obj, name, v) {
		enum fld_ident id;

		if (allow_enrich && strcmp(name, "enrich") == 0) {
			char why[160];

			if (fld_list_parse_json(v, &out->want, why, sizeof why)) {
				problem(d, "enrich", why);
				rc = ENR_E_INVALID;
			}
			continue;
		}
		if (!fld_ident_parse(name, &id)) {
			char field[LIM_NAME_MAX + 1];
			size_t n = strlen(name);

			/* Do not echo a huge member name; cut it on a UTF-8 boundary. */
			if (n > LIM_NAME_MAX) {
				n = LIM_NAME_MAX;
				while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
					n--;
			}
			memcpy(field, name, n);
			field[n] = '\0';
			problem(d, field, "unknown member");
			rc = ENR_E_INVALID;
			continue;
		}
		if (json_is_null(v))
			continue;
		if (!json_is_string(v)) {
			problem(d, name, "must be a string");
			rc = ENR_E_INVALID;
			continue;
		}
		if (json_string_length(v) > (size_t)cfg->limits.field_max_bytes) {
			char what[64];

			snprintf(what, sizeof what, "longer than %d bytes", cfg->limits.field_max_bytes);
			problem(d, name, what);
			rc = ENR_E_INVALID;
			continue;
		}
		if (rec_set(&out->rec, id, json_string_value(v), json_string_length(v)) != ENR_OK) {
			rc = ENR_E_NOMEM;
			goto out;
		}
	}
	if (rc)
		goto out;
	out->rec.lists = lists;
	/* Report every identifier that fails, not just the first: drop the
	 * failing one and normalise again. */
	for (;;) {
		struct rec_problem p;
		enum enr_err nr = rec_normalise(&out->rec, (size_t)cfg->limits.field_max_bytes, &p);

		if (nr == ENR_OK)
			break;
		if (nr != ENR_E_INVALID) {
			rc = nr;
			break;
		}
		rc = ENR_E_INVALID;
		if (p.field >= ID__MAX) {
			if (json_array_size(d) == 0)
				problem(d, "body", p.reason);
			break;
		}
		problem(d, fld_ident_names[p.field], p.reason);
		/* Clearing a field allocates nothing and cannot fail. */
		enr_ignore(rec_set(&out->rec, p.field, NULL, 0));
	}
out:
	if (rc == ENR_E_INVALID) {
		*details = d;
		return rc;
	}
	json_decref(d);
	return rc;
}

enum enr_err en_parse(const char *body, size_t len, const struct cfg *cfg,
		      const struct dom_lists *lists, struct en_request *out, json_t **details)
{
	json_t *j, *d;
	enum enr_err rc;

	*details = NULL;
	d = json_array();
	if (d == NULL)
		return ENR_E_NOMEM;
	rc = jb_load(body, len, &j, d);
	if (rc) {
		*details = d;
		return rc;
	}
	json_decref(d);
	rc = en_parse_record(j, cfg, lists, true, out, details);
	json_decref(j);
	return rc;
}

enum enr_err en_response(const struct wf_result *r, const char *request_id, int64_t elapsed_ms,
			struct buf *out)
{
	struct jw w;

	jw_init(&w, out);
	jw_object(&w);
	for (int f = 0; f < FLD__MAX; f++) {
		if (!(r->want & FLD_BIT(f)))
			continue;
		jw_key(&w, fld_names[f]);
		jw_string(&w, r->value[f]);
	}
	jw_key(&w, "_meta");
	jw_object(&w);
	jw_key(&w, "request_id");
	jw_string(&w, request_id);
	jw_key(&w, "status");
	jw_string(&w, wf_status_names[r->status]);
	jw_key(&w, "sources");
	jw_object(&w);
	for (int f = 0; f < FLD__MAX; f++) {
		if (!(r->want & FLD_BIT(f)) || !r->value[f] || !r->source[f])
			continue;
		jw_key(&w, fld_names[f]);
		jw_string(&w, r->source[f]);
	}
	jw_end(&w);
	jw_key(&w, "providers_tried");
	jw_array(&w);
	for (int i = 0; i < r->ntried; i++)
		jw_string(&w, r->tried[i]);
	jw_end(&w);
	if (r->nskipped > 0) {
		jw_key(&w, "providers_skipped");
		jw_array(&w);
		for (int i = 0; i < r->nskipped; i++)
			jw_string(&w, r->skipped[i]);
		jw_end(&w);
	}
	if (r->nerrors > 0) {
		jw_key(&w, "errors");
		jw_array(&w);
		for (int i = 0; i < r->nerrors; i++) {
			jw_object(&w);
			jw_key(&w, "provider");
			jw_string(&w, r->errors[i].provider);
			jw_key(&w, "outcome");
			jw_string(&w, wf_error_names[r->errors[i].kind]);
			jw_end(&w);
		}
		jw_end(&w);
	}
	jw_key(&w, "cached");
	jw_bool(&w, r->cached);
	jw_key(&w, "mock");
	jw_bool(&w, r->mock);
	jw_key(&w, "credits_used");
	jw_int(&w, r->credits);
	jw_key(&w, "elapsed_ms");
	jw_int(&w, elapsed_ms);
	jw_end(&w);
	jw_end(&w);
	return jw_finish(&w);
}
