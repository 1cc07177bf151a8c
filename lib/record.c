/*
 * record.c - normalising the identifiers of one lookup.
 *
 * rec_normalise() builds every new value into a private array first and
 * touches the record only when all of them passed, so a refused record is
 * still the one the client sent, and every rule is written so that its
 * output passes it again unchanged (the fuzz target checks both).
 */
#include "record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "limits.h"
#include "pct.h"
#include "util.h"

const char *const rec_li_kind_names[REC_LI__MAX] = {
	[REC_LI_NONE] = "none",
	[REC_LI_PROFILE] = "profile",
	[REC_LI_PUB] = "pub",
	[REC_LI_COMPANY] = "company",
};

/* The reasons a client sees in "details"; short and stable. */
#define WHY_UTF8     "not valid UTF-8"
#define WHY_CONTROL  "contains control characters"
#define WHY_LONG     "too long"
#define WHY_EMAIL    "not a valid e-mail address"
#define WHY_DOMAIN   "not a valid domain"
#define WHY_IDN      "internationalised domain names must be sent in their ASCII (xn--) form"
#define WHY_LINKEDIN "not a LinkedIn profile or company URL"
#define WHY_NAME     "not a valid name"
#define WHY_COMPANY  "not a valid company name"
#define WHY_PHONE    "not a valid phone number (6 to 20 digits)"
#define WHY_NONE     "at least one identifier is required"

void rec_init(struct rec *r)
{
	memset(r, 0, sizeof *r);
}

void rec_release(struct rec *r)
{
	const struct dom_lists *lists = r->lists;

	for (int i = 0; i < ID__MAX; i++)
		free(r->v[i]);
	rec_init(r);
	r->lists = lists;
}

static void clear_value(struct rec *r, enum fld_ident id)
{
	free(r->v[id]);
	r->v[id] = NULL;
	r->len[id] = 0;
}

enum enr_err rec_set(struct rec *r, enum fld_ident id, const char *s, size_t n)
{
	char *copy = NULL;

	if ((unsigned)id >= ID__MAX)
		return ENR_E_INVALID;
	if (s != NULL) {
		if (n == SIZE_MAX)
			return ENR_E_NOMEM;
		copy = malloc(n + 1);
		if (copy == NULL)
			return ENR_E_NOMEM;
		if (n)
			memcpy(copy, s, n);
		copy[n] = '\0';
	}
	clear_value(r, id);
	r->v[id] = copy;
	r->len[id] = copy ? n : 0;
	switch (id) {
	case ID_EMAIL:
		if (r->domain_derived)
			clear_value(r, ID_DOMAIN);
		r->domain_derived = false;
		break;
	case ID_DOMAIN:
		r->domain_derived = false;
		break;
	case ID_FIRST_NAME:
	case ID_LAST_NAME:
		r->name_split = false;
		break;
	case ID_LINKEDIN_URL:
		r->linkedin_kind = REC_LI_NONE;
		break;
	default:
		break;
	}
	return ENR_OK;
}

const char *rec_get(const struct rec *r, enum fld_ident id)
{
	if ((unsigned)id >= ID__MAX)
		return NULL;
	return r->v[id];
}

/* ---- characters ---------------------------------------------------- */

/* Decode the code point at s (n bytes available).  Returns its length, or
 * 0 when the bytes are not well-formed UTF-8 (RFC 3629 section 4: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c;
	size_t need;

	if (n == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xE0) == 0xC0) {
		need = 1;
		c = s[0] & 0x1Fu;
	} else if ((s[0] & 0xF0) == 0xE0) {
		need = 2;
		c = s[0] & 0x0Fu;
	} else if ((s[0] & 0xF8) == 0xF0) {
		need = 3;
		c = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (n <= need)
		return 0;
	for (size_t k = 1; k <= need; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[k] & 0x3Fu);
	}
	if ((need == 1 && c < 0x80) || (need == 2 && c < 0x800) ||
	    (need == 3 && c < 0x10000) || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return need + 1;
}

enum cp_class {
	CP_TEXT,
	CP_SPACE,   /* trimmed, runs become one ' ' */
	CP_DROP,    /* invisible: removed */
	CP_CONTROL, /* refused */
};

