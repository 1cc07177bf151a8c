/*
 * nullfcgi.c - the benchmark's baseline: a FastCGI responder that does
 * nothing but answer a fixed small JSON body, with the same threading model
 * as enrichd today (N threads each in FCGX_Accept_r, no lock).  It never
 * waits, so a few threads per core serve it best; the harness measures it
 * with more than one thread count and takes the best as the baseline.
 * The listen backlog is enrichd's (listen_backlog), 1024 by default.
 *
 *   nullfcgi SOCKET_PATH [THREADS [BACKLOG]]
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcgiapp.h>

static int listen_fd;

static void *serve(void *arg)
{
	FCGX_Request r;
	static const char resp[] = "Status: 200 OK\r\nContent-Type: application/json\r\n"
				   "Content-Length: 16\r\n\r\n{\"status\":\"ok\"}\n";

	(void)arg;
	FCGX_InitRequest(&r, listen_fd, 0);
	while (FCGX_Accept_r(&r) >= 0) {
		FCGX_PutStr(resp, (int)sizeof resp - 1, r.out);
		FCGX_Finish_r(&r);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n = 64, backlog = 1024;
	pthread_t t;
	sigset_t stop;
	int sig;

	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: nullfcgi SOCKET [THREADS [BACKLOG]]\n");
		return 2;
	}
	if (argc > 3) {
		char *end;
		long v = strtol(argv[3], &end, 10); /* lint-ok: bench tool */

		if (*end || v < 1 || v > 65535)
			return 2;
		backlog = (int)v;
	}
	if (argc > 2) {
		char *end;
		long v = strtol(argv[2], &end, 10); /* lint-ok: bench tool */

		if (*end || v < 1 || v > 4096)
			return 2;
		n = (int)v;
	}
	signal(SIGPIPE, SIG_IGN);
	FCGX_Init();
	unlink(argv[1]);
	listen_fd = FCGX_OpenSocket(argv[1], backlog);
	if (listen_fd < 0)
		return 1;
	chmod(argv[1], 0660);
	/* SIGTERM and SIGINT are taken here, by sigwait: with a handler, the
	 * signal could land on a serving thread and leave pause() waiting. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	for (int i = 0; i < n; i++)
		pthread_create(&t, NULL, serve, NULL);
	sigwait(&stop, &sig);
	return 0;
}
