/*
 * main.c - enrichd, the FastCGI/CGI responder: start-up, the accept loop,
 * signals (SIGHUP reload, SIGTERM/SIGINT graceful stop).
 *
 * Threads: N responder threads each accept on the shared listening
 * socket (lib/fcgi.h), with no lock around it.  Linux lets many
 * threads block in accept(2) on one socket, and a lock would let a single
 * thread parked on a kept-alive connection stall every other one.  nginx
 * is configured not to keep FastCGI connections alive (nginx/ template),
 * so every thread goes back to accept after each request.
 *
 * The main thread only waits for signals (they are blocked in every
 * thread and taken with sigwait), so reload and shutdown run outside
 * signal-handler context.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "lib/buf.h"
#include "lib/co.h"
#include "lib/cli.h"
#include "lib/config.h"
#include "lib/confhist.h"
#include "lib/evloop.h"
#include "lib/fcgi.h"
#include "http.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "routes.h"
#include "lib/util.h"

#ifndef ENRICHD_VERSION
#define ENRICHD_VERSION "0.0.0"
#endif

#define DEFAULT_CONF CLI_DEFAULT_CONF
#define STOP_GRACE_MS 30000

static int listen_fd = -1;
static char listen_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static atomic_bool stopping;     /* set by the main thread, read by responders */
static atomic_int threads_idle;  /* threads blocked in accept */
static atomic_int threads_alive; /* responder threads not yet finished */
static struct mx_family *mx_inflight;
static const char *socket_group; /* -g: overrides listen_group */

static const char usage_text[] =
	"usage: enrichd [-c FILE] [-t | -p | -V | -h] [-g GROUP]\n"
	"       enrichd [-c FILE] [--state-dir DIR] --history | --rollback[=CHECKSUM]\n"
	"  -c, --config FILE     configuration file (default: $ENRICHD_CONF or " DEFAULT_CONF ")\n"
	"  -t, --test            check the configuration file and exit 0 (valid) or 1\n"
	"  -p, --print-nginx     print the settings the nginx site needs, as shell assignments\n"
	"  -g, --socket-group G  give the socket to group G (overrides listen_group)\n"
	"      --history         list the applied configurations, newest first\n"
	"      --rollback[=SUM]  write the previous applied configuration (or the one\n"
	"                        whose checksum starts with SUM) back to the file;\n"
	"                        reload to apply it\n"
	"      --state-dir DIR   the state directory (default: state_dir of the file)\n"
	"  -V, --version         print the version and exit\n"
	"  -h, --help            this text\n"
	"Without a FastCGI socket on standard input, and with GATEWAY_INTERFACE set,\n"
	"enrichd answers one request as a plain CGI program.\n";

/* One request from accept to finish.  It runs on a continuation
 * (lib/co.h): on the thread that accepted it while its work is quick,
 * on the engine's loop once it waits on a provider.  Whoever holds it
 * last finishes it: the request carries its connection, and the loop's
 * task queue orders the hand-over. */
struct rq {
	struct co_task co;
	struct fcgi_conn fc;
	struct http_req r;
	struct cfg *cfg;          /* the request's own reference */
	struct ev_io client;      /* its FastCGI connection, watched on the loop */
	struct ev_timer linger_t; /* the orderly close's time limit */
	struct ev_task linger_task;
	int linger_fd;            /* the connection while the loop closes it */
	struct rq *next;          /* free list */
};

static pthread_mutex_t rq_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rq *rq_free;

static struct rq *rq_get(void)
{
	struct rq *q;

	pthread_mutex_lock(&rq_lock);
	q = rq_free;
	if (q)
		rq_free = q->next;
	pthread_mutex_unlock(&rq_lock);
	if (q)
		return q;
	q = calloc(1, sizeof *q);
	if (q == NULL)
		return NULL;
	fcgi_init(&q->fc);
	http_req_init(&q->r);
	return q;
}

