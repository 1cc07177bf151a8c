/*
 * evfake_loop.h - an event loop on the fake transfer layer and fake clock
 * (lib/evfake.h), for the unit tests of the loop and of what runs on it.
 */
#ifndef ENR_TEST_EVFAKE_LOOP_H
#define ENR_TEST_EVFAKE_LOOP_H

#include <stdint.h>

#include "lib/evfake.h"
#include "lib/evloop.h"

/* A loop whose clock starts at start_ms, at most max_xfers transfers in
 * flight (0: the default); *f is its fake, freed after the loop.  NULL
 * when either cannot be made. */
static inline struct ev_loop *fake_loop_at(int64_t start_ms, int max_xfers, struct evf **f)
{
	struct ev_opts o = { .max_xfers = max_xfers };
	struct ev_loop *l = NULL;

	if (evf_new(start_ms, f) != ENR_OK)
		return NULL;
	evf_opts(*f, &o);
	if (ev_new(&o, &l) != ENR_OK) {
		evf_free(*f);
		return NULL;
	}
	return l;
}

#endif
