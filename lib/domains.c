/*
 * domains.c - free/disposable domain lists, registrable domains, ccTLD
 * countries.
 *
 * The lists are open-addressing hash sets over the file's own text: the
 * file is read once, each name is lower-cased and NUL-terminated in place,
 * and a slot holds the name's offset and hash.  Nothing is written after
 * dom_lists_load() returns, which is what makes concurrent reads safe.
 */
#include "domains.h"

#include <errno.h>
#include <libpsl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ascii.h"
#include "limits.h"
#include "log.h"
#include "util.h"

struct dom_slot {
	uint32_t hash;
	uint32_t off1;  /* offset of the name in text, plus one; 0: empty */
};

struct dom_set {
	char *text;             /* the file, names NUL-terminated in place */
	struct dom_slot *slots;
	size_t mask;            /* slots - 1; the slot count is a power of two */
	size_t count;
};

struct dom_lists {
	struct dom_set free_set;
	struct dom_set disposable_set;
};

bool dom_valid(const char *d, size_t len)
{
	size_t i, start = 0, labels = 0;

	if (d == NULL || len == 0 || len > LIM_REC_DOMAIN_MAX)
		return false;
	for (i = 0; i <= len; i++) {
		size_t n;

		if (i < len && d[i] != '.') {
			if (!ascii_is_lower(d[i]) && !ascii_is_digit(d[i]) && d[i] != '-')
				return false;
			continue;
		}
		n = i - start;
		if (n == 0 || n > LIM_REC_LABEL_MAX || d[start] == '-' || d[i - 1] == '-')
			return false;
		labels++;
		if (i == len) {
			/* RFC 3696 section 2: a top-level label is never all
			 * digits; enrichd asks for letters only, or the ASCII
			 * form of an internationalised TLD. */
			if (n > 4 && memcmp(d + start, "xn--", 4) == 0)
				break;
			for (size_t k = start; k < i; k++) {
				if (!ascii_is_lower(d[k]))
					return false;
			}
			if (n < 2)
				return false;
		}
		start = i + 1;
	}
	return labels >= 2;
}

/* Lower-case a host name into out (LIM_REC_DOMAIN_MAX + 1 bytes) and check
 * it; false when it is not a valid name. */
