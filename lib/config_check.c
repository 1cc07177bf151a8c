/*
 * config_check.c - checks of single configuration values beyond type and
 * length: URLs enrichd calls, what nginx/render.sh renders into nginx
 * (server names, CORS origins, the socket path), the store URL, record
 * field names.  The directive tables (config_rules.c) name them.
 */
#include "config_int.h"
#include "store.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ascii.h"
#include "fields.h"
#include "json_path.h"
#include "limits.h"
#include "util.h"

static const char *leaf(const struct cfg_dir *d)
{
	const char *dot = strrchr(d->path, '.');

	return dot ? dot + 1 : d->path;
}

const char *cfg_store_path(const char *store, size_t *scheme_len)
{
	if (strncmp(store, "sqlite:", 7) == 0 && store[7] != '\0') {
		if (scheme_len)
			*scheme_len = 6;
		return store + 7;
	}
	return NULL;
}

/* ---- URLs ---------------------------------------------------------------- */

/* An IPv4 literal in 127.0.0.0/8, ::1, or the name "localhost".  Names
 * are not resolved: a name that only points at loopback is not one. */
static bool loopback_host(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char inner[64];
	size_t n = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n > 2 && n < sizeof inner + 2 && host[0] == '[' && host[n - 1] == ']') {
		memcpy(inner, host + 1, n - 2);
		inner[n - 2] = '\0';
		return inet_pton(AF_INET6, inner, &a6) == 1 &&
		       memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
	}
	return false;
}

/* The length of a port (":" and 1 to 5 digits, at most 65535) at p; 0
 * when p holds none. */
static size_t port_len(const char *p)
{
	size_t n = 1;
	unsigned v = 0;

	if (p[0] != ':')
		return 0;
	while (n <= 5 && ascii_is_digit(p[n]))
		v = v * 10 + (unsigned)(p[n++] - '0');
	return n > 1 && n <= 6 && !ascii_is_digit(p[n]) && v <= 65535 ? n : 0;
}

/* A URL of the plain shape every adapter builds, allowed without
 * libcurl's parser (which every URL of another shape goes through): a
 * lower-case scheme, a host of letters, digits, dots and dashes (for
 * http:// a loopback IPv4 literal or "localhost"), an optional port, then
 * the end or a path or query of printable bytes.  libcurl reads each such
 * URL with exactly that host, so the answer is the parser's. */
static bool plain_url_ok(const char *url)
{
	bool tls = strncmp(url, "https://", 8) == 0;
	const char *h = url + (tls ? 8 : 7), *e = h, *p;
	char host[16];

	if (!tls && strncmp(url, "http://", 7) != 0)
		return false;
	while (ascii_is_alnum(*e) || *e == '.' || *e == '-')
		e++;
	if (e == h)
		return false;
	if (!tls) {
		if ((size_t)(e - h) >= sizeof host)
			return false;
		memcpy(host, h, (size_t)(e - h));
		host[e - h] = '\0';
		if (!loopback_host(host))
			return false;
	}
	p = e + port_len(e);
	if (*p != '\0' && *p != '/' && *p != '?')
		return false;
	for (; *p; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	}
	return true;
}