static enum cp_class cp_classify(uint32_t c)
{
	if (c == ' ' || (c >= 0x09 && c <= 0x0D))
		return CP_SPACE;
	if (c < 0x20 || c == 0x7F)
		return CP_CONTROL;
	if (c < 0x80)
		return CP_TEXT;
	/* Unicode white space: NEL, no-break spaces, the U+2000 block,
	 * line and paragraph separators, ideographic space. */
	if (c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
	    c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000)
		return CP_SPACE;
	if (c < 0xA0)
		return CP_CONTROL; /* C1 controls */
	/* Zero-width space, direction marks, word joiner and a stray BOM
	 * arrive with copy-and-paste and only break comparisons. */
	if (c == 0x200B || c == 0x200E || c == 0x200F || c == 0x2060 || c == 0xFEFF)
		return CP_DROP;
	/* Bidirectional embeddings, overrides and isolates can make a value
	 * display as something else (the "Trojan Source" trick). */
	if ((c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) ||
	    c == 0xFFFE || c == 0xFFFF)
		return CP_CONTROL;
	return CP_TEXT;
}

/* True for a code point that can be part of a name: an ASCII letter or a
 * non-ASCII character outside the punctuation, symbol, emoji, combining
 * and private-use blocks.  An approximation of Unicode's letter classes
 * that needs no tables, good enough to refuse "123", "--" or ":-)". */
static bool cp_is_letter(uint32_t c)
{
	if (c < 0x80)
		return ascii_is_alpha((char)c);
	if (c < 0xC0 || c == 0xD7 || c == 0xF7)
		return false;
	if ((c >= 0x0300 && c <= 0x036F) || (c >= 0x2000 && c <= 0x2BFF) ||
	    (c >= 0x2E00 && c <= 0x2E7F) || (c >= 0x3000 && c <= 0x303F) ||
	    (c >= 0xE000 && c <= 0xF8FF) || (c >= 0xFE00 && c <= 0xFE6F) ||
	    (c >= 0xFF00 && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
	    (c >= 0xFF5B && c <= 0xFF65) || (c >= 0xFFF0 && c <= 0xFFFF) ||
	    (c >= 0x1F000 && c <= 0x1FAFF) || c >= 0xF0000)
		return false;
	return true;
}

static bool has_letter(const char *s, bool or_digit)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0;

	while (i < n) {
		uint32_t c;
		size_t k = utf8_decode(u + i, n - i, &c);

		if (k == 0)
			return false;
		if (cp_is_letter(c) || (or_digit && c < 0x80 && ascii_is_digit((char)c)))
			return true;
		i += k;
	}
	return false;
}

/* Trim, collapse white space and check the n raw bytes at s.  On ENR_OK
 * *out is a fresh string (NULL when nothing is left); on ENR_E_INVALID
 * *why says what was wrong. */
static enum enr_err clean_value(const char *s, size_t n, size_t max, char **out,
				const char **why)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0;
	bool space = false;
	char *d;

	/* Output never grows: a run of white space becomes one byte. */
	d = malloc((n < max ? n : max) + 1);
	if (d == NULL)
		return ENR_E_NOMEM;
	while (i < n) {
		uint32_t c;
		size_t k = utf8_decode(u + i, n - i, &c);

		if (k == 0) {
			*why = WHY_UTF8;
			goto fail;
		}
		switch (cp_classify(c)) {
		case CP_SPACE:
			if (o > 0)
				space = true;
			break;
		case CP_DROP:
			break;
		case CP_CONTROL:
			*why = WHY_CONTROL;
			goto fail;
		case CP_TEXT:
			if (o + k + (space ? 1 : 0) > max) {
				*why = WHY_LONG;
				goto fail;
			}
			if (space)
				d[o++] = ' ';
			memcpy(d + o, u + i, k);
			o += k;
			space = false;
			break;
		}
		i += k;
	}
	if (o == 0) {
		free(d);
		*out = NULL;
		return ENR_OK;
	}
	d[o] = '\0';
	*out = d;
	return ENR_OK;
fail:
	free(d);
	return ENR_E_INVALID;
}

/* ---- e-mail ---------------------------------------------------------- */

