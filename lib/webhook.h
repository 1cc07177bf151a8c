/*
 * webhook.h - signed job webhooks to client-supplied URLs.
 *
 * Prefix: wh_.  A client names a URL when it submits a job; enrichd POSTs
 * a JSON body there when the job ends.  Because the URL comes from a
 * client, it is an SSRF vector, so it is checked twice:
 *
 *   - at submission, wh_check_url() checks its syntax and refuses IP
 *     literals in loopback, private, link-local and other non-public
 *     ranges (and "localhost");
 *   - at delivery, wh_post() resolves the host with wh_resolve(), refuses
 *     the URL when any address is non-public, pins libcurl to exactly the
 *     addresses it checked (so DNS cannot change between the check and the
 *     connect), and checks every address again as libcurl opens a socket.
 *
 * cfg->webhooks.allow_private lifts the address rules (tests, closed
 * networks) and also admits plain http://.  Nothing here follows redirects.
 * The body is signed with HMAC-SHA256 under cfg->webhooks.secret.
 *
 * Nothing allocates memory the caller must free; every function is
 * thread-safe (wh_post uses its own libcurl handle per call).  Reason texts
 * written to `why` are short English phrases for logs and API errors; they
 * never contain the secret.
 */
#ifndef ENR_WEBHOOK_H
#define ENR_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct cfg;

/* Size of a signature: "sha256=" + 64 hex digits + NUL. */
#define WH_SIG_LEN 72

/* Size of the address list wh_resolve() writes (LIM_WH_ADDRS_MAX addresses
 * of at most 45 characters, brackets and commas). */
#define WH_ADDRS_LEN 512

/* Submission-time check of a client-supplied URL; no I/O.
 *
 * Accepted: https://host[:port][/path][?query], at most LIM_WH_URL_MAX
 * bytes of printable ASCII, the scheme in any case, the path and query
 * in RFC 3986 characters with well-formed %HH escapes.  http:// only when
 * allow_private.  The host is a DNS name (ASCII letters, digits, hyphens;
 * labels of 1..63; no trailing dot; IDNs in their xn-- form), a
 * dotted-quad decimal IPv4 address, or a bracketed IPv6 address without a
 * zone.  Refused always: userinfo, a fragment, a backslash, an empty or
 * zero port, and any numeric host that is not plain dotted-quad decimal
 * ("2130706433", "0x7f.1", "017700000001", "127.1", "010.0.0.1"): the C
 * library, libcurl and browsers each read those as IPv4 addresses by
 * rules of their own (octal, hex, fewer than four parts), a check that
 * reimplemented the rules could disagree with the code that connects, and
 * no real receiver needs them.  A name whose last label is numeric
 * ("a.123", "a.0x1") counts as a numeric host.  Refused unless
 * allow_private: IP literals for which wh_addr_refused() gives a reason
 * (IPv4-mapped and other embedded IPv4 forms included), "localhost" and
 * any "*.localhost".
 *
 * libcurl's URL parser must read the same scheme, host and port, or the
 * URL is refused as ambiguous.
 *
 * ENR_OK, or ENR_E_INVALID with a reason in why (why may be NULL);
 * ENR_E_NOMEM, ENR_E_INTERNAL (libcurl failed to initialise). */
ENR_MUST_CHECK enum enr_err wh_check_url(const char *url, bool allow_private, char *why, size_t whylen);

/* Why an address may not be a webhook target: a static phrase
 * ("loopback", "private", "link-local", ...) or NULL for a public
 * address.  Refused: IPv4 0/8, 10/8, 100.64/10, 127/8, 169.254/16,
 * 172.16/12, 192.0.0/24, 192.0.2/24, 192.168/16, 198.18/15,
 * 198.51.100/24, 203.0.113/24, 224/4, 240/4 (broadcast included); IPv6
 * everything outside global unicast 2000::/3 (::, ::1, fc00::/7,
 * fe80::/10, fec0::/10, ff00::/8, 100::/64, ...) and in it 2001::/32
 * (Teredo), 2001:db8::/32 and 3fff::/20, except the embedded IPv4 forms
 * below.  af is AF_INET (addr: struct in_addr) or AF_INET6 (struct
 * in6_addr); any other family is refused.  IPv6 forms that embed an IPv4
 * address (IPv4-mapped, IPv4-translated, NAT64 64:ff9b::/96, 6to4) answer
 * for the embedded address. */
