/*
 * webhook.c - signed job webhooks to client-supplied URLs (lib/webhook.h).
 *
 * Prefix: wh_.  The URL is parsed here, strictly, into scheme, host, port
 * and the rest; libcurl's own parser must then agree on the scheme, host
 * and port, so the host that was vetted is the host libcurl would use.
 * Delivery hands libcurl a URL rebuilt from the parsed parts (host in
 * lower case) and a CURLOPT_RESOLVE entry for exactly that host, so the
 * pinned addresses are the only ones it can reach; an open-socket callback
 * checks each address once more as the last word.
 *
 * Address ranges come from the IANA special-purpose address registries
 * (RFC 6890 and its updates): the private, shared, loopback, link-local,
 * multicast and reserved blocks, the documentation and benchmarking
 * blocks, and IPv6 forms that carry an IPv4 address answer for that
 * address.
 */
#include "webhook.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ascii.h"
#include "buf.h"
#include "config.h"
#include "limits.h"
#include "pct.h"
#include "upstream.h"
#include "util.h"

#define BACKOFF_BASE_MS 1000
#define DELIVERY_ID_BYTES 16
#define HOST_TEXT_MAX 256       /* a DNS name (253) or "[" IPv6 "]" (47) */
#define V6_TEXT_MAX 45          /* longest IPv6 text, IPv4 tail included */

_Static_assert(LIM_WH_ADDRS_MAX * (INET6_ADDRSTRLEN + 3) <= WH_ADDRS_LEN,
	       "WH_ADDRS_LEN holds LIM_WH_ADDRS_MAX bracketed addresses and commas");

enum host_kind { HOST_NAME, HOST_V4, HOST_V6 };

/* A URL taken apart.  rest is borrowed from the string parsed. */
struct url_parts {
	bool https;
	bool port_given;
	long port;                    /* explicit, or the scheme's default */
	enum host_kind kind;
	char host[HOST_TEXT_MAX];     /* lower case; an IPv6 literal keeps its brackets */
	unsigned char addr[16];       /* a literal's address: 4 or 16 bytes */
	const char *rest;             /* path and query, possibly empty */
};

static void say(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* ---- address ranges ------------------------------------------------------ */

static const char *v4_refused(const unsigned char b[4])
{
	uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];

	/* 0/8 is "this network": connecting to 0.0.0.0 reaches this host. */
	if ((a & 0xff000000u) == 0x00000000u)
		return "unspecified";
	if ((a & 0xff000000u) == 0x0a000000u || (a & 0xfff00000u) == 0xac100000u ||
	    (a & 0xffff0000u) == 0xc0a80000u)
		return "private";
	if ((a & 0xffc00000u) == 0x64400000u)
		return "shared (CGNAT)";
	if ((a & 0xff000000u) == 0x7f000000u)
		return "loopback";
	if ((a & 0xffff0000u) == 0xa9fe0000u)
		return "link-local";
	if ((a & 0xffffff00u) == 0xc0000000u)
		return "reserved";
	if ((a & 0xffffff00u) == 0xc0000200u || (a & 0xffffff00u) == 0xc6336400u ||
	    (a & 0xffffff00u) == 0xcb007100u)
		return "documentation";
	if ((a & 0xfffe0000u) == 0xc6120000u)
		return "benchmarking";
	if ((a & 0xf0000000u) == 0xe0000000u)
		return "multicast";
	if (a == 0xffffffffu)
		return "broadcast";
	if ((a & 0xf0000000u) == 0xf0000000u)
		return "reserved";
	return NULL;
}

static bool all_zero(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i])
			return false;
	}
	return true;
}

