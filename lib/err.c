/*
 * err.c - message, machine-code and HTTP-status tables for enum enr_err.
 */
#include "err.h"

struct err_row {
	const char *code;
	const char *message;
	int status;
};

static const struct err_row err_table[ENR__MAX] = {
	[ENR_OK]             = { "ok", "success", 200 },
	[ENR_E_INVALID]      = { "invalid_request", "the request is not valid", 400 },
	[ENR_E_UNAUTHORIZED] = { "unauthorized", "a valid API key is required", 401 },
	[ENR_E_FORBIDDEN]    = { "forbidden", "the API key lacks the scope for this endpoint", 403 },
	[ENR_E_NOT_FOUND]    = { "not_found", "no such resource", 404 },
	[ENR_E_METHOD]       = { "method_not_allowed", "method not allowed on this resource", 405 },
	[ENR_E_CONFLICT]     = { "conflict", "the request conflicts with the resource's state", 409 },
	[ENR_E_TOO_LARGE]    = { "payload_too_large", "the request body is too large", 413 },
	[ENR_E_MEDIA_TYPE]   = { "unsupported_media_type", "unsupported content type", 415 },
	[ENR_E_RATE_LIMITED] = { "rate_limited", "too many requests", 429 },
	[ENR_E_QUOTA]        = { "quota_exceeded", "the record quota is used up", 429 },
	[ENR_E_BUDGET]       = { "budget_exceeded", "the credit budget is spent", 429 },
	[ENR_E_NOMEM]        = { "internal", "out of memory", 500 },
	[ENR_E_INTERNAL]     = { "internal", "internal error", 500 },
	[ENR_E_IO]           = { "internal", "input/output error", 500 },
	[ENR_E_STORE]        = { "internal", "the store failed", 500 },
	[ENR_E_CONFIG]       = { "internal", "the configuration is not valid", 500 },
	[ENR_E_UPSTREAM]     = { "upstream_failed", "an upstream provider failed", 502 },
	[ENR_E_DISABLED]     = { "endpoint_disabled", "this endpoint is disabled", 503 },
	[ENR_E_UNAVAILABLE]  = { "unavailable", "the service cannot answer right now", 503 },
	[ENR_E_TIMEOUT]      = { "upstream_timeout", "an upstream provider timed out", 504 },
	[ENR_E_RANGE]        = { "invalid_request", "value out of range", 400 },
};

static const struct err_row *err_row(enum enr_err e)
{
	if ((unsigned)e >= ENR__MAX)
		return &err_table[ENR_E_INTERNAL];
	return &err_table[e];
}

const char *enr_strerror(enum enr_err e)
{
	return err_row(e)->message;
}

const char *enr_code(enum enr_err e)
{
	return err_row(e)->code;
}

int enr_http_status(enum enr_err e)
{
	return err_row(e)->status;
}

const char *enr_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Unknown";
	}
}
