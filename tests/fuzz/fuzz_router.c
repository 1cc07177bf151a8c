/*
 * fuzz_router.c - libFuzzer target for request path matching against the
 * API's route patterns.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/router.h"

#include "responder_stack.h"


static const char *const patterns[] = {
	"/health", "/metrics", "/enrich", "/enrich/enqueue", "/enrich/jobs/{id}",
	"/enrich/jobs/{id}/results", "/enrich/jobs/{id}/retry", "/admin/keys",
	"/admin/keys/{id}/revive", "/admin/usage", "/a/{x}/b/{y}/c/{z}/d/{w}",
};

static int fuzz_one(const uint8_t *data, size_t size)
{
	char path[4096];
	struct rt_match m;

	if (size >= sizeof path)
		size = sizeof path - 1;
	memcpy(path, data, size);
	path[size] = '\0';
	for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
		if (!rt_match(patterns[i], path, &m))
			continue;
		/* Captures are non-empty, slash-free, and appear in the path. */
		for (unsigned c = 0; c < m.n; c++)
			if (m.cap[c][0] == '\0' || strchr(m.cap[c], '/') || !strstr(path, m.cap[c]))
				abort();
	}
	return 0;
}

FUZZ_TARGET(fuzz_one)
