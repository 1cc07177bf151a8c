/*
 * pool.c - enrichctl's view of the upstream key pool: the keys and their
 * state as a table, why a key is out of service and until when, revive.
 */
#include <stdio.h>
#include <string.h>

#include "lib/budget.h"
#include "lib/keypool.h"
#include "lib/rotation.h"
#include "lib/progress.h"
#include "lib/util.h"

#include "ctl.h"

/* The upstream pool as a table, and a line for every key that is out of
 * service saying why and until when. */
struct ukey_acc {
	json_t *json;
	struct tbl *t;
	struct buf notes;
	int64_t now_ms;
};

/* "in 42s", "in 3m05s" for a time ahead of now. */
static void in_time(int64_t until_ms, int64_t now_ms, char *out, size_t outsz)
{
	char d[32];

	prog_fmt_duration((double)(until_ms - now_ms) / 1000.0, d, sizeof d);
	snprintf(out, outsz, "in %s", d);
}

/* Why a key is out of service.  The store keeps the state and its
 * deadline, not the answer that caused it, so this says what the state
 * means and how the key comes back. */
static void ukey_note(struct buf *out, const struct kp_key *k, int64_t now_ms)
{
	char until[21] = "", in[48] = "";
	struct buf line, *b = &line;
	enum enr_err rc = ENR_OK;

	buf_init(&line, 0);
	if (k->until_ms > 0) {
		util_fmt_time_s(k->until_ms / 1000, until);
		in_time(k->until_ms, now_ms, in, sizeof in);
	}
	switch (k->state) {
	case KP_COOLING:
		rc = buf_printf(b, "%s: cooling until %s (%s): the provider rate-limited it or its upstream "
			      "account %s, or it failed %d times in a row (rotation.breaker_threshold); "
			      "it comes back by itself\n", k->id, until, in, k->account,
			   cfg->rotation.breaker_threshold);
		break;
	case KP_EXHAUSTED:
		if (k->until_ms > 0)
			rc = buf_printf(b, "%s: exhausted until %s (%s): out of credits or over its quota "
				      "until the provider's reset; it comes back by itself, or now with: "
				      "enrichctl keys revive %s\n", k->id, until, in, k->id);
		else
			rc = buf_printf(b, "%s: exhausted: out of credits or over its quota and the provider "
				      "gave no reset time; out of service until revived: "
				      "enrichctl keys revive %s\n", k->id, k->id);
		break;
	case KP_INVALID:
		rc = buf_printf(b, "%s: invalid: the provider refused the key (for example 401); out of "
			      "service until revived, once its secret is right: enrichctl keys "
			      "revive %s\n", k->id, k->id);
		break;
	default:
		break;
	}
	if (rc)
		fail("out of memory");
	/* One note per key, wrapped to the width of the table. */
	if (line.len && line.data[line.len - 1] == '\n')
		line.data[--line.len] = '\0';
	if (line.len && tbl_wrap(buf_cstr(&line), TABLE_WIDTH, 2, out) != ENR_OK)
		fail("out of memory");
	buf_release(&line);
}

static int ukey_row(void *arg, const struct kp_key *k)
{
	struct ukey_acc *acc = arg;
	bool usable = kp_usable(k, acc->now_ms);
	char v[5][24], last4[8], until[48] = "";
	const char *cells[11] = { k->id, k->provider, k->account, last4,
				  kp_state_names[usable ? KP_ACTIVE : k->state], until,
				  v[0], v[1], v[2], v[3], v[4] };

	if (json_out) {
		json_t *j = kp_key_json(k, acc->now_ms);

		if (j == NULL)
			fail("out of memory");
		need_ok(ops_ukey_budgets(store, cfg, k, acc->now_ms, j), "keys list");
		json_array_append_new(acc->json, j);
		return 0;
	}
	snprintf(last4, sizeof last4, "...%s", k->last4);
	if (!usable && k->until_ms > 0)
		in_time(k->until_ms, acc->now_ms, until, sizeof until);
	else if (!usable)
		snprintf(until, sizeof until, "revive");
	snprintf(v[0], sizeof v[0], "%lld", (long long)k->calls);
	snprintf(v[1], sizeof v[1], "%lld", (long long)k->hits);
	snprintf(v[2], sizeof v[2], "%lld", (long long)k->misses);
	snprintf(v[3], sizeof v[3], "%lld", (long long)k->errors);
	snprintf(v[4], sizeof v[4], "%lld", (long long)k->credits);
	table_row(acc->t, cells);
	if (!usable)
		ukey_note(&acc->notes, k, acc->now_ms);
	return 0;
}

