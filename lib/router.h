/*
 * router.h - path patterns of the HTTP API.
 *
 * Prefix: rt_.  A pattern is literal segments and "{name}" captures:
 * "/enrich/jobs/{id}/results".  A capture matches one non-empty segment
 * without '/'.  Pure functions; thread-safe.
 */
#ifndef ENR_ROUTER_H
#define ENR_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#define RT_MAX_CAPTURES 4

struct rt_match {
	unsigned n;                          /* captures found */
	const char *cap[RT_MAX_CAPTURES];    /* point into store */
	char store[256];                     /* a longer capture matches nothing */
};

/* True when path matches pattern; *m then holds the captures (copied, so
 * they outlive path).  m is written only on a match. */
bool rt_match(const char *pattern, const char *path, struct rt_match *m);

#endif