static void rq_put(struct rq *q)
{
	pthread_mutex_lock(&rq_lock);
	q->next = rq_free;
	rq_free = q;
	pthread_mutex_unlock(&rq_lock);
}

static void rq_body(struct co_task *t)
{
	struct rq *q = t->arg;

	if (q->fc.params_dropped)
		http_error(&q->r, ENR_E_INVALID, "the request's headers are too large", NULL);
	else
		route_dispatch(&q->r);
}

/* ---- the orderly close, on the loop ----------------------------------------
 *
 * A connection ends with an orderly close: its sending side is shut down,
 * then it is read until nginx closes its end (2 s at most), so that
 * nothing nginx still sends meets a closed socket (which would reset the
 * connection under the answer).  That wait is the loop's, not a
 * responder's: the loop shuts the sending side down, reads to the end and
 * closes, and the request goes back to the pool then.
 *
 * Most connections need no wait at all: once the request's input was read
 * to its end (its body and the record that ends it) and nothing else is
 * waiting in the socket, nginx has nothing more to send, a close cannot
 * meet data, and the connection is closed at once where it was finished.
 */
#define LINGER_MS 2000
#define QUIET_READS 4          /* reads of what is left before a close at once */

static atomic_int lingering;      /* connections the loop is closing */

static void linger_done(struct ev_loop *l, struct rq *q)
{
	ev_io_stop(l, &q->client);
	ev_timer_stop(l, &q->linger_t);
	close(q->linger_fd);
	q->linger_fd = -1;
	rq_put(q);
	atomic_fetch_sub(&lingering, 1);
}

static void linger_read(struct ev_loop *l, struct ev_io *w, unsigned events)
{
	struct rq *q = w->arg;
	char trash[1024];
	ssize_t n;

	(void)events;
	while ((n = recv(q->linger_fd, trash, sizeof trash, MSG_DONTWAIT)) > 0)
		;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return; /* more to come, or nginx's close: the next event */
	linger_done(l, q);
}

static void linger_timeout(struct ev_loop *l, struct ev_timer *t)
{
	linger_done(l, t->arg);
}

static void linger_start(struct ev_loop *l, void *arg)
{
	struct rq *q = arg;

	ev_io_init(&q->client, linger_read, q);
	ev_timer_init(&q->linger_t, linger_timeout, q);
	if (ev_stopping(l) || shutdown(q->linger_fd, SHUT_WR) != 0 ||
	    ev_io_start(l, &q->client, q->linger_fd, EV_READ) != ENR_OK ||
	    ev_timer_start(l, &q->linger_t, LINGER_MS) != ENR_OK)
		linger_done(l, q); /* closed at once, as a stopping process does */
}

/* Wait (until the monotonic deadline) for the loop to close what it is
 * closing: a stopping process leaves no connection half-closed. */
static void linger_drain(int64_t deadline_mono_ms)
{
	while (atomic_load(&lingering) > 0 && !util_deadline_passed(deadline_mono_ms))
		util_sleep_ms(5);
}

/* Nothing nginx sent is left unread on fd: the rest read (the body's
 * last, empty record, say) until the socket has no more, or says nginx
 * closed. */
static bool quiet(int fd)
{
	char trash[256];

	for (int i = 0; i < QUIET_READS; i++) {
		ssize_t n = recv(fd, trash, sizeof trash, MSG_DONTWAIT);

		if (n == 0)
			return true;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
	}
	return false;
}

/* After the answer went: the connection and the request go back. */
static void rq_close(struct rq *q, bool consumed)
{
	struct ev_loop *l = co_loop();
	int fd = -1;

	/* A connection nginx keeps for its next request stays with the pooled
	 * request; one with nothing left to read is closed at once; any other
	 * is closed by the loop (there is one while requests are served). */
	if (!q->fc.keep && q->fc.fd >= 0) {
		fd = fcgi_detach(&q->fc);
		if ((consumed && quiet(fd)) || l == NULL) {
			close(fd);
			fd = -1;
			/* Finished on the loop: the client's watch goes with
			 * the descriptor. */
			if (q->client.active)
				ev_io_closed(l, &q->client);
		}
	}
	if (q->client.active)
		ev_io_stop(l, &q->client);
	http_req_reset(&q->r);
	cfg_release(q->cfg);
	q->cfg = NULL;
	log_set_request_id(NULL);
	mx_add(mx_inflight, "", -1);
	if (fd < 0) {
		rq_put(q);
		return;
	}
	q->linger_fd = fd;
	atomic_fetch_add(&lingering, 1);
	ev_post_task(l, &q->linger_task, linger_start, q);
}

