/*
 * limits.h - every hard cap on buffers that grow from outside input.
 *
 * Caps an operator may want to tune live in the configuration file
 * (limits = { ... }); these are the ceilings no configuration can raise,
 * and the sizes of fixed buffers.
 */
#ifndef ENR_LIMITS_H
#define ENR_LIMITS_H

/* HTTP edge */
#define LIM_BODY_MAX_CEILING    (256u * 1024u * 1024u) /* body_max_bytes may not exceed */
#define LIM_PATH_MAX            2048u   /* request URI bytes */
#define LIM_QUERY_MAX           4096u   /* query string bytes */
#define LIM_HEADER_VALUE_MAX    8192u   /* one request header value */
#define LIM_REQUEST_ID_MAX      64u     /* X-Request-Id bytes kept */
#define LIM_RESPONSE_HEADERS    32u     /* headers one response may carry */
#define LIM_FCGI_PARAMS_MAX     (64u * 1024u) /* a FastCGI request's parameters, encoded */
/* Stack of each responder thread.  The fuzz targets run every input on a
 * thread of this size too, so a parser that would overflow it in the
 * responder fails there first. */
#define LIM_RESPONDER_STACK     (512u * 1024u)

/* JSON from outside (request bodies, provider answers): arrays and objects
 * nested deeper than this are refused before jansson builds a tree, since
 * jansson parses, dumps and frees values recursively. */
#define LIM_JSON_DEPTH_MAX      32u

/* logging */
#define LIM_LOG_LINE_MAX        4096u   /* one log line, after escaping */
#define LIM_LOG_MSG_MAX         2048u   /* the formatted message, before escaping */

/* configuration */
#define LIM_CONFIG_ERR_MAX      512u    /* one validation message */
#define LIM_CONFIG_FILE_MAX     (4u * 1024u * 1024u)
#define LIM_THREADS_MAX         4096
#define LIM_CORS_ORIGINS_MAX    64u
#define LIM_NAME_MAX            64u     /* ids and names: providers, keys, accounts */
#define LIM_CONF_HISTORY_MAX    10u     /* applied configurations kept (lib/confhist.h) */
#define LIM_PATH_BYTES          4096u   /* a file path built from configured ones */
/* The responder's socket path: a unix socket address holds 107 bytes, and the
 * socket is bound under the path plus ".PID" (at most 11 bytes) first. */
#define LIM_LISTEN_PATH_MAX     96
#define LIM_SECRET_FILE_MAX     4095u   /* bytes of a secret file (file:PATH) */

/* fields to enrich: entries in one list a client sends (lib/fields.h) */
#define LIM_ENRICH_FIELDS_MAX   64u

/* batch jobs */
#define LIM_JOB_REJECTIONS_LISTED 100u  /* refused rows listed in a 202 answer */
#define LIM_JOB_WARN_MAX        512u    /* warnings of one leniently read batch row */

/* metrics */
#define LIM_METRIC_SERIES_MAX   4096u   /* label sets per family */
#define LIM_METRIC_LABELS_MAX   256u    /* rendered label string bytes */

/* growable buffers (lib/buf.h) default cap when the caller gives none */
#define LIM_BUF_DEFAULT_CAP     (16u * 1024u * 1024u)

/* csv */
#define LIM_CSV_FIELD_MAX       (64u * 1024u)   /* bytes of one field, after unquoting */
#define LIM_CSV_FIELDS_MAX      1024u           /* fields in one row, header included */
#define LIM_CSV_ROW_MAX         (1024u * 1024u) /* raw bytes of one row, line end excluded */
#define LIM_CSV_REASON_MAX      128u            /* one error reason, with its terminator */

/* record */
#define LIM_REC_FIELD_MAX       4096u   /* ceiling of one identifier, after trimming */
#define LIM_REC_EMAIL_MAX       254u    /* RFC 5321 4.5.3.1.3 path, less "<" and ">" */
#define LIM_REC_EMAIL_LOCAL_MAX 64u     /* RFC 5321 4.5.3.1.1 */
#define LIM_REC_DOMAIN_MAX      253u    /* RFC 1035 2.3.4, without the trailing dot */
#define LIM_REC_LABEL_MAX       63u     /* one DNS label */
#define LIM_REC_SLUG_MIN        2u      /* LinkedIn slug bytes, after percent-decoding */
#define LIM_REC_SLUG_MAX        200u
#define LIM_REC_PHONE_MIN       6u      /* digits in a phone number */
#define LIM_REC_PHONE_MAX       20u
#define LIM_REC_NAME_MAX        64u     /* a name guessed from an e-mail local part */
#define LIM_DOM_FILE_MAX        (64u * 1024u * 1024u) /* one domain list file */
#define LIM_DOM_ENTRIES_MAX     (4u * 1024u * 1024u)  /* names in one domain list */

