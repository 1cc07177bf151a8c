/*
 * record.h - the normalised input record of one lookup.
 *
 * Prefix: rec_.  A struct rec holds the identifiers a client sent
 * (enum fld_ident: email, domain, company_name, linkedin_url, first_name,
 * last_name, phone).  The HTTP and CSV layers fill it with rec_set(), call
 * rec_normalise() before anything else looks at it, and hand the result to
 * the cache (rec_cache_key()) and the provider adapters.  The struct is
 * caller-owned (rec_init/rec_release) and owns its strings; one owner at a
 * time.  A normalised record is immutable by convention and may then be
 * read from several threads.
 *
 * What rec_normalise() does to each identifier:
 *   every value   trimmed (ASCII white space, no-break and other Unicode
 *                 spaces), inner runs of white space made one space,
 *                 invisible zero-width characters dropped; must be valid
 *                 UTF-8 without control characters, at most field_max
 *                 bytes; empty means absent.
 *   email         lower case; "mailto:" dropped; one '@'; local part 1..64
 *                 of letters, digits and !#$%&'*+/=?^_`{|}~.- without a
 *                 leading, trailing or double dot; domain as dom_valid().
 *   domain        "https://www.Example.COM:443/path?q" -> "example.com":
 *                 lower case; scheme, port, path, query, fragment, leading
 *                 "www." and one trailing dot removed; a user name or an
 *                 IP literal is refused; then dom_valid().  Unicode names
 *                 must come in their ASCII (xn--) form.
 *                 When no domain was sent, it is derived from a business
 *                 e-mail address (the registrable domain of the address's
 *                 domain) unless that is a free-mail or disposable domain
 *                 or no lists were given; domain_derived says so.
 *   linkedin_url  a profile becomes https://www.linkedin.com/in/<slug>;
 *                 accepted: with or without scheme (http or https),
 *                 "www.", "m.", "mobile." or a country subdomain
 *                 ("uk.linkedin.com"), trailing slash, query, fragment,
 *                 and sub-pages ("/in/<slug>/details/"); the slug is lower
 *                 case with non-ASCII bytes percent-encoded.  A company
 *                 page becomes https://www.linkedin.com/company/<slug>
 *                 (linkedin_kind REC_LI_COMPANY).  The old public-profile
 *                 form /pub/<name>/<a>/<b>/<c> is kept as
 *                 https://www.linkedin.com/pub/<name>/<a>/<b>/<c>: its
 *                 mapping to an /in/ slug is not documented, so it is not
 *                 guessed.  Anything else (other hosts, /school/, /jobs/,
 *                 a bare slug) is an error.
 *   first/last    trimmed; must contain a letter.  When only first_name is
 *                 given and it holds a space, its last word becomes
 *                 last_name (when both parts contain a letter); name_split
 *                 says so.
 *   company_name  trimmed; must contain a letter or a digit.
 *   phone         leading '+' and digits kept; spaces, '.', '-', '/', '('
 *                 and ')' dropped; anything else is an error; 6..20 digits.
 * At least one identifier must remain.
 */
#ifndef ENR_RECORD_H
#define ENR_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "domains.h"
#include "err.h"
#include "fields.h"

/* What kind of page linkedin_url points at, once normalised. */
enum rec_li_kind {
	REC_LI_NONE,    /* no linkedin_url */
	REC_LI_PROFILE, /* https://www.linkedin.com/in/<slug> */
	REC_LI_PUB,     /* https://www.linkedin.com/pub/<name>/<a>/<b>/<c> */
	REC_LI_COMPANY, /* https://www.linkedin.com/company/<slug> */
	REC_LI__MAX
};

extern const char *const rec_li_kind_names[REC_LI__MAX];

struct rec {
	char *v[ID__MAX];       /* owned, NUL-terminated; NULL: absent */
	size_t len[ID__MAX];    /* bytes of v[i] (raw values may hold NULs) */
	bool domain_derived;    /* domain came from the e-mail address */
	bool name_split;        /* first/last came from splitting first_name */
	enum rec_li_kind linkedin_kind;
	/* Borrowed, may be NULL: the free/disposable lists used to decide
	 * whether the domain may be derived from the e-mail address.  Set
	 * before rec_normalise(); without lists no domain is derived. */
	const struct dom_lists *lists;
};

/* Why rec_normalise() refused a record. */
struct rec_problem {
	enum fld_ident field;   /* the identifier; ID__MAX: the record as a whole */
	const char *reason;     /* static English phrase, e.g. "too long" */
};

/* Make r empty (no identifiers, no lists). */
void rec_init(struct rec *r);

/* Free the strings; r is empty and reusable afterwards (lists is kept). */
void rec_release(struct rec *r);

/* Store a copy of the n bytes at s as identifier id, replacing any
 * earlier value; s == NULL clears it.  The bytes are kept as sent (NULs
 * included) for rec_normalise() to judge.  Setting email drops a domain
 * that was derived from the old address; setting a name clears
 * name_split.  Returns ENR_OK, ENR_E_INVALID for a bad id, ENR_E_NOMEM. */
ENR_MUST_CHECK enum enr_err rec_set(struct rec *r, enum fld_ident id, const char *s, size_t n);

/* The value of identifier id, or NULL when absent.  Borrowed from r. */
const char *rec_get(const struct rec *r, enum fld_ident id);

/* Normalise every identifier in place (rules in the header comment).
 * field_max is the byte cap of one value (config limits.field_max_bytes);
 * 0 or more than LIM_REC_FIELD_MAX means LIM_REC_FIELD_MAX.  Returns
 * ENR_OK; ENR_E_INVALID with *p filled (when p is not NULL) naming the
 * first identifier, in enum order, that failed and why - r is then left
 * exactly as it was; ENR_E_NOMEM.  Normalising a normalised record
 * changes nothing. */
ENR_MUST_CHECK enum enr_err rec_normalise(struct rec *r, size_t field_max, struct rec_problem *p);

/* Append to out the canonical text the cache hashes for a normalised r:
 * "v1" then, for each present identifier in enum fld_ident order,
 * "|<name>=<value>" with '%', '|', '=' and bytes below 0x20 or 0x7f in
 * the value written as %XX.  Equal records give equal keys and different
 * records different keys.  Returns ENR_OK or buf_append()'s error. */
ENR_MUST_CHECK enum enr_err rec_cache_key(const struct rec *r, struct buf *out);

/* Guess a person's name from an e-mail address whose local part (before
 * any "+tag") is two alphabetic words of at least two ASCII letters joined
 * by one '.', '_' or '-' ("john.doe", "john_doe", "JOHN-DOE"), taking the
 * first as the first name: writes "John" and "Doe" into first and last
 * and returns true.  False, writing nothing, for anything else: "jdoe",
 * "john.doe123", "j.doe", three words, role accounts such as "info",
 * "sales.team" or "no-reply", or buffers too small.  Thread-safe. */
bool rec_names_from_email(const char *email, char *first, size_t fsz, char *last,
			  size_t lsz);

#endif
