/*
 * usage_journal.c - crash-safe usage counts in a mapped file.
 *
 * File layout: a header (magic, slot count, the store's identity, the
 * journal's id) and UJ_SLOTS slots.  A slot's key packs the account and
 * the day number ((account << 20) | day) and is claimed with a
 * compare-and-swap; its four counters only grow.  The owner keeps, in
 * memory, what it last flushed of each slot, so a flush writes only
 * slots that moved.
 */
#include "usage_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define UJ_MAGIC "ENRUJ001"
#define UJ_SLOTS 4096
#define UJ_RETIRED_MAX 8
#define UJ_PREFIX "usage-"
#define UJ_SUFFIX ".journal"

struct uj_slot {
	uint64_t key;              /* 0: free */
	int64_t requests, records, credits, rejections;
};

struct uj_file {
	char magic[8];
	uint32_t nslots;
	uint32_t pad;
	char store[65];            /* st_identity of the store it counts for */
	char id[33];
	char pad2[14];
	struct uj_slot slots[UJ_SLOTS];
};

struct uj_map {
	int fd;                    /* holds the flock */
	struct uj_file *f;
	char path[4096];
	struct st_usage_delta flushed[UJ_SLOTS];
	int used;                  /* slots claimed (approximate; atomic) */
};

struct uj {
	struct store *store;
	char dir[4096];
	pthread_rwlock_t lock;     /* add: read; rotation: write */
	struct uj_map *cur;
	struct uj_map *retired[UJ_RETIRED_MAX];
	int nretired;
};

static uint64_t slot_key(int64_t account_id, int64_t now_s)
{
	int64_t day = now_s >= 0 ? now_s / 86400 : 0;

	return ((uint64_t)account_id << 20) | ((uint64_t)day & 0xfffff);
}

static void slot_day(uint64_t key, char out[11])
{
	st_day((int64_t)(key & 0xfffff) * 86400, out);
}

static void map_free(struct uj_map *m, bool remove)
{
	if (m == NULL)
		return;
	if (m->f)
		munmap(m->f, sizeof *m->f);
	if (remove)
		unlink(m->path);
	if (m->fd >= 0)
		close(m->fd); /* drops the flock */
	free(m);
}