static const char *v6_refused(const unsigned char b[16])
{
	static const unsigned char nat64[4] = { 0x00, 0x64, 0xff, 0x9b };

	if (all_zero(b, 16))
		return "unspecified";
	if (all_zero(b, 15) && b[15] == 1)
		return "loopback";
	/* ::ffff:0:0/96 IPv4-mapped (RFC 4291 2.5.5.2) */
	if (all_zero(b, 10) && b[10] == 0xff && b[11] == 0xff)
		return v4_refused(b + 12);
	/* ::ffff:0:0:0/96 IPv4-translated (RFC 2765 2.1) */
	if (all_zero(b, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0)
		return v4_refused(b + 12);
	/* ::/96 IPv4-compatible, deprecated by RFC 4291 2.5.5.1 */
	if (all_zero(b, 12))
		return "reserved (IPv4-compatible)";
	/* 64:ff9b::/96 well-known NAT64 prefix (RFC 6052): a translator
	 * would carry the connection to the embedded IPv4 address. */
	if (memcmp(b, nat64, 4) == 0 && all_zero(b + 4, 8))
		return v4_refused(b + 12);
	/* 64:ff9b:1::/48 local-use NAT64 (RFC 8215) */
	if (memcmp(b, nat64, 4) == 0 && b[4] == 0 && b[5] == 1)
		return "private (local-use NAT64)";
	if ((b[0] & 0xfe) == 0xfc)
		return "unique-local";
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return "link-local";
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
		return "site-local";
	if (b[0] == 0xff)
		return "multicast";
	/* Global unicast is 2000::/3 (RFC 4291 2.4); everything else left is
	 * unassigned or special (100::/64 discard-only, for one). */
	if ((b[0] & 0xe0) != 0x20)
		return "reserved";
	/* 2001::/32 Teredo (RFC 4380): the far end is a tunnelled IPv4 host. */
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0)
		return "reserved (Teredo)";
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
		return "documentation";
	/* 2002::/16 6to4 (RFC 3056): bits 16..47 are an IPv4 address. */
	if (b[0] == 0x20 && b[1] == 0x02)
		return v4_refused(b + 2);
	/* 3fff::/20 documentation (RFC 9637) */
	if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0)
		return "documentation";
	return NULL;
}

const char *wh_addr_refused(int af, const void *addr)
{
	if (addr == NULL)
		return "unknown";
	if (af == AF_INET)
		return v4_refused(addr);
	if (af == AF_INET6)
		return v6_refused(addr);
	return "unknown family";
}

/* ---- URL parsing --------------------------------------------------------- */

/* A label the C library would read as a number: digits, or 0x and hex. */
static bool numeric_label(const char *s, size_t n)
{
	size_t i = 0;

	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (i = 2; i < n && ascii_is_xdigit(s[i]); i++)
			;
		return i == n;
	}
	for (; i < n && ascii_is_digit(s[i]); i++)
		;
	return n > 0 && i == n;
}

/* Exactly four decimal parts 0..255 without leading zeros: the one IPv4
 * spelling that every reader agrees on (inet_aton reads "010" as octal). */
static bool dotted_quad(const char *s, size_t n, unsigned char out[4])
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		size_t start = i;
		unsigned v = 0;

		if (part > 0) {
			if (i >= n || s[i] != '.')
				return false;
			start = ++i;
		}
		while (i < n && ascii_is_digit(s[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
			return false;
		out[part] = (unsigned char)v;
	}
	return i == n;
}

/* An RFC 1123 host name in ASCII: labels of 1..63 letters, digits and
 * hyphens, not starting or ending with a hyphen, no trailing dot. */
static bool name_ok(const char *s, size_t n, char *why, size_t whylen)
{
	size_t label = 0;

	if (n > LIM_REC_DOMAIN_MAX) {
		say(why, whylen, "host name longer than %u bytes", LIM_REC_DOMAIN_MAX);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-') {
				say(why, whylen, "host has an empty label or one ending in a hyphen");
				return false;
			}
			label = 0;
			continue;
		}
		if (!ascii_is_alpha(c) && !ascii_is_digit(c) && c != '-') {
			say(why, whylen, "host has characters other than letters, digits, "
					 "hyphens and dots");
			return false;
		}
		if ((label == 0 && c == '-') || ++label > LIM_REC_LABEL_MAX) {
			say(why, whylen, "host label starts with a hyphen or is longer than %u",
			    LIM_REC_LABEL_MAX);
			return false;
		}
	}
	if (label == 0) {
		say(why, whylen, "host may not be empty or end with a dot");
		return false;
	}
	if (s[n - 1] == '-') {
		say(why, whylen, "host has an empty label or one ending in a hyphen");
		return false;
	}
	return true;
}