bool cfg_url_check(const char *url, char *why, size_t whylen)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL;
	bool ok = false;

	if (why && whylen)
		why[0] = '\0';
	if (url && plain_url_ok(url))
		return true;
	u = curl_url();
	/* libcurl's parser decides what the host is, exactly as it will when
	 * the call is made. */
	if (u == NULL || url == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		if (why)
			snprintf(why, whylen, "not a URL");
		goto out;
	}
	if (strcmp(scheme, "https") == 0) {
		ok = true;
	} else if (strcmp(scheme, "http") == 0) {
		ok = loopback_host(host);
		if (!ok && why)
			snprintf(why, whylen,
				 "http:// goes only to a loopback host (127.0.0.0/8, ::1 or localhost), "
				 "and \"%.200s\" is not one", host);
	} else if (why) {
		snprintf(why, whylen, "\"%.20s\" is not https", scheme);
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

bool cfg_check_url(const struct cfg_dir *d, const char *v, char *why, size_t whylen)
{
	char r[LIM_CONFIG_ERR_MAX / 2];

	if (v[0] == '\0' || cfg_url_check(v, r, sizeof r))
		return true;
	snprintf(why, whylen, "%s must start with https://; %s", leaf(d), r);
	return false;
}

/* A generic provider's URL template: "{base_url}..." is checked with
 * base_url; a template that spells its own http:// URL must name a
 * loopback host literally. */
bool cfg_check_url_template(const struct cfg_dir *d, const char *v, char *why, size_t whylen)
{
	char lit[4097], r[LIM_CONFIG_ERR_MAX / 2];
	size_t n = strcspn(v, "{"), host_end;

	if (strncasecmp(v, "http://", 7) != 0)
		return true;
	host_end = 7 + strcspn(v + 7, "/?#{");
	if (v[host_end] == '{' || n >= sizeof lit) {
		snprintf(why, whylen, "an http:// %s must name its loopback host literally", leaf(d));
		return false;
	}
	memcpy(lit, v, n);
	lit[n] = '\0';
	if (cfg_url_check(lit, r, sizeof r))
		return true;
	snprintf(why, whylen, "%s must start with {base_url} or https://; %s", leaf(d), r);
	return false;
}

/* ---- values nginx renders (nginx/render.sh reads them from enrichd -p) ---- */

static bool name_char(char c)
{
	return ascii_is_alnum(c) || c == '-' || c == '_';
}

/* One nginx server name: "_", "example.com", "*.example.com",
 * ".example.com" or "www.example.*"; no regular expressions. */
static bool server_name_ok(const char *s, size_t n)
{
	size_t i = 0;
	bool label = false;

	if (n == 1 && s[0] == '_')
		return true;
	if (n > LIM_REC_DOMAIN_MAX)
		return false;
	if (n >= 2 && s[0] == '*' && s[1] == '.')
		i = 2;
	else if (n >= 1 && s[0] == '.')
		i = 1;
	if (n >= 2 && s[n - 1] == '*' && s[n - 2] == '.' && i == 0)
		n -= 2;
	if (i >= n)
		return false;
	for (; i < n; i++) {
		if (s[i] == '.') {
			if (!label)
				return false;
			label = false;
		} else if (name_char(s[i])) {
			label = true;
		} else {
			return false;
		}
	}
	return label;
}

bool cfg_check_server_names(const struct cfg_dir *d, const char *v, char *why, size_t whylen)
{
	const char *p = v;

	(void)d;
	for (;;) {
		size_t n = strcspn(p, " ");

		if (!server_name_ok(p, n)) {
			bool whole = p == v && p[n] == '\0';

			snprintf(why, whylen,
				 "\"%.*s\" is not a server name%s%.100s%s: names are letters, digits, "
				 "'-', '_' and '.', with an optional leading \"*.\" or \".\" or trailing "
				 "\".*\", or \"_\", separated by single spaces (no regular expressions)",
				 (int)(n > 100 ? 100 : n), p, whole ? "" : " (in \"", whole ? "" : v,
				 whole ? "" : "\")");
			return false;
		}
		if (p[n] == '\0')
			return true;
		p += n + 1;
	}
}

/* scheme://host[:port] exactly as a browser sends it in Origin. */
bool cfg_check_origin(const struct cfg_dir *d, const char *v, char *why, size_t whylen)
{
	const char *p = v;
	bool ok = true;

	(void)d;
	if (strncmp(p, "https://", 8) == 0)
		p += 8;
	else if (strncmp(p, "http://", 7) == 0)
		p += 7;
	else
		ok = false;
	if (ok && *p == '[') {
		size_t n = strspn(p + 1, "0123456789abcdef:.");

		ok = n > 0 && p[1 + n] == ']';
		p += n + 2;
	} else if (ok) {
		size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-.");

		ok = n > 0 && p[0] != '.' && p[n - 1] != '.' && memmem(p, n, "..", 2) == NULL;
		p += n;
	}
	if (ok && *p == ':') {
		int64_t port;
		size_t n = strspn(p + 1, "0123456789");

		ok = n > 0 && n <= 5 && p[1 + n] == '\0' &&
		     util_parse_i64(p + 1, 1, 65535, &port) == ENR_OK;
		p += 1 + n;
	}
	if (ok && *p == '\0')
		return true;
	snprintf(why, whylen,
		 "must be an origin like \"https://app.example.com\" (scheme://host[:port] in "
		 "lower case, no path, no trailing '/')");
	return false;
}

/* Characters that would end or bend an nginx directive around a path. */
const char *cfg_nginx_unsafe(const char *v)
{
	for (const char *p = v; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c == 0x7f)
			return "a space or a control character";
		if (strchr(";'\"{}$\\#", c))
			return "one of ; ' \" { } $ \\ #";
	}
	return NULL;
}

/* The socket is given to this group after bind (cgi/main.c). */
bool cfg_check_group(const struct cfg_dir *d, const char *v, char *why, size_t whylen)
{
	struct group gr, *found = NULL;
	char scratch[4096];

	(void)d;
	if (v[0] == '\0' || (getgrnam_r(v, &gr, scratch, sizeof scratch, &found) == 0 && found))
		return true;
	snprintf(why, whylen, "no group is named \"%s\"", v);
	return false;
}

bool cfg_check_store(const struct cfg_dir *d, const char *v, char *why, size_t whylen)
{
	(void)d;
	if (st_url_ok(v))
		return true;
	if (strncmp(v, "postgres", 8) == 0)
		snprintf(why, whylen, "must not carry a password (use store_password = \"env:NAME\" or "
			 "\"file:PATH\", or a libpq passfile)");
	else
		snprintf(why, whylen, "must be \"sqlite:PATH\" or \"postgresql://[user@]host[:port]/db\"");
	return false;
}

bool cfg_check_secret_ref(const struct cfg_dir *d, const char *v, char *why, size_t whylen)
{
	(void)d;
	if (*v == '\0' || (strncmp(v, "env:", 4) == 0 && v[4]) || (strncmp(v, "file:", 5) == 0 && v[5]))
		return true;
	snprintf(why, whylen, "must be \"env:NAME\" or \"file:PATH\" (secrets are never written in "
		 "the file)");
	return false;
}

bool cfg_check_field_name(const struct cfg_dir *d, const char *v, char *why, size_t whylen)
{
	enum fld_id id;

	(void)d;
	if (fld_parse(v, &id))
		return true;
	snprintf(why, whylen, "not a record field name");
	return false;
}

bool cfg_check_json_path(const struct cfg_dir *d, const char *v, char *why, size_t whylen)
{
	(void)d;
	if (v[0] == '\0' || jp_valid(v))
		return true;
	snprintf(why, whylen, "not a JSON path (member names joined by '.', [N] for elements)");
	return false;
}