static bool lower_valid(const char *domain, char *out)
{
	size_t n;

	if (domain == NULL)
		return false;
	n = strnlen(domain, LIM_REC_DOMAIN_MAX + 1);
	if (n > LIM_REC_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = ascii_to_lower(domain[i]);
	out[n] = '\0';
	return dom_valid(out, n);
}

/* FNV-1a: the keys are host names from a file we ship, so there is no
 * adversary choosing collisions for the table itself. */
static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static bool set_contains(const struct dom_set *set, const char *name)
{
	uint32_t h;
	size_t i;

	if (set->slots == NULL)
		return false;
	h = name_hash(name);
	for (i = h & set->mask;; i = (i + 1) & set->mask) {
		const struct dom_slot *s = &set->slots[i];

		if (s->off1 == 0)
			return false;
		if (s->hash == h && strcmp(set->text + s->off1 - 1, name) == 0)
			return true;
	}
}

/* Insert the name at text + off unless it is there already. */
static void set_insert(struct dom_set *set, uint32_t off)
{
	const char *name = set->text + off;
	uint32_t h = name_hash(name);
	size_t i;

	for (i = h & set->mask;; i = (i + 1) & set->mask) {
		struct dom_slot *s = &set->slots[i];

		if (s->off1 == 0) {
			s->hash = h;
			s->off1 = off + 1;
			set->count++;
			return;
		}
		if (s->hash == h && strcmp(set->text + s->off1 - 1, name) == 0)
			return;
	}
}

static void set_release(struct dom_set *set)
{
	free(set->text);
	free(set->slots);
	set->text = NULL;
	set->slots = NULL;
	set->mask = 0;
	set->count = 0;
}

static void log_errno(const char *path, const char *what, int e)
{
	char eb[128];

	log_error("dom", "%s: %s: %s", path, what, strerror_r(e, eb, sizeof eb));
}

/* Read the whole regular file at path (at most LIM_DOM_FILE_MAX bytes)
 * into a fresh NUL-terminated buffer; what went wrong is logged. */
static enum enr_err read_file(const char *path, char **out, size_t *outlen)
{
	enum enr_err rc = util_read_file(path, LIM_DOM_FILE_MAX, UTIL_RF_REGULAR, out, outlen);

	switch (rc) {
	case ENR_OK:
	case ENR_E_NOMEM:
		return rc;
	case ENR_E_INVALID:
		log_error("dom", "%s: not a regular file", path);
		return ENR_E_IO;
	case ENR_E_TOO_LARGE:
		log_error("dom", "%s: larger than %u bytes", path, LIM_DOM_FILE_MAX);
		return ENR_E_CONFIG;
	default:
		log_errno(path, rc == ENR_E_NOT_FOUND ? "cannot open" : "cannot read", errno);
		return ENR_E_IO;
	}
}

/* Fill set from the list file at path.  On failure set is left empty. */
static enum enr_err set_load(struct dom_set *set, const char *path)
{
	enum enr_err rc;
	size_t len = 0, lines = 1, slots = 16, pos, lineno = 0;
	char *text = NULL;

	rc = read_file(path, &text, &len);
	if (rc)
		return rc;
	set->text = text;
	for (pos = 0; pos < len; pos++) {
		if (text[pos] == '\n')
			lines++;
	}
	if (lines > LIM_DOM_ENTRIES_MAX) {
		log_error("dom", "%s: more than %u lines", path, LIM_DOM_ENTRIES_MAX);
		rc = ENR_E_CONFIG;
		goto out;
	}
	/* At most half full keeps linear probing short. */
	while (slots < 2 * lines)
		slots *= 2;
	set->slots = calloc(slots, sizeof *set->slots);
	if (set->slots == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	set->mask = slots - 1;
	set->count = 0;

	for (pos = 0; pos < len;) {
		size_t end = pos, a, b;

		while (end < len && text[end] != '\n')
			end++;
		lineno++;
		/* A '#' starts a comment anywhere: no host name contains one. */
		a = pos;
		b = end;
		for (size_t k = a; k < b; k++) {
			if (text[k] == '#') {
				b = k;
				break;
			}
		}
		while (a < b && (text[a] == ' ' || text[a] == '\t'))
			a++;
		while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' ||
				 text[b - 1] == '\r'))
			b--;
		if (a < b) {
			for (size_t k = a; k < b; k++)
				text[k] = ascii_to_lower(text[k]);
			if (!dom_valid(text + a, b - a)) {
				log_error("dom", "%s:%zu: not a domain name", path, lineno);
				rc = ENR_E_CONFIG;
				goto out;
			}
			text[b] = '\0';
			set_insert(set, (uint32_t)a);
		}
		pos = end + 1;
	}
	rc = ENR_OK;
out:
	if (rc)
		set_release(set);
	return rc;
}

struct dom_lists *dom_lists_load(const char *data_dir, enum enr_err *err)
{
	static const char *const files[2] = { DOM_FREE_FILE, DOM_DISPOSABLE_FILE };
	struct dom_lists *l = NULL;
	enum enr_err rc = ENR_E_INVALID;

	if (data_dir == NULL || *data_dir == '\0')
		goto out;
	l = calloc(1, sizeof *l);
	if (l == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		struct dom_set *set = i == 0 ? &l->free_set : &l->disposable_set;
		char path[4096];
		int n = snprintf(path, sizeof path, "%s/%s", data_dir, files[i]);

		if (n < 0 || (size_t)n >= sizeof path) {
			log_error("dom", "data directory path too long");
			rc = ENR_E_CONFIG;
			goto out;
		}
		rc = set_load(set, path);
		if (rc)
			goto out;
	}
	rc = ENR_OK;
out:
	if (rc) {
		dom_lists_free(l);
		if (err)
			*err = rc;
		return NULL;
	}
	return l;
}

void dom_lists_free(struct dom_lists *l)
{
	if (l == NULL)
		return;
	set_release(&l->free_set);
	set_release(&l->disposable_set);
	free(l);
}

size_t dom_lists_free_count(const struct dom_lists *l)
{
	return l ? l->free_set.count : 0;
}

