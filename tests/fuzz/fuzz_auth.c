/*
 * fuzz_auth.c - libFuzzer target for the Authorization / X-API-Key parsing.
 * Input: the two header values separated by the first NUL byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/auth.h"

#include "responder_stack.h"


static int fuzz_one(const uint8_t *data, size_t size)
{
	char a[2048], x[2048], key[AUTH_KEY_LEN + 1];
	const uint8_t *nul = memchr(data, 0, size);
	size_t na = nul ? (size_t)(nul - data) : size;
	size_t nx = nul ? size - na - 1 : 0;
	unsigned scopes;

	if (na >= sizeof a || nx >= sizeof x)
		return 0;
	memcpy(a, data, na);
	a[na] = '\0';
	memcpy(x, nul ? nul + 1 : data, nx);
	x[nx] = '\0';
	if (auth_parse_headers(a, nul ? x : NULL, key) == ENR_OK) {
		/* Anything accepted has the exact key shape. */
		if (!auth_key_shape_ok(key, strlen(key)))
			abort();
	}
	if (auth_scopes_parse(a, &scopes) == ENR_OK && (scopes & ~AUTH_SCOPE_ALL))
		abort();
	return 0;
}

FUZZ_TARGET(fuzz_one)
