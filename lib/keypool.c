/*
 * keypool.c - key state transitions and the order keys are tried in.
 */
#include "keypool.h"
#include "util.h"

#include <stdlib.h>

#include <jansson.h>
#include <string.h>

const char *const kp_state_names[KP_STATE__MAX] = {
	[KP_ACTIVE] = "active",
	[KP_COOLING] = "cooling",
	[KP_EXHAUSTED] = "exhausted",
	[KP_INVALID] = "invalid",
};

#define COOLDOWN_MIN_MS 1000

void kp_params_from_cfg(const struct cfg *c, struct kp_params *out)
{
	out->breaker_threshold = c->rotation.breaker_threshold;
	out->cooldown_max_ms = (int64_t)c->rotation.cooldown_max_s * 1000;
}

bool kp_usable(const struct kp_key *k, int64_t now_ms)
{
	switch (k->state) {
	case KP_ACTIVE:
		return true;
	case KP_COOLING:
	case KP_EXHAUSTED:
		return k->until_ms > 0 && k->until_ms <= now_ms;
	default:
		return false;
	}
}

int64_t kp_comes_back_ms(const struct kp_key *k, int64_t now_ms)
{
	if (kp_usable(k, now_ms))
		return now_ms;
	if (k->state == KP_COOLING || k->state == KP_EXHAUSTED)
		return k->until_ms;
	return 0;
}

/* Exponential cool-down when the provider gave no reset: 1 s, 2 s, 4 s...
 * capped, with up to 25% jitter so keys do not come back in lock-step. */
static int64_t next_backoff(struct kp_key *k, const struct kp_params *p, double jitter)
{
	int64_t b = k->backoff_ms > 0 ? k->backoff_ms * 2 : COOLDOWN_MIN_MS;

	if (b > p->cooldown_max_ms)
		b = p->cooldown_max_ms;
	if (b < COOLDOWN_MIN_MS)
		b = COOLDOWN_MIN_MS;
	k->backoff_ms = b;
	return util_jitter_add(b, jitter);
}

/* Set a deadline that never moves earlier. */
static void park(struct kp_key *k, enum kp_state s, int64_t until, int64_t now_ms)
{
	bool still_parked = (k->state == KP_COOLING || k->state == KP_EXHAUSTED) &&
			    k->until_ms > now_ms;

	/* A longer state wins: exhaustion is not downgraded to cooling. */
	if (still_parked && k->state == KP_EXHAUSTED && s == KP_COOLING) {
		if (until > k->until_ms)
			k->until_ms = until;
		return;
	}
	if (still_parked && k->state == s && (k->until_ms == 0 || until < k->until_ms) && until != 0)
		return;
	if (k->state == KP_EXHAUSTED && k->until_ms == 0 && s == KP_EXHAUSTED)
		return; /* already parked until revived */
	k->state = s;
	k->until_ms = until;
}

void kp_apply(struct kp_key *k, enum prov_outcome o, int64_t hint_until_ms, int credits,
	      int64_t now_ms, const struct kp_params *p, double jitter, struct kp_change *ch)
{
	struct kp_change c = { k->state, k->state, 0, false };

	/* A key whose deadline passed is active again before this outcome. */
	if ((k->state == KP_COOLING || k->state == KP_EXHAUSTED) && kp_usable(k, now_ms)) {
		k->state = KP_ACTIVE;
		k->until_ms = 0;
	}
	k->calls++;
	k->last_used_ms = now_ms;
	k->credits += credits > 0 ? credits : 0;
	switch (o) {
	case PROV_HIT:
	case PROV_MISS:
		if (o == PROV_HIT)
			k->hits++;
		else
			k->misses++;
		k->transients = 0;
		k->backoff_ms = 0;
		break;
	case PROV_PENDING:
		k->transients = 0;
		break;
	case PROV_RATE_LIMITED: {
		int64_t until = hint_until_ms > now_ms ? hint_until_ms
						       : now_ms + next_backoff(k, p, jitter);

		k->errors++;
		park(k, KP_COOLING, until, now_ms);
		c.account_cool = true;
		break;
	}
	case PROV_QUOTA_EXHAUSTED:
		k->errors++;
		park(k, KP_EXHAUSTED, hint_until_ms > now_ms ? hint_until_ms : 0, now_ms);
		break;
	case PROV_KEY_INVALID:
		k->errors++;
		k->state = KP_INVALID;
		k->until_ms = 0;
		break;
	case PROV_REQUEST_REJECTED:
		/* The request was not allowed; the key is fine. */
		break;
	case PROV_TRANSIENT:
	default:
		k->errors++;
		if (++k->transients >= p->breaker_threshold) {
			k->transients = 0;
			park(k, KP_COOLING, now_ms + next_backoff(k, p, jitter), now_ms);
		}
		break;
	}
	c.to = k->state;
	c.until_ms = k->until_ms;
	if (ch)
		*ch = c;
}

