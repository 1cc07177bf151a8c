/*
 * fcgi.c - the FastCGI responder's records: reading a request, framing an
 * answer.
 *
 * A record is an 8-byte header (version, type, request id, content length,
 * padding length) and its content and padding.  The input is read into one
 * buffer (FCGI_IN_BUF) and parsed from there; a body's large records go
 * straight into the reader's memory.  The PARAMS stream's content is
 * collected raw (its name-value pairs may straddle records) and decoded in
 * place at its end: each pair's length bytes (two at least) become the two
 * NULs, so the decoded pairs never overtake what is still to decode.
 */
#include "lib/fcgi.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/limits.h"
#include "lib/log.h"

#define FCGI_VERSION 1
#define FCGI_HEADER 8
#define FCGI_IN_BUF (8u * 1024u)
#define FCGI_CHUNK 65528u          /* content of one STDOUT record: a multiple of 8 */
#define FCGI_DIRECT_READ 4096u     /* body reads this large bypass the buffer */
#define FCGI_KEEP_PARAMS (16u * 1024u)  /* parameter memory it keeps */

enum {
	T_BEGIN = 1, T_ABORT = 2, T_END = 3, T_PARAMS = 4, T_STDIN = 5, T_STDOUT = 6,
	T_GET_VALUES = 9, T_GET_VALUES_RESULT = 10, T_UNKNOWN_TYPE = 11,
};
enum { ROLE_RESPONDER = 1, FLAG_KEEP_CONN = 1 };
enum { REQUEST_COMPLETE = 0, CANT_MPX_CONN = 1, UNKNOWN_ROLE = 3 };

void fcgi_init(struct fcgi_conn *c)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	buf_init(&c->out, 0);
}

/* One read buffer per thread is kept between requests (freed when the
 * thread ends): a request holds one only while it reads its input, and
 * every request needs one. */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static bool spare_ok;

static void spare_make(void)
{
	spare_ok = pthread_key_create(&spare_key, free) == 0;
}

static unsigned char *spare_take(void)
{
	unsigned char *b;

	pthread_once(&spare_once, spare_make);
	if (!spare_ok)
		return NULL;
	b = pthread_getspecific(spare_key);
	if (b)
		pthread_setspecific(spare_key, NULL);
	return b;
}

static void spare_give(unsigned char *b)
{
	pthread_once(&spare_once, spare_make);
	if (spare_ok && pthread_getspecific(spare_key) == NULL &&
	    pthread_setspecific(spare_key, b) == 0)
		return;
	free(b);
}

static void forget_input(struct fcgi_conn *c)
{
	if (c->in)
		spare_give(c->in);
	c->in = NULL;
	c->in_off = c->in_len = c->in_cap = 0;
	c->rec_type = 0;
	c->rec_left = c->pad_left = 0;
}

static void forget_params(struct fcgi_conn *c)
{
	free(c->params);
	c->params = NULL;
	c->params_len = c->params_cap = 0;
	free(c->pairs);
	c->pairs = NULL;
	c->pairs_cap = 0;
	c->nparams = 0;
}

void fcgi_release(struct fcgi_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	forget_input(c);
	forget_params(c);
	buf_release(&c->out);
}

/* ---- writing ----------------------------------------------------------- */

static void header(unsigned char h[FCGI_HEADER], int type, unsigned id, size_t len, size_t pad)
{
	h[0] = FCGI_VERSION;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)len;
	h[6] = (unsigned char)pad;
	h[7] = 0;
}

/* Step over the first w bytes of (*iov)[0..*n). */
static void advance(struct iovec **iov, int *n, size_t w)
{
	while (*n > 0 && w >= (*iov)->iov_len) {
		w -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + w;
		(*iov)->iov_len -= w;
	}
}

/* Write every byte of iov[0..n) (the array is used up), but for the first
 * c->out_sent, which went before (fcgi_finish_now). */