/* providers */
#define LIM_PROV_VALUE_MAX      2048u   /* one mapped field value, after trimming */
#define LIM_PROV_BODY_MAX       (2u * 1024u * 1024u) /* response bytes an adapter parses */
#define LIM_PROV_URL_MAX        8192u   /* a built request URL */
#define LIM_PROV_REQ_BODY_MAX   (64u * 1024u)        /* a built request body */
#define LIM_UPSTREAM_BODY_MAX   (4u * 1024u * 1024u) /* ceiling of up_perform's body_max */
#define LIM_UPSTREAM_HEADERS_MAX 64u    /* response headers kept per answer */
#define LIM_UPSTREAM_HEADER_MAX 8192u   /* one response header line; longer ones are dropped */
#define LIM_JP_PATH_MAX         512u    /* a dotted JSON path (lib/json_path.h) */
#define LIM_JP_SEGMENT_MAX      128u    /* one member name in a path */
#define LIM_JP_INDEX_MAX        100000  /* largest array index in a path */

/* search (lib/search.h, lib/prov_search.c) */
#define LIM_SEARCH_VALUE_MAX    128u    /* bytes of one filter value, after trimming */
#define LIM_SEARCH_VALUES_MAX   25u     /* values in one filter */
#define LIM_SEARCH_FILTERS_BYTES 4096u  /* the normalised filters of one search, as JSON */
#define LIM_SEARCH_LIMIT_CEILING 200    /* search.limit_max may not exceed */
#define LIM_SEARCH_CURSOR_MAX   16384u  /* bytes of a cursor a client sends */
#define LIM_SEARCH_PROV_CURSOR_MAX 4096u /* a provider's next-page token */
#define LIM_SEARCH_ENQUEUE_PAGES 200    /* pages one from_search submission walks */

/* event loop (lib/evloop.h) */
#define LIM_EV_XFERS_DEFAULT    10000   /* transfers in flight on one loop, unless configured */
#define LIM_EV_XFERS_MAX        100000  /* ceiling of that setting */
#define LIM_EV_TIMERS_MAX       (1024 * 1024) /* timers armed on one loop at once */
#define LIM_EV_EVENTS           256     /* readiness events taken per epoll_wait */
#define LIM_EV_FREE_DEFAULT     256     /* idle transfers (easy handles) kept for reuse */
#define LIM_EV_KEEP_BODY        (64u * 1024u) /* body buffer a recycled transfer keeps */

/* store pool (lib/spool.h) */
#define LIM_FIB_STACK           LIM_RESPONDER_STACK /* a fiber's stack (a request runs on one) */
#define LIM_FIB_STACKS_KEPT     4096    /* stacks of ended fibers kept for reuse */
#define LIM_CO_TRIM_FROM        2048    /* continuations waiting from which a wait trims its
					   stack (below: 4 KiB more each, 8 MiB at most) */
#define LIM_SP_THREADS_MAX      64      /* pool threads */
#define LIM_SP_QUEUE_DEFAULT    65536   /* closures and writes waiting, unless configured */
#define LIM_SP_QUEUE_MAX        (1024 * 1024)
#define LIM_SP_LANES            256     /* ordered lanes (a lane key is hashed onto one) */
#define LIM_SP_KINDS_MAX        8       /* kinds of batched writes */
#define LIM_SP_BATCH_MAX        4096    /* writes of one kind run in one go, at most */

/* webhook */
#define LIM_WH_URL_MAX          2048u   /* a client-supplied webhook URL (jobs keep 2049 bytes) */
#define LIM_WH_ADDRS_MAX        8u      /* resolved addresses checked and pinned per delivery */
#define LIM_WH_RESPONSE_MAX     (64u * 1024u) /* receiver answer bytes read, then discarded */
#define LIM_WH_BACKOFF_MAX_MS   300000  /* retry delay ceiling, before jitter */
#define LIM_WH_EVENT_MAX        64u     /* an event name in X-Enrichd-Event */

#endif
