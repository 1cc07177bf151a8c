/*
 * fiber.c - stackful fibers with a pool of mmap'd stacks.
 *
 * On x86-64 a switch is a few instructions of our own (fib_switch): it
 * saves the registers a called function must keep (rbx, rbp, r12-r15,
 * the SSE and x87 control words) on the stack it leaves and takes them
 * from the one it enters.  glibc's swapcontext also saves and restores the
 * signal mask, a system call per switch, and its context is a kilobyte
 * per fiber; every thread here blocks the same signals, so the mask never
 * needs switching.  Elsewhere (or built with FIB_PORTABLE) the switch is
 * ucontext's.
 */
#include "fiber.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "limits.h"

#if defined(__x86_64__) && !defined(FIB_PORTABLE)
#define FIB_OWN_SWITCH 1
#else
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FIB_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define FIB_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(FIB_ASAN)
#include <sanitizer/common_interface_defs.h>
#define FIB_ASAN 1
#endif
#if __has_feature(thread_sanitizer) && !defined(FIB_TSAN)
#include <sanitizer/tsan_interface.h>
#define FIB_TSAN 1
#endif
#endif
#ifdef FIB_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifdef FIB_OWN_SWITCH
/* Where a switched-out stack stands: its saved stack pointer. */
typedef void *fib_ctx;

/* Save the kept registers on this stack, store its pointer in *save, and
 * carry on from the stack at load (saved the same way, or made by
 * fresh_stack). */
void fib_switch(fib_ctx *save, fib_ctx load);
__asm__(
	".text\n"
	".p2align 4\n"
	".globl fib_switch\n"
	".hidden fib_switch\n"
	".type fib_switch, @function\n"
	"fib_switch:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	subq $16, %rsp\n"
	"	stmxcsr 8(%rsp)\n"
	"	fnstcw 12(%rsp)\n"
	"	movq %rsp, (%rdi)\n"
	"	movq %rsi, %rsp\n"
	"	ldmxcsr 8(%rsp)\n"
	"	fldcw 12(%rsp)\n"
	"	addq $16, %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	ret\n"
	".size fib_switch, .-fib_switch\n");
#else
typedef ucontext_t fib_ctx;
#endif

struct fib {
	fib_ctx ctx;          /* the fiber's, while it is not running */
	fib_ctx *caller;      /* the resumer's, while it runs */
	fib_fn fn;
	void *arg;
	void *data;
	char *base;           /* mapping: guard page, then the stack */
	size_t size;          /* the whole mapping */
	bool ended;
#ifdef FIB_ASAN
	void *fake;
	const void *caller_lo;
	size_t caller_size;
#endif
#ifdef FIB_TSAN
	void *tsan;
	void *tsan_caller;
#endif
};

static _Thread_local struct fib *tl_current;

/* tl_current as this thread sees it now.  After a switch the fiber may be
 * on another thread, and a compiler may keep the address of a thread-local
 * from before a call: this is read afresh. */
static __attribute__((noinline)) struct fib *current(void)
{
	struct fib *f = tl_current;

	__asm__ volatile("" ::: "memory");
	return f;
}

/* ---- stacks ------------------------------------------------------------- *
 *
 * Ended fibers are kept whole, stack and context, for the next fib_new: a
 * kept context needs no getcontext again (it keeps the signal mask it was
 * made with, that of threads that all block the same signals). */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fib *kept[LIM_FIB_STACKS_KEPT];
static size_t nkept, nstacks;

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096u;
}

static size_t map_size(void)
{
	return LIM_FIB_STACK + page_size();
}

static struct fib *fib_kept(void)
{
	struct fib *f = NULL;

	pthread_mutex_lock(&pool_lock);
	if (nkept > 0)
		f = kept[--nkept];
	pthread_mutex_unlock(&pool_lock);
	return f;
}