static enum enr_err write_all(struct fcgi_conn *c, struct iovec *iov, int n)
{
	advance(&iov, &n, c->out_sent);
	c->out_sent = 0;
	while (n > 0) {
		ssize_t w = writev(c->fd, iov, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			c->out_failed = true;
			return ENR_E_IO;
		}
		advance(&iov, &n, (size_t)w);
	}
	return ENR_OK;
}

/* A record the responder sends on its own (replies to management records
 * and refused requests). */
static void reply(struct fcgi_conn *c, int type, unsigned id, const void *body, size_t len)
{
	unsigned char h[FCGI_HEADER];
	struct iovec iov[2] = { { h, sizeof h }, { (void *)body, len } };

	header(h, type, id, len, 0);
	(void)write_all(c, iov, len ? 2 : 1);
}

static void end_request(struct fcgi_conn *c, unsigned id, int status)
{
	unsigned char b[8] = { 0, 0, 0, 0, (unsigned char)status, 0, 0, 0 };

	reply(c, T_END, id, b, sizeof b);
}

/* The empty STDOUT record, then END_REQUEST and its body. */
static void end_records(const struct fcgi_conn *c, unsigned char tail[3 * FCGI_HEADER])
{
	header(tail, T_STDOUT, c->id, 0, 0);
	header(tail + FCGI_HEADER, T_END, c->id, 8, 0);
	memset(tail + 2 * FCGI_HEADER, 0, FCGI_HEADER);
	tail[2 * FCGI_HEADER + 4] = REQUEST_COMPLETE;
}

/* Send p[0..n) as STDOUT records, then (when end) the records that end the
 * request, in as few writes as the iovec array allows. */
static enum enr_err send_out(struct fcgi_conn *c, const char *p, size_t n, bool end)
{
	enum { CHUNKS = 16 };
	unsigned char heads[CHUNKS][FCGI_HEADER], tail[3 * FCGI_HEADER];
	struct iovec iov[2 * CHUNKS + 1];

	if (c->out_failed)
		return ENR_E_IO;
	do {
		int k = 0, nio = 0;

		for (; k < CHUNKS && n > 0; k++) {
			size_t len = n < FCGI_CHUNK ? n : FCGI_CHUNK;

			header(heads[k], T_STDOUT, c->id, len, 0);
			iov[nio++] = (struct iovec){ heads[k], FCGI_HEADER };
			iov[nio++] = (struct iovec){ (void *)p, len };
			p += len;
			n -= len;
		}
		if (n == 0 && end) {
			end_records(c, tail);
			iov[nio++] = (struct iovec){ tail, sizeof tail };
		}
		if (nio > 0 && write_all(c, iov, nio) != ENR_OK)
			return ENR_E_IO;
	} while (n > 0);
	return ENR_OK;
}

enum enr_err fcgi_write(struct fcgi_conn *c, const void *p, size_t n)
{
	if (c->out_failed)
		return ENR_E_IO;
	if (n == 0)
		return ENR_OK;
	if (c->out.len + n <= FCGI_OUT_FLUSH)
		return buf_append(&c->out, p, n);
	/* Large: what is collected goes first, then this straight from the
	 * caller's memory. */
	if (send_out(c, c->out.data, c->out.len, false) != ENR_OK)
		return ENR_E_IO;
	buf_reset(&c->out);
	return send_out(c, p, n, false);
}

/* ---- reading ----------------------------------------------------------- */

/* Read more into the buffer: > 0 bytes, 0 at the connection's end, < 0 on
 * an error. */
static ssize_t fill(struct fcgi_conn *c)
{
	ssize_t got;

	if (c->in == NULL) {
		c->in = spare_take();
		if (c->in == NULL)
			c->in = malloc(FCGI_IN_BUF);
		if (c->in == NULL)
			return -1;
		c->in_cap = FCGI_IN_BUF;
	}
	if (c->in_off == c->in_len) {
		c->in_off = c->in_len = 0;
	} else if (c->in_len == c->in_cap) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	do {
		got = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
	} while (got < 0 && errno == EINTR);
	if (got > 0)
		c->in_len += (size_t)got;
	return got;
}

