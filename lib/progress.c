/*
 * progress.c - smoothed rate and ETA, durations, plurals, progress lines.
 */
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void prog_rate_init(struct prog_rate *r, double tau_s, int64_t now_ms)
{
	memset(r, 0, sizeof *r);
	r->tau_s = tau_s > 0 ? tau_s : PROG_RATE_TAU_S;
	r->start_ms = r->last_ms = now_ms;
}

void prog_rate_update(struct prog_rate *r, int64_t now_ms, int64_t n)
{
	double dt, inst, a;

	if (now_ms <= r->last_ms || n < r->last_n)
		return;
	if (!r->measuring) {
		if (n == 0) {
			r->last_ms = now_ms;
			return;
		}
		r->measuring = true;
		r->start_ms = r->last_ms = now_ms;
		r->base_n = r->last_n = n;
		return;
	}
	dt = (double)(now_ms - r->last_ms) / 1000.0;
	inst = (double)(n - r->last_n) / dt;
	/* The weight a sample of length dt gets, so that a run sampled often
	 * and one sampled rarely arrive at the same average. */
	a = 1.0 - exp(-dt / r->tau_s);
	r->ewma = r->ewma * (1.0 - a) + inst * a;
	r->weight = r->weight * (1.0 - a) + a;
	r->last_ms = now_ms;
	r->last_n = n;
}

double prog_rate_per_s(const struct prog_rate *r)
{
	/* Dividing by the weight removes the pull toward the 0 the average
	 * started from (the same correction as for any zero-started EWMA). */
	return r->weight > 0 ? r->ewma / r->weight : 0.0;
}

double prog_eta_s(const struct prog_rate *r, int64_t left)
{
	double rate = prog_rate_per_s(r);

	if (left <= 0)
		return 0.0;
	if (!r->measuring || r->last_n - r->base_n < PROG_ETA_MIN_ROWS ||
	    r->last_ms - r->start_ms < PROG_ETA_MIN_MS || !(rate > 0))
		return -1.0;
	return (double)left / rate;
}