static char *stack_get(void)
{
	char *b = mmap(NULL, map_size(), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (b == MAP_FAILED)
		return NULL;
	if (mprotect(b, page_size(), PROT_NONE) != 0) {
		munmap(b, map_size());
		return NULL;
	}
	pthread_mutex_lock(&pool_lock);
	nstacks++;
	pthread_mutex_unlock(&pool_lock);
	return b;
}

static void stack_put(char *b)
{
	pthread_mutex_lock(&pool_lock);
	nstacks--;
	pthread_mutex_unlock(&pool_lock);
	munmap(b, map_size());
}

/* Keep f for reuse; false when the pool is full. */
static bool fib_keep(struct fib *f)
{
	bool ok = false;

	pthread_mutex_lock(&pool_lock);
	if (nkept < LIM_FIB_STACKS_KEPT) {
		kept[nkept++] = f;
		ok = true;
	}
	pthread_mutex_unlock(&pool_lock);
	return ok;
}

size_t fib_stacks(void)
{
	size_t n;

	pthread_mutex_lock(&pool_lock);
	n = nstacks;
	pthread_mutex_unlock(&pool_lock);
	return n;
}

/* ---- switching ---------------------------------------------------------- */

/* Entered on the fiber's stack, after every switch into it. */
static void arrived(struct fib *f)
{
#ifdef FIB_ASAN
	__sanitizer_finish_switch_fiber(f->fake, &f->caller_lo, &f->caller_size);
#else
	(void)f;
#endif
}

/* About to leave the fiber's stack for its resumer's. */
static void leaving(struct fib *f)
{
#ifdef FIB_ASAN
	__sanitizer_start_switch_fiber(f->ended ? NULL : &f->fake, f->caller_lo, f->caller_size);
#endif
#ifdef FIB_TSAN
	__tsan_switch_to_fiber(f->tsan_caller, 0);
#else
	(void)f;
#endif
}

/* Leave the running fiber for where its resumer stands. */
static void switch_out(struct fib *f)
{
#ifdef FIB_OWN_SWITCH
	fib_switch(&f->ctx, *f->caller);
#else
	if (swapcontext(&f->ctx, f->caller) != 0)
		abort(); /* only with a broken context: nothing can continue */
#endif
}

static void trampoline(void)
{
	struct fib *f = current();

	arrived(f);
	f->fn(f->arg);
	/* The resumer's thread may differ from the one that started us. */
	f = current();
	f->ended = true;
	leaving(f);
	switch_out(f);
	abort(); /* an ended fiber is never resumed */
}

#ifdef FIB_OWN_SWITCH
/* The stack of a fiber that has not run: as fib_switch leaves one, so the
 * first switch into it "returns" into trampoline, with the stack aligned
 * as at a call (a return address above a 16-byte boundary) and zero as
 * that return address, where unwinding ends. */
static void fresh_stack(struct fib *f, char *lo, size_t size)
{
	uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
	uint64_t *at = (uint64_t *)(top - 16);
	uint32_t mxcsr;
	uint16_t fpucw;

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(fpucw));
	at[1] = 0;
	at[0] = (uint64_t)(uintptr_t)trampoline;
	memset(at - 8, 0, 8 * sizeof *at);   /* rbp rbx r12-r15, the control words */
	memcpy((char *)(at - 8) + 8, &mxcsr, sizeof mxcsr);
	memcpy((char *)(at - 8) + 12, &fpucw, sizeof fpucw);
	f->ctx = at - 8;
}
#else
/* getcontext returns twice (when the context is resumed): kept in a
 * function of its own, so that no caller's locals are at stake. */
static __attribute__((noinline)) bool context_here(ucontext_t *ctx)
{
	return getcontext(ctx) == 0;
}
#endif

/* A new fiber: its stack mapped (and, with ucontext, its context made
 * from this thread's). */
static struct fib *fib_alloc(void)
{
	struct fib *f = calloc(1, sizeof *f);

	if (f == NULL)
		return NULL;
	f->base = stack_get();
#ifndef FIB_OWN_SWITCH
	if (f->base && !context_here(&f->ctx)) {
		stack_put(f->base);
		f->base = NULL;
	}
#endif
	if (f->base == NULL) {
		free(f);
		return NULL;
	}
	return f;
}

enum enr_err fib_new(fib_fn fn, void *arg, struct fib **out)
{
	struct fib *f = fib_kept();

