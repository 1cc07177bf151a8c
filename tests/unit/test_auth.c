/*
 * test_auth.c - key generation, hashing, header parsing, scopes.
 */
#include <string.h>

#include "lib/auth.h"

#include "harness.h"

TEST(generated_keys_have_the_shape_and_differ)
{
	char a[AUTH_KEY_LEN + 1], b[AUTH_KEY_LEN + 1];

	REQUIRE(auth_key_generate(a) == ENR_OK);
	REQUIRE(auth_key_generate(b) == ENR_OK);
	CHECK_INT(strlen(a), AUTH_KEY_LEN);
	CHECK(strncmp(a, "enr_", 4) == 0);
	CHECK(auth_key_shape_ok(a, strlen(a)));
	CHECK(strcmp(a, b) != 0);
}

TEST(hash_is_sha256)
{
	unsigned char h[AUTH_HASH_LEN];
	static const unsigned char abc[AUTH_HASH_LEN] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};

	auth_key_hash("abc", 3, h);
	CHECK(memcmp(h, abc, sizeof h) == 0);
}

TEST(wrong_key_of_the_right_shape_hashes_differently)
{
	char k[AUTH_KEY_LEN + 1], w[AUTH_KEY_LEN + 1];
	unsigned char hk[AUTH_HASH_LEN], hw[AUTH_HASH_LEN];

	REQUIRE(auth_key_generate(k) == ENR_OK);
	memcpy(w, k, sizeof w);
	w[AUTH_KEY_LEN - 1] = w[AUTH_KEY_LEN - 1] == '0' ? '1' : '0';
	CHECK(auth_key_shape_ok(w, AUTH_KEY_LEN));
	auth_key_hash(k, AUTH_KEY_LEN, hk);
	auth_key_hash(w, AUTH_KEY_LEN, hw);
	CHECK(memcmp(hk, hw, sizeof hk) != 0);
}

TEST(shape_rejects_near_misses)
{
	const char *good = "enr_0123456789abcdef0123456789abcdef01234567";

	CHECK(auth_key_shape_ok(good, strlen(good)));
	CHECK(!auth_key_shape_ok(good, strlen(good) - 1));
	CHECK(!auth_key_shape_ok("enx_0123456789abcdef0123456789abcdef01234567", 44));
	CHECK(!auth_key_shape_ok("enr_0123456789ABCDEF0123456789abcdef01234567", 44));
	CHECK(!auth_key_shape_ok("enr_0123456789abcdef0123456789abcdef0123456g", 44));
	CHECK(!auth_key_shape_ok("", 0));
}

TEST(header_parsing)
{
	const char *key = "enr_0123456789abcdef0123456789abcdef01234567";
	char out[AUTH_KEY_LEN + 1];

	CHECK_INT(auth_parse_headers("Bearer enr_0123456789abcdef0123456789abcdef01234567", NULL, out), ENR_OK);
	CHECK_STR(out, key);
	CHECK_INT(auth_parse_headers("bearer   enr_0123456789abcdef0123456789abcdef01234567  ", NULL, out), ENR_OK);
	CHECK_INT(auth_parse_headers(NULL, key, out), ENR_OK);
	CHECK_INT(auth_parse_headers("", " enr_0123456789abcdef0123456789abcdef01234567", out), ENR_OK);
	CHECK_INT(auth_parse_headers("Bearer enr_0123456789abcdef0123456789abcdef01234567", key, out), ENR_OK);
	CHECK_INT(auth_parse_headers(NULL, NULL, out), ENR_E_UNAUTHORIZED);
	CHECK_INT(auth_parse_headers("", "", out), ENR_E_UNAUTHORIZED);
	CHECK_INT(auth_parse_headers("Basic dXNlcjpwYXNz", NULL, out), ENR_E_UNAUTHORIZED);
	CHECK_INT(auth_parse_headers("Bearer", NULL, out), ENR_E_UNAUTHORIZED);
	CHECK_INT(auth_parse_headers("Bearerenr_0123456789abcdef0123456789abcdef01234567", NULL, out), ENR_E_UNAUTHORIZED);
	CHECK_INT(auth_parse_headers("Bearer enr_0123456789abcdef0123456789abcdef01234567 x", NULL, out), ENR_E_UNAUTHORIZED);
	CHECK_INT(auth_parse_headers("Bearer enr_short", NULL, out), ENR_E_UNAUTHORIZED);
	/* Two different keys: refuse rather than guess. */
	CHECK_INT(auth_parse_headers("Bearer enr_0123456789abcdef0123456789abcdef01234567",
				     "enr_0123456789abcdef0123456789abcdef01234568", out), ENR_E_UNAUTHORIZED);
}

TEST(scopes)
{
	unsigned s = 0;
	char out[64];

	CHECK_INT(auth_scopes_parse("enrich,admin", &s), ENR_OK);
	CHECK_INT(s, AUTH_SCOPE_ENRICH | AUTH_SCOPE_ADMIN);
	auth_scopes_format(s, out, sizeof out);
	CHECK_STR(out, "enrich,admin");
	auth_scopes_format(AUTH_SCOPE_ALL, out, sizeof out);
	CHECK_STR(out, "enrich,enqueue,admin,metrics,search");
	CHECK_INT(auth_scopes_parse("metrics", &s), ENR_OK);
	CHECK_INT(s, AUTH_SCOPE_METRICS);
	CHECK_INT(auth_scopes_parse("search,enrich", &s), ENR_OK);
	CHECK_INT(s, AUTH_SCOPE_SEARCH | AUTH_SCOPE_ENRICH);
	CHECK_INT(auth_scopes_parse("enrich,", &s), ENR_E_INVALID);
	CHECK_INT(auth_scopes_parse("root", &s), ENR_E_INVALID);
	CHECK_INT(auth_scopes_parse("", &s), ENR_E_INVALID);
	CHECK_INT(auth_scopes_parse("enrich, admin", &s), ENR_E_INVALID);
}

int main(void)
{
	RUN(generated_keys_have_the_shape_and_differ);
	RUN(hash_is_sha256);
	RUN(wrong_key_of_the_right_shape_hashes_differently);
	RUN(shape_rejects_near_misses);
	RUN(header_parsing);
	RUN(scopes);
	return harness_done();
}
