/*
 * cache.c - provider answers in the store; in-flight deduplication.
 */
#include "cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "co.h"
#include "digest.h"
#include "jw.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* "provider|variant|" and then what the caller appends, hashed. */
static enum enr_err key_begin(struct buf *b, const char *provider, const char *variant)
{
	enum enr_err rc = buf_reserve(b, 200);

	if (rc == ENR_OK)
		rc = buf_puts(b, provider);
	if (rc == ENR_OK)
		rc = buf_putc(b, '|');
	if (rc == ENR_OK)
		rc = buf_puts(b, variant);
	if (rc == ENR_OK)
		rc = buf_putc(b, '|');
	return rc;
}

enum enr_err cache_key(const char *provider, const char *variant, const struct rec *r,
		       unsigned char out[CACHE_KEY_LEN])
{
	struct buf b;
	enum enr_err rc;

	buf_init(&b, 0);
	rc = key_begin(&b, provider, variant);
	if (rc == ENR_OK)
		rc = rec_cache_key(r, &b);
	if (rc == ENR_OK)
		rc = dg_sha256(b.data, b.len, out);
	buf_release(&b);
	return rc;
}

enum enr_err cache_key_text(const char *provider, const char *variant, const char *text,
			    unsigned char out[CACHE_KEY_LEN])
{
	const void *parts[] = { provider, "|", variant, "|v1|", text };
	size_t lens[] = { strlen(provider), 1, strlen(variant), 4, strlen(text) };

	return dg_sha256_parts(parts, lens, 5, out);
}

/* ---- the process's copy of hot entries ---------------------------------------
 *
 * A cache hit is the hottest path of the service; a small direct-mapped
 * table in memory answers repeats without a database round trip.  Entries
 * carry their store expiry, so the memory copy never outlives the store's;
 * striped locks keep threads from queueing on one lock.
 */
#define MEM_SLOTS 8192
#define MEM_STRIPES 64

struct mem_entry {
	unsigned char key[CACHE_KEY_LEN];
	int64_t expires_ms;          /* 0: empty */
	bool hit;
	int bought_credits;
	char company_domain[254];
	char *value[FLD__MAX];
	double confidence[FLD__MAX];
};

static struct mem_entry mem[MEM_SLOTS];
static pthread_mutex_t mem_locks[MEM_STRIPES];
static pthread_once_t mem_once = PTHREAD_ONCE_INIT;

static void mem_init(void)
{
	for (int i = 0; i < MEM_STRIPES; i++)
		pthread_mutex_init(&mem_locks[i], NULL);
}

static unsigned mem_slot(const unsigned char key[CACHE_KEY_LEN])
{
	return ((unsigned)key[0] | (unsigned)key[1] << 8 | (unsigned)key[2] << 16) % MEM_SLOTS;
}

static bool mem_get(const unsigned char key[CACHE_KEY_LEN], int64_t now_ms, struct prov_result *out)
{
	unsigned i = mem_slot(key);
	struct mem_entry *e = &mem[i];
	bool found = false;

	pthread_once(&mem_once, mem_init);
	pthread_mutex_lock(&mem_locks[i % MEM_STRIPES]);
	if (e->expires_ms > now_ms && memcmp(e->key, key, CACHE_KEY_LEN) == 0) {
		prov_result_reset(out);
		out->outcome = e->hit ? PROV_HIT : PROV_MISS;
		out->credits = 0;
		out->bought_credits = e->bought_credits;
		util_strlcpy(out->company_domain, e->company_domain, sizeof out->company_domain);
		found = true;
		for (int f = 0; found && f < FLD__MAX; f++) {
			if (e->value[f] &&
			    prov_result_set(out, (enum fld_id)f, e->value[f], strlen(e->value[f]),
					    e->confidence[f]) != ENR_OK)
				found = false; /* out of memory: the store has it too */
		}
		if (!found)
			prov_result_reset(out);
	}
	pthread_mutex_unlock(&mem_locks[i % MEM_STRIPES]);
	return found;
}

