/*
 * fuzz_enrich.c - libFuzzer target for the POST /enrich request parser and
 * the identifier normaliser behind it: any bytes as a body must give either
 * a normalised request or a list of problems, never a crash or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/enrich.h"

#include "engine_fuzz.h"
#include "responder_stack.h"

static int fuzz_one(const uint8_t *data, size_t size)
{
	struct en_request req;
	json_t *details = NULL;
	enum enr_err rc;

	en_request_init(&req);
	rc = en_parse((const char *)data, size, cfg, lists, &req, &details);
	if (rc == ENR_OK) {
		const char *email = rec_get(&req.rec, ID_EMAIL);
		int have = 0;

		if (details != NULL || req.want == 0)
			abort();
		for (int i = 0; i < ID__MAX; i++)
			have += rec_get(&req.rec, (enum fld_ident)i) != NULL;
		if (have == 0)
			abort(); /* accepted without an identifier */
		if (email && (strchr(email, '@') == NULL || strchr(email, ' ')))
			abort();
	} else if (rc == ENR_E_INVALID) {
		if (!json_is_array(details) || json_array_size(details) == 0)
			abort(); /* a refusal always says why */
	}
	json_decref(details);
	en_request_release(&req);
	return 0;
}

FUZZ_TARGET(fuzz_one)
