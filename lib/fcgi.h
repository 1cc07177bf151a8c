/*
 * fcgi.h - the responder's side of a FastCGI connection (FastCGI 1.0).
 *
 * Prefix: fcgi_.  A struct fcgi_conn is one connection from the web
 * server and the request on it, one request at a time.  One thread uses
 * it at a time: a request that moves between threads takes it along.
 *
 * Reading: fcgi_accept takes a connection (or the next request on a kept
 * one) and reads the request's BEGIN_REQUEST and PARAMS records; the
 * parameters are kept in one block sized to them.  fcgi_read gives the
 * body (STDIN) out as it arrives, and frees the read buffer once the input
 * ended.  Writing: fcgi_write collects the answer and fcgi_finish frames it
 * into STDOUT records and END_REQUEST, one write for an answer of up to
 * FCGI_OUT_FLUSH bytes.
 *
 * Management records (request id 0) are answered (GET_VALUES) or refused
 * (UNKNOWN_TYPE); a second request while one is open is refused
 * (CANT_MPX_CONN), a role other than RESPONDER too (UNKNOWN_ROLE).  A
 * record that breaks the protocol ends the connection's input.
 */
#ifndef ENR_FCGI_H
#define ENR_FCGI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/buf.h"
#include "lib/err.h"

/* Answer bytes collected before they are sent as they come. */
#define FCGI_OUT_FLUSH (32u * 1024u)

struct fcgi_conn {
	int fd;                    /* the connection; -1 when none */
	uint16_t id;               /* the request's id on it; 0 between requests */
	bool keep;                 /* the web server keeps it for its next request */
	bool in_ended;             /* the input's end (the empty STDIN record) was read */
	bool broken;               /* broke the protocol, aborted or went: no more input */
	bool params_dropped;       /* parameters past LIM_FCGI_PARAMS_MAX were left out */
	bool out_failed;           /* a write failed: the rest of the answer goes nowhere */
	size_t out_sent;           /* bytes of the last records fcgi_finish_now got out */
	unsigned nparams;
	char *params;              /* nparams pairs "name\0value\0" */
	size_t params_len, params_cap;
	struct fcgi_pair { uint32_t at, nlen; } *pairs; /* where each name is, its length */
	unsigned pairs_cap;
	unsigned char *in;         /* read and not yet parsed: in[in_off, in_len) */
	size_t in_off, in_len, in_cap;
	uint8_t rec_type;          /* the record being read; 0 between records */
	uint16_t rec_id;
	size_t rec_left, pad_left; /* its content and padding not yet taken */
	struct buf out;            /* answer bytes not yet sent */
};

enum fcgi_rc {
	FCGI_REQUEST, /* a request began: its parameters are read */
	FCGI_AGAIN,   /* the connection ended without one (it is closed): accept again */
	FCGI_FAILED,  /* accept failed; errno says why */
};

void fcgi_init(struct fcgi_conn *c);

/* Close the connection (if any) and free everything. */
void fcgi_release(struct fcgi_conn *c);

/* The next request: on the kept connection c has, else on one accepted
 * from listen_fd. */
enum fcgi_rc fcgi_accept(struct fcgi_conn *c, int listen_fd);

/* The next request on the connected socket fd, which c takes. */
enum fcgi_rc fcgi_next_on(struct fcgi_conn *c, int fd);

/* A parameter of the request ("REQUEST_METHOD", "HTTP_HOST"...); NULL
 * when absent.  Borrowed until the request finishes. */
const char *fcgi_param(const struct fcgi_conn *c, const char *name);

/* Up to n bytes of the body: > 0 bytes read, 0 at its end, -1 when the
 * input broke (an abort, a bad record, the connection went). */
ssize_t fcgi_read(struct fcgi_conn *c, void *p, size_t n);

/* The input was read to its end and nothing after it is buffered. */
bool fcgi_input_consumed(const struct fcgi_conn *c);

/* Add to the answer (bytes of the HTTP head and body, as CGI has them).
 * ENR_E_IO once writing failed. */
enum enr_err fcgi_write(struct fcgi_conn *c, const void *p, size_t n);

/* Send the rest of the answer and the records that end the request, and
 * forget the request.  Afterwards c->keep says whether the connection may
 * carry the next one; when not, the caller closes it (fcgi_detach). */
enum enr_err fcgi_finish(struct fcgi_conn *c);

/* fcgi_finish without waiting: true when the socket took the rest of the
 * answer and the records that end the request at once (or writing failed,
 * which ends it too), with c as fcgi_finish leaves it; false when the
 * socket is full, and fcgi_finish, which may wait, sends what is left. */
bool fcgi_finish_now(struct fcgi_conn *c);
/* Hand the connection to the caller: c has none afterwards. */
int fcgi_detach(struct fcgi_conn *c);

/* True when fd is a listening socket (a FastCGI responder's standard
 * input, as a spawner gives it). */
bool fcgi_is_listener(int fd);

#endif
