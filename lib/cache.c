/*
 * cache.c - provider answers in the store; in-flight deduplication.
 */
#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "buf.h"
#include "util.h"

enum enr_err cache_key(const char *provider, const char *variant, const struct rec *r,
		       unsigned char out[CACHE_KEY_LEN])
{
	struct buf b;
	unsigned int n = CACHE_KEY_LEN;
	enum enr_err rc;

	buf_init(&b, 0);
	rc = buf_printf(&b, "%s|%s|", provider, variant);
	if (rc == ENR_OK)
		rc = rec_cache_key(r, &b);
	if (rc == ENR_OK)
		EVP_Digest(b.data, b.len, out, &n, EVP_sha256(), NULL);
	buf_release(&b);
	return rc;
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

enum enr_err cache_put(struct store *s, const struct cfg *cfg,
		       const unsigned char key[CACHE_KEY_LEN], const char *provider,
		       const struct prov_result *res, int64_t now_ms)
{
	json_t *j, *fields;
	char *body;
	int64_t ttl;
	enum enr_err rc;

	if (res->outcome != PROV_HIT && res->outcome != PROV_MISS)
		return ENR_OK;
	ttl = res->outcome == PROV_HIT ? cfg->cache.hit_ttl_s : cfg->cache.miss_ttl_s;
	if (!cfg->cache.enabled || ttl <= 0)
		return ENR_OK;
	fields = json_object();
	if (fields == NULL)
		return ENR_E_NOMEM;
	for (int f = 0; f < FLD__MAX; f++) {
		if (res->value[f])
			json_object_set_new(fields, fld_names[f],
					    json_pack("[s, f]", res->value[f], res->confidence[f]));
	}
	j = json_pack("{s:o}", "f", fields);
	body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (body == NULL)
		return ENR_E_NOMEM;
	rc = st_cache_put(s, key, provider, res->outcome == PROV_HIT, body, now_ms + ttl * 1000);
	free(body);
	if (rc == ENR_OK)
		mem_put(key, res, now_ms + ttl * 1000);
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
	pthread_cond_t cv;
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
	pthread_cond_destroy(&f->cv);
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
		if (util_cond_init(&f->cv) != ENR_OK) {
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
		int64_t left = util_deadline_left(deadline_mono_ms);

		if (left <= 0)
			break;
		/* Woken, timed out or spurious: the loop looks again. */
		if (left == INT64_MAX)
			pthread_cond_wait(&f->cv, &fl[b].lock);
		else
			(void)util_cond_wait_ms(&f->cv, &fl[b].lock, left);
	}
	fl_unref(b, f);
	pthread_mutex_unlock(&fl[b].lock);
	return false;
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
		pthread_cond_broadcast(&f->cv);
		fl_unref(b, f);
	}
	pthread_mutex_unlock(&fl[b].lock);
}