/* Path and query: RFC 3986 pchar, "/" and "?", with %HH escapes only. */
static bool rest_ok(const char *s)
{
	for (; *s; s++) {
		if (*s == '%') {
			if (!pct_is_escape(s))
				return false;
			s += 2;
		} else if (!ascii_is_alpha(*s) && !ascii_is_digit(*s) &&
			   strchr("-._~!$&'()*+,;=:@/?", *s) == NULL) {
			return false;
		}
	}
	return true;
}

static bool is_localhost(const char *host)
{
	size_t n = strlen(host);

	/* RFC 6761 6.3: localhost and every name under it are this host. */
	return strcmp(host, "localhost") == 0 ||
	       (n > 10 && strcmp(host + n - 10, ".localhost") == 0);
}

/* libcurl must read the same scheme, host and port as we did; otherwise a
 * URL could be vetted for one host and fetched from another. */
static enum enr_err curl_agrees(const char *url, const struct url_parts *u, char *why,
				size_t whylen)
{
	CURLU *h = NULL;
	char *scheme = NULL, *host = NULL, *port = NULL;
	enum enr_err rc = ENR_E_INVALID;
	int64_t p;
	bool same;

	if (up_global_init() != ENR_OK) {
		say(why, whylen, "libcurl failed to initialise");
		return ENR_E_INTERNAL;
	}
	h = curl_url();
	if (h == NULL) {
		say(why, whylen, "out of memory");
		return ENR_E_NOMEM;
	}
	if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	same = strcasecmp(scheme, u->https ? "https" : "http") == 0 &&
	       util_parse_i64(port, 1, 65535, &p) == ENR_OK && p == u->port;
	if (same && u->kind == HOST_V6) {
		/* libcurl may print an IPv6 address in another form. */
		size_t n = strlen(host);
		char inner[V6_TEXT_MAX + 1];
		unsigned char a[16];

		same = n >= 3 && n - 2 <= V6_TEXT_MAX && host[0] == '[' && host[n - 1] == ']';
		if (same) {
			memcpy(inner, host + 1, n - 2);
			inner[n - 2] = '\0';
			same = inet_pton(AF_INET6, inner, a) == 1 && memcmp(a, u->addr, 16) == 0;
		}
	} else if (same) {
		same = strcasecmp(host, u->host) == 0;
	}
	if (same)
		rc = ENR_OK;
out:
	if (rc)
		say(why, whylen, "URL is ambiguous");
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(h);
	return rc;
}

static enum enr_err parse_host(const char *p, size_t n, bool bracketed, struct url_parts *u,
			       char *why, size_t whylen)
{
	if (bracketed) {
		char inner[V6_TEXT_MAX + 1];

		/* Hex, colons and an IPv4 tail; a zone ("%25eth0") never. */
		if (n == 0 || n > V6_TEXT_MAX)
			goto bad_v6;
		for (size_t i = 0; i < n; i++) {
			if (!ascii_is_xdigit(p[i]) && p[i] != ':' && p[i] != '.')
				goto bad_v6;
		}
		memcpy(inner, p, n);
		inner[n] = '\0';
		if (inet_pton(AF_INET6, inner, u->addr) != 1)
			goto bad_v6;
		u->kind = HOST_V6;
		u->host[0] = '[';
		for (size_t i = 0; i < n; i++)
			u->host[i + 1] = ascii_to_lower(p[i]);
		u->host[n + 1] = ']';
		u->host[n + 2] = '\0';
		return ENR_OK;
	bad_v6:
		say(why, whylen, "bad IPv6 literal (zone ids are not allowed)");
		return ENR_E_INVALID;
	}

	if (n == 0) {
		say(why, whylen, "no host");
		return ENR_E_INVALID;
	}
	if (!name_ok(p, n, why, whylen))
		return ENR_E_INVALID;
	for (size_t i = 0; i < n; i++)
		u->host[i] = ascii_to_lower(p[i]);
	u->host[n] = '\0';
	/* A name whose last label is numeric is an IPv4 address to every
	 * reader (WHATWG URL "ends in a number"), in forms they disagree on;
	 * only the dotted-quad decimal form is taken. */
	{
		const char *last = memrchr(p, '.', n);
		size_t off = last ? (size_t)(last - p) + 1 : 0;

		if (!numeric_label(p + off, n - off)) {
			u->kind = HOST_NAME;
			return ENR_OK;
		}
	}
	if (!dotted_quad(p, n, u->addr)) {
		say(why, whylen, "a numeric host must be a dotted-quad decimal IPv4 address");
		return ENR_E_INVALID;
	}
	u->kind = HOST_V4;
	return ENR_OK;
}