static size_t buffered(const struct fcgi_conn *c)
{
	return c->in_len - c->in_off;
}

/* At least n (<= FCGI_IN_BUF) bytes buffered; false when the connection
 * ended or failed first. */
static bool need(struct fcgi_conn *c, size_t n)
{
	while (buffered(c) < n) {
		if (fill(c) <= 0)
			return false;
	}
	return true;
}

static bool broke(struct fcgi_conn *c, const char *why)
{
	if (!c->broken)
		log_warn("fcgi", "the connection broke the protocol: %s", why);
	c->broken = true;
	return false;
}

/* Take n bytes of the input, the first cap of them into dst (the rest
 * skipped).  Returns how many were kept, or -1 when the input ended first. */
static ssize_t consume(struct fcgi_conn *c, size_t n, unsigned char *dst, size_t cap)
{
	size_t kept = 0;

	while (n > 0) {
		size_t take, keep;

		if (buffered(c) == 0 && fill(c) <= 0)
			return -1;
		take = buffered(c) < n ? buffered(c) : n;
		keep = kept + take <= cap ? take : cap - kept;
		if (keep > 0)
			memcpy(dst + kept, c->in + c->in_off, keep);
		kept += keep;
		c->in_off += take;
		n -= take;
	}
	return (ssize_t)kept;
}

/* The rest of the current record, content and padding, skipped. */
static bool close_record(struct fcgi_conn *c)
{
	bool ok = consume(c, c->rec_left + c->pad_left, NULL, 0) >= 0;

	c->rec_type = 0;
	c->rec_left = c->pad_left = 0;
	return ok;
}

/* The next record's header; false when the connection ended or broke. */
static bool next_header(struct fcgi_conn *c)
{
	const unsigned char *h;

	if (c->rec_type && !close_record(c))
		return false;
	if (!need(c, FCGI_HEADER))
		return false;
	h = c->in + c->in_off;
	if (h[0] != FCGI_VERSION)
		return broke(c, "not FastCGI version 1");
	c->rec_type = h[1];
	c->rec_id = (uint16_t)(h[2] << 8 | h[3]);
	c->rec_left = (size_t)(h[4] << 8 | h[5]);
	c->pad_left = h[6];
	c->in_off += FCGI_HEADER;
	if (c->rec_type == 0)
		return broke(c, "record type 0");
	return true;
}

/* A name-value pair's length: one byte, or four with the top bit set. */
static bool nv_len(const unsigned char *p, size_t len, size_t *i, size_t *out)
{
	if (*i >= len)
		return false;
	if (p[*i] < 0x80) {
		*out = p[(*i)++];
		return true;
	}
	if (len - *i < 4)
		return false;
	*out = ((size_t)(p[*i] & 0x7f) << 24) | ((size_t)p[*i + 1] << 16) |
	       ((size_t)p[*i + 2] << 8) | p[*i + 3];
	*i += 4;
	return true;
}

/* The pair at p[*i] of p[0..n): its name's and value's lengths, *i moved
 * to its name.  False when no whole pair is left. */
static bool next_pair(const unsigned char *p, size_t n, size_t *i, size_t *nl, size_t *vl)
{
	return nv_len(p, n, i, nl) && nv_len(p, n, i, vl) && *nl <= n - *i &&
	       *vl <= n - *i - *nl;
}

/* Room for one more pair in c's index. */
static bool pair_room(struct fcgi_conn *c, unsigned count)
{
	unsigned cap = c->pairs_cap ? c->pairs_cap * 2 : 32;
	struct fcgi_pair *more;

	if (count < c->pairs_cap)
		return true;
	more = realloc(c->pairs, cap * sizeof *more);
	if (more == NULL)
		return false;
	c->pairs = more;
	c->pairs_cap = cap;
	return true;
}

