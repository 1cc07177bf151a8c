/*
 * fuzz_fcgi.c - libFuzzer target for the FastCGI records (lib/fcgi.c): any
 * bytes from the web server's side either give a request, whose parameters
 * read back as decoded and whose body reads to an end or a break, or no
 * request and a closed connection.  The answer's records always come back
 * whole.  On the responder's stack.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/fcgi.h"
#include "lib/limits.h"

#include "responder_stack.h"

static void check_at(int ok, int line)
{
	if (!ok) {
		fprintf(stderr, "fuzz_fcgi.c:%d: check failed\n", line);
		abort();
	}
}
#define check(ok) check_at((ok), __LINE__)

/* Everything the responder wrote: whole records of version 1. */
static void check_replies(int fd)
{
	unsigned char b[1 << 16];
	size_t have = 0, o = 0;
	ssize_t n;

	while ((n = read(fd, b + have, sizeof b - have)) > 0)
		have += (size_t)n;
	while (o < have) {
		check(have - o >= 8 && b[o] == 1);
		o += 8 + (size_t)(b[o + 4] << 8 | b[o + 5]) + b[o + 6];
	}
	check(o == have);
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	int sv[2];
	struct fcgi_conn c;
	char body[512];
	ssize_t n = 1;
	size_t total = 0;

	check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	check(write(sv[1], data, size) == (ssize_t)size);
	shutdown(sv[1], SHUT_WR);
	fcgi_init(&c);
	if (fcgi_next_on(&c, sv[0]) == FCGI_REQUEST) {
		check(c.id != 0 && c.params_len <= LIM_FCGI_PARAMS_MAX);
		/* Each pair's name (one without a NUL in it) finds the first value
		 * of that name, and every pair lies inside the block. */
		for (unsigned i = 0; i < c.nparams; i++) {
			const char *name = c.params + c.pairs[i].at;
			const char *value = name + c.pairs[i].nlen + 1;
			const char *found;

			check(c.pairs[i].at + c.pairs[i].nlen + 2 <= c.params_len);
			check(name[c.pairs[i].nlen] == '\0');
			if (memchr(name, '\0', c.pairs[i].nlen) != NULL)
				continue;
			found = fcgi_param(&c, name);
			check(found != NULL && found <= value);
		}
		while ((n = fcgi_read(&c, body, sizeof body)) > 0)
			total += (size_t)n;
		check(total <= size);
		check(n == 0 ? c.in_ended : c.broken);
		check(fcgi_write(&c, "Status: 200 OK\r\n\r\n", 18) == ENR_OK);
		check(fcgi_finish(&c) == ENR_OK);
		check(!c.keep || n == 0);
	} else {
		check(c.fd == -1);
	}
	fcgi_release(&c);
	check_replies(sv[1]);
	close(sv[1]);
	return 0;
}

FUZZ_TARGET(fuzz_one)
