/*
 * fuzz_webhook_url.c - libFuzzer target for the webhook URL check
 * (wh_check_url in lib/webhook.c).
 *
 * Input: the bytes of a URL (up to the first NUL), checked with
 * allow_private off and on.  Whatever is accepted is checked against
 * oracles that do not share code with the module: libcurl's URL parser
 * says what the host is, inet_aton/inet_pton say whether it is an address,
 * and a deliberately plain table says which addresses may not be reached.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "lib/limits.h"
#include "lib/webhook.h"

#include "responder_stack.h"


static bool v4_private(const unsigned char b[4])
{
	return b[0] == 0 || b[0] == 10 || b[0] == 127 || b[0] >= 224 ||
	       (b[0] == 169 && b[1] == 254) || (b[0] == 172 && b[1] >= 16 && b[1] <= 31) ||
	       (b[0] == 192 && b[1] == 168) || (b[0] == 100 && b[1] >= 64 && b[1] <= 127);
}

static bool v6_private(const struct in6_addr *a)
{
	const unsigned char *b = a->s6_addr;

	if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a))
		return v4_private(b + 12);
	return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) ||
	       IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_SITELOCAL(a) ||
	       IN6_IS_ADDR_MULTICAST(a) || (b[0] & 0xfe) == 0xfc;
}

/* The host as it is written in the URL (after "://", up to the port,
 * path or query); IPv6 literals are left to libcurl. */
static void raw_host(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "://");
	size_t n;

	out[0] = '\0';
	if (p == NULL || p[3] == '[')
		return;
	p += 3;
	n = strcspn(p, ":/?");
	if (n < outlen) {
		memcpy(out, p, n);
		out[n] = '\0';
	}
}

static void check_accepted(const char *url, bool allow_private)
{
	CURLU *u = curl_url();
	char *host = NULL, *user = NULL, raw[300];
	struct in_addr a4;
	struct in6_addr a6;
	size_t n;

	if (strlen(url) > LIM_WH_URL_MAX)
		abort();
	if (strncasecmp(url, "https://", 8) != 0 &&
	    !(allow_private && strncasecmp(url, "http://", 7) == 0))
		abort();
	for (const char *p = url; *p; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#' ||
		    *p == '\\')
			abort();
	}
	if (u == NULL)
		return;
	/* libcurl must take it, and say what host it would connect to. */
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		abort();
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
		abort();

	/* A numeric host is only ever dotted-quad decimal, written the way
	 * inet_ntoa would write it back. */
	raw_host(url, raw, sizeof raw);
	if (raw[0] && inet_aton(raw, &a4) == 1 && strcmp(raw, inet_ntoa(a4)) != 0)
		abort();

	if (!allow_private) {
		n = strlen(host);
		if (strcasecmp(host, "localhost") == 0 ||
		    (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0))
			abort();
		if (inet_aton(host, &a4) == 1 && v4_private((unsigned char *)&a4.s_addr))
			abort();
		if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
			char inner[64];

			if (n - 2 < sizeof inner) {
				memcpy(inner, host + 1, n - 2);
				inner[n - 2] = '\0';
				if (inet_pton(AF_INET6, inner, &a6) == 1 && v6_private(&a6))
					abort();
			}
		}
	}
	curl_free(host);
	curl_url_cleanup(u);
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	char url[LIM_WH_URL_MAX + 64], why[128];
	enum enr_err strict, lax;

	if (size >= sizeof url)
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';

	strict = wh_check_url(url, false, why, sizeof why);
	if (strict != ENR_OK && (strict != ENR_E_INVALID || why[0] == '\0' ||
				 memchr(why, '\0', sizeof why) == NULL))
		abort();
	lax = wh_check_url(url, true, why, sizeof why);
	if (lax != ENR_OK && (lax != ENR_E_INVALID || why[0] == '\0'))
		abort();
	/* Allowing private targets only ever admits more. */
	if (strict == ENR_OK && lax != ENR_OK)
		abort();
	if (strict == ENR_OK)
		check_accepted(url, false);
	if (lax == ENR_OK)
		check_accepted(url, true);
	return 0;
}

FUZZ_TARGET(fuzz_one)
