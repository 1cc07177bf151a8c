/*
 * config_int.h - what the parts of the configuration module share; no
 * other module includes it (tests may, to walk the tables).
 *
 * Prefix: cfg_.  The module has three parts:
 *   config_rules.c     the directive tables: one row per setting (path,
 *                      type, bounds or choices, where it is stored, its
 *                      default, a check or a setter), and the checks that
 *                      span several settings;
 *   config_load.c      reads a file against the tables: pass 1 walks every
 *                      setting in the file and validates it against its
 *                      row (an unknown or mistyped setting is found
 *                      wherever it is), pass 2 walks the rows and stores
 *                      each value, or its default, into struct cfg;
 *   config_snapshot.c  publishes loaded snapshots, counts references,
 *                      frees them.
 * A name or a default is written once: in its row.
 */
#ifndef ENR_CONFIG_INT_H
#define ENR_CONFIG_INT_H

#include <libconfig.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum cfg_type {
	CT_GROUP,  /* { ... }: its members have rows of their own */
	CT_LIST,   /* ( { ... }, ... ): each element follows the row's sub-table */
	CT_STR,    /* char *, min..max bytes; names[] when only those are allowed */
	CT_CHOICE, /* one of names[], stored as its index (an enum) */
	CT_INT,    /* int or int64_t, min..max */
	CT_BOOL,   /* bool */
	CT_STRS,   /* [ "a", ... ] into struct cfg_list; each min..max bytes */
	CT_INTS,   /* [ 1, ... ] into struct cfg_int_list; each min..max */
	CT__MAX
};

#define CF_REQUIRED (1u << 0) /* no default: the block must set it */
#define CF_PATH     (1u << 1) /* a file path, relative to the config file's directory */
#define CF_SECRET   (1u << 2) /* "env:NAME" | "file:PATH", read at load ("" when optional) */
#define CF_ANY_NAME (1u << 3) /* path ends in ".*": any member (check gets its name) */

struct cfg_ld;
struct cfg_dir;
struct cfg_table;

/* A check of one string value (or, for CF_ANY_NAME, of a member's name)
 * beyond its length: false with why (whylen bytes) saying what is wrong. */
typedef bool (*cfg_check_fn)(const struct cfg_dir *d, const char *v, char *why, size_t whylen);

/* Stores the row d of the block at base from s (NULL when the file leaves
 * it out: the setter writes the default).  False when loading must stop
 * (cfg_ld_fail was called, or memory ran out). */
typedef bool (*cfg_set_fn)(struct cfg_ld *ld, const struct cfg_dir *d, const config_setting_t *s,
			   const char *disp, void *base);

/* Runs after every row of one block (the root, a provider, a key) was
 * stored: checks that need several settings. */
typedef bool (*cfg_finish_fn)(struct cfg_ld *ld, const config_setting_t *blk, void *base,
			      const char *disp);

struct cfg_dir {
	const char *path;            /* within its block: "limits.body_max_bytes", "fields.*" */
	enum cfg_type type;
	int64_t min, max;            /* value bounds (ints), length bounds (strings) */
	const char *const *names;    /* CT_CHOICE, or CT_STR limited to these */
	int nnames;
	size_t off, size;            /* where the value lives in the block's struct */
	size_t off_n;                /* CT_LIST: where the element count lives */
	int64_t dflt;                /* CT_INT, CT_BOOL, CT_CHOICE (an index) */
	const char *dflt_s;          /* CT_STR (NULL: ""), CT_STRS (one element; NULL: none) */
	unsigned flags;              /* CF_* */
	cfg_check_fn check;
	cfg_set_fn set;              /* instead of the plain store */
	const struct cfg_table *sub; /* CT_LIST: the table of each element */
};

struct cfg_table {
	const char *what;             /* "provider", for messages */
	const struct cfg_dir *dirs;
	size_t n;
	size_t size;                  /* CT_LIST elements: sizeof the element struct */
	const struct cfg_table *also; /* rows of the same block stored elsewhere (pass 1 only) */
	cfg_finish_fn finish;
};

/* The root table; config_rules.c.  Its rows lead to the others. */
extern const struct cfg_table cfg_root_table;
/* Rows of a generic provider's request/fields/statuses (struct cfg_generic). */
extern const struct cfg_table cfg_generic_table;

/* One load in progress. */
struct cfg_ld {
	const char *path;     /* the file as given: messages name it */
	char dir[PATH_MAX];   /* its directory, absolute, without a trailing '/' */
	char *err;
	size_t errlen;
	bool failed;          /* err holds the first problem */
	bool oom;
	unsigned flags;       /* CFG_LOAD_* */
	struct cfg *cfg;      /* being built */
	void *parent;         /* while a list's elements load: the struct holding the list */
};

/* Record the first problem: "FILE:LINE: disp: message" (no LINE when s is
 * NULL or has none). */
void cfg_ld_fail(struct cfg_ld *ld, const config_setting_t *s, const char *disp, const char *fmt,
		 ...) __attribute__((format(printf, 4, 5)));

/* Store row d of the block at base the usual way for its type (setters
 * that only add a check or a derived default call it). */
bool cfg_ld_store(struct cfg_ld *ld, const struct cfg_dir *d, const config_setting_t *s,
		  const char *disp, void *base);

/* Store every row of t into base from the block blk (NULL: all defaults),
 * then run t->finish. */
bool cfg_ld_block(struct cfg_ld *ld, const struct cfg_table *t, const config_setting_t *blk,
		  void *base, const char *disp);

/* p resolved against the config file's directory (absolute p unchanged);
 * a new string, or NULL with ld->oom set. */
char *cfg_ld_path(struct cfg_ld *ld, const char *p);

/* strdup that records a failure in ld->oom. */
char *cfg_ld_strdup(struct cfg_ld *ld, const char *s);

/* Free a snapshot now, whatever its reference count; cfg_free(NULL)
 * does nothing (config_snapshot.c). */
void cfg_free(struct cfg *c);

/* Value checks for the tables (config_check.c); see cfg_check_fn. */
bool cfg_check_url(const struct cfg_dir *d, const char *v, char *why, size_t whylen);
bool cfg_check_url_template(const struct cfg_dir *d, const char *v, char *why, size_t whylen);
bool cfg_check_server_names(const struct cfg_dir *d, const char *v, char *why, size_t whylen);
bool cfg_check_origin(const struct cfg_dir *d, const char *v, char *why, size_t whylen);
bool cfg_check_store(const struct cfg_dir *d, const char *v, char *why, size_t whylen);
/* "env:NAME", "file:PATH" or "" (a reference the store resolves itself). */
bool cfg_check_secret_ref(const struct cfg_dir *d, const char *v, char *why, size_t whylen);
bool cfg_check_group(const struct cfg_dir *d, const char *v, char *why, size_t whylen);
bool cfg_check_field_name(const struct cfg_dir *d, const char *v, char *why, size_t whylen);
/* A dotted JSON path (lib/json_path.h), or "". */
bool cfg_check_json_path(const struct cfg_dir *d, const char *v, char *why, size_t whylen);

/* What in v an nginx directive could not carry around a path ("a space
 * or a control character", ...), or NULL when v is safe. */
const char *cfg_nginx_unsafe(const char *v);

#endif