static bool email_local_char(char c)
{
	return ascii_is_alnum(c) || (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~.-", c));
}

/* Lower-case and check an address in place. */
static const char *norm_email(char *s)
{
	size_t n = strlen(s), local;
	char *at;

	if (n >= 7 && util_strn_ieq(s, 7, "mailto:")) {
		memmove(s, s + 7, n - 7 + 1);
		n -= 7;
	}
	if (n > LIM_REC_EMAIL_MAX)
		return WHY_EMAIL;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return WHY_EMAIL;
		s[i] = ascii_to_lower(s[i]);
	}
	at = strchr(s, '@');
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return WHY_EMAIL;
	local = (size_t)(at - s);
	if (local == 0 || local > LIM_REC_EMAIL_LOCAL_MAX)
		return WHY_EMAIL;
	/* RFC 5322 3.2.3 dot-atom: no leading, trailing or double dot.
	 * Quoted local parts are legal but not worth their risk here. */
	if (s[0] == '.' || s[local - 1] == '.')
		return WHY_EMAIL;
	for (size_t i = 0; i < local; i++) {
		if (!email_local_char(s[i]) || (s[i] == '.' && s[i + 1] == '.'))
			return WHY_EMAIL;
	}
	if (!dom_valid(at + 1, n - local - 1))
		return WHY_EMAIL;
	return NULL;
}

/* ---- domain ---------------------------------------------------------- */

/* Reduce a domain, host or URL to its host name, in place. */
static const char *norm_domain(char *s)
{
	size_t n = strlen(s), a = 0, b, i;
	const char *colon;

	for (i = 0; i < n; i++)
		s[i] = ascii_to_lower(s[i]);
	/* RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	if (ascii_is_alpha(s[0])) {
		i = 1;
		while (ascii_is_alnum(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
			i++;
		if (strncmp(s + i, "://", 3) == 0)
			a = i + 3;
	} else if (strncmp(s, "//", 2) == 0) {
		a = 2;
	}
	b = a;
	while (b < n && s[b] != '/' && s[b] != '?' && s[b] != '#')
		b++;
	/* Only the host matters: a path may hold anything. */
	for (i = a; i < b; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return WHY_IDN;
	}
	/* A user name or an IP literal in the authority is not a company
	 * domain; refuse rather than guess. */
	if (memchr(s + a, '@', b - a) != NULL || (a < b && s[a] == '['))
		return WHY_DOMAIN;
	colon = memchr(s + a, ':', b - a);
	if (colon != NULL) {
		size_t p = (size_t)(colon - s), digits = b - p - 1;

		if (digits == 0 || digits > 5)
			return WHY_DOMAIN;
		for (i = p + 1; i < b; i++) {
			if (!ascii_is_digit(s[i]))
				return WHY_DOMAIN;
		}
		b = p;
	}
	if (b > a && s[b - 1] == '.')
		b--;
	/* "www." goes as long as at least two labels stay ("www.com" is a
	 * domain of its own). */
	while (b - a > 4 && memcmp(s + a, "www.", 4) == 0 && memchr(s + a + 4, '.', b - a - 4))
		a += 4;
	if (!dom_valid(s + a, b - a))
		return WHY_DOMAIN;
	memmove(s, s + a, b - a);
	s[b - a] = '\0';
	return NULL;
}

/* ---- LinkedIn -------------------------------------------------------- */

/* Percent-decode, check and re-encode one path segment (n bytes at seg,
 * ASCII already lower case) onto out: [a-z0-9_-] as is, and well-formed
 * UTF-8 text with every byte written %xx.  False when the segment is not
 * a plausible slug. */
static bool slug_put(struct buf *out, const char *seg, size_t n)
{
	unsigned char dec[LIM_REC_SLUG_MAX + 1];
	size_t len = 0, i;

	if (!pct_decode(seg, n, 0, (char *)dec, sizeof dec, &len) || len < LIM_REC_SLUG_MIN)
		return false;
	for (i = 0; i < len; i++) {
		if (dec[i] < 0x80)
			dec[i] = (unsigned char)ascii_to_lower((char)dec[i]);
	}
	for (i = 0; i < len;) {
		uint32_t cp;
		size_t k;

		if (dec[i] < 0x80) {
			char c = (char)dec[i];

			if (!ascii_is_alnum(c) && c != '-' && c != '_')
				return false;
			if (buf_putc(out, c))
				return false;
			i++;
			continue;
		}
		k = utf8_decode(dec + i, len - i, &cp);
		if (k == 0 || cp_classify(cp) != CP_TEXT)
			return false;
		if (pct_encode(out, (const char *)dec + i, k, NULL, PCT_LOWER_HEX))
			return false;
		i += k;
	}
	return true;
}