/* Decode the raw name-value pairs of the parameters in place into
 * "name\0value\0" pairs, and index them; a pair cut short at the end (or
 * past what memory allows) is left out. */
static void decode_params(struct fcgi_conn *c)
{
	unsigned char *p = (unsigned char *)c->params;
	size_t i = 0, o = 0, n = c->params_len;
	unsigned count = 0;

	while (i < n) {
		size_t nl, vl;

		if (!next_pair(p, n, &i, &nl, &vl) || !pair_room(c, count))
			break;
		c->pairs[count] = (struct fcgi_pair){ (uint32_t)o, (uint32_t)nl };
		memmove(p + o, p + i, nl);
		o += nl;
		p[o++] = '\0';
		memmove(p + o, p + i + nl, vl);
		o += vl;
		p[o++] = '\0';
		i += nl + vl;
		count++;
	}
	c->params_len = o;
	c->nparams = count;
}

/* The current record's content, whole, into dst (at most cap bytes kept;
 * the rest skipped).  Returns how many were kept, or -1. */
static ssize_t take_content(struct fcgi_conn *c, unsigned char *dst, size_t cap)
{
	ssize_t kept = consume(c, c->rec_left, dst, cap);

	c->rec_left = 0;
	return kept;
}

/* Management records (request id 0): the variables asked for that the
 * responder knows (it does not multiplex), or UNKNOWN_TYPE. */
static bool management(struct fcgi_conn *c)
{
	unsigned char ask[1024], ans[64];
	size_t alen = 0;
	ssize_t n;

	if (c->rec_type != T_GET_VALUES) {
		unsigned char b[8] = { c->rec_type, 0, 0, 0, 0, 0, 0, 0 };

		reply(c, T_UNKNOWN_TYPE, 0, b, sizeof b);
		return close_record(c);
	}
	n = take_content(c, ask, sizeof ask);
	if (n < 0)
		return false;
	for (size_t i = 0; i < (size_t)n;) {
		size_t nl, vl;

		if (!next_pair(ask, (size_t)n, &i, &nl, &vl))
			break;
		if (nl == 15 && memcmp(ask + i, "FCGI_MPXS_CONNS", 15) == 0 && alen + 18 <= sizeof ans) {
			ans[alen++] = 15;
			ans[alen++] = 1;
			memcpy(ans + alen, "FCGI_MPXS_CONNS0", 16);
			alen += 16;
		}
		i += nl + vl;
	}
	reply(c, T_GET_VALUES_RESULT, 0, ans, alen);
	return close_record(c);
}

/* The PARAMS record's content onto the raw parameters. */
static bool add_params(struct fcgi_conn *c)
{
	size_t room, want = c->params_len + c->rec_left;
	ssize_t kept;

	if (want > c->params_cap && c->params_cap < LIM_FCGI_PARAMS_MAX) {
		/* A web server sends them in one record, as a rule: the first
		 * allocation fits that record (a waiting request keeps it). */
		size_t cap = c->params_cap ? c->params_cap : (want + 255) & ~(size_t)255;
		char *more;

		while (cap < want && cap < LIM_FCGI_PARAMS_MAX)
			cap *= 2;
		if (cap > LIM_FCGI_PARAMS_MAX)
			cap = LIM_FCGI_PARAMS_MAX;
		more = realloc(c->params, cap);
		if (more) {
			c->params = more;
			c->params_cap = cap;
		}
	}
	room = c->params_cap - c->params_len;
	if (c->rec_left > room)
		c->params_dropped = true;
	kept = take_content(c, (unsigned char *)c->params + c->params_len, room);
	if (kept < 0)
		return false;
	c->params_len += (size_t)kept;
	return true;
}