static void mem_put(const unsigned char key[CACHE_KEY_LEN], const struct prov_result *res,
		    int64_t expires_ms)
{
	unsigned i = mem_slot(key);
	struct mem_entry *e = &mem[i];
	char *copy[FLD__MAX] = { NULL };

	for (int f = 0; f < FLD__MAX; f++) {
		if (res->value[f] && (copy[f] = strdup(res->value[f])) == NULL) {
			for (int g = 0; g < f; g++)
				free(copy[g]);
			return;
		}
	}
	pthread_once(&mem_once, mem_init);
	pthread_mutex_lock(&mem_locks[i % MEM_STRIPES]);
	for (int f = 0; f < FLD__MAX; f++) {
		free(e->value[f]);
		e->value[f] = copy[f];
		e->confidence[f] = res->confidence[f];
	}
	memcpy(e->key, key, CACHE_KEY_LEN);
	e->hit = res->outcome == PROV_HIT;
	e->bought_credits = res->bought_credits;
	util_strlcpy(e->company_domain, res->company_domain, sizeof e->company_domain);
	e->expires_ms = expires_ms;
	pthread_mutex_unlock(&mem_locks[i % MEM_STRIPES]);
}

enum enr_err cache_get(struct store *s, const unsigned char key[CACHE_KEY_LEN], int64_t now_ms,
		       struct prov_result *out)
{
	char *body = NULL;
	bool hit = false;
	json_t *j, *fields, *v;
	const char *name;
	int64_t expires_ms = 0;
	enum enr_err rc;

	if (mem_get(key, now_ms, out))
		return ENR_OK;
	rc = st_cache_get(s, key, now_ms, &hit, &body, &expires_ms);
	if (rc)
		return rc;
	j = json_loads(body, 0, NULL);
	free(body);
	if (j == NULL)
		return ENR_E_NOT_FOUND; /* unreadable: treat as absent, it will be rewritten */
	prov_result_reset(out);
	out->outcome = hit ? PROV_HIT : PROV_MISS;
	out->credits = 0;
	v = json_object_get(j, "c");
	out->bought_credits = json_is_integer(v) && json_integer_value(v) >= 0 &&
				      json_integer_value(v) < 1000000
			      ? (int)json_integer_value(v)
			      : 0;
	v = json_object_get(j, "cd");
	if (json_is_string(v))
		util_strlcpy(out->company_domain, json_string_value(v), sizeof out->company_domain);
	fields = json_object_get(j, "f");
	json_object_foreach(fields, name, v) {
		enum fld_id f;
		const char *val = json_string_value(json_array_get(v, 0));

		if (val && fld_parse(name, &f) &&
		    (rc = prov_result_set(out, f, val, strlen(val),
					  json_number_value(json_array_get(v, 1)))) != ENR_OK) {
			json_decref(j);
			prov_result_reset(out);
			return rc;
		}
	}
	json_decref(j);
	mem_put(key, out, expires_ms);
	return ENR_OK;
}

/* ---- group commit of the engine's writes --------------------------------------
 *
 * A continuation on the loop queues its entry and waits for the batch it
 * lands in: one transaction for whatever is queued, so writes cost a
 * commit each only while the store keeps up.  Everyone else writes alone.
 */

static int put_kind = -1;

struct put_item {
	struct co_write w;   /* first */
	struct st_cache_row row;
	enum enr_err rc;
};

static void put_batch(struct store *st, struct co_write **items, size_t n, void *arg)
{
	struct st_cache_row rows[CO_WRITE_BATCH_MAX];

	(void)arg;
	for (size_t at = 0; at < n; at += CO_WRITE_BATCH_MAX) {
		size_t m = n - at < CO_WRITE_BATCH_MAX ? n - at : CO_WRITE_BATCH_MAX;
		enum enr_err rc;

		for (size_t i = 0; i < m; i++)
			rows[i] = ((struct put_item *)items[at + i])->row;
		rc = st_cache_put_many(st, rows, m);
		for (size_t i = 0; i < m; i++)
			((struct put_item *)items[at + i])->rc = rc;
	}
}

void cache_group_commit(void)
{
	put_kind = co_write_kind(put_batch, NULL);
}

static enum enr_err put(struct store *s, const unsigned char key[CACHE_KEY_LEN],
			const char *provider, bool hit, const char *body, int64_t expires_ms)
{
	struct put_item it = { .row = { key, provider, hit, body, expires_ms }, .rc = ENR_OK };

	if (co_write(put_kind, &it.w))
		return it.rc;
	return st_cache_put(s, key, provider, hit, body, expires_ms);
}