size_t dom_lists_disposable_count(const struct dom_lists *l)
{
	return l ? l->disposable_set.count : 0;
}

/* libpsl's compiled-in list is immutable and needs no setup; when a build
 * of libpsl has none, the newest list on the system is loaded once and
 * kept for the life of the process. */
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl_ctx;

static void psl_setup(void)
{
	psl_ctx = psl_builtin();
	if (psl_ctx == NULL)
		psl_ctx = psl_latest(NULL);
}

static const psl_ctx_t *psl_get(void)
{
	pthread_once(&psl_once, psl_setup);
	return psl_ctx;
}

bool dom_is_free(const struct dom_lists *l, const char *domain)
{
	char name[LIM_REC_DOMAIN_MAX + 1];

	if (l == NULL || !lower_valid(domain, name))
		return false;
	return set_contains(&l->free_set, name);
}

bool dom_is_disposable(const struct dom_lists *l, const char *domain)
{
	char name[LIM_REC_DOMAIN_MAX + 1];
	const psl_ctx_t *psl;
	const char *p;

	if (l == NULL || !lower_valid(domain, name))
		return false;
	psl = psl_get();
	for (p = name;;) {
		const char *dot;

		if (set_contains(&l->disposable_set, p))
			return true;
		dot = strchr(p, '.');
		if (dot == NULL || strchr(dot + 1, '.') == NULL)
			return false;
		if (psl && psl_is_public_suffix2(psl, dot + 1,
						 PSL_TYPE_ICANN | PSL_TYPE_NO_STAR_RULE))
			return false;
		p = dot + 1;
	}
}

static _Thread_local struct {
	const psl_ctx_t *psl;              /* NULL: nothing kept */
	bool found;
	char name[LIM_REC_DOMAIN_MAX + 1];
	char reg[LIM_REC_DOMAIN_MAX + 1];
} memo;

enum enr_err dom_registrable(const char *domain, char *out, size_t outsz)
{
	char name[LIM_REC_DOMAIN_MAX + 1];
	const psl_ctx_t *psl;
	const char *reg;
	size_t n;

	if (!lower_valid(domain, name))
		return ENR_E_INVALID;
	psl = psl_get();
	if (psl == NULL)
		return ENR_E_UNAVAILABLE;
	/* A request asks about the same domain more than once (its address
	 * when normalised, its company when planned): the thread's last
	 * answer is kept. */
	if (memo.psl == psl && strcmp(memo.name, name) == 0) {
		reg = memo.found ? memo.reg : NULL;
	} else {
		reg = psl_registrable_domain(psl, name);
		memo.psl = NULL;
		memo.found = reg != NULL && strlen(reg) < sizeof memo.reg;
		if (reg == NULL || memo.found) {
			memcpy(memo.name, name, strlen(name) + 1);
			if (reg)
				memcpy(memo.reg, reg, strlen(reg) + 1);
			memo.psl = psl;
		}
	}
	if (reg == NULL)
		return ENR_E_NOT_FOUND;
	n = strlen(reg);
	if (out == NULL || n >= outsz)
		return ENR_E_TOO_LARGE;
	memcpy(out, reg, n + 1);
	return ENR_OK;
}

/*
 * ISO 3166-1 alpha-2 country-code TLDs in use, plus .uk (the United
 * Kingdom's ccTLD, whose ISO code is GB).  Sorted by code for bsearch.
 *
 * Left out on purpose, because the name says nothing about where its
 * owner is: codes marketed worldwide as vanity or generic names (.ac .ag
 * .ai .am .as .bz .cc .co .cx .dj .fm .gg .gl .im .io .la .ly .md .me .ms
 * .nu .pw .sh .so .st .tm .to .tv .vc .ws); codes that were given away
 * free and are mostly abuse (.cf .ga .gq .ml .tk); codes of uninhabited
 * territories (.aq .bv .gs .hm .tf) and codes not delegated at all (.bl
 * .bq .eh .mf .sj .um).  The names are the common English short forms.
 */
struct dom_cc {
	char code[3];
	const char *name;
};

