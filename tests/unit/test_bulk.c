/*
 * test_bulk.c - the bulk collector and rotation's bulk path against a
 * loopback PDL stand-in (tests/unit/http_stub.h): lookups of several
 * threads share one call, items map back by id, misses are the items',
 * a 429 moves the whole call to the next key, every answer is cached,
 * and an event loop's bulk_poll makes a batch once its linger passed.
 */
#include "tests/unit/harness.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bulk.h"
#include "lib/cache.h"
#include "lib/config.h"
#include "lib/rotation.h"
#include "lib/store.h"
#include "lib/upstream.h"
#include "lib/util.h"
#include "tests/unit/http_stub.h"
#include "tests/unit/tmpconf.h"

static int port, lfd = -1;
static atomic_int calls, items_seen, k1_429;
static char dir[] = "/tmp/enrichd-bulk-XXXXXX";
static struct cfg *cfg;
static struct store *store;

/* The stand-in: every POST /pdl/v5/person/bulk answers each request in
 * order, metadata echoed: a hit named after the e-mail's local part, a
 * 404 for "miss..."; key K1 answers 429 while k1_429 > 0. */
static void answer_bulk(int fd, const char *body, size_t len, const char *head)
{
	json_t *doc = json_loadb(body, len, 0, NULL), *reqs = json_object_get(doc, "requests");
	json_t *out = json_array(), *r;
	size_t i;
	char *text;

	atomic_fetch_add(&calls, 1);
	if (strstr(head, "X-Api-Key: K1") && atomic_load(&k1_429) > 0) {
		atomic_fetch_sub(&k1_429, 1);
		stub_reply(fd, "429 Too Many Requests", "Retry-After: 30\r\n",
			   "{\"status\":429,\"error\":{\"type\":\"rate_limit_error\"}}", 51);
		json_decref(doc);
		json_decref(out);
		return;
	}
	json_array_foreach(reqs, i, r) {
		const char *email = json_string_value(json_object_get(json_object_get(r, "params"),
								      "email"));
		json_t *meta = json_object_get(r, "metadata");
		char first[64] = "x";

		atomic_fetch_add(&items_seen, 1);
		if (email)
			snprintf(first, sizeof first, "%.*s", (int)strcspn(email, "@"), email);
		if (email && strncmp(email, "miss", 4) == 0)
			json_array_append_new(out, json_pack("{s:i, s:{s:s}, s:O}", "status", 404,
							     "error", "type", "not_found", "metadata",
							     meta));
		else
			json_array_append_new(out, json_pack("{s:i, s:i, s:{s:s, s:s}, s:O}", "status",
							     200, "likelihood", 8, "data", "first_name",
							     first, "job_title", "CTO", "metadata", meta));
	}
	text = json_dumps(out, JSON_COMPACT);
	stub_reply(fd, "200 OK", "Content-Type: application/json\r\n", text, strlen(text));
	free(text);
	json_decref(out);
	json_decref(doc);
}

static void *server(void *arg)
{
	(void)arg;
	for (;;) {
		static char buf[1 << 20];
		size_t have = 0;
		struct stub_request q;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			return NULL;
		while (stub_read(fd, buf, sizeof buf, &have, sizeof buf, &q)) {
			char head[4096];

			snprintf(head, sizeof head, "%.*s", (int)q.head_len, buf);
			if (strstr(q.path, "/v5/person/bulk"))
				answer_bulk(fd, buf + q.head_len, q.body_len, head);
			else
				stub_reply(fd, "404 Not Found", "", "{}", 2);
			stub_next(buf, &have, &q);
		}
		close(fd);
	}
}

static bool setup(void)
{
	char path[512], text[2048], why[256];
	pthread_t t;

	if (mkdtemp(dir) == NULL || (lfd = stub_listen(&port)) < 0)
		return false;
	pthread_create(&t, NULL, server, NULL);
	pthread_detach(t);
	setenv("BULK_K1", "K1", 1);
	setenv("BULK_K2", "K2", 1);
	snprintf(path, sizeof path, "%s/enrichd.conf", dir);
	snprintf(text, sizeof text,
		 "store = \"sqlite:%s/e.db\"; state_dir = \"%s\"; data_dir = \"%s/data\";\n"
		 "rotation = { strategy = \"ordered\"; };\n"
		 "providers = ( { name = \"pdl\"; kind = \"pdl\"; base_url = \"http://127.0.0.1:%d/pdl\";\n"
		 "  bulk = { enabled = true; batch_size = 100; linger_ms = 300; };\n"
		 "  keys = ( { id = \"pdl-1\"; secret = \"env:BULK_K1\"; },\n"
		 "           { id = \"pdl-2\"; secret = \"env:BULK_K2\"; } ); } );\n",
		 dir, dir, getcwd(why, sizeof why) ? why : ".", port);
	if (!tmpconf_load(path, text, &cfg))
		return false;
	if (st_open_cfg(cfg, &store, why, sizeof why) != ENR_OK)
		return false;
	return rot_sync_keys(store, cfg) == ENR_OK && up_global_init() == ENR_OK;
}

static struct rot_ctx ctx_of(void)
{
	struct rot_ctx c = { store, cfg, NULL, CFG_EP_ENQUEUE, 0 };

	c.deadline_mono_ms = util_deadline_in(10000);
	return c;
}

struct submitter {
	int base, n;
	char emails[25][48];
	struct bulk_item it[25];
	int answered, hits;
};