/* Take url apart and apply every check of wh_check_url; *u is written on
 * ENR_OK only. */
static enum enr_err parse_url(const char *url, bool allow_private, struct url_parts *u,
			      char *why, size_t whylen)
{
	struct url_parts t;
	const char *p, *end, *hostend;
	size_t len;
	enum enr_err rc;

	if (url == NULL || url[0] == '\0') {
		say(why, whylen, "no URL");
		return ENR_E_INVALID;
	}
	len = strnlen(url, LIM_WH_URL_MAX + 1);
	if (len > LIM_WH_URL_MAX) {
		say(why, whylen, "URL longer than %u bytes", LIM_WH_URL_MAX);
		return ENR_E_INVALID;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];

		if (c <= 0x20 || c >= 0x7f) {
			say(why, whylen, "URL has a space, a control character or a non-ASCII byte");
			return ENR_E_INVALID;
		}
		if (c == '#') {
			say(why, whylen, "URL may not have a fragment");
			return ENR_E_INVALID;
		}
		/* libcurl and browsers read a backslash as a slash, or not. */
		if (c == '\\') {
			say(why, whylen, "URL may not have a backslash");
			return ENR_E_INVALID;
		}
	}

	memset(&t, 0, sizeof t);
	if (strncasecmp(url, "https://", 8) == 0) {
		t.https = true;
		t.port = 443;
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		if (!allow_private) {
			say(why, whylen, "URL must use https://");
			return ENR_E_INVALID;
		}
		t.port = 80;
		p = url + 7;
	} else {
		say(why, whylen, "URL must start with https://");
		return ENR_E_INVALID;
	}

	end = p + strcspn(p, "/?");
	if (memchr(p, '@', (size_t)(end - p)) != NULL) {
		say(why, whylen, "URL may not have a user name or password");
		return ENR_E_INVALID;
	}
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));

		if (close == NULL) {
			say(why, whylen, "bad IPv6 literal (zone ids are not allowed)");
			return ENR_E_INVALID;
		}
		rc = parse_host(p + 1, (size_t)(close - p - 1), true, &t, why, whylen);
		hostend = close + 1;
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));

		hostend = colon ? colon : end;
		rc = parse_host(p, (size_t)(hostend - p), false, &t, why, whylen);
	}
	if (rc)
		return rc;

	if (hostend < end) {
		const char *d = hostend + 1;
		size_t nd = (size_t)(end - d);
		int64_t port;

		if (*hostend != ':' || nd == 0 || nd > 5) {
			say(why, whylen, "bad port");
			return ENR_E_INVALID;
		}
		for (size_t i = 0; i < nd; i++) {
			if (!ascii_is_digit(d[i])) {
				say(why, whylen, "bad port");
				return ENR_E_INVALID;
			}
		}
		if (util_parse_i64n(d, nd, 1, 65535, &port) != ENR_OK) {
			say(why, whylen, "port outside 1..65535");
			return ENR_E_INVALID;
		}
		t.port = (long)port;
		t.port_given = true;
	}

	t.rest = end;
	if (!rest_ok(t.rest)) {
		say(why, whylen, "URL path or query has a character that must be percent-encoded");
		return ENR_E_INVALID;
	}

	if (!allow_private) {
		const char *reason = NULL;

		if (t.kind == HOST_V4)
			reason = v4_refused(t.addr);
		else if (t.kind == HOST_V6)
			reason = v6_refused(t.addr);
		else if (is_localhost(t.host))
			reason = "loopback";
		if (reason) {
			say(why, whylen, "host is a %s address", reason);
			return ENR_E_INVALID;
		}
	}

	rc = curl_agrees(url, &t, why, whylen);
	if (rc)
		return rc;
	*u = t;
	return ENR_OK;
}

enum enr_err wh_check_url(const char *url, bool allow_private, char *why, size_t whylen)
{
	struct url_parts u;

	return parse_url(url, allow_private, &u, why, whylen);
}

/* ---- resolution ---------------------------------------------------------- */