const char *prog_plural(int64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

void prog_fmt_duration(double s, char *out, size_t outsz)
{
	long long t;

	if (!(s >= 0) || s > 1e12) {
		snprintf(out, outsz, "--");
		return;
	}
	t = (long long)(s + 0.5);
	if (t >= 3600)
		snprintf(out, outsz, "%lldh%02lldm", t / 3600, t / 60 % 60);
	else if (t >= 60)
		snprintf(out, outsz, "%lldm%02llds", t / 60, t % 60);
	else
		snprintf(out, outsz, "%llds", t);
}

static double pct_of(const struct prog_view *v)
{
	if (v->total <= 0)
		return 100.0;
	return 100.0 * (double)v->done / (double)v->total;
}

static long long rate_whole(double per_min)
{
	return per_min > 0 && per_min < 1e15 ? (long long)(per_min + 0.5) : 0;
}

/* The parts of the terminal line, in the order they are shown. */
enum part { P_COUNT, P_PCT, P_FAILED, P_RATE, P_ELAPSED, P_ETA, P_CREDITS, P__MAX };

#define PART_MAX 64
#define SEP "  "

static int digits(long long n)
{
	int d = 1;

	while (n >= 10 || n <= -10) {
		n /= 10;
		d++;
	}
	return d + (n < 0);
}

static void parts_text(const struct prog_view *v, int count_width, char text[P__MAX][PART_MAX])
{
	char d[32];
	long long rate = rate_whole(v->rate_per_min);

	snprintf(text[P_COUNT], PART_MAX, "%*lld/%lld", count_width, (long long)v->done,
		 (long long)v->total);
	snprintf(text[P_PCT], PART_MAX, "%5.1f%%", pct_of(v));
	snprintf(text[P_FAILED], PART_MAX, "%lld failed", (long long)v->failed);
	if (rate > 0 || v->final)
		snprintf(text[P_RATE], PART_MAX, "%lld %s/min", rate, prog_plural(rate, "row", "rows"));
	else
		snprintf(text[P_RATE], PART_MAX, "-- rows/min");
	prog_fmt_duration(v->elapsed_s, d, sizeof d);
	snprintf(text[P_ELAPSED], PART_MAX, "elapsed %s", d);
	prog_fmt_duration(v->eta_s, d, sizeof d);
	snprintf(text[P_ETA], PART_MAX, "ETA %s", d);
	snprintf(text[P_CREDITS], PART_MAX, "%lld %s", (long long)v->credits,
		 prog_plural(v->credits, "credit", "credits"));
}

size_t prog_line_tty(const struct prog_view *v, int width, char *out, size_t outsz)
{
	/* Which part to keep first when the width runs out: failures matter
	 * more than the rest, "0 failed" less. */
	static const enum part keep_failed[P__MAX] = { P_COUNT, P_PCT, P_ETA, P_FAILED,
						       P_ELAPSED, P_RATE, P_CREDITS };
	static const enum part keep_fine[P__MAX] = { P_COUNT, P_PCT, P_ETA, P_ELAPSED,
						     P_RATE, P_FAILED, P_CREDITS };
	const enum part *keep = v->failed > 0 ? keep_failed : keep_fine;
	char text[P__MAX][PART_MAX], wide[P__MAX][PART_MAX];
	char line[PROG_BAR_MAX + 4 + P__MAX * (PART_MAX + 2)];
	struct prog_view tv = *v;
	bool on[P__MAX] = { false };
	size_t len[P__MAX], used = 0, n = 0, budget;
	int bar = 0, last = -1;

	if (outsz == 0)
		return 0;
	if (width <= 0)
		width = 80;
	budget = (size_t)width - 1;
	if (budget > outsz - 1)
		budget = outsz - 1;

	/* The count, the percentage, the rate and the times take the room of
	 * a wide value, so the bar keeps its width from one redraw to the
	 * next instead of jumping with every digit. */
	tv.done = v->total;
	if (tv.rate_per_min < 9999)
		tv.rate_per_min = 9999;
	tv.elapsed_s = tv.eta_s = 599;
	parts_text(v, digits(v->total), text);
	parts_text(&tv, digits(v->total), wide);
	for (int i = 0; i < P__MAX; i++) {
		len[i] = strlen(wide[i]);
		if (strlen(text[i]) > len[i])
			len[i] = strlen(text[i]);
	}

	/* Room for the smallest bar ("[" bar "] ") is kept while choosing the
	 * parts; when even the count leaves no room for it, the parts get the
	 * whole line and there is no bar. */
	for (int pass = 0; pass < 2; pass++) {
		size_t reserve = pass == 0 ? PROG_BAR_MIN + 3 : 0;
		size_t room = budget > reserve ? budget - reserve : 0;

		used = 0;
		memset(on, 0, sizeof on);
		for (int k = 0; k < P__MAX; k++) {
			enum part p = keep[k];
			size_t need = len[p] + (used ? strlen(SEP) : 0);

			if (p == P_ETA && v->final)
				continue;
			if (p != P_COUNT && used + need > room)
				continue;
			on[p] = true;
			used += need;
		}
		if (budget >= used + PROG_BAR_MIN + 3) {
			size_t b = budget - used - 3;

			bar = (int)(b > PROG_BAR_MAX ? PROG_BAR_MAX : b);
			break;
		}
	}

	if (bar > 0) {
		int fill = v->total > 0 ? (int)((double)bar * (double)v->done / (double)v->total)
					: bar;

		if (fill > bar)
			fill = bar;
		line[n++] = '[';
		for (int i = 0; i < bar; i++)
			line[n++] = i < fill ? '#' : '-';
		line[n++] = ']';
		line[n++] = ' ';
	}
	for (int p = 0; p < P__MAX; p++) {
		if (on[p])
			last = p;
	}
	for (int p = 0, first = 1; p < P__MAX; p++) {
		size_t tl = strlen(text[p]);

		if (!on[p])
			continue;
		if (!first) {
			memcpy(line + n, SEP, strlen(SEP));
			n += strlen(SEP);
		}
		memcpy(line + n, text[p], tl);
		n += tl;
		/* Pad to the part's room, except at the end of the line. */
		for (; p != last && tl < len[p]; tl++)
			line[n++] = ' ';
		first = 0;
	}
	/* Only the count can be longer than a tiny terminal. */
	if (n > budget)
		n = budget;
	memcpy(out, line, n);
	out[n] = '\0';
	return n;
}

size_t prog_line_plain(const struct prog_view *v, char *out, size_t outsz)
{
	char el[32], eta[32];
	long long rate = rate_whole(v->rate_per_min);
	int w;

	if (outsz == 0)
		return 0;
	prog_fmt_duration(v->elapsed_s, el, sizeof el);
	prog_fmt_duration(v->final ? (v->done >= v->total ? 0 : -1) : v->eta_s, eta, sizeof eta);
	w = snprintf(out, outsz,
		     "progress %lld/%lld %s (%.1f%%), %lld failed, %lld %s/min, elapsed %s, ETA %s, "
		     "%lld %s",
		     (long long)v->done, (long long)v->total, prog_plural(v->total, "row", "rows"),
		     pct_of(v), (long long)v->failed, rate, prog_plural(rate, "row", "rows"), el, eta,
		     (long long)v->credits, prog_plural(v->credits, "credit", "credits"));
	if (w < 0)
		w = 0;
	return (size_t)w < outsz ? (size_t)w : outsz - 1;
}