enum enr_err cache_put(struct store *s, const struct cfg *cfg,
		       const unsigned char key[CACHE_KEY_LEN], const char *provider,
		       const struct prov_result *res, int64_t now_ms)
{
	struct buf b;
	struct jw w;
	const char *body;
	int64_t ttl;
	enum enr_err rc;

	if (res->outcome != PROV_HIT && res->outcome != PROV_MISS)
		return ENR_OK;
	ttl = res->outcome == PROV_HIT ? cfg->cache.hit_ttl_s : cfg->cache.miss_ttl_s;
	if (!cfg->cache.enabled || ttl <= 0)
		return ENR_OK;
	/* What the answer cost ("c") is what a later hit saves; the company a
	 * person answer named ("cd") keys the company lookup it leads to. */
	buf_init(&b, 0);
	jw_init(&w, &b);
	jw_object(&w);
	jw_key(&w, "f");
	jw_object(&w);
	for (int f = 0; f < FLD__MAX; f++) {
		if (!res->value[f])
			continue;
		jw_key(&w, fld_names[f]);
		jw_array(&w);
		jw_string(&w, res->value[f]);
		jw_real(&w, res->confidence[f]);
		jw_end(&w);
	}
	jw_end(&w);
	jw_key(&w, "c");
	jw_int(&w, res->credits);
	if (res->company_domain[0]) {
		jw_key(&w, "cd");
		jw_string(&w, res->company_domain);
	}
	jw_end(&w);
	rc = jw_finish(&w);
	if (rc) {
		buf_release(&b);
		return rc;
	}
	body = b.data;
	rc = put(s, key, provider, res->outcome == PROV_HIT, body, now_ms + ttl * 1000);
	buf_release(&b);
	if (rc == ENR_OK) {
		struct prov_result bought = *res;

		/* The memory copy says what it cost, as the store's does. */
		bought.bought_credits = res->credits;
		mem_put(key, &bought, now_ms + ttl * 1000);
	}
	return rc;
}

/* ---- in-flight deduplication ------------------------------------------------
 *
 * Hashed by the key's first bytes into buckets with a lock each, so that
 * hundreds of concurrent lookups do not scan one list under one lock.
 */

#define FL_BUCKETS 256

struct flight {
	unsigned char key[CACHE_KEY_LEN];
	bool done;
	int refs;
	struct co_cond cv;     /* threads and continuations wait on it together */
	struct flight *next;
};

static struct {
	pthread_mutex_t lock;
	struct flight *head;
} fl[FL_BUCKETS];
static pthread_once_t fl_once = PTHREAD_ONCE_INIT;

static void fl_init(void)
{
	for (int i = 0; i < FL_BUCKETS; i++)
		pthread_mutex_init(&fl[i].lock, NULL);
}

static unsigned fl_bucket(const unsigned char key[CACHE_KEY_LEN])
{
	return ((unsigned)key[3] | (unsigned)key[4] << 8) % FL_BUCKETS;
}

static struct flight *fl_find(unsigned b, const unsigned char key[CACHE_KEY_LEN])
{
	for (struct flight *f = fl[b].head; f; f = f->next) {
		if (memcmp(f->key, key, CACHE_KEY_LEN) == 0)
			return f;
	}
	return NULL;
}