/* Refuse a request that cannot be served on this connection. */
static bool refuse(struct fcgi_conn *c, int status)
{
	unsigned id = c->rec_id;

	if (!close_record(c))
		return false;
	end_request(c, id, status);
	return true;
}

/* A record that is not the request's stream being read: management,
 * another request's, an abort.  False when the input ends with it. */
static bool other_record(struct fcgi_conn *c)
{
	if (c->rec_id == 0)
		return management(c);
	if (c->rec_type == T_BEGIN)
		return c->id != 0 && c->rec_id == c->id ? broke(c, "a request begun twice")
							 : refuse(c, CANT_MPX_CONN);
	if (c->rec_type == T_ABORT && c->id != 0 && c->rec_id == c->id) {
		log_info("fcgi", "the web server aborted request %u", c->id);
		c->broken = true;
		return false;
	}
	if (c->id != 0 && c->rec_id == c->id)
		return broke(c, "a record out of place");
	return close_record(c); /* a request long gone */
}

/* BEGIN_REQUEST: a responder's request begins, or is refused. */
static bool begin(struct fcgi_conn *c)
{
	const unsigned char *b;

	if (c->rec_left != 8 || !need(c, 8))
		return broke(c, "a BEGIN_REQUEST record that is not 8 bytes");
	b = c->in + c->in_off;
	if ((b[0] << 8 | b[1]) != ROLE_RESPONDER)
		return refuse(c, UNKNOWN_ROLE);
	c->keep = (b[2] & FLAG_KEEP_CONN) != 0;
	c->id = c->rec_id;
	c->in_off += 8;
	c->rec_left = 0;
	return true;
}

enum fcgi_rc fcgi_next_on(struct fcgi_conn *c, int fd)
{
	c->fd = fd;
	c->id = 0;
	c->keep = false;
	c->in_ended = c->broken = c->params_dropped = c->out_failed = false;
	c->out_sent = 0;
	c->nparams = 0;
	c->params_len = 0;
	for (;;) {
		if (!next_header(c))
			break;
		if (c->id == 0 && c->rec_type == T_BEGIN && c->rec_id != 0) {
			if (!begin(c))
				break;
			continue;
		}
		if (c->id != 0 && c->rec_type == T_PARAMS && c->rec_id == c->id) {
			if (c->rec_left == 0) {
				decode_params(c);
				return FCGI_REQUEST;
			}
			if (!add_params(c))
				break;
			continue;
		}
		if (!other_record(c))
			break;
	}
	/* The connection ended, or broke, before a request was read. */
	close(c->fd);
	c->fd = -1;
	c->id = 0;
	forget_input(c);
	return FCGI_AGAIN;
}

enum fcgi_rc fcgi_accept(struct fcgi_conn *c, int listen_fd)
{
	int fd;