void kp_revive(struct kp_key *k)
{
	k->state = KP_ACTIVE;
	k->until_ms = 0;
	k->transients = 0;
	k->backoff_ms = 0;
}

struct ord_ctx {
	const struct kp_key *keys;
};

static int by_ord(const void *a, const void *b, void *arg)
{
	const struct kp_key *keys = ((struct ord_ctx *)arg)->keys;
	int x = *(const int *)a, y = *(const int *)b;

	return keys[x].ord - keys[y].ord;
}

static int by_use(const void *a, const void *b, void *arg)
{
	const struct kp_key *keys = ((struct ord_ctx *)arg)->keys;
	int x = *(const int *)a, y = *(const int *)b;

	if (keys[x].calls != keys[y].calls)
		return keys[x].calls < keys[y].calls ? -1 : 1;
	return keys[x].ord - keys[y].ord;
}

int kp_order(const struct kp_key *keys, int n, enum cfg_strategy strategy, uint64_t cursor,
	     const bool *skip, bool first_only, int64_t now_ms, int *order)
{
	struct ord_ctx ctx = { keys };
	int all[256], m = 0, out = 0;

	if (n > 256)
		n = 256;
	for (int i = 0; i < n; i++)
		all[m++] = i;
	qsort_r(all, (size_t)m, sizeof all[0], by_ord, &ctx);
	if (first_only)
		m = m > 0 ? 1 : 0;
	if (strategy == CFG_STRATEGY_LEAST_USED && !first_only)
		qsort_r(all, (size_t)m, sizeof all[0], by_use, &ctx);
	for (int j = 0; j < m; j++) {
		/* Round robin starts at the cursor and wraps. */
		int i = strategy == CFG_STRATEGY_ROUND_ROBIN && !first_only
				? all[(int)((cursor + (uint64_t)j) % (uint64_t)m)]
				: all[j];

		if ((skip && skip[i]) || !kp_usable(&keys[i], now_ms))
			continue;
		order[out++] = i;
	}
	return out;
}

int64_t kp_earliest_ms(const struct kp_key *keys, int n, bool first_only, int64_t now_ms)
{
	int64_t best = 0;
	int first = -1;

	for (int i = 0; i < n; i++) {
		if (first < 0 || keys[i].ord < keys[first].ord)
			first = i;
	}
	for (int i = 0; i < n; i++) {
		int64_t t;

		if (first_only && i != first)
			continue;
		t = kp_comes_back_ms(&keys[i], now_ms);
		if (t > 0 && (best == 0 || t < best))
			best = t;
	}
	return best;
}

const char *kp_state_why(enum kp_state s)
{
	switch (s) {
	case KP_COOLING:
		return "rate-limited by the provider (or its upstream account), or failing repeatedly; "
		       "it comes back by itself";
	case KP_EXHAUSTED:
		return "out of credits or over its quota; it comes back at the provider's reset, or "
		       "when revived";
	case KP_INVALID:
		return "the provider refused the key (for example 401); out of service until revived";
	default:
		return NULL;
	}
}

static json_t *meter_json(int64_t v)
{
	return v >= 0 ? json_integer(v) : json_null();
}

json_t *kp_key_json(const struct kp_key *k, int64_t now_ms)
{
	char until[21] = "", used[21] = "", meters[21] = "";
	bool usable = kp_usable(k, now_ms);
	json_t *j;

	if (!usable && k->until_ms > 0)
		util_fmt_time_s(k->until_ms / 1000, until);
	if (k->last_used_ms > 0)
		util_fmt_time_s(k->last_used_ms / 1000, used);
	if (k->meters_ms > 0)
		util_fmt_time_s(k->meters_ms / 1000, meters);
	j = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:I, s:I, s:I, s:I, s:I, s:s?}", "id",
		      k->id, "provider", k->provider, "account", k->account, "state",
		      kp_state_names[usable ? KP_ACTIVE : k->state], "why",
		      usable ? NULL : kp_state_why(k->state), "until", until[0] ? until : NULL,
		      "last4", k->last4, "calls", (json_int_t)k->calls, "hits", (json_int_t)k->hits,
		      "misses", (json_int_t)k->misses, "errors", (json_int_t)k->errors, "credits",
		      (json_int_t)k->credits, "last_used", used[0] ? used : NULL);
	if (j == NULL)
		return NULL;
	/* The provider's meters as its last answer gave them (null: unknown). */
	json_object_set_new(j, "requests_left", meter_json(k->meters_ms > 0 ? k->requests_left : -1));
	json_object_set_new(j, "credits_left", meter_json(k->meters_ms > 0 ? k->credits_left : -1));
	json_object_set_new(j, "meters_at", meters[0] ? json_string(meters) : json_null());
	return j;
}