static const struct dom_cc dom_ccs[] = {
	{ "ad", "Andorra" },
	{ "ae", "United Arab Emirates" },
	{ "af", "Afghanistan" },
	{ "al", "Albania" },
	{ "ao", "Angola" },
	{ "ar", "Argentina" },
	{ "at", "Austria" },
	{ "au", "Australia" },
	{ "aw", "Aruba" },
	{ "ax", "Åland Islands" },
	{ "az", "Azerbaijan" },
	{ "ba", "Bosnia and Herzegovina" },
	{ "bb", "Barbados" },
	{ "bd", "Bangladesh" },
	{ "be", "Belgium" },
	{ "bf", "Burkina Faso" },
	{ "bg", "Bulgaria" },
	{ "bh", "Bahrain" },
	{ "bi", "Burundi" },
	{ "bj", "Benin" },
	{ "bm", "Bermuda" },
	{ "bn", "Brunei" },
	{ "bo", "Bolivia" },
	{ "br", "Brazil" },
	{ "bs", "Bahamas" },
	{ "bt", "Bhutan" },
	{ "bw", "Botswana" },
	{ "by", "Belarus" },
	{ "ca", "Canada" },
	{ "cd", "Democratic Republic of the Congo" },
	{ "cg", "Republic of the Congo" },
	{ "ch", "Switzerland" },
	{ "ci", "Côte d'Ivoire" },
	{ "ck", "Cook Islands" },
	{ "cl", "Chile" },
	{ "cm", "Cameroon" },
	{ "cn", "China" },
	{ "cr", "Costa Rica" },
	{ "cu", "Cuba" },
	{ "cv", "Cape Verde" },
	{ "cw", "Curaçao" },
	{ "cy", "Cyprus" },
	{ "cz", "Czechia" },
	{ "de", "Germany" },
	{ "dk", "Denmark" },
	{ "dm", "Dominica" },
	{ "do", "Dominican Republic" },
	{ "dz", "Algeria" },
	{ "ec", "Ecuador" },
	{ "ee", "Estonia" },
	{ "eg", "Egypt" },
	{ "er", "Eritrea" },
	{ "es", "Spain" },
	{ "et", "Ethiopia" },
	{ "fi", "Finland" },
	{ "fj", "Fiji" },
	{ "fk", "Falkland Islands" },
	{ "fo", "Faroe Islands" },
	{ "fr", "France" },
	{ "gb", "United Kingdom" },
	{ "gd", "Grenada" },
	{ "ge", "Georgia" },
	{ "gf", "French Guiana" },
	{ "gh", "Ghana" },
	{ "gi", "Gibraltar" },
	{ "gm", "Gambia" },
	{ "gn", "Guinea" },
	{ "gp", "Guadeloupe" },
	{ "gr", "Greece" },
	{ "gt", "Guatemala" },
	{ "gu", "Guam" },
	{ "gw", "Guinea-Bissau" },
	{ "gy", "Guyana" },
	{ "hk", "Hong Kong" },
	{ "hn", "Honduras" },
	{ "hr", "Croatia" },
	{ "ht", "Haiti" },
	{ "hu", "Hungary" },
	{ "id", "Indonesia" },
	{ "ie", "Ireland" },
	{ "il", "Israel" },
	{ "in", "India" },
	{ "iq", "Iraq" },
	{ "ir", "Iran" },
	{ "is", "Iceland" },
	{ "it", "Italy" },
	{ "je", "Jersey" },
	{ "jm", "Jamaica" },
	{ "jo", "Jordan" },
	{ "jp", "Japan" },
	{ "ke", "Kenya" },
	{ "kg", "Kyrgyzstan" },
	{ "kh", "Cambodia" },
	{ "ki", "Kiribati" },
	{ "km", "Comoros" },
	{ "kn", "Saint Kitts and Nevis" },
	{ "kp", "North Korea" },
	{ "kr", "South Korea" },
	{ "kw", "Kuwait" },
	{ "ky", "Cayman Islands" },
	{ "kz", "Kazakhstan" },
	{ "lb", "Lebanon" },
	{ "lc", "Saint Lucia" },
	{ "li", "Liechtenstein" },
	{ "lk", "Sri Lanka" },
	{ "lr", "Liberia" },
	{ "ls", "Lesotho" },
	{ "lt", "Lithuania" },
	{ "lu", "Luxembourg" },
	{ "lv", "Latvia" },
	{ "ma", "Morocco" },
	{ "mc", "Monaco" },
	{ "mg", "Madagascar" },
	{ "mh", "Marshall Islands" },
	{ "mk", "North Macedonia" },
	{ "mm", "Myanmar" },
	{ "mn", "Mongolia" },
	{ "mo", "Macao" },
	{ "mp", "Northern Mariana Islands" },
	{ "mq", "Martinique" },
	{ "mr", "Mauritania" },
	{ "mt", "Malta" },
	{ "mu", "Mauritius" },
	{ "mv", "Maldives" },
	{ "mw", "Malawi" },
	{ "mx", "Mexico" },
	{ "my", "Malaysia" },
	{ "mz", "Mozambique" },
	{ "na", "Namibia" },
	{ "nc", "New Caledonia" },
	{ "ne", "Niger" },
	{ "nf", "Norfolk Island" },
	{ "ng", "Nigeria" },
	{ "ni", "Nicaragua" },
	{ "nl", "Netherlands" },
	{ "no", "Norway" },
	{ "np", "Nepal" },
	{ "nr", "Nauru" },
	{ "nz", "New Zealand" },
	{ "om", "Oman" },
	{ "pa", "Panama" },
	{ "pe", "Peru" },
	{ "pf", "French Polynesia" },
	{ "pg", "Papua New Guinea" },
	{ "ph", "Philippines" },
	{ "pk", "Pakistan" },
	{ "pl", "Poland" },
	{ "pm", "Saint Pierre and Miquelon" },
	{ "pn", "Pitcairn Islands" },
	{ "pr", "Puerto Rico" },
	{ "ps", "Palestine" },
	{ "pt", "Portugal" },
	{ "py", "Paraguay" },
	{ "qa", "Qatar" },
	{ "re", "Réunion" },
	{ "ro", "Romania" },
	{ "rs", "Serbia" },
	{ "ru", "Russia" },
	{ "rw", "Rwanda" },
	{ "sa", "Saudi Arabia" },
	{ "sb", "Solomon Islands" },
	{ "sc", "Seychelles" },
	{ "sd", "Sudan" },
	{ "se", "Sweden" },
	{ "sg", "Singapore" },
	{ "si", "Slovenia" },
	{ "sk", "Slovakia" },
	{ "sl", "Sierra Leone" },
	{ "sm", "San Marino" },
	{ "sn", "Senegal" },
	{ "sr", "Suriname" },
	{ "ss", "South Sudan" },
	{ "sv", "El Salvador" },
	{ "sx", "Sint Maarten" },
	{ "sy", "Syria" },
	{ "sz", "Eswatini" },
	{ "tc", "Turks and Caicos Islands" },
	{ "td", "Chad" },
	{ "tg", "Togo" },
	{ "th", "Thailand" },
	{ "tj", "Tajikistan" },
	{ "tl", "Timor-Leste" },
	{ "tn", "Tunisia" },
	{ "tr", "Türkiye" },
	{ "tt", "Trinidad and Tobago" },
	{ "tw", "Taiwan" },
	{ "tz", "Tanzania" },
	{ "ua", "Ukraine" },
	{ "ug", "Uganda" },
	{ "uk", "United Kingdom" },
	{ "us", "United States" },
	{ "uy", "Uruguay" },
	{ "uz", "Uzbekistan" },
	{ "va", "Vatican City" },
	{ "ve", "Venezuela" },
	{ "vg", "British Virgin Islands" },
	{ "vi", "United States Virgin Islands" },
	{ "vn", "Vietnam" },
	{ "vu", "Vanuatu" },
	{ "wf", "Wallis and Futuna" },
	{ "ye", "Yemen" },
	{ "yt", "Mayotte" },
	{ "za", "South Africa" },
	{ "zm", "Zambia" },
	{ "zw", "Zimbabwe" },
};