static void rq_finish(struct rq *q)
{
	bool consumed = http_input_consumed(&q->r);

	fcgi_finish(&q->fc);
	rq_close(q, consumed);
}

/* nginx closes the FastCGI connection when its client goes away
 * (fastcgi_ignore_client_abort off): the request stops waiting. */
static void rq_client_gone(struct ev_loop *l, struct ev_io *w, unsigned events)
{
	struct rq *q = w->arg;

	(void)events;
	ev_io_stop(l, w);
	log_info("main", "the client went away: request %s ends now", q->r.rid);
	co_cancel(&q->co);
}

static void rq_moved(struct co_task *t)
{
	struct rq *q = t->arg;

	ev_io_init(&q->client, rq_client_gone, q);
	/* Hang-up only: the body was read, but not every record after it
	 * need have been taken from the socket yet. */
	if (ev_io_start(t->loop, &q->client, q->fc.fd, EV_HUP) != ENR_OK)
		log_debug("main", "request %s: its client is not watched", q->r.rid);
}

static void rq_finish_there(void *arg)
{
	rq_finish(arg);
}

/* Finishing writes the rest of the answer.  The loop does it when the
 * socket takes it all at once, which it does unless nginx reads slowly;
 * a write that would wait is a writer thread's job, never the loop's. */
static void rq_ended(struct co_task *t)
{
	struct rq *q = t->arg;
	bool consumed = http_input_consumed(&q->r);

	if (fcgi_finish_now(&q->fc)) {
		rq_close(q, consumed);
	} else {
		ev_io_stop(t->loop, &q->client);
		eng_hand_off(app_engine(), rq_finish_there, q);
	}
}

static void *responder_thread(void *arg)
{
	sigset_t none;
	struct cfg *cfg = NULL;   /* this thread's reference to the current snapshot */
	unsigned gen = 0;

	(void)arg;
	sigemptyset(&none);
	while (!stopping) {
		struct rq *q = rq_get();
		bool moved = false;
		int rc;

		if (q == NULL) {
			log_warn("main", "no memory for a request: accepting again shortly");
			util_sleep_ms(10);
			continue;
		}
		atomic_fetch_add(&threads_idle, 1);
		rc = fcgi_accept(&q->fc, listen_fd);
		atomic_fetch_sub(&threads_idle, 1);
		if (rc != FCGI_REQUEST) {
			int e = errno;

			rq_put(q);
			if (stopping)
				break;
			if (rc == FCGI_FAILED) {
				/* EMFILE and friends: do not spin. */
				log_warn("main", "accept failed: %s", strerror(e));
				util_sleep_ms(10);
			}
			continue;
		}
		mx_add(mx_inflight, "", 1);
		/* A reload publishes a new snapshot; a request started on the old
		 * one finishes on it, the thread's next request takes the new one. */
		if (cfg == NULL || gen != cfg_generation()) {
			gen = cfg_generation();
			cfg_release(cfg);
			cfg = cfg_acquire();
		}
		q->cfg = cfg_share(cfg);
		http_req_begin(&q->r, &q->fc, q->cfg);
		http_take_empty_input(&q->r);
		co_task_init(&q->co, rq_body, rq_ended, q);
		q->co.moved = rq_moved;
		q->co.rid = q->r.rid;
		if (co_start(&q->co, &moved) != ENR_OK) {
			/* No fiber for it: it runs here, waits and all. */
			route_dispatch(&q->r);
		}
		if (!moved)
			rq_finish(q);
	}
	cfg_release(cfg);
	app_thread_exit();
	atomic_fetch_sub(&threads_alive, 1);
	return NULL;
}

