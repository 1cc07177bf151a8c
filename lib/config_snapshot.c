/*
 * config_snapshot.c - the current configuration snapshot: publish,
 * acquire, release, generation.
 *
 * A loaded struct cfg never changes.  The responder publishes one as
 * current; each request takes a reference and drops it when done, so a
 * reload swaps in a fresh snapshot while requests in flight finish on the
 * one they started with, and the old one is freed by its last user.
 */
#include "config_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void list_free(struct cfg_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static void secret_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void generic_free(struct cfg_generic *g)
{
	if (g == NULL)
		return;
	free(g->method);
	free(g->url);
	free(g->body);
	free(g->auth_header);
	free(g->auth_prefix);
	for (size_t i = 0; i < sizeof g->fields / sizeof g->fields[0]; i++)
		free(g->fields[i]);
	free(g->miss.v);
	free(g->key_invalid.v);
	free(g->quota_exhausted.v);
	free(g->rate_limited.v);
	free(g->request_rejected.v);
	free(g);
}

static void search_free(struct cfg_generic_search *g)
{
	if (g == NULL)
		return;
	free(g->method);
	free(g->url);
	free(g->body);
	free(g->results);
	free(g->next_cursor);
	free(g->total);
	free(g->domain);
	for (size_t i = 0; i < sizeof g->fields / sizeof g->fields[0]; i++)
		free(g->fields[i]);
	free(g->miss.v);
	free(g->key_invalid.v);
	free(g->quota_exhausted.v);
	free(g->rate_limited.v);
	free(g->request_rejected.v);
	free(g);
}

static void provider_release(struct cfg_provider *p)
{
	free(p->name);
	free(p->kind);
	free(p->base_url);
	free(p->ca_file);
	for (size_t k = 0; k < p->nkeys; k++) {
		free(p->keys[k].id);
		free(p->keys[k].account);
		secret_free(p->keys[k].secret);
		free(p->keys[k].category);
	}
	free(p->keys);
	generic_free(p->generic);
	for (size_t i = 0; i < sizeof p->search / sizeof p->search[0]; i++)
		search_free(p->search[i]);
}

void cfg_free(struct cfg *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->listen);
	free(c->log_file);
	free(c->store);
	free(c->store_password);
	free(c->data_dir);
	free(c->state_dir);
	free(c->listen_group);
	free(c->server_name);
	list_free(&c->cors_origins);
	for (int g = 0; g < CFG_GROUP__MAX; g++)
		list_free(&c->waterfall[g]);
	free(c->alerts.webhook_url);
	secret_free(c->webhooks.secret);
	list_free(&c->search.people);
	list_free(&c->search.companies);
	secret_free(c->search.cursor_secret);
	for (size_t i = 0; i < c->nproviders; i++)
		provider_release(&c->providers[i]);
	free(c->providers);
	free(c);
}

static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfg *cfg_current;
static unsigned cfg_gen;

void cfg_release(struct cfg *c)
{
	int left;

	if (c == NULL)
		return;
	left = __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	if (left == 0)
		cfg_free(c);
}

struct cfg *cfg_share(struct cfg *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	return c;
}

void cfg_publish(struct cfg *c)
{
	struct cfg *old;

	pthread_mutex_lock(&cfg_lock);
	old = cfg_current;
	cfg_current = c;
	__atomic_add_fetch(&cfg_gen, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&cfg_lock);
	cfg_release(old);
}

struct cfg *cfg_acquire(void)
{
	struct cfg *c;

	/* The lock makes "read the pointer, take a reference" one step, so a
	 * concurrent publish cannot free the snapshot in between. */
	pthread_mutex_lock(&cfg_lock);
	c = cfg_current;
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&cfg_lock);
	return c;
}

unsigned cfg_generation(void)
{
	return __atomic_load_n(&cfg_gen, __ATOMIC_ACQUIRE);
}

const struct cfg_provider *cfg_provider_find(const struct cfg *c, const char *name)
{
	for (size_t i = 0; i < c->nproviders; i++) {
		if (c->providers[i].name && strcmp(c->providers[i].name, name) == 0)
			return &c->providers[i];
	}
	return NULL;
}