static bool li_host_ok(const char *h, size_t n)
{
	static const char suffix[] = ".linkedin.com";
	const size_t sl = sizeof suffix - 1;
	size_t pl;

	if (n == sl - 1 && memcmp(h, suffix + 1, n) == 0)
		return true;
	if (n <= sl || memcmp(h + n - sl, suffix, sl) != 0)
		return false;
	pl = n - sl;
	if ((pl == 3 && memcmp(h, "www", 3) == 0) || (pl == 1 && h[0] == 'm') ||
	    (pl == 6 && memcmp(h, "mobile", 6) == 0))
		return true;
	/* Country subdomains: "uk.linkedin.com", "de.linkedin.com". */
	return pl == 2 && ascii_is_lower(h[0]) && ascii_is_lower(h[1]);
}

#define LI_SEGS 6

static const char *norm_linkedin(const char *in, char **out, enum rec_li_kind *kind)
{
	const char *seg[LI_SEGS];
	size_t segn[LI_SEGS], nseg = 0, n = strlen(in), a = 0, h, e, i;
	struct buf b;
	char *s;
	bool ok = false;

	s = malloc(n + 1);
	if (s == NULL)
		return NULL;
	for (i = 0; i <= n; i++)
		s[i] = ascii_to_lower(in[i]);
	buf_init(&b, LIM_REC_FIELD_MAX * 2);

	if (strncmp(s, "https://", 8) == 0)
		a = 8;
	else if (strncmp(s, "http://", 7) == 0)
		a = 7;
	h = a;
	while (h < n && s[h] != '/' && s[h] != '?' && s[h] != '#')
		h++;
	if (!li_host_ok(s + a, h - a) || h == n || s[h] != '/')
		goto out;
	e = h;
	while (e < n && s[e] != '?' && s[e] != '#')
		e++;
	for (i = h; i < e && nseg < LI_SEGS;) {
		size_t j;

		while (i < e && s[i] == '/')
			i++;
		j = i;
		while (j < e && s[j] != '/')
			j++;
		if (j > i) {
			seg[nseg] = s + i;
			segn[nseg] = j - i;
			nseg++;
		}
		i = j;
	}
	if (nseg >= 2 && segn[0] == 2 && memcmp(seg[0], "in", 2) == 0) {
		/* Anything after the slug is a sub-page of the profile. */
		ok = !buf_puts(&b, "https://www.linkedin.com/in/") && slug_put(&b, seg[1], segn[1]);
		*kind = REC_LI_PROFILE;
	} else if (nseg >= 2 && segn[0] == 7 && memcmp(seg[0], "company", 7) == 0) {
		ok = !buf_puts(&b, "https://www.linkedin.com/company/") &&
		     slug_put(&b, seg[1], segn[1]);
		*kind = REC_LI_COMPANY;
	} else if (nseg == 5 && segn[0] == 3 && memcmp(seg[0], "pub", 3) == 0 &&
		   !(segn[1] == 3 && memcmp(seg[1], "dir", 3) == 0)) {
		ok = !buf_puts(&b, "https://www.linkedin.com/pub/") && slug_put(&b, seg[1], segn[1]);
		for (i = 2; ok && i < 5; i++) {
			ok = segn[i] >= 1 && segn[i] <= 3;
			for (size_t k = 0; ok && k < segn[i]; k++)
				ok = ascii_is_alnum(seg[i][k]);
			ok = ok && !buf_putc(&b, '/') && !buf_append(&b, seg[i], segn[i]);
		}
		*kind = REC_LI_PUB;
	}
out:
	free(s);
	if (!ok) {
		buf_release(&b);
		*out = NULL;
		return WHY_LINKEDIN;
	}
	*out = buf_steal(&b);
	buf_release(&b);
	return NULL;
}

/* ---- phone ----------------------------------------------------------- */

static const char *norm_phone(char *s)
{
	size_t o = 0, digits = 0;

	for (size_t i = 0; s[i]; i++) {
		char c = s[i];

		if (ascii_is_digit(c)) {
			s[o++] = c;
			digits++;
		} else if (c == '+' && o == 0) {
			s[o++] = c;
		} else if (!strchr(" .-/()", c)) {
			return WHY_PHONE;
		}
	}
	s[o] = '\0';
	if (digits < LIM_REC_PHONE_MIN || digits > LIM_REC_PHONE_MAX)
		return WHY_PHONE;
	return NULL;
}

/* ---- the record ------------------------------------------------------ */

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* The domain of a business address, or NULL (also on failure: deriving
 * is a convenience, never a reason to refuse). */