static void *submit_and_wait(void *arg)
{
	struct submitter *s = arg;
	struct rot_ctx c = ctx_of();
	const struct cfg_provider *p = cfg_provider_find(cfg, "pdl");

	for (int i = 0; i < s->n; i++) {
		struct bulk_item *it = &s->it[i];

		bulk_item_init(it);
		snprintf(s->emails[i], sizeof s->emails[i], "%s%d@acme.com",
			 (s->base + i) % 10 == 9 ? "miss" : "ann", s->base + i);
		it->p = p;
		it->q.id[ID_EMAIL] = s->emails[i];
		it->q.want = FLD_ALL;
		enr_ignore(cache_key_text("pdl", "person", s->emails[i], it->key));
		it->cacheable = true;
		it->deadline_mono_ms = c.deadline_mono_ms;
		if (bulk_submit(&c, it, 100, 300) != ENR_OK)
			return NULL;
	}
	for (int i = 0; i < s->n; i++) {
		bulk_wait(&s->it[i]);
		s->answered += s->it[i].rep.status == ROT_ANSWERED;
		s->hits += s->it[i].res.outcome == PROV_HIT;
	}
	st_thread_release(store);
	up_thread_cleanup();
	return NULL;
}

TEST(lookups_of_four_threads_share_one_call)
{
	struct submitter s[4];
	pthread_t t[4];
	int answered = 0, hits = 0;

	atomic_store(&calls, 0);
	atomic_store(&items_seen, 0);
	for (int i = 0; i < 4; i++) {
		memset(&s[i], 0, sizeof s[i]);
		s[i].base = i * 25;
		s[i].n = 25;
		pthread_create(&t[i], NULL, submit_and_wait, &s[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		answered += s[i].answered;
		hits += s[i].hits;
	}
	CHECK_INT(atomic_load(&calls), 1);
	CHECK_INT(atomic_load(&items_seen), 100);
	CHECK_INT(answered, 100);
	CHECK_INT(hits, 90); /* every tenth is a miss */
	/* Each answer is its own, by id, and already in the cache. */
	CHECK_STR(s[1].it[3].res.value[FLD_FIRST_NAME], "ann28");
	CHECK_INT(s[1].it[3].res.credits, 1);
	CHECK_INT(s[0].it[9].res.outcome, PROV_MISS);
	/* The one call is counted once, at the batch's first item. */
	{
		int counted = 0;

		for (int i = 0; i < 4; i++) {
			for (int k = 0; k < 25; k++)
				counted += s[i].it[k].rep.calls;
		}
		CHECK_INT(counted, 1);
	}
	{
		struct prov_result r;

		prov_result_init(&r);
		CHECK_INT(cache_get(store, s[3].it[5].key, util_now_ms(), &r), ENR_OK);
		CHECK_STR(r.value[FLD_FIRST_NAME], "ann80");
		CHECK_INT(r.bought_credits, 1);
		prov_result_release(&r);
	}
	for (int i = 0; i < 4; i++) {
		for (int k = 0; k < 25; k++)
			bulk_item_release(&s[i].it[k]);
	}
}

TEST(a_429_moves_the_whole_call_to_the_next_key)
{
	struct submitter s;

	atomic_store(&calls, 0);
	atomic_store(&items_seen, 0);
	atomic_store(&k1_429, 1);
	memset(&s, 0, sizeof s);
	s.base = 200;
	s.n = 8;
	submit_and_wait(&s);
	CHECK_INT(atomic_load(&calls), 2);
	CHECK_INT(atomic_load(&items_seen), 8); /* the refused call's items were not read */
	CHECK_INT(s.answered, 8);
	CHECK_STR(s.it[0].rep.key_id, "pdl-2");
	for (int k = 0; k < 8; k++)
		bulk_item_release(&s.it[k]);
}

static atomic_int done_calls;

static void on_done(struct bulk_item *it, void *arg)
{
	(void)it;
	(void)arg;
	atomic_fetch_add(&done_calls, 1);
}

TEST(an_event_loop_makes_a_batch_once_its_linger_passed)
{
	struct rot_ctx c = ctx_of();
	struct bulk_item it[3];
	char emails[3][32];
	int64_t due;

	atomic_store(&calls, 0);
	atomic_store(&done_calls, 0);
	for (int i = 0; i < 3; i++) {
		bulk_item_init(&it[i]);
		snprintf(emails[i], sizeof emails[i], "loop%d@acme.com", i);
		it[i].p = cfg_provider_find(cfg, "pdl");
		it[i].q.id[ID_EMAIL] = emails[i];
		it[i].q.want = FLD_ALL;
		it[i].on_done = on_done;
		REQUIRE(bulk_submit(&c, &it[i], 100, 150) == ENR_OK);
	}
	/* Not due yet: nothing is made, and the poll says when it will be. */
	due = bulk_poll(util_mono_ms());
	CHECK(due > util_mono_ms());
	CHECK_INT(atomic_load(&calls), 0);
	/* Polled as a loop's timer would, until nothing is open. */
	{
		int64_t bound = util_deadline_in(5000);

		while (bulk_poll(util_mono_ms()) != 0 && !util_deadline_passed(bound))
			util_sleep_ms(5);
	}
	CHECK(util_mono_ms() >= due);
	CHECK_INT(atomic_load(&calls), 1);
	CHECK_INT(atomic_load(&done_calls), 3);
	for (int i = 0; i < 3; i++) {
		CHECK(it[i].done);
		CHECK_INT(it[i].rep.status, ROT_ANSWERED);
		bulk_item_release(&it[i]);
	}
}

int main(void)
{
	if (!setup()) {
		printf("FAIL tests/unit/test_bulk.c:setup\n");
		return 1;
	}
	bulk_init();
	rot_init();
	RUN(lookups_of_four_threads_share_one_call);
	RUN(a_429_moves_the_whole_call_to_the_next_key);
	RUN(an_event_loop_makes_a_batch_once_its_linger_passed);
	st_close(store);
	cfg_release(cfg);
	tmpconf_remove(dir);
	return harness_done();
}