static int cc_cmp(const void *key, const void *elem)
{
	const struct dom_cc *cc = elem;

	return strcmp(key, cc->code);
}

/* Countries whose codes dom_ccs leaves out (see above): known to the
 * search filters by code and name, never guessed from a domain.  Sorted
 * by code. */
static const struct dom_cc dom_ccs_more[] = {
	{ "ac", "Ascension Island" },
	{ "ag", "Antigua and Barbuda" },
	{ "ai", "Anguilla" },
	{ "am", "Armenia" },
	{ "as", "American Samoa" },
	{ "bl", "Saint Barthelemy" },
	{ "bq", "Caribbean Netherlands" },
	{ "bz", "Belize" },
	{ "cc", "Cocos Islands" },
	{ "cf", "Central African Republic" },
	{ "co", "Colombia" },
	{ "cx", "Christmas Island" },
	{ "dj", "Djibouti" },
	{ "eh", "Western Sahara" },
	{ "fm", "Micronesia" },
	{ "ga", "Gabon" },
	{ "gg", "Guernsey" },
	{ "gl", "Greenland" },
	{ "gq", "Equatorial Guinea" },
	{ "im", "Isle of Man" },
	{ "io", "British Indian Ocean Territory" },
	{ "la", "Laos" },
	{ "ly", "Libya" },
	{ "md", "Moldova" },
	{ "me", "Montenegro" },
	{ "mf", "Saint Martin" },
	{ "ml", "Mali" },
	{ "ms", "Montserrat" },
	{ "nu", "Niue" },
	{ "pw", "Palau" },
	{ "sh", "Saint Helena" },
	{ "sj", "Svalbard and Jan Mayen" },
	{ "so", "Somalia" },
	{ "st", "Sao Tome and Principe" },
	{ "tk", "Tokelau" },
	{ "tm", "Turkmenistan" },
	{ "to", "Tonga" },
	{ "tv", "Tuvalu" },
	{ "vc", "Saint Vincent and the Grenadines" },
	{ "ws", "Samoa" },
};