static char *derive_domain(const struct dom_lists *lists, const char *email, size_t max)
{
	char reg[LIM_REC_DOMAIN_MAX + 1];
	const char *host = strchr(email, '@');
	char *d;

	if (lists == NULL || host == NULL)
		return NULL;
	host++;
	if (dom_is_free(lists, host) || dom_is_disposable(lists, host))
		return NULL;
	if (dom_registrable(host, reg, sizeof reg) != ENR_OK)
		return NULL;
	if (dom_is_free(lists, reg) || dom_is_disposable(lists, reg))
		return NULL;
	/* The same rule as a domain sent by the client, so a second pass
	 * keeps it as it is. */
	if (norm_domain(reg) != NULL || strlen(reg) > max)
		return NULL;
	d = dup_n(reg, strlen(reg));
	return d;
}

enum enr_err rec_normalise(struct rec *r, size_t field_max, struct rec_problem *p)
{
	char *nv[ID__MAX] = { NULL };
	enum rec_li_kind kind = REC_LI_NONE;
	bool derived = false, split = false, any = false;
	enum fld_ident bad = ID__MAX;
	const char *why = NULL;
	enum enr_err rc = ENR_OK;
	int i;

	if (field_max == 0 || field_max > LIM_REC_FIELD_MAX)
		field_max = LIM_REC_FIELD_MAX;

	for (i = 0; i < ID__MAX && rc == ENR_OK; i++) {
		enum fld_ident id = (enum fld_ident)i;
		char *v = NULL;

		if (r->v[i] == NULL)
			continue;
		rc = clean_value(r->v[i], r->len[i], field_max, &v, &why);
		if (rc || v == NULL)
			goto next;
		switch (id) {
		case ID_EMAIL:
			why = norm_email(v);
			break;
		case ID_DOMAIN:
			why = norm_domain(v);
			break;
		case ID_COMPANY_NAME:
			why = has_letter(v, true) ? NULL : WHY_COMPANY;
			break;
		case ID_LINKEDIN_URL: {
			char *canon = NULL;

			why = norm_linkedin(v, &canon, &kind);
			if (why == NULL && canon == NULL) {
				rc = ENR_E_NOMEM;
				break;
			}
			free(v);
			v = canon;
			break;
		}
		case ID_FIRST_NAME:
		case ID_LAST_NAME:
			why = has_letter(v, false) ? NULL : WHY_NAME;
			break;
		case ID_PHONE:
			why = norm_phone(v);
			break;
		default:
			why = NULL;
			break;
		}
		/* A rule may lengthen a value (percent-encoding); the cap holds
		 * for what is stored, so a second pass accepts it. */
		if (rc == ENR_OK && why == NULL && v != NULL && strlen(v) > field_max)
			why = WHY_LONG;
		if (rc == ENR_OK && why != NULL)
			rc = ENR_E_INVALID;
	next:
		if (rc) {
			free(v);
			bad = id;
			break;
		}
		nv[i] = v;
	}
	if (rc)
		goto out;

	if (nv[ID_DOMAIN] == NULL && nv[ID_EMAIL] != NULL) {
		nv[ID_DOMAIN] = derive_domain(r->lists, nv[ID_EMAIL], field_max);
		derived = nv[ID_DOMAIN] != NULL;
	} else if (nv[ID_DOMAIN] != NULL) {
		derived = r->domain_derived;
	}

	split = r->name_split;
	if (nv[ID_FIRST_NAME] != NULL && nv[ID_LAST_NAME] == NULL) {
		char *first = nv[ID_FIRST_NAME];
		char *sp = strrchr(first, ' ');

		if (sp != NULL) {
			char *head = dup_n(first, (size_t)(sp - first));
			char *tail = dup_n(sp + 1, strlen(sp + 1));

			if (head == NULL || tail == NULL) {
				free(head);
				free(tail);
				rc = ENR_E_NOMEM;
				goto out;
			}
			if (has_letter(head, false) && has_letter(tail, false)) {
				free(first);
				nv[ID_FIRST_NAME] = head;
				nv[ID_LAST_NAME] = tail;
				split = true;
			} else {
				free(head);
				free(tail);
			}
		}
	}

	for (i = 0; i < ID__MAX; i++)
		any = any || nv[i] != NULL;
	if (!any) {
		rc = ENR_E_INVALID;
		bad = ID__MAX;
		why = WHY_NONE;
		goto out;
	}