static int give_to_group(const char *path, const char *group)
{
	struct group gr, *found = NULL;
	char scratch[4096];

	if (getgrnam_r(group, &gr, scratch, sizeof scratch, &found) != 0 || found == NULL) {
		log_error("main", "socket group %s: no such group", group);
		return -1;
	}
	if (chown(path, (uid_t)-1, gr.gr_gid) != 0) {
		log_error("main", "cannot give %s to group %s: %s (the process must be root or a "
			  "member of the group)", path, group, strerror(errno));
		return -1;
	}
	return 0;
}

/* Bind the unix socket from the configuration, mode 0660, in group
 * `group` when one is given. */
static int open_unix_socket(const char *path, int backlog, const char *group)
{
	struct sockaddr_un sa;
	char tmp[sizeof sa.sun_path];
	int fd;
	mode_t old;

	if (strlen(path) >= sizeof sa.sun_path) {
		log_error("main", "listen path too long: %s", path);
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);

	/* Refuse to steal the socket of a responder that is still running. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		close(fd);
		log_error("main", "another process is listening on %s", path);
		return -1;
	}
	close(fd);
	unlink(path);

	/* Bind under a temporary name and rename it into place once its mode and
	 * group are set and it listens: whoever sees the path can connect. */
	if (snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid()) >= (int)sizeof tmp) {
		log_error("main", "listen path too long: %s", path);
		return -1;
	}
	memcpy(sa.sun_path, tmp, strlen(tmp) + 1);
	unlink(tmp);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		umask(old);
		log_error("main", "cannot bind %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	if (chmod(tmp, 0660) != 0 || (group && group[0] && give_to_group(tmp, group) != 0)) {
		log_error("main", "cannot set the mode or group of %s", path);
		goto fail;
	}
	if (listen(fd, backlog) != 0) {
		log_error("main", "cannot listen on %s: %s", path, strerror(errno));
		goto fail;
	}
	if (rename(tmp, path) != 0) {
		log_error("main", "cannot put the socket at %s: %s", path, strerror(errno));
		goto fail;
	}
	memcpy(listen_path, path, strlen(path) + 1);
	return fd;
fail:
	close(fd);
	unlink(tmp);
	return -1;
}

/* An inherited listening socket: systemd socket activation (fd 3) or a
 * spawner that put it on standard input (spawn-fcgi). */
static int inherited_socket(void)
{
	const char *fds = getenv("LISTEN_FDS");
	const char *pid = getenv("LISTEN_PID");
	int64_t n, p;

	if (fds && pid && util_parse_i64(fds, 1, 64, &n) == ENR_OK &&
	    util_parse_i64(pid, 1, INT32_MAX, &p) == ENR_OK && p == (int64_t)getpid())
		return 3;
	if (fcgi_is_listener(0))
		return 0;
	return -1;
}

/* Wake threads blocked in accept so they see `stopping`: a connection
 * that closes at once, without a request. */
static void wake_acceptors(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int n = atomic_load(&threads_idle);

	if (getsockname(listen_fd, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_UNIX && listen_path[0]) {
		/* getsockname names the path it was bound under, since renamed */
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		memcpy(un->sun_path, listen_path, strlen(listen_path) + 1);
		len = (socklen_t)sizeof *un;
	}
	for (int i = 0; i < n; i++) {
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;

			if (in->sin_addr.s_addr == 0)
				in->sin_addr.s_addr = htonl(0x7f000001);
		}
		connect(fd, (struct sockaddr *)&ss, len);
		close(fd);
	}
}

/* Single-quote v for a POSIX shell. */
static void print_shell(const char *name, const char *v)
{
	printf("%s='", name);
	for (; *v; v++) {
		if (*v == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*v);
	}
	puts("'");
}

