/*
 * domains.h - what can honestly be known about a domain without asking
 * anyone: is it a free e-mail provider, a disposable-address service,
 * what is its registrable part, which country does its top-level domain
 * belong to.
 *
 * Prefix: dom_.  The free and disposable lists are the bundled files
 * data/free-email-domains.txt and data/disposable-email-domains.txt (see
 * data/README.md); dom_lists_load() reads both into one immutable
 * struct dom_lists that any number of threads may query at once.  The
 * registrable domain comes from the Public Suffix List compiled into
 * libpsl.  Every function expects names the way rec_normalise() leaves
 * them (lower case, ASCII, no trailing dot) but copes with upper case.
 */
#ifndef ENR_DOMAINS_H
#define ENR_DOMAINS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct dom_lists;

/* The file names dom_lists_load() reads from its data directory. */
#define DOM_FREE_FILE       "free-email-domains.txt"
#define DOM_DISPOSABLE_FILE "disposable-email-domains.txt"

/* Load both lists from data_dir.  The files hold one domain per line;
 * blank lines, '#' comments (whole-line or trailing), surrounding spaces,
 * CRLF line ends and upper case are accepted, duplicates are ignored.
 * Returns a set the caller frees with dom_lists_free(), or NULL with *err
 * set: ENR_E_IO when a file cannot be opened or read, ENR_E_CONFIG when a
 * line is not a domain or a cap in limits.h is passed, ENR_E_NOMEM.  A
 * failure is also logged at error level (module "dom") with the path and,
 * for a bad line, its number.  The returned set is immutable: reading it
 * from many threads needs no lock. */
struct dom_lists *dom_lists_load(const char *data_dir, enum enr_err *err);

/* Free a set from dom_lists_load(); NULL is ignored. */
void dom_lists_free(struct dom_lists *l);

/* Number of names in each list (for logs and tests). */
size_t dom_lists_free_count(const struct dom_lists *l);
size_t dom_lists_disposable_count(const struct dom_lists *l);

/* True when domain is exactly a listed free e-mail provider ("gmail.com";
 * not "x.gmail.com").  False for NULL lists or a name that is not valid.
 * The free list also holds many disposable domains (data/README.md): ask
 * dom_is_disposable() first when telling the two apart. */
bool dom_is_free(const struct dom_lists *l, const char *domain);

/* True when domain, or a parent of it, is a listed disposable-address
 * domain ("mailinator.com", "x.mailinator.com").  Parents are tried up to,
 * not including, the first ICANN public suffix, so a listed suffix such as
 * "edu.pl" does not condemn every university under it, while the
 * dynamic-DNS names the list holds on purpose ("ddns.net") still match
 * their subdomains.  False for NULL lists or a name that is not valid. */
bool dom_is_disposable(const struct dom_lists *l, const char *domain);

/* True when the len bytes at d form a host name enrichd accepts: lower
 * case ASCII, two or more labels of 1..63 of [a-z0-9-] that neither
 * start nor end with '-', a top-level label that is alphabetic or "xn--"
 * punycode, at most 253 bytes, no trailing dot.  Thread-safe. */
bool dom_valid(const char *d, size_t len);

/* Write the registrable domain of domain ("mail.corp.example.co.uk" ->
 * "example.co.uk", "foo.github.io" -> "foo.github.io") into out, per the
 * Public Suffix List (ICANN and private sections).  Returns ENR_OK;
 * ENR_E_INVALID when domain is not a valid host name (see dom_valid(),
 * upper case allowed); ENR_E_NOT_FOUND when it is itself a public suffix
 * ("co.uk") and so has no registrable part; ENR_E_TOO_LARGE when out is
 * too small (254 bytes always suffice); ENR_E_UNAVAILABLE when libpsl has
 * no list at all.  out is written only on ENR_OK.  Thread-safe. */
ENR_MUST_CHECK enum enr_err dom_registrable(const char *domain, char *out, size_t outsz);

/* The English short name of the country whose ISO 3166 country-code
 * top-level domain ends domain ("example.de" -> "Germany", "x.co.uk" ->
 * "United Kingdom"), or NULL.  NULL as well for generic TLDs and for
 * country codes sold mainly as vanity names (.io .co .ai .me .tv .fm .ly
 * .gg and others listed in domains.c), where the TLD says nothing about
 * where the owner is.  The string is static.  Thread-safe. */
const char *dom_country(const char *domain);

/* The English short name of the country with ISO 3166 alpha-2 code code
 * (two lower-case letters; "uk" is the United Kingdom too), the codes
 * dom_country() leaves out included; NULL when unknown.  Static. */
const char *dom_country_by_code(const char *code);

/* The lower-case ISO 3166 alpha-2 code of the country called name (ASCII
 * case ignored; "gb" for the United Kingdom), NULL when unknown.  Static. */
const char *dom_country_code_of(const char *name);

#endif