struct budgets_acc {
	json_t *json;
	struct tbl *t;
};

static int budget_row(void *arg, const struct bud_state *st)
{
	struct budgets_acc *b = arg;

	if (b->json) {
		json_array_append_new(b->json, ops_budget_json(st));
	} else {
		budget_cells(b->t, st, st->scope);
	}
	return 0;
}

void cmd_keys(int argc, char **argv)
{
	if (argc == 1 && strcmp(argv[0], "list") == 0) {
		/* last_used is in --json; the table keeps to 100 columns. */
		static const char *const head[] = { "ID", "PROVIDER", "ACCOUNT", "KEY", "STATE",
						    "BACK", "CALLS", "HITS", "MISSES", "ERRORS",
						    "CREDITS" };
		static const unsigned flags[] = { TBL_KEEP, 0, 0, TBL_KEEP, TBL_KEEP, TBL_KEEP,
						  TBL_RIGHT, TBL_RIGHT, TBL_RIGHT, TBL_RIGHT,
						  TBL_RIGHT };
		struct ukey_acc acc = { .now_ms = util_now_ms() };

		/* The pool as configured now (keys added to the file since the
		 * service last loaded it appear too). */
		need_ok(rot_sync_keys(store, cfg), "keys list");
		if (json_out) {
			acc.json = json_array();
			need_ok(st_ukey_each(store, ukey_row, &acc), "keys list");
			print_json(acc.json);
			return;
		}
		acc.t = new_table(11, head, flags);
		buf_init(&acc.notes, 0);
		need_ok(st_ukey_each(store, ukey_row, &acc), "keys list");
		if (tbl_rows(acc.t) == 0) {
			tbl_free(acc.t);
			printf("no upstream keys: the configuration %s has no provider with keys\n",
			       conf_path);
		} else {
			print_table(acc.t);
			if (acc.notes.len)
				printf("\n%s", buf_cstr(&acc.notes));
		}
		buf_release(&acc.notes);
	} else if (argc == 2 && strcmp(argv[0], "revive") == 0) {
		struct kp_key k;
		enum enr_err rc = ops_ukey_revive(store, &actor, argv[1], &k);

		if (rc == ENR_E_NOT_FOUND)
			fail("no configured upstream key has the id \"%s\" (the ids are in: enrichctl "
			     "keys list)", argv[1]);
		need_ok(rc, "keys revive");
		if (json_out)
			print_json(kp_key_json(&k, util_now_ms()));
		else
			printf("revived key %s (...%s) of provider %s\n", k.id, k.last4, k.provider);
	} else if (argc == 1 && strcmp(argv[0], "budgets") == 0) {
		struct budgets_acc b = { json_out ? json_array() : NULL,
					 json_out ? NULL : budget_table("BUDGET") };

		need_ok(bud_upstream_each(store, cfg, util_now_ms(), budget_row, &b), "keys budgets");
		if (json_out) {
			print_json(b.json);
		} else if (tbl_rows(b.t) == 0) {
			tbl_free(b.t);
			printf("no upstream budgets: no key has budget = { credits = N; } and no "
			       "provider account_budget\n");
		} else {
			print_table(b.t);
		}
	} else {
		usage_fail("keys list | keys revive ID | keys budgets");
	}
}