static int print_nginx_env(const struct cfg *cfg)
{
	struct buf origins;

	buf_init(&origins, 0);
	for (size_t i = 0; i < cfg->cors_origins.n; i++) {
		if (buf_printf(&origins, "%s%s", i ? " " : "", cfg->cors_origins.v[i]) != ENR_OK) {
			fprintf(stderr, "enrichd: out of memory\n");
			buf_release(&origins);
			return 1;
		}
	}
	/* Paths in a loaded configuration are absolute already. */
	print_shell("ENRICHD_LISTEN", cfg->listen);
	print_shell("ENRICHD_LISTEN_GROUP", cfg->listen_group);
	printf("ENRICHD_BODY_MAX_BYTES=%lld\n", (long long)cfg->limits.body_max_bytes);
	print_shell("ENRICHD_SERVER_NAME", cfg->server_name);
	print_shell("ENRICHD_CORS_ORIGINS", buf_cstr(&origins));
	print_shell("ENRICHD_STORE", cfg->store);
	printf("ENRICHD_THREADS=%d\n", cfg->threads);
	print_shell("ENRICHD_STATE_DIR", cfg->state_dir);
	print_shell("ENRICHD_LOG_FILE", cfg->log_file);
	buf_release(&origins);
	return 0;
}

/* The state directory for --history and --rollback: given, or read from
 * the file (without its secrets, which an operator's shell may lack).
 * The file may be the broken one being rolled back, hence --state-dir. */
static int state_dir_of(const char *path, const char *given, char *out, size_t outlen)
{
	char err[LIM_CONFIG_ERR_MAX];
	struct cfg *c = NULL;

	if (given) {
		util_strlcpy(out, given, outlen);
		return 0;
	}
	if (cfg_load_flags(path, CFG_LOAD_NO_SECRETS, &c, err, sizeof err) != ENR_OK) {
		fprintf(stderr, "enrichd: %s\nenrichd: give the state directory with --state-dir DIR\n",
			err);
		return -1;
	}
	util_strlcpy(out, c->state_dir, outlen);
	cfg_release(c);
	return 0;
}

static int show_history(const char *path, const char *dir)
{
	struct ch_entry e[LIM_CONF_HISTORY_MAX];
	char sha[CH_SHA_HEX], when[21];
	size_t n = 0;
	bool have = ch_file_sha(path, sha) == ENR_OK;

	if (ch_list(dir, e, LIM_CONF_HISTORY_MAX, &n) != ENR_OK) {
		fprintf(stderr, "enrichd: cannot read the history in %s/history\n", dir);
		return 1;
	}
	if (n == 0) {
		printf("no configuration has been applied yet (history in %s/history)\n", dir);
		return 0;
	}
	printf("%-20s  %-14s  %s\n", "APPLIED (UTC)", "SHA256", "");
	for (size_t i = 0; i < n; i++) {
		util_fmt_time_s(e[i].time_s, when);
		printf("%-20s  %.14s  %s%s\n", when, e[i].sha, i == 0 ? "current" : "",
		       have && strcmp(e[i].sha, sha) == 0 ? (i == 0 ? ", = file" : "= file") : "");
	}
	if (have && strcmp(e[0].sha, sha) != 0)
		printf("%s (sha256 %.14s) has changes that are not applied\n", path, sha);
	return 0;
}

static int do_rollback(const char *path, const char *dir, const char *to)
{
	struct ch_rollback rb;
	char when[21];
	enum enr_err rc = ch_rollback(dir, path, to, util_now_ms() / 1000, &rb);

	switch (rc) {
	case ENR_OK:
		break;
	case ENR_E_NOT_FOUND:
		fprintf(stderr, "enrichd: %s\n", to ? "no applied configuration has that checksum"
			: "no earlier applied configuration to go back to (see --history)");
		return 1;
	case ENR_E_INVALID:
		fprintf(stderr, "enrichd: %s: give at least 6 hex digits of one checksum\n", to);
		return 1;
	default:
		fprintf(stderr, "enrichd: rollback failed: %s\n", enr_strerror(rc));
		return 1;
	}
	util_fmt_time_s(rb.to.time_s, when);
	if (rb.kept_rejected)
		printf("kept the unapplied %s as %s\n", path, rb.rejected);
	printf("restored %s from the configuration applied at %s (sha256 %.14s)\n", path, when,
	       rb.to.sha);
	return 0;
}