	for (i = 0; i < ID__MAX; i++) {
		free(r->v[i]);
		r->v[i] = nv[i];
		r->len[i] = nv[i] ? strlen(nv[i]) : 0;
		nv[i] = NULL;
	}
	r->domain_derived = derived;
	r->name_split = split && r->v[ID_FIRST_NAME] != NULL && r->v[ID_LAST_NAME] != NULL;
	r->linkedin_kind = r->v[ID_LINKEDIN_URL] ? kind : REC_LI_NONE;
out:
	for (i = 0; i < ID__MAX; i++)
		free(nv[i]);
	if (rc == ENR_E_INVALID && p != NULL) {
		p->field = bad;
		p->reason = why;
	}
	return rc;
}

/* What a cache key carries as it is: everything but its own separators,
 * the escape character and control bytes. */
static bool key_plain(int c)
{
	return c != '%' && c != '|' && c != '=' && c >= 0x20 && c != 0x7F;
}

enum enr_err rec_cache_key(const struct rec *r, struct buf *out)
{
	enum enr_err rc = buf_puts(out, "v1");

	for (int i = 0; i < ID__MAX && rc == ENR_OK; i++) {
		const unsigned char *v = (const unsigned char *)r->v[i];

		if (v == NULL)
			continue;
		rc = buf_putc(out, '|');
		if (rc == ENR_OK)
			rc = buf_puts(out, fld_ident_names[i]);
		if (rc == ENR_OK)
			rc = buf_putc(out, '=');
		if (rc == ENR_OK)
			rc = pct_encode(out, (const char *)v, strlen((const char *)v), key_plain, 0);
	}
	return rc;
}

/* ---- names from an address ------------------------------------------- */

/* Local-part words that name a function, not a person.  Checked against
 * each word and against both words run together ("customer.service",
 * "no-reply"); common surnames ("Jobs", "Root") are left out on purpose. */
static const char *const role_words[] = {
	"abuse", "accounting", "accounts", "admin", "administrator", "alerts", "all",
	"billing", "bookings", "careers", "contact", "contacts", "customercare",
	"customerservice", "customers", "donotreply", "enquiries", "enquiry", "everyone",
	"feedback", "finance", "hello", "help", "helpdesk", "hi", "hostmaster", "info",
	"information", "inquiries", "inquiry", "invoice", "invoices", "mail", "mailer",
	"marketing", "media", "news", "newsletter", "noc", "noreply", "notifications",
	"office", "ops", "orders", "partners", "payments", "postmaster", "privacy",
	"reception", "recruiting", "recruitment", "reply", "reservations", "sales",
	"security", "service", "services", "staff", "support", "sysadmin", "team", "tech",
	"test", "webmaster", "welcome",
};

static bool is_role_word(const char *w, size_t n)
{
	for (size_t i = 0; i < sizeof role_words / sizeof role_words[0]; i++) {
		if (util_strn_ieq(w, n, role_words[i]))
			return true;
	}
	return false;
}

static bool put_name(char *dst, size_t dsz, const char *w, size_t n)
{
	if (n >= dsz)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = ascii_to_lower(w[i]);

		dst[i] = i == 0 ? (char)(c - 'a' + 'A') : c;
	}
	dst[n] = '\0';
	return true;
}

bool rec_names_from_email(const char *email, char *first, size_t fsz, char *last,
			  size_t lsz)
{
	char joined[2 * LIM_REC_NAME_MAX + 1];
	const char *at, *sep = NULL, *end;
	size_t n1, n2;

	if (email == NULL || first == NULL || last == NULL)
		return false;
	at = strchr(email, '@');
	if (at == NULL)
		return false;
	end = memchr(email, '+', (size_t)(at - email));
	if (end == NULL)
		end = at;
	if ((size_t)(end - email) > LIM_REC_EMAIL_LOCAL_MAX)
		return false;
	for (const char *c = email; c < end; c++) {
		if (*c == '.' || *c == '_' || *c == '-') {
			if (sep != NULL)
				return false;
			sep = c;
		} else if (!ascii_is_alpha(*c)) {
			return false;
		}
	}
	if (sep == NULL)
		return false;
	n1 = (size_t)(sep - email);
	n2 = (size_t)(end - sep - 1);
	if (n1 < 2 || n2 < 2 || n1 > LIM_REC_NAME_MAX || n2 > LIM_REC_NAME_MAX)
		return false;
	memcpy(joined, email, n1);
	memcpy(joined + n1, sep + 1, n2);
	if (is_role_word(email, n1) || is_role_word(sep + 1, n2) ||
	    is_role_word(joined, n1 + n2))
		return false;
	if (n1 >= fsz || n2 >= lsz)
		return false;
	put_name(first, fsz, email, n1);
	put_name(last, lsz, sep + 1, n2);
	return true;
}
