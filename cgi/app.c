/*
 * app.c - process-wide state of the responder.
 */
#include "app.h"

#include <stdbool.h>
#include <stddef.h>

#include "lib/log.h"

static bool app_is_cgi;
static struct store *store;

void app_cgi_mode(void)
{
	app_is_cgi = true;
}

enum enr_err app_init(const struct cfg *cfg)
{
	enum enr_err rc = st_open(cfg->store, &store);

	if (rc) {
		log_error("app", "cannot open the store %s: %s", cfg->store, enr_strerror(rc));
		return rc;
	}
	return ENR_OK;
}

enum enr_err app_reload(const struct cfg *next)
{
	(void)next;
	return ENR_OK;
}

void app_thread_exit(void)
{
	st_thread_release(store);
}

void app_shutdown(void)
{
	st_close(store);
	store = NULL;
}

struct store *app_store(void)
{
	return store;
}