	if (f) {
		/* All but the context (first) and the stack. */
		char *base = f->base;

		memset((char *)f + offsetof(struct fib, caller), 0,
		       sizeof *f - offsetof(struct fib, caller));
		f->base = base;
	} else if ((f = fib_alloc()) == NULL) {
		return ENR_E_NOMEM;
	}
	f->size = map_size();
	f->fn = fn;
	f->arg = arg;
#ifdef FIB_ASAN
	/* A kept stack may still be marked from the frames of its last use. */
	__asan_unpoison_memory_region(f->base + page_size(), LIM_FIB_STACK);
#endif
#ifdef FIB_OWN_SWITCH
	fresh_stack(f, f->base + page_size(), LIM_FIB_STACK);
#else
	f->ctx.uc_stack.ss_sp = f->base + page_size();
	f->ctx.uc_stack.ss_size = LIM_FIB_STACK;
	f->ctx.uc_link = NULL;
	makecontext(&f->ctx, trampoline, 0);
#endif
#ifdef FIB_TSAN
	f->tsan = __tsan_create_fiber(0);
#endif
	*out = f;
	return ENR_OK;
}

void fib_free(struct fib *f)
{
	if (f == NULL)
		return;
#ifdef FIB_TSAN
	__tsan_destroy_fiber(f->tsan);
#endif
	if (fib_keep(f))
		return;
	stack_put(f->base);
	free(f);
}

bool fib_resume(struct fib *f)
{
	fib_ctx here;
	struct fib *prev = tl_current;
#ifdef FIB_ASAN
	void *fake = NULL;
#endif

	f->caller = &here;
	tl_current = f;
#ifdef FIB_TSAN
	f->tsan_caller = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(f->tsan, 0);
#endif
#ifdef FIB_ASAN
	__sanitizer_start_switch_fiber(&fake, f->base + page_size(), LIM_FIB_STACK);
#endif
#ifdef FIB_OWN_SWITCH
	fib_switch(&here, f->ctx);
#else
	if (swapcontext(&here, &f->ctx) != 0)
		abort(); /* only with a broken context: nothing can continue */
#endif
#ifdef FIB_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
	tl_current = prev;
	return f->ended;
}

void fib_yield(void)
{
	struct fib *f = current();

	leaving(f);
	switch_out(f);
	/* Resumed, perhaps by another thread: tl_current is that thread's. */
	arrived(current());
}

struct fib *fib_current(void)
{
	return current();
}

void *fib_data(const struct fib *f)
{
	return f->data;
}

void fib_set_data(struct fib *f, void *p)
{
	f->data = p;
}

/* What fib_trim keeps below its own local: the rest of its frame and the
 * system calls' wrappers (a few words each), with room to spare; a
 * sanitizer's interceptors take more. */
#if defined(FIB_ASAN) || defined(FIB_TSAN)
#define FIB_TRIM_MARGIN 1024u
#else
#define FIB_TRIM_MARGIN 512u
#endif

void fib_trim(void)
{
	struct fib *f = tl_current;
	char here;
	unsigned char vec[LIM_FIB_STACK / 4096];
	uintptr_t lo, top;
	size_t pg = page_size();

	if (f == NULL)
		return;
	lo = (uintptr_t)f->base + pg;
	/* Keep the pages from FIB_TRIM_MARGIN below here up: the margin holds
	 * this call's own frames (madvise's return address is on the stack
	 * while it runs).  A call to come that goes deeper touches a fresh
	 * zeroed page. */
	top = ((uintptr_t)&here - FIB_TRIM_MARGIN) & ~(uintptr_t)(pg - 1);
	if (top <= lo)
		return;
	/* Only from the deepest resident page: a madvise that drops pages
	 * costs every other CPU a TLB flush (an interrupt, and on a virtual
	 * machine an exit), and most waits find nothing to drop.  mincore
	 * costs neither. */
	if ((top - lo) / pg <= sizeof vec && mincore((void *)lo, top - lo, vec) == 0) {
		size_t n = (top - lo) / pg, first = 0;

		while (first < n && !(vec[first] & 1))
			first++;
		if (first == n)
			return;
		lo += first * pg;
	}
	(void)madvise((void *)lo, top - lo, MADV_DONTNEED);
}
