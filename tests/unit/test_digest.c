/*
 * test_digest.c - SHA-256 (lib/digest.c): the standard's vectors, parts
 * hash as their concatenation, and threads each get their own context.
 */
#include <pthread.h>
#include <string.h>

#include "lib/digest.h"
#include "lib/util.h"

#include "harness.h"

static void hex_of(const void *p, size_t n, char out[2 * DG_SHA256_LEN + 1])
{
	unsigned char md[DG_SHA256_LEN];

	CHECK_INT(dg_sha256(p, n, md), ENR_OK);
	util_hex(md, sizeof md, out);
	out[2 * DG_SHA256_LEN] = '\0';
}

TEST(known_vectors)
{
	char h[2 * DG_SHA256_LEN + 1];

	hex_of("", 0, h);
	CHECK_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	hex_of("abc", 3, h);
	CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, h);
	CHECK_STR(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(parts_hash_as_one_buffer)
{
	const void *parts[] = { "ab", "", "c" };
	size_t lens[] = { 2, 0, 1 };
	unsigned char a[DG_SHA256_LEN], b[DG_SHA256_LEN];

	CHECK_INT(dg_sha256_parts(parts, lens, 3, a), ENR_OK);
	CHECK_INT(dg_sha256("abc", 3, b), ENR_OK);
	CHECK(memcmp(a, b, sizeof a) == 0);
}

struct job {
	int salt;
	int wrong;
};

static void *hash_many(void *arg)
{
	struct job *j = arg;
	char in[32];
	unsigned char got[DG_SHA256_LEN], again[DG_SHA256_LEN];

	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)snprintf(in, sizeof in, "%d-%d", j->salt, i);

		if (dg_sha256(in, n, got) != ENR_OK || dg_sha256(in, n, again) != ENR_OK ||
		    memcmp(got, again, sizeof got) != 0)
			j->wrong++;
	}
	return NULL;
}

TEST(threads_hash_side_by_side)
{
	pthread_t t[4];
	struct job jobs[4] = { { 1, 0 }, { 2, 0 }, { 3, 0 }, { 4, 0 } };
	unsigned char x[DG_SHA256_LEN], y[DG_SHA256_LEN];

	for (int i = 0; i < 4; i++)
		REQUIRE(pthread_create(&t[i], NULL, hash_many, &jobs[i]) == 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_INT(jobs[i].wrong, 0);
	}
	/* Different input, different digest, on any thread. */
	CHECK_INT(dg_sha256("1-0", 3, x), ENR_OK);
	CHECK_INT(dg_sha256("2-0", 3, y), ENR_OK);
	CHECK(memcmp(x, y, sizeof x) != 0);
}

int main(void)
{
	RUN(known_vectors);
	RUN(parts_hash_as_one_buffer);
	RUN(threads_hash_side_by_side);
	return harness_done();
}
