/*
 * fiber.h - stackful fibers: a function that can stop in the middle
 * (fib_yield) and be carried on later, by the same thread or another.
 *
 * Prefix: fib_.  The engine's continuations are fibers (lib/co.h): the
 * waterfall, rotation and the providers are written as straight-line code,
 * and each of their waits (a transfer, a timer, a store call, a coalesced
 * lookup) is a yield that the event loop ends.  A waiting request costs
 * the stack pages it touched, not a thread.
 *
 * Stacks are mmap'd LIM_FIB_STACK bytes with a guard page below (an
 * overflow faults instead of writing over a neighbour); only the pages
 * touched are resident, and fib_trim gives back the pages below the
 * current depth before a long wait.  Stacks of ended fibers are kept for
 * reuse (LIM_FIB_STACKS_KEPT).
 *
 * One thread runs a fiber at a time: fib_resume on any thread, but never
 * on two at once, and the hand-over between threads must be ordered by
 * the caller (the loop's task queue does it).  AddressSanitizer and
 * ThreadSanitizer are told about every switch.
 */
#ifndef ENR_FIBER_H
#define ENR_FIBER_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct fib;
typedef void (*fib_fn)(void *arg);

/* A fiber that will run fn(arg) at its first fib_resume.  *out is freed
 * with fib_free.  ENR_E_NOMEM (no memory for the stack). */
ENR_MUST_CHECK enum enr_err fib_new(fib_fn fn, void *arg, struct fib **out);

/* Free f, which has ended or never ran; fib_free(NULL) does nothing. */
void fib_free(struct fib *f);

/* Run f on the calling thread until it yields or its function returns.
 * True when it returned (f may then only be freed).  Not from inside f. */
bool fib_resume(struct fib *f);

/* From inside a fiber: go back to whoever resumed it. */
void fib_yield(void);

/* The fiber running on this thread, NULL off any fiber. */
struct fib *fib_current(void);

/* The fiber's own pointer (the continuation that owns it). */
void *fib_data(const struct fib *f);
void fib_set_data(struct fib *f, void *p);

/* From inside a fiber: give the pages of its stack below the current
 * depth back to the system (they are resident from deeper calls that have
 * returned).  A wait of thousands of fibers then costs what they hold, not
 * what they once touched.  Only pages found resident (mincore) are
 * dropped, so a trim that finds none makes no madvise (whose TLB flush
 * interrupts every other CPU). */
void fib_trim(void);

/* Stacks allocated now (running, waiting or kept for reuse). */
size_t fib_stacks(void);

#endif
