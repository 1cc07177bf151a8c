/*
 * auth.c - client API key generation, hashing and parsing.
 */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "ascii.h"
#include "digest.h"
#include "util.h"

enum enr_err auth_key_generate(char out[AUTH_KEY_LEN + 1])
{
	unsigned char raw[20];
	enum enr_err rc = util_random(raw, sizeof raw);

	if (rc)
		return rc;
	memcpy(out, AUTH_KEY_PREFIX, 4);
	util_hex(raw, sizeof raw, out + 4);
	return ENR_OK;
}

bool auth_key_shape_ok(const char *s, size_t len)
{
	if (len != AUTH_KEY_LEN || memcmp(s, AUTH_KEY_PREFIX, 4) != 0)
		return false;
	for (size_t i = 4; i < len; i++) {
		if (!ascii_is_lower_xdigit(s[i]))
			return false;
	}
	return true;
}

void auth_key_hash(const char *key, size_t len, unsigned char out[AUTH_HASH_LEN])
{
	/* Out of memory leaves the hash zeroed, which no stored key has. */
	enr_ignore(dg_sha256(key, len, out));
}

/* Trim blanks around [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
	while (*n > 0 && ascii_is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ascii_is_blank((*s)[*n - 1]))
		(*n)--;
}

static enum enr_err take_key(const char *s, size_t n, char out[AUTH_KEY_LEN + 1])
{
	trim(&s, &n);
	if (!auth_key_shape_ok(s, n))
		return ENR_E_UNAUTHORIZED;
	memcpy(out, s, n);
	out[n] = '\0';
	return ENR_OK;
}

enum enr_err auth_parse_headers(const char *authorization, const char *x_api_key,
				char out[AUTH_KEY_LEN + 1])
{
	char a[AUTH_KEY_LEN + 1], x[AUTH_KEY_LEN + 1];
	bool have_a = false, have_x = false;

	if (authorization && *authorization) {
		const char *s = authorization;
		size_t n = strlen(s);

		trim(&s, &n);
		if (n < 7 || !util_strn_ieq(s, 6, "bearer") || !ascii_is_blank(s[6]))
			return ENR_E_UNAUTHORIZED;
		if (take_key(s + 7, n - 7, a) != ENR_OK)
			return ENR_E_UNAUTHORIZED;
		have_a = true;
	}
	if (x_api_key && *x_api_key) {
		if (take_key(x_api_key, strlen(x_api_key), x) != ENR_OK)
			return ENR_E_UNAUTHORIZED;
		have_x = true;
	}
	if (have_a && have_x && strcmp(a, x) != 0)
		return ENR_E_UNAUTHORIZED;
	if (!have_a && !have_x)
		return ENR_E_UNAUTHORIZED;
	memcpy(out, have_a ? a : x, AUTH_KEY_LEN + 1);
	return ENR_OK;
}

/* Scope bit i is scope_names[i] (lib/auth.h). */
static const char *const scope_names[] = { "enrich", "enqueue", "admin", "metrics", "search" };
#define NSCOPES (sizeof scope_names / sizeof scope_names[0])

enum enr_err auth_scopes_parse(const char *s, unsigned *out)
{
	unsigned v = 0;

	if (s == NULL || *s == '\0')
		return ENR_E_INVALID;
	while (*s) {
		size_t n = strcspn(s, ",");
		bool ok = false;

		for (unsigned i = 0; i < NSCOPES; i++) {
			if (strlen(scope_names[i]) == n && strncmp(s, scope_names[i], n) == 0) {
				v |= 1u << i;
				ok = true;
			}
		}
		if (!ok)
			return ENR_E_INVALID;
		s += n;
		if (*s == ',') {
			s++;
			if (*s == '\0')
				return ENR_E_INVALID;
		}
	}
	*out = v;
	return ENR_OK;
}

void auth_scopes_format(unsigned scopes, char *out, size_t outsz)
{
	size_t o = 0;

	if (outsz == 0)
		return;
	out[0] = '\0';
	for (unsigned i = 0; i < NSCOPES; i++) {
		if (scopes & (1u << i)) {
			int w = snprintf(out + o, outsz - o, "%s%s", o ? "," : "", scope_names[i]);

			if (w < 0 || (size_t)w >= outsz - o)
				return;
			o += (size_t)w;
		}
	}
}