/* Drop a reference; called with the bucket's lock held. */
static void fl_unref(unsigned b, struct flight *f)
{
	if (--f->refs > 0)
		return;
	for (struct flight **pp = &fl[b].head; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	co_cond_release(&f->cv);
	free(f);
}

bool cache_flight_begin(const unsigned char key[CACHE_KEY_LEN], int64_t deadline_mono_ms)
{
	unsigned b = fl_bucket(key);
	struct flight *f;

	pthread_once(&fl_once, fl_init);
	pthread_mutex_lock(&fl[b].lock);
	f = fl_find(b, key);
	if (f == NULL) {
		f = calloc(1, sizeof *f);
		if (f == NULL) {
			pthread_mutex_unlock(&fl[b].lock);
			return true; /* no memory to coordinate: just do the lookup */
		}
		if (co_cond_init(&f->cv) != ENR_OK) {
			free(f);
			pthread_mutex_unlock(&fl[b].lock);
			return true; /* as above: the lookup goes ahead alone */
		}
		memcpy(f->key, key, CACHE_KEY_LEN);
		f->refs = 1;
		f->next = fl[b].head;
		fl[b].head = f;
		pthread_mutex_unlock(&fl[b].lock);
		return true;
	}
	f->refs++;
	while (!f->done) {
		if (co_deadline_left(deadline_mono_ms) <= 0)
			break;
		/* Woken, timed out or spurious: the loop looks again. */
		co_cond_wait(&f->cv, &fl[b].lock, deadline_mono_ms);
	}
	fl_unref(b, f);
	pthread_mutex_unlock(&fl[b].lock);
	return false;
}

bool cache_flight_try(const unsigned char key[CACHE_KEY_LEN])
{
	unsigned b = fl_bucket(key);
	struct flight *f;

	pthread_once(&fl_once, fl_init);
	pthread_mutex_lock(&fl[b].lock);
	f = fl_find(b, key);
	if (f != NULL) {
		pthread_mutex_unlock(&fl[b].lock);
		return false;
	}
	f = calloc(1, sizeof *f);
	if (f == NULL || co_cond_init(&f->cv) != ENR_OK) {
		free(f);
		pthread_mutex_unlock(&fl[b].lock);
		return true; /* no memory to coordinate: the lookup goes ahead alone */
	}
	memcpy(f->key, key, CACHE_KEY_LEN);
	f->refs = 1;
	f->next = fl[b].head;
	fl[b].head = f;
	pthread_mutex_unlock(&fl[b].lock);
	return true;
}

void cache_flight_wait(const unsigned char key[CACHE_KEY_LEN], int64_t deadline_mono_ms)
{
	unsigned b = fl_bucket(key);
	struct flight *f;

	pthread_once(&fl_once, fl_init);
	pthread_mutex_lock(&fl[b].lock);
	f = fl_find(b, key);
	if (f == NULL) {
		pthread_mutex_unlock(&fl[b].lock);
		return;
	}
	f->refs++;
	while (!f->done) {
		if (co_deadline_left(deadline_mono_ms) <= 0)
			break;
		co_cond_wait(&f->cv, &fl[b].lock, deadline_mono_ms);
	}
	fl_unref(b, f);
	pthread_mutex_unlock(&fl[b].lock);
}

int cache_flight_refs(const unsigned char key[CACHE_KEY_LEN])
{
	unsigned b = fl_bucket(key);
	struct flight *f;
	int n;

	pthread_once(&fl_once, fl_init);
	pthread_mutex_lock(&fl[b].lock);
	f = fl_find(b, key);
	n = f && !f->done ? f->refs : 0;
	pthread_mutex_unlock(&fl[b].lock);
	return n;
}

void cache_flight_end(const unsigned char key[CACHE_KEY_LEN])
{
	unsigned b = fl_bucket(key);
	struct flight *f;

	pthread_once(&fl_once, fl_init);
	pthread_mutex_lock(&fl[b].lock);
	f = fl_find(b, key);
	if (f && !f->done) {
		f->done = true;
		co_cond_broadcast(&f->cv);
		fl_unref(b, f);
	}
	pthread_mutex_unlock(&fl[b].lock);
}

/* ---- claims across processes ------------------------------------------------- */

static pthread_once_t owner_once = PTHREAD_ONCE_INIT;
static char owner_name[128];

static void owner_init(void)
{
	char host[64] = "host";
	unsigned char r[4] = { 0, 0, 0, 0 };

	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = '\0';
	/* Without randomness host and pid still tell live processes apart. */
	enr_ignore(util_random(r, sizeof r));
	snprintf(owner_name, sizeof owner_name, "%s:%d:%02x%02x%02x%02x", host, (int)getpid(), r[0],
		 r[1], r[2], r[3]);
}

const char *cache_owner(void)
{
	pthread_once(&owner_once, owner_init);
	return owner_name;
}

void cache_claim(struct store *s, const unsigned char key[CACHE_KEY_LEN], int64_t now_ms,
		 int64_t until_ms, bool *mine)
{
	enum enr_err rc = st_flight_claim(s, key, cache_owner(), now_ms, until_ms, mine, NULL);

	if (rc) {
		log_warn("cache", "claim on a lookup not taken (%s): making it without one",
			 enr_strerror(rc));
		*mine = true;
	}
}

void cache_claim_release(struct store *s, const unsigned char key[CACHE_KEY_LEN])
{
	enum enr_err rc = st_flight_release(s, key, cache_owner());

	/* A claim left behind expires by itself. */
	if (rc)
		log_warn("cache", "claim on a lookup not released (%s): it expires by itself",
			 enr_strerror(rc));
}

enum enr_err cache_claim_wait(struct store *s, const unsigned char key[CACHE_KEY_LEN],
			      int64_t deadline_mono_ms, struct prov_result *out)
{
	int64_t step = 10;

	for (;;) {
		bool held = true;
		int64_t left;

		if (cache_get(s, key, util_now_ms(), out) == ENR_OK)
			return ENR_OK;
		if (st_flight_get(s, key, util_now_ms(), &held, NULL) == ENR_OK && !held) {
			/* The holder finished: its answer may have landed just now. */
			return cache_get(s, key, util_now_ms(), out) == ENR_OK ? ENR_OK
									       : ENR_E_NOT_FOUND;
		}
		left = deadline_mono_ms > 0 ? co_deadline_left(deadline_mono_ms) : step;
		if (left <= 0 || co_cancelled())
			return ENR_E_NOT_FOUND;
		co_sleep_ms(left < step ? left : step);
		if (step < 50)
			step += 10;
	}
}

/* ---- savings --------------------------------------------------------------------- */

#define SAVE_PROVIDERS_MAX 64

static pthread_mutex_t save_lock = PTHREAD_MUTEX_INITIALIZER;
static struct saving {
	char provider[LIM_NAME_MAX + 1];
	char day[11];
	int64_t cache_calls, cache_credits, flight_calls, flight_credits;
} savings[SAVE_PROVIDERS_MAX];
void cache_saved(const char *provider, bool coalesced, int credits)
{
	char day[11];

	st_day(util_now_ms() / 1000, day);
	pthread_mutex_lock(&save_lock);
	for (int i = 0; i < SAVE_PROVIDERS_MAX; i++) {
		struct saving *v = &savings[i];

		if (v->provider[0] == '\0') {
			util_strlcpy(v->provider, provider, sizeof v->provider);
			util_strlcpy(v->day, day, sizeof v->day);
		}
		if (strcmp(v->provider, provider) == 0 && strcmp(v->day, day) == 0) {
			if (coalesced) {
				v->flight_calls++;
				v->flight_credits += credits > 0 ? credits : 0;
			} else {
				v->cache_calls++;
				v->cache_credits += credits > 0 ? credits : 0;
			}
			break;
		}
	}
	pthread_mutex_unlock(&save_lock);
}

void cache_savings_flush(struct store *s, int64_t now_ms)
{
	struct saving out[SAVE_PROVIDERS_MAX];
	int n = 0, failed = 0;
	char today[11];

	st_day(now_ms / 1000, today);
	pthread_mutex_lock(&save_lock);
	for (int i = 0; i < SAVE_PROVIDERS_MAX && savings[i].provider[0]; i++)
		out[n++] = savings[i];
	pthread_mutex_unlock(&save_lock);
	for (int i = 0; i < n; i++) {
		struct st_savings d;

		memset(&d, 0, sizeof d);
		util_strlcpy(d.provider, out[i].provider, sizeof d.provider);
		util_strlcpy(d.day, out[i].day, sizeof d.day);
		d.cache_calls = out[i].cache_calls;
		d.cache_credits = out[i].cache_credits;
		d.flight_calls = out[i].flight_calls;
		d.flight_credits = out[i].flight_credits;
		if (st_savings_add(s, &d) != ENR_OK) {
			failed++;
			continue;
		}
		/* Only what was written leaves memory; a day that is over goes. */
		pthread_mutex_lock(&save_lock);
		for (int j = 0; j < SAVE_PROVIDERS_MAX && savings[j].provider[0]; j++) {
			struct saving *v = &savings[j];

			if (strcmp(v->provider, out[i].provider) || strcmp(v->day, out[i].day))
				continue;
			v->cache_calls -= out[i].cache_calls;
			v->cache_credits -= out[i].cache_credits;
			v->flight_calls -= out[i].flight_calls;
			v->flight_credits -= out[i].flight_credits;
			if (strcmp(v->day, today) != 0 &&
			    (v->cache_calls | v->cache_credits | v->flight_calls | v->flight_credits) == 0) {
				int last = j;

				while (last + 1 < SAVE_PROVIDERS_MAX && savings[last + 1].provider[0])
					last++;
				savings[j] = savings[last];
				memset(&savings[last], 0, sizeof savings[last]);
			}
			break;
		}
		pthread_mutex_unlock(&save_lock);
	}
	if (failed)
		log_warn("cache", "savings of %d providers not written: kept for the next flush",
			 failed);
}
