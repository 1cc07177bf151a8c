/*
 * responder_stack.h - run each fuzz input on a thread with the responder's
 * stack (LIM_RESPONDER_STACK), not on libFuzzer's main thread, whose stack
 * is the process's (8 MiB or more): a parser that recurses once per byte of
 * nesting overflows the responder long before it overflows the fuzzer.
 *
 * A target defines `static int fuzz_one(const uint8_t *data, size_t size)`
 * and ends with FUZZ_TARGET(fuzz_one), which defines LLVMFuzzerTestOneInput.
 * tests/fuzz/run.sh refuses to run a target that does not.
 */
#ifndef ENR_FUZZ_RESPONDER_STACK_H
#define ENR_FUZZ_RESPONDER_STACK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/limits.h"

struct fuzz_call {
	int (*fn)(const uint8_t *data, size_t size);
	const uint8_t *data;
	size_t size;
	int rc;
};

static void *fuzz_call_thread(void *arg)
{
	struct fuzz_call *c = arg;

	c->rc = c->fn(c->data, c->size);
	return NULL;
}

static inline int fuzz_on_responder_stack(int (*fn)(const uint8_t *, size_t), const uint8_t *data,
					  size_t size)
{
	struct fuzz_call c = { fn, data, size, 0 };
	pthread_attr_t attr;
	pthread_t t;

	if (pthread_attr_init(&attr) != 0 ||
	    pthread_attr_setstacksize(&attr, LIM_RESPONDER_STACK) != 0 ||
	    pthread_create(&t, &attr, fuzz_call_thread, &c) != 0)
		abort(); /* an input that was not run must not count as passed */
	pthread_attr_destroy(&attr);
	if (pthread_join(t, NULL) != 0)
		abort();
	return c.rc;
}

#define FUZZ_TARGET(fn)                                                           \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);             \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)              \
	{                                                                         \
		return fuzz_on_responder_stack(fn, data, size);                   \
	}

#endif