struct addr_set {
	int af[LIM_WH_ADDRS_MAX];
	unsigned char a[LIM_WH_ADDRS_MAX][16];
	size_t n;
};

static void add_addr(struct addr_set *s, int af, const void *a)
{
	size_t len = af == AF_INET ? 4 : 16;

	for (size_t i = 0; i < s->n; i++) {
		if (s->af[i] == af && memcmp(s->a[i], a, len) == 0)
			return;
	}
	if (s->n < LIM_WH_ADDRS_MAX) {
		s->af[s->n] = af;
		memcpy(s->a[s->n], a, len);
		s->n++;
	}
}

static void format_addrs(const struct addr_set *s, char *out, size_t outlen)
{
	char text[INET6_ADDRSTRLEN];
	size_t o = 0;

	/* Fits by the static assertion on WH_ADDRS_LEN; written in place, so
	 * nothing here can run out of memory. */
	out[0] = '\0';
	for (size_t i = 0; i < s->n; i++) {
		int n;

		if (inet_ntop(s->af[i], s->a[i], text, sizeof text) == NULL)
			continue;
		n = snprintf(out + o, outlen - o, s->af[i] == AF_INET6 ? "%s[%s]" : "%s%s",
			     o ? "," : "", text);
		if (n < 0 || (size_t)n >= outlen - o) {
			out[o] = '\0';
			break;
		}
		o += (size_t)n;
	}
}

static enum enr_err resolve_parts(const struct url_parts *u, bool allow_private, char *addrs,
				  size_t addrslen, char *why, size_t whylen)
{
	struct addrinfo hints, *res = NULL;
	struct addr_set set;
	enum enr_err rc = ENR_OK;
	int gai;

	memset(&set, 0, sizeof set);
	if (u->kind != HOST_NAME) {
		/* A literal was checked when the URL was parsed. */
		add_addr(&set, u->kind == HOST_V4 ? AF_INET : AF_INET6, u->addr);
		format_addrs(&set, addrs, addrslen);
		return ENR_OK;
	}

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	gai = getaddrinfo(u->host, NULL, &hints, &res);
	switch (gai) {
	case 0:
		break;
	case EAI_NONAME:
	case EAI_NODATA:
	case EAI_ADDRFAMILY:
		say(why, whylen, "host not found");
		return ENR_E_NOT_FOUND;
	case EAI_MEMORY:
		say(why, whylen, "out of memory");
		return ENR_E_NOMEM;
	default:
		say(why, whylen, "cannot resolve host: %s", gai_strerror(gai));
		return ENR_E_UNAVAILABLE;
	}

	/* Every address is checked, not only those pinned: a name that
	 * mixes public and private addresses is refused outright. */
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		const void *a;
		const char *reason;

		if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in))
			a = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6))
			a = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
		else
			continue;
		reason = wh_addr_refused(ai->ai_family, a);
		if (reason && !allow_private) {
			say(why, whylen, "host resolves to a %s address", reason);
			rc = ENR_E_INVALID;
			goto out;
		}
		add_addr(&set, ai->ai_family, a);
	}
	if (set.n == 0) {
		say(why, whylen, "host has no IPv4 or IPv6 address");
		rc = ENR_E_NOT_FOUND;
		goto out;
	}
	format_addrs(&set, addrs, addrslen);
out:
	freeaddrinfo(res);
	return rc;
}

enum enr_err wh_resolve(const char *url, bool allow_private, char *addrs, size_t addrslen,
			char *why, size_t whylen)
{
	struct url_parts u;
	enum enr_err rc;

	if (addrs == NULL || addrslen < WH_ADDRS_LEN) {
		say(why, whylen, "address buffer too small");
		return ENR_E_INTERNAL;
	}
	rc = parse_url(url, allow_private, &u, why, whylen);
	if (rc)
		return rc;
	return resolve_parts(&u, allow_private, addrs, addrslen, why, whylen);
}

/* ---- signing and backoff ------------------------------------------------- */