	if (c->fd >= 0 && c->keep)
		return fcgi_next_on(c, c->fd);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	forget_input(c);
	do {
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return errno == ECONNABORTED ? FCGI_AGAIN : FCGI_FAILED;
	return fcgi_next_on(c, fd);
}

const char *fcgi_param(const struct fcgi_conn *c, const char *name)
{
	size_t nl = strlen(name);

	for (unsigned i = 0; i < c->nparams; i++) {
		const char *at = c->params + c->pairs[i].at;

		if (c->pairs[i].nlen == nl && memcmp(at, name, nl) == 0)
			return at + nl + 1;
	}
	return NULL;
}

/* The input ended: its buffer goes unless something after the end is in
 * it (the next request on a kept connection). */
static void input_end(struct fcgi_conn *c)
{
	c->in_ended = true;
	if (buffered(c) == 0)
		forget_input(c);
}

ssize_t fcgi_read(struct fcgi_conn *c, void *p, size_t n)
{
	for (;;) {
		if (c->in_ended)
			return 0;
		if (c->broken || c->id == 0)
			return -1;
		if (c->rec_type == T_STDIN && c->rec_id == c->id && c->rec_left > 0) {
			size_t want = n < c->rec_left ? n : c->rec_left;
			ssize_t got;

			if (buffered(c) > 0) {
				got = (ssize_t)(buffered(c) < want ? buffered(c) : want);
				memcpy(p, c->in + c->in_off, (size_t)got);
				c->in_off += (size_t)got;
			} else if (want >= FCGI_DIRECT_READ) {
				do {
					got = read(c->fd, p, want);
				} while (got < 0 && errno == EINTR);
			} else {
				got = fill(c) > 0 ? 0 : -1;
				if (got == 0)
					continue;
			}
			if (got <= 0) {
				c->broken = true;
				return -1;
			}
			c->rec_left -= (size_t)got;
			return got;
		}
		if (!next_header(c)) {
			c->broken = true;
			return -1;
		}
		if (c->rec_type == T_STDIN && c->rec_id == c->id) {
			if (c->rec_left == 0) {
				if (!close_record(c)) {
					c->broken = true;
					return -1;
				}
				input_end(c);
				return 0;
			}
			continue;
		}
		if (!other_record(c)) {
			c->broken = true;
			return -1;
		}
	}
}

bool fcgi_input_consumed(const struct fcgi_conn *c)
{
	return c->in_ended && buffered(c) == 0;
}

/* The request is over: what it kept goes, the connection's fate is set. */
static void forget_request(struct fcgi_conn *c)
{
	/* The answer's memory goes with it: the next request on this
	 * connection object may wait long before it has one. */
	buf_release(&c->out);
	if (c->params_cap > FCGI_KEEP_PARAMS)
		forget_params(c);
	c->params_len = 0;
	c->nparams = 0;
	/* The next request on this connection only after this one's input
	 * was read to its end, and all of its answer went. */
	if (c->broken || c->out_failed || !c->in_ended)
		c->keep = false;
	if (!c->keep && buffered(c) == 0)
		forget_input(c);
	c->id = 0;
	c->out_sent = 0;
}

enum enr_err fcgi_finish(struct fcgi_conn *c)
{
	enum enr_err rc = ENR_OK;

	if (c->fd >= 0 && c->id != 0)
		rc = send_out(c, c->out.data, c->out.len, true);
	forget_request(c);
	return rc;
}

bool fcgi_finish_now(struct fcgi_conn *c)
{
	unsigned char head[FCGI_HEADER], tail[3 * FCGI_HEADER];
	struct iovec iov[3];
	struct msghdr m = { .msg_iov = iov };
	size_t total = sizeof tail;
	ssize_t w;

	if (c->fd < 0 || c->id == 0 || c->out_failed || c->out.len > FCGI_CHUNK || c->out_sent)
		return false;
	/* The bytes send_out would write, in the same order. */
	if (c->out.len > 0) {
		header(head, T_STDOUT, c->id, c->out.len, 0);
		iov[m.msg_iovlen++] = (struct iovec){ head, FCGI_HEADER };
		iov[m.msg_iovlen++] = (struct iovec){ c->out.data, c->out.len };
		total += FCGI_HEADER + c->out.len;
	}
	end_records(c, tail);
	iov[m.msg_iovlen++] = (struct iovec){ tail, sizeof tail };
	do
		w = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		c->out_failed = true; /* it is over: nothing more can go */
		forget_request(c);
		return true;
	}
	if (w < 0 || (size_t)w < total) {
		c->out_sent = w > 0 ? (size_t)w : 0;
		return false;
	}
	forget_request(c);
	return true;
}

int fcgi_detach(struct fcgi_conn *c)
{
	int fd = c->fd;

	c->fd = -1;
	c->keep = false;
	forget_input(c);
	return fd;
}

bool fcgi_is_listener(int fd)
{
	int on = 0;
	socklen_t len = sizeof on;

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}
