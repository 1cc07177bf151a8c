/*
 * test_buf.c - growable buffer with a cap.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

#include "harness.h"

TEST(append_grows_and_terminates)
{
	struct buf b;

	buf_init(&b, 0);
	CHECK_STR(buf_cstr(&b), "");
	CHECK_INT(buf_puts(&b, "hello"), ENR_OK);
	CHECK_INT(buf_putc(&b, ' '), ENR_OK);
	CHECK_INT(buf_printf(&b, "%d-%s", 42, "x"), ENR_OK);
	CHECK_STR(buf_cstr(&b), "hello 42-x");
	CHECK_INT(b.len, 10);
	for (int i = 0; i < 1000; i++)
		CHECK_INT(buf_puts(&b, "0123456789"), ENR_OK);
	CHECK_INT(b.len, 10010);
	CHECK(b.data[b.len] == '\0');
	buf_reset(&b);
	CHECK_INT(b.len, 0);
	CHECK_STR(buf_cstr(&b), "");
	buf_release(&b);
	buf_release(&b); /* twice is harmless */
}

TEST(cap_refuses_and_keeps_contents)
{
	struct buf b;

	buf_init(&b, 8);
	CHECK_INT(buf_puts(&b, "12345678"), ENR_OK);
	CHECK_INT(buf_putc(&b, '9'), ENR_E_TOO_LARGE);
	CHECK_INT(buf_printf(&b, "%s", "more"), ENR_E_TOO_LARGE);
	CHECK_STR(buf_cstr(&b), "12345678");
	CHECK_INT(buf_reserve(&b, (size_t)-1), ENR_E_TOO_LARGE);
	buf_release(&b);
}

TEST(steal_hands_over_memory)
{
	struct buf b;
	char *s;

	buf_init(&b, 0);
	s = buf_steal(&b);
	REQUIRE(s != NULL);
	CHECK_STR(s, "");
	free(s);
	CHECK_INT(buf_puts(&b, "abc"), ENR_OK);
	s = buf_steal(&b);
	CHECK_STR(s, "abc");
	CHECK(b.data == NULL && b.len == 0);
	free(s);
}

TEST(binary_append)
{
	struct buf b;

	buf_init(&b, 0);
	CHECK_INT(buf_append(&b, "a\0b", 3), ENR_OK);
	CHECK_INT(b.len, 3);
	CHECK(memcmp(b.data, "a\0b", 3) == 0);
	CHECK_INT(buf_append(&b, NULL, 0), ENR_OK);
	buf_release(&b);
}

int main(void)
{
	RUN(append_grows_and_terminates);
	RUN(cap_refuses_and_keeps_contents);
	RUN(steal_hands_over_memory);
	RUN(binary_append);
	return harness_done();
}
