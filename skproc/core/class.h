/* SPDX-License-Identifier: MIT */
/*
 * Lookups on a process class and its configuration, by section: the hook,
 * the timeout, the names. Used by all three parties (parent, supervisor,
 * worker), so they sit below all of them.
 */
#ifndef SKPROC_CORE_CLASS_H
#define SKPROC_CORE_CLASS_H

#include "core/tables.h"

#include <stdbool.h>

/* The hook of a section, or NULL. */
sk_hook sk_class_hook(const sk_class *cls, sk_section s);

/* Where a section's timeout lives in cfg, or NULL for a section with none. */
double *sk_config_timeout_field(sk_config *cfg, sk_section s);
/* The configured timeout of a section in seconds, or 0 for none. */
double sk_config_timeout(const sk_config *cfg, sk_section s);

/* prerun, run and postrun: the sections whose failures use lives. */
bool sk_section_is_loop(int s);

/* The error kind of a failure in section s. */
sk_error_kind sk_error_kind_of_section(sk_section s);

#endif