const char *dom_country_by_code(const char *code)
{
	const struct dom_cc *cc;

	if (code == NULL || strlen(code) != 2)
		return NULL;
	cc = bsearch(code, dom_ccs, sizeof dom_ccs / sizeof dom_ccs[0], sizeof dom_ccs[0], cc_cmp);
	if (cc == NULL)
		cc = bsearch(code, dom_ccs_more, sizeof dom_ccs_more / sizeof dom_ccs_more[0],
			     sizeof dom_ccs_more[0], cc_cmp);
	return cc ? cc->name : NULL;
}

const char *dom_country_code_of(const char *name)
{
	const struct {
		const struct dom_cc *t;
		size_t n;
	} tables[] = {
		{ dom_ccs, sizeof dom_ccs / sizeof dom_ccs[0] },
		{ dom_ccs_more, sizeof dom_ccs_more / sizeof dom_ccs_more[0] },
	};

	if (name == NULL)
		return NULL;
	/* Sorted by code, so "gb" comes before "uk" for the United Kingdom. */
	for (size_t k = 0; k < sizeof tables / sizeof tables[0]; k++) {
		for (size_t i = 0; i < tables[k].n; i++) {
			if (strcasecmp(tables[k].t[i].name, name) == 0)
				return tables[k].t[i].code;
		}
	}
	return NULL;
}

const char *dom_country(const char *domain)
{
	const struct dom_cc *cc;
	const char *tld;
	char code[3];
	size_t n;

	if (domain == NULL)
		return NULL;
	n = strnlen(domain, LIM_REC_DOMAIN_MAX + 2);
	if (n > LIM_REC_DOMAIN_MAX + 1)
		return NULL;
	if (n > 0 && domain[n - 1] == '.')
		n--;
	/* The last label must be exactly two letters after a dot. */
	if (n < 4 || domain[n - 3] != '.')
		return NULL;
	tld = domain + n - 2;
	code[0] = ascii_to_lower(tld[0]);
	code[1] = ascii_to_lower(tld[1]);
	code[2] = '\0';
	if (!ascii_is_lower(code[0]) || !ascii_is_lower(code[1]))
		return NULL;
	cc = bsearch(code, dom_ccs, sizeof dom_ccs / sizeof dom_ccs[0], sizeof dom_ccs[0],
		     cc_cmp);
	return cc ? cc->name : NULL;
}