/* Map an existing file (fd open read-write). */
static struct uj_file *map_fd(int fd)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) != 0 || st.st_size != (off_t)sizeof(struct uj_file))
		return NULL;
	p = mmap(NULL, sizeof(struct uj_file), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

static struct uj_map *map_new(struct uj *j, enum enr_err *err)
{
	struct uj_map *m = calloc(1, sizeof *m);
	unsigned char rnd[16];

	*err = ENR_E_NOMEM;
	if (m == NULL)
		return NULL;
	m->fd = -1;
	if (util_random(rnd, sizeof rnd) != ENR_OK) {
		*err = ENR_E_IO;
		free(m);
		return NULL;
	}
	{
		char id[33];

		util_hex(rnd, sizeof rnd, id);
		if (snprintf(m->path, sizeof m->path, "%s/" UJ_PREFIX "%s" UJ_SUFFIX, j->dir, id) >=
		    (int)sizeof m->path) {
			*err = ENR_E_INVALID;
			free(m);
			return NULL;
		}
		m->fd = open(m->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		*err = ENR_E_IO;
		if (m->fd < 0 || flock(m->fd, LOCK_EX | LOCK_NB) != 0 ||
		    ftruncate(m->fd, sizeof(struct uj_file)) != 0 || (m->f = map_fd(m->fd)) == NULL) {
			map_free(m, m->fd >= 0);
			return NULL;
		}
		memcpy(m->f->id, id, sizeof id);
	}
	st_identity(j->store, m->f->store);
	m->f->nslots = UJ_SLOTS;
	/* The magic last: a replayer ignores a file it cannot trust yet. */
	memcpy(m->f->magic, UJ_MAGIC, 8);
	*err = ENR_OK;
	return m;
}

struct uj *uj_open(struct store *s, const char *dir, enum enr_err *err)
{
	struct uj *j = calloc(1, sizeof *j);

	if (j == NULL) {
		*err = ENR_E_NOMEM;
		return NULL;
	}
	j->store = s;
	if (!util_strlcpy(j->dir, dir, sizeof j->dir)) {
		*err = ENR_E_INVALID;
		free(j);
		return NULL;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		*err = ENR_E_IO;
		free(j);
		return NULL;
	}
	pthread_rwlock_init(&j->lock, NULL);
	j->cur = map_new(j, err);
	if (j->cur == NULL) {
		pthread_rwlock_destroy(&j->lock);
		free(j);
		return NULL;
	}
	return j;
}

const char *uj_path(const struct uj *j)
{
	return j->cur ? j->cur->path : "";
}

bool uj_add(struct uj *j, int64_t account_id, int64_t now_s, const struct st_usage_delta *d)
{
	uint64_t key = slot_key(account_id, now_s);
	bool ok = false;

	if (j == NULL || account_id <= 0)
		return false;
	pthread_rwlock_rdlock(&j->lock);
	{
		struct uj_map *m = j->cur;
		unsigned h = (unsigned)((key * 0x9E3779B97F4A7C15ull) >> 40) % UJ_SLOTS;

		for (unsigned i = 0; m && i < UJ_SLOTS; i++) {
			struct uj_slot *sl = &m->f->slots[(h + i) % UJ_SLOTS];
			uint64_t k = __atomic_load_n(&sl->key, __ATOMIC_ACQUIRE);

			if (k == 0) {
				uint64_t expected = 0;

				if (__atomic_compare_exchange_n(&sl->key, &expected, key, false,
								__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
					__atomic_add_fetch(&m->used, 1, __ATOMIC_RELAXED);
					k = key;
				} else {
					k = expected;
				}
			}
			if (k != key)
				continue;
			__atomic_add_fetch(&sl->requests, d->requests, __ATOMIC_RELAXED);
			__atomic_add_fetch(&sl->records, d->records, __ATOMIC_RELAXED);
			__atomic_add_fetch(&sl->credits, d->credits, __ATOMIC_RELAXED);
			__atomic_add_fetch(&sl->rejections, d->rejections, __ATOMIC_RELAXED);
			ok = true;
			break;
		}
	}
	pthread_rwlock_unlock(&j->lock);
	return ok;
}

/* The lines of m that moved since it was last flushed (all of them with
 * `all`), and the slot each came from.  Both arrays are the caller's. */
static enum enr_err map_lines(const struct uj_map *m, bool all, struct st_journal_line **lines,
			      unsigned **from, size_t *n)
{
	struct st_journal_line *l = calloc(UJ_SLOTS, sizeof *l);
	unsigned *idx = calloc(UJ_SLOTS, sizeof *idx);
	size_t k = 0;

	if (l == NULL || idx == NULL) {
		free(l);
		free(idx);
		return ENR_E_NOMEM;
	}
	for (unsigned i = 0; i < UJ_SLOTS; i++) {
		const struct uj_slot *sl = &m->f->slots[i];
		uint64_t key = __atomic_load_n(&sl->key, __ATOMIC_ACQUIRE);
		struct st_usage_delta t;

		if (key == 0)
			continue;
		t.requests = __atomic_load_n(&sl->requests, __ATOMIC_RELAXED);
		t.records = __atomic_load_n(&sl->records, __ATOMIC_RELAXED);
		t.credits = __atomic_load_n(&sl->credits, __ATOMIC_RELAXED);
		t.rejections = __atomic_load_n(&sl->rejections, __ATOMIC_RELAXED);
		if (!all && memcmp(&t, &m->flushed[i], sizeof t) == 0)
			continue;
		l[k].account_id = (int64_t)(key >> 20);
		slot_day(key, l[k].day);
		l[k].total = t;
		idx[k] = i;
		k++;
	}
	*lines = l;
	*from = idx;
	*n = k;
	return ENR_OK;
}

/* Flush m; on success remember what was written (counts that moved after
 * the read go with the next flush: the store's marks say what was). */
static enum enr_err map_flush(struct store *s, struct uj_map *m, bool all)
{
	struct st_journal_line *lines = NULL;
	unsigned *from = NULL;
	size_t n = 0;
	enum enr_err rc = map_lines(m, all, &lines, &from, &n);

	if (rc == ENR_OK)
		rc = st_usage_journal_flush(s, m->f->id, lines, n);
	if (rc == ENR_OK) {
		for (size_t k = 0; k < n; k++)
			m->flushed[from[k]] = lines[k].total;
	}
	free(lines);
	free(from);
	return rc;
}

/* Flush a journal that no one counts into any more, then remove it. */
static enum enr_err map_finish(struct store *s, struct uj_map *m)
{
	enum enr_err rc = map_flush(s, m, true);

	if (rc == ENR_OK) {
		char id[33];

		util_strlcpy(id, m->f->id, sizeof id);
		map_free(m, true);
		/* A failure here leaves marks nobody reads again. */
		if (st_usage_journal_forget(s, id) != ENR_OK)
			log_info("usage", "marks of journal %s left in the store", id);
	}
	return rc;
}

enum enr_err uj_flush(struct uj *j)
{
	enum enr_err rc = ENR_OK;

	if (j == NULL)
		return ENR_OK;
	for (int i = 0; i < j->nretired;) {
		if (map_finish(j->store, j->retired[i]) == ENR_OK) {
			j->retired[i] = j->retired[--j->nretired];
			continue;
		}
		rc = ENR_E_UNAVAILABLE;
		i++;
	}
	if (rc)
		return rc;
	rc = map_flush(j->store, j->cur, false);
	if (rc == ENR_OK && __atomic_load_n(&j->cur->used, __ATOMIC_RELAXED) > UJ_SLOTS * 3 / 4 &&
	    j->nretired < UJ_RETIRED_MAX) {
		enum enr_err e;
		struct uj_map *next = map_new(j, &e);

		if (next) {
			pthread_rwlock_wrlock(&j->lock);
			j->retired[j->nretired++] = j->cur;
			j->cur = next;
			pthread_rwlock_unlock(&j->lock);
		}
	}
	return rc;
}

void uj_close(struct uj *j)
{
	if (j == NULL)
		return;
	for (int i = 0; i < j->nretired; i++) {
		if (map_finish(j->store, j->retired[i]) != ENR_OK)
			map_free(j->retired[i], false); /* a replay finishes it */
	}
	if (j->cur && map_finish(j->store, j->cur) != ENR_OK) {
		log_warn("usage", "usage journal %s kept for the next start: the store is unavailable",
			 j->cur->path);
		map_free(j->cur, false);
	}
	pthread_rwlock_destroy(&j->lock);
	free(j);
}

enum enr_err uj_replay(struct store *s, const char *dir, int *n)
{
	char me[65];
	DIR *d = opendir(dir);
	struct dirent *e;
	enum enr_err rc = ENR_OK;
	int done = 0;

	if (d == NULL)
		return errno == ENOENT ? ENR_OK : ENR_E_IO;
	st_identity(s, me);
	while ((e = readdir(d)) != NULL) {
		struct uj_map *m;
		size_t len = strlen(e->d_name);

		if (strncmp(e->d_name, UJ_PREFIX, strlen(UJ_PREFIX)) != 0 || len < strlen(UJ_SUFFIX) ||
		    strcmp(e->d_name + len - strlen(UJ_SUFFIX), UJ_SUFFIX) != 0)
			continue;
		m = calloc(1, sizeof *m);
		if (m == NULL) {
			rc = ENR_E_NOMEM;
			break;
		}
		snprintf(m->path, sizeof m->path, "%s/%s", dir, e->d_name);
		m->fd = open(m->path, O_RDWR | O_CLOEXEC);
		/* A held lock is a live owner: its journal is its own. */
		if (m->fd < 0 || flock(m->fd, LOCK_EX | LOCK_NB) != 0 ||
		    (m->f = map_fd(m->fd)) == NULL || memcmp(m->f->magic, UJ_MAGIC, 8) != 0 ||
		    m->f->nslots != UJ_SLOTS || strncmp(m->f->store, me, sizeof me) != 0) {
			map_free(m, false);
			continue;
		}
		m->f->id[sizeof m->f->id - 1] = '\0';
		if (map_finish(s, m) != ENR_OK) {
			map_free(m, false);
			rc = ENR_E_UNAVAILABLE;
			continue;
		}
		log_notice("usage", "replayed the usage journal of a process that stopped (%s)",
			   e->d_name);
		done++;
	}
	closedir(d);
	if (n)
		*n = done;
	return rc;
}