static int run_cgi(struct cfg *cfg)
{
	struct http_req r;

	http_req_init(&r);
	http_req_begin(&r, NULL, cfg);
	route_dispatch(&r);
	fflush(stdout);
	http_req_release(&r);
	return 0;
}

static int open_log(const struct cfg *cfg)
{
	int fd;

	if (cfg->log_file[0] == '\0')
		return 0;
	fd = open(cfg->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		fprintf(stderr, "enrichd: cannot open log file %s: %s\n", cfg->log_file,
			strerror(errno));
		return -1;
	}
	log_set_fd(fd);
	return 0;
}

enum { OPT_HISTORY = 256, OPT_ROLLBACK, OPT_STATE_DIR };

/* What the command line asks for besides the configuration file. */
struct opts {
	const char *state_dir, *rollback_to;
	bool check_only, print_env, history, rollback;
};

static enum enr_err option(void *arg, int opt, const char *val, char *why, size_t whylen)
{
	struct opts *o = arg;

	(void)why;
	(void)whylen;
	switch (opt) {
	case 'p': o->print_env = true; o->check_only = true; break;
	case 't': o->check_only = true; break;
	case 'g': socket_group = val; break;
	case OPT_HISTORY: o->history = true; break;
	case OPT_ROLLBACK: o->rollback = true; o->rollback_to = val; break;
	case OPT_STATE_DIR: o->state_dir = val; break;
	default: return ENR_E_INVALID;
	}
	return ENR_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "test", no_argument, NULL, 't' },
		{ "print-nginx", no_argument, NULL, 'p' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "history", no_argument, NULL, OPT_HISTORY },
		{ "rollback", optional_argument, NULL, OPT_ROLLBACK },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { NULL, NULL, false, false, false, false };
	const struct cli_spec spec = { "enrichd", usage_text, "tpg:", longopts, false, option, &o };
	struct cli cl;
	const char *path;
	bool check_only, print_env;
	struct cfg *cfg = NULL;
	char err[LIM_CONFIG_ERR_MAX];
	pthread_t *tids = NULL;
	pthread_attr_t attr;
	sigset_t set;
	int nthreads, inherited, sig;
	int64_t deadline;

	switch (cli_parse(&spec, argc, argv, &cl)) {
	case CLI_RUN: break;
	case CLI_EXIT_OK: fputs(cl.text, stdout); return 0;
	default: fprintf(stderr, "%s%s", cl.error, cl.text); return 2;
	}
	path = cl.config;
	check_only = o.check_only;
	print_env = o.print_env;
	if (o.history || o.rollback) {
		char dir[4096];

		if (state_dir_of(path, o.state_dir, dir, sizeof dir) != 0)
			return 1;
		return o.history ? show_history(path, dir) : do_rollback(path, dir, o.rollback_to);
	}

	if (cfg_load(path, &cfg, err, sizeof err) != ENR_OK) {
		fprintf(stderr, "enrichd: %s\n", err);
		if (check_only)
			return 1;
		/* A CGI request still deserves a JSON answer. */
		if (getenv("GATEWAY_INTERFACE") && !fcgi_is_listener(0)) {
			printf("Status: 500 Internal Server Error\r\nContent-Type: application/json\r\n\r\n"
			       "{\"error\":{\"code\":\"internal\",\"message\":\"configuration is not valid\"}}\n");
		}
		return 1;
	}
	if (print_env) {
		int rc = print_nginx_env(cfg);

		cfg_release(cfg);
		return rc;
	}
	if (check_only) {
		printf("enrichd: %s: configuration ok\n", path);
		cfg_release(cfg);
		return 0;
	}
	log_set_level(cfg->log_level);
	log_set_format(cfg->log_format);
	if (open_log(cfg) != 0) {
		cfg_release(cfg);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Large allocations made and freed per request (the waterfall's plan,
	 * libcurl's buffers) make glibc consolidate the heap every time while
	 * fastbins hold small chunks (measured when libfcgi's stream buffers
	 * were among them: 6% of the responder's time).  tcache still serves
	 * the small allocations. */
	mallopt(M_MXFAST, 0);
	route_init();
	mx_process_init("enrichd", ENRICHD_VERSION);
	mx_inflight = mx_gauge("enrichd_requests_in_flight", "Requests being answered now.");

	inherited = inherited_socket();
	if (inherited < 0 && getenv("GATEWAY_INTERFACE")) {
		int rc;

		app_cgi_mode();
		if (app_init(cfg, path) != ENR_OK) {
			printf("Status: 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n"
			       "{\"error\":{\"code\":\"unavailable\",\"message\":\"the store is unavailable\"}}\n");
			cfg_release(cfg);
			return 0;
		}
		cfg_publish(cfg);
		cfg = cfg_acquire();
		rc = run_cgi(cfg);
		cfg_release(cfg);
		app_shutdown();
		cfg_publish(NULL);
		return rc;
	}

	listen_fd = inherited >= 0 ? inherited : open_unix_socket(cfg->listen, cfg->listen_backlog,
					      socket_group ? socket_group : cfg->listen_group);
	if (listen_fd < 0) {
		cfg_release(cfg);
		return 1;
	}
	/* Signals go to the main thread only: blocked before any thread (the
	 * engine's, the responders) starts. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (app_init(cfg, path) != ENR_OK) {
		log_error("main", "start-up failed");
		if (listen_path[0])
			unlink(listen_path);
		cfg_release(cfg);
		return 1;
	}
	nthreads = cfg->threads;
	cfg_publish(cfg);
	cfg = NULL;


	tids = calloc((size_t)nthreads, sizeof *tids);
	if (tids == NULL)
		return 1;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, LIM_RESPONDER_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&tids[i], &attr, responder_thread, NULL) != 0) {
			log_error("main", "cannot start thread %d of %d", i + 1, nthreads);
			return 1;
		}
		atomic_fetch_add(&threads_alive, 1);
	}
	pthread_attr_destroy(&attr);
	log_notice("main", "enrichd %s serving on %s with %d threads (pid %d)", ENRICHD_VERSION,
		 listen_path[0] ? listen_path : "an inherited socket", nthreads, (int)getpid());

	for (;;) {
		/* Wake at least once a second for periodic work. */
		sig = sigtimedwait(&set, NULL, &(struct timespec){ 1, 0 });
		if (sig < 0) {
			app_tick();
			continue;
		}
		if (sig == SIGHUP) {
			app_reload(path);
			continue;
		}
		break;
	}

	log_notice("main", "stopping on signal %d: finishing requests in flight", sig);
	atomic_store(&stopping, true);
	deadline = util_deadline_in(STOP_GRACE_MS);
	while (atomic_load(&threads_alive) > 0 && !util_deadline_passed(deadline)) {
		wake_acceptors();
		util_sleep_ms(20);
	}
	if (listen_path[0])
		unlink(listen_path);
	/* Requests waiting on providers finish on the loop meanwhile. */
	if (!app_drain(deadline))
		log_warn("main", "%d requests still waiting after the grace period", co_in_flight());
	linger_drain(util_deadline_in(LINGER_MS + 500));
	if (atomic_load(&threads_alive) > 0)
		log_warn("main", "%d threads still busy after the grace period",
			 atomic_load(&threads_alive));
	else if (co_in_flight() == 0)
		app_shutdown();
	log_notice("main", "stopped");
	free(tids);
	return 0;
}
