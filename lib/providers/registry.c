/*
 * registry.c - the table of provider adapters by kind.
 */
#include <string.h>

#include "lib/provider.h"

extern const struct prov_ops prov_pdl_ops;
extern const struct prov_ops prov_lusha_ops;
extern const struct prov_ops prov_surfe_ops;
extern const struct prov_ops prov_generic_ops;
extern const struct prov_ops prov_local_ops;
extern const struct prov_ops prov_mock_ops;

static const struct prov_ops *const registry[] = {
	&prov_pdl_ops, &prov_lusha_ops, &prov_surfe_ops,
	&prov_generic_ops, &prov_local_ops, &prov_mock_ops,
};

const struct prov_ops *prov_ops_find(const char *kind)
{
	for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++) {
		if (registry[i] && strcmp(registry[i]->kind, kind) == 0)
			return registry[i];
	}
	return NULL;
}