void wh_sign(const char *secret, const char *body, size_t len, char out[WH_SIG_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t klen = secret ? strlen(secret) : 0;

	if (klen > INT_MAX)
		klen = INT_MAX; /* never for a configured secret (STRMAX) */
	if (HMAC(EVP_sha256(), secret ? secret : "", (int)klen,
		 (const unsigned char *)(body ? body : ""), body ? len : 0, md, &mdlen) == NULL ||
	    mdlen != 32) {
		/* Only when libcrypto is broken; a signature that verifies
		 * against nothing is better than a missing one. */
		memset(md, 0, sizeof md);
		mdlen = 32;
	}
	memcpy(out, "sha256=", 7);
	util_hex(md, mdlen, out + 7);
	explicit_bzero(md, sizeof md);
}

int64_t wh_backoff_ms(int attempt, double jitter)
{
	int64_t d = BACKOFF_BASE_MS;

	if (attempt < 1)
		attempt = 1;
	for (int i = 1; i < attempt && d < LIM_WH_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > LIM_WH_BACKOFF_MAX_MS)
		d = LIM_WH_BACKOFF_MAX_MS;
	return util_jitter_add(d, jitter);
}

/* ---- delivery ------------------------------------------------------------ */

/* What libcurl's callbacks share during one attempt. */
struct attempt {
	bool allow_private;
	size_t got;                   /* answer bytes read and dropped */
	bool too_large;
	const char *refused;          /* why the open-socket check said no */
};

static size_t discard(char *data, size_t size, size_t nmemb, void *ud)
{
	struct attempt *a = ud;
	size_t n = size * nmemb;

	(void)data;
	if (n > LIM_WH_RESPONSE_MAX - a->got) {
		a->too_large = true;
		return 0; /* stop reading; the status is all that counts */
	}
	a->got += n;
	return n;
}

/* The last word on where a connection goes, whatever libcurl resolved. */
static curl_socket_t open_checked(void *ud, curlsocktype purpose, struct curl_sockaddr *sa)
{
	struct attempt *a = ud;
	unsigned char ip[16];
	const char *reason = "unknown family";

	if (purpose != CURLSOCKTYPE_IPCXN) {
		a->refused = "unexpected";
		return CURL_SOCKET_BAD;
	}
	if (sa->family == AF_INET && sa->addrlen >= sizeof(struct sockaddr_in)) {
		memcpy(ip, (const char *)&sa->addr + offsetof(struct sockaddr_in, sin_addr), 4);
		reason = v4_refused(ip);
	} else if (sa->family == AF_INET6 && sa->addrlen >= sizeof(struct sockaddr_in6)) {
		memcpy(ip, (const char *)&sa->addr + offsetof(struct sockaddr_in6, sin6_addr), 16);
		reason = v6_refused(ip);
	}
	if (reason && !a->allow_private) {
		a->refused = reason;
		return CURL_SOCKET_BAD;
	}
	return socket(sa->family, sa->socktype | SOCK_CLOEXEC, sa->protocol);
}

static bool event_ok(const char *e)
{
	size_t n = strnlen(e, LIM_WH_EVENT_MAX + 1);

	if (n == 0 || n > LIM_WH_EVENT_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!ascii_is_lower(e[i]) && !ascii_is_digit(e[i]) && e[i] != '.' &&
		    e[i] != '_' && e[i] != '-')
			return false;
	}
	return true;
}

/* Append one formatted line (a header, a CURLOPT_RESOLVE entry) to l. */
static enum enr_err add_line(struct curl_slist **l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static enum enr_err add_line(struct curl_slist **l, const char *fmt, ...)
{
	char line[LIM_WH_URL_MAX + WH_ADDRS_LEN];
	struct curl_slist *t;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line)
		return ENR_E_INTERNAL;
	t = curl_slist_append(*l, line);
	if (t == NULL)
		return ENR_E_NOMEM;
	*l = t;
	return ENR_OK;
}

