/*
 * router.c - segment-wise matching of API paths against patterns.
 */
#include "router.h"

#include <string.h>

bool rt_match(const char *pattern, const char *path, struct rt_match *m)
{
	struct rt_match tmp;
	const char *p = pattern, *s = path;
	size_t used = 0;

	tmp.n = 0;
	while (*p && *s) {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			size_t n = strcspn(s, "/");

			if (pe == NULL || n == 0 || tmp.n == RT_MAX_CAPTURES ||
			    used + n + 1 > sizeof tmp.store)
				return false;
			memcpy(tmp.store + used, s, n);
			tmp.store[used + n] = '\0';
			tmp.cap[tmp.n++] = tmp.store + used;
			used += n + 1;
			p = pe + 1;
			s += n;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	if (*p != '\0' || *s != '\0')
		return false;
	/* Captures point into tmp.store; move them to m's store. */
	memcpy(m->store, tmp.store, used);
	m->n = tmp.n;
	for (unsigned i = 0; i < tmp.n; i++)
		m->cap[i] = m->store + (tmp.cap[i] - tmp.store);
	return true;
}
