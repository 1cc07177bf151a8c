/*
 * ctl.h - the parts of enrichctl and what they share.
 *
 *   main.c     options, messages, output helpers, the command dispatch
 *   clients.c  client accounts, client keys, usage
 *   pool.c     the upstream key pool
 *   store.c    schema migrations and copying a deployment between stores
 *
 * The commands run on one configuration and store opened by main.c; a
 * command that fails prints why and exits 1 (fail), wrong usage exits 2
 * (usage_fail).
 */
#ifndef ENR_TOOLS_CTL_H
#define ENR_TOOLS_CTL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/admin.h"
#include "lib/config.h"
#include "lib/store.h"
#include "lib/table.h"

/* Listings fit this many columns (fewer on a narrower terminal). */
#define TABLE_WIDTH 100

extern bool json_out;          /* --json */
extern bool raw_out;           /* --raw */
extern const char *conf_path;
extern struct cfg *cfg;
extern struct store *store;
extern struct ops_actor actor;   /* who runs this: "enrichctl (user)", local */

/* Options that follow the command words. */
struct opts {
	const char *limit[OPS_LIMIT__MAX];   /* rpm, burst, rph, rpd, credits per day, month */
	const char *scopes;
	const char *name;
	const char *expires_in;
	const char *days;
	const char *from_password, *to_password;   /* store copy */
};

__attribute__((format(printf, 1, 2), noreturn)) void fail(const char *fmt, ...);
__attribute__((noreturn)) void usage_fail(const char *what);
void need_ok(enum enr_err rc, const char *what);
/* Print j (consumed) indented. */
void print_json(json_t *j);
/* Print a table fitted to TABLE_WIDTH columns (or a narrower terminal);
 * the table is freed. */
void print_table(struct tbl *t);
struct tbl *new_table(size_t n, const char *const *head, const unsigned *flags);
void table_row(struct tbl *t, const char *const *cells);
/* A UTC date ("2026-11-23"), or "-" for 0. */
void date_of(int64_t s, char out[21]);

/* Credit budgets as a table (clients.c; pool.c lists the upstream ones). */
struct bud_state;
struct tbl *budget_table(const char *first);
void budget_cells(struct tbl *t, const struct bud_state *b, const char *who);

void cmd_account(int argc, char **argv, const struct opts *o);
void cmd_key(int argc, char **argv, const struct opts *o);
void cmd_usage(int argc, char **argv, const struct opts *o);
void cmd_keys(int argc, char **argv);
void cmd_migrate(int argc, char **argv);
void cmd_store(int argc, char **argv, const struct opts *o);

#endif