enum enr_err wh_post(const struct cfg *cfg, const char *url, const char *body, const char *event,
		     int *status, char *why, size_t whylen)
{
	struct attempt at = { false, 0, false, NULL };
	struct url_parts u;
	struct curl_slist *hdrs = NULL, *pin = NULL;
	char addrs[WH_ADDRS_LEN], sig[WH_SIG_LEN], id[2 * DELIVERY_ID_BYTES + 1];
	char target[LIM_WH_URL_MAX + 64];
	unsigned char raw[DELIVERY_ID_BYTES];
	const char *secret;
	CURL *h = NULL;
	CURLcode cc;
	long code = 0;
	enum enr_err rc;

	if (status)
		*status = 0;
	if (cfg == NULL || url == NULL || body == NULL || event == NULL || status == NULL ||
	    cfg->webhooks.timeout_ms <= 0) {
		say(why, whylen, "missing argument");
		return ENR_E_INVALID;
	}
	if (!event_ok(event)) {
		say(why, whylen, "bad event name");
		return ENR_E_INVALID;
	}
	at.allow_private = cfg->webhooks.allow_private;
	if (up_global_init() != ENR_OK) {
		say(why, whylen, "libcurl failed to initialise");
		return ENR_E_INTERNAL;
	}
	rc = parse_url(url, at.allow_private, &u, why, whylen);
	if (rc)
		return rc;
	rc = resolve_parts(&u, at.allow_private, addrs, sizeof addrs, why, whylen);
	if (rc)
		return rc;
	if (util_random(raw, sizeof raw) != ENR_OK) {
		say(why, whylen, "no randomness for the delivery id");
		return ENR_E_INTERNAL;
	}
	util_hex(raw, sizeof raw, id);

	/* libcurl gets the URL as parsed here, host in lower case, so the
	 * pinned entry below matches the name it looks up.  The rest is at
	 * most LIM_WH_URL_MAX bytes, so this fits. */
	if (u.port_given)
		snprintf(target, sizeof target, "%s://%s:%ld%s", u.https ? "https" : "http",
			 u.host, u.port, u.rest);
	else
		snprintf(target, sizeof target, "%s://%s%s", u.https ? "https" : "http", u.host,
			 u.rest);
	if (u.kind == HOST_NAME)
		rc = add_line(&pin, "%s:%ld:%s", u.host, u.port, addrs);
	if (!rc)
		rc = add_line(&hdrs, "Content-Type: application/json");
	if (!rc)
		rc = add_line(&hdrs, "X-Enrichd-Event: %s", event);
	if (!rc)
		rc = add_line(&hdrs, "X-Enrichd-Delivery: %s", id);
	secret = cfg->webhooks.secret ? cfg->webhooks.secret : "";
	if (!rc && secret[0]) {
		wh_sign(secret, body, strlen(body), sig);
		rc = add_line(&hdrs, "X-Enrichd-Signature: %s", sig);
	}
	/* No "Expect: 100-continue" round trip before the body. */
	if (!rc)
		rc = add_line(&hdrs, "Expect:");
	if (rc) {
		say(why, whylen, rc == ENR_E_NOMEM ? "out of memory" : "request too large");
		goto out;
	}

	h = curl_easy_init();
	if (h == NULL) {
		say(why, whylen, "out of memory");
		rc = ENR_E_NOMEM;
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, target);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, at.allow_private ? "https,http" : "https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 0L);
	/* A proxy would resolve the name itself and defeat the pin. */
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)cfg->webhooks.timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->webhooks.timeout_ms);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "enrichd-webhook");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (pin)
		curl_easy_setopt(h, CURLOPT_RESOLVE, pin);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_checked);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &at);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &at);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);

	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (code < 0 || code > 999)
		code = 0;
	*status = (int)code;

	if (at.refused) {
		/* The pin should make this unreachable; it is the guard for
		 * the day libcurl resolves the name anyway. */
		say(why, whylen, "connection to a %s address refused", at.refused);
		rc = ENR_E_INVALID;
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		say(why, whylen, "timed out after %d ms", cfg->webhooks.timeout_ms);
		rc = ENR_E_TIMEOUT;
	} else if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && at.too_large)) {
		say(why, whylen, "%s", curl_easy_strerror(cc));
		rc = ENR_E_UPSTREAM;
	} else if (code >= 200 && code <= 299) {
		rc = ENR_OK;
	} else if (code >= 300 && code <= 399) {
		say(why, whylen, "redirect (HTTP %ld) not followed", code);
		rc = ENR_E_UPSTREAM;
	} else if (code == 0) {
		say(why, whylen, "no HTTP status");
		rc = ENR_E_UPSTREAM;
	} else {
		say(why, whylen, "HTTP %ld", code);
		rc = ENR_E_UPSTREAM;
	}
out:
	if (h)
		curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	curl_slist_free_all(pin);
	return rc;
}
