/*
 * app.c - process-wide state of the responder.
 */
#include "app.h"

#include <stdbool.h>

static bool app_is_cgi;

void app_cgi_mode(void)
{
	app_is_cgi = true;
}

enum enr_err app_init(const struct cfg *cfg)
{
	(void)cfg;
	return ENR_OK;
}

enum enr_err app_reload(const struct cfg *next)
{
	(void)next;
	return ENR_OK;
}

void app_thread_exit(void)
{
}

void app_shutdown(void)
{
}