const char *wh_addr_refused(int af, const void *addr);

/* Check url as wh_check_url() does, then resolve its host (getaddrinfo;
 * IP literals are taken as they are) and refuse it when any address is
 * refused, unless allow_private.  On ENR_OK, addrs (addrslen >=
 * WH_ADDRS_LEN) gets the distinct addresses, at most LIM_WH_ADDRS_MAX, in
 * the resolver's order as libcurl's CURLOPT_RESOLVE expects them:
 * comma-separated, IPv6 in brackets ("93.184.215.14,[2606:2800::1]").
 *
 * ENR_E_INVALID (URL or an address refused), ENR_E_NOT_FOUND (the name
 * does not exist), ENR_E_UNAVAILABLE (the resolver failed; try later),
 * ENR_E_NOMEM, ENR_E_INTERNAL (addrslen too small); why gets the reason.
 * Blocks for as long as the resolver takes. */
ENR_MUST_CHECK enum enr_err wh_resolve(const char *url, bool allow_private, char *addrs, size_t addrslen,
			char *why, size_t whylen);

/* out = "sha256=" + lower-case hex of HMAC-SHA256(key = secret, data =
 * body[0..len)), NUL-terminated.  A receiver recomputes it over the raw
 * request body and compares in constant time.  secret NULL means "". */
void wh_sign(const char *secret, const char *body, size_t len, char out[WH_SIG_LEN]);

/* One delivery attempt: POST body (a NUL-terminated JSON text) to url.
 *
 * The URL is checked and resolved with wh_resolve() under
 * cfg->webhooks.allow_private; libcurl is pinned to the checked addresses,
 * and no socket is opened to a refused address whatever happens.  Headers:
 * Content-Type: application/json, User-Agent: enrichd-webhook,
 * X-Enrichd-Event: event, X-Enrichd-Delivery: 32 random hex digits (new
 * for every attempt), and X-Enrichd-Signature: wh_sign() when
 * cfg->webhooks.secret is not empty.  HTTPS only (http:// as well under
 * allow_private), certificates verified, no proxy, no redirects, a total
 * timeout of cfg->webhooks.timeout_ms; the answer's body is read up to
 * LIM_WH_RESPONSE_MAX bytes and discarded.
 *
 * event: 1..LIM_WH_EVENT_MAX bytes of [a-z0-9._-] ("job.completed").
 * *status gets the receiver's HTTP status, or 0 when none came; it is
 * written on every return, as it matters most on failures.
 *
 * ENR_OK: a 2xx answer.  ENR_E_INVALID: the URL, an address, the event or
 * an argument is refused; permanent, do not retry.  Worth a retry (see
 * wh_backoff_ms): ENR_E_UPSTREAM (any other status, 3xx included, or a
 * transport failure), ENR_E_TIMEOUT, ENR_E_NOT_FOUND and
 * ENR_E_UNAVAILABLE (resolution).  ENR_E_NOMEM, ENR_E_INTERNAL.  why gets
 * a reason on every failure.  Thread-safe; blocks up to the timeout plus
 * the resolver's time. */
ENR_MUST_CHECK enum enr_err wh_post(const struct cfg *cfg, const char *url, const char *body, const char *event,
		     int *status, char *why, size_t whylen);

/* Delay before retry number `attempt` (1 = the first retry): 1 s, 2 s,
 * 4 s, ... capped at LIM_WH_BACKOFF_MAX_MS, plus jitter * 25% of that
 * (jitter: a random draw in [0,1); clamped to [0,1], NaN counts as 0).  attempt < 1 counts as
 * 1.  Pure. */
int64_t wh_backoff_ms(int attempt, double jitter);

#endif
