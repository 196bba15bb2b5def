/* SPDX-License-Identifier: MIT */
/* Lookups by section, generated from the lists in tables.h. */
#include "core/class.h"

#include <stddef.h>

sk_hook sk_class_hook(const sk_class *cls, sk_section s)
{
    switch (s) {
#define HOOK_CASE(section, member, kind)                                                           \
    case section:                                                                                  \
        return cls->member;
        SK_HOOK_LIST(HOOK_CASE)
#undef HOOK_CASE
    default:
        return NULL;
    }
}

double *sk_config_timeout_field(sk_config *cfg, sk_section s)
{
    switch (s) {
#define TIMEOUT_CASE(section, member, kind)                                                        \
    case section:                                                                                  \
        return &cfg->timeouts.member;
        SK_HOOK_LIST(TIMEOUT_CASE)
#undef TIMEOUT_CASE
    default:
        return NULL;
    }
}

double sk_config_timeout(const sk_config *cfg, sk_section s)
{
    const double *v = sk_config_timeout_field((sk_config *)cfg, s);
    return v != NULL && *v > 0 ? *v : 0;
}

bool sk_section_is_loop(int s)
{
    return s == SK_PRERUN || s == SK_RUN || s == SK_POSTRUN;
}

sk_error_kind sk_error_kind_of_section(sk_section s)
{
    switch (s) {
#define KIND_CASE(section, member, kind)                                                           \
    case section:                                                                                  \
        return kind;
        SK_HOOK_LIST(KIND_CASE)
#undef KIND_CASE
    default:
        return SK_PROCESS_ERROR;
    }
}

static const char *const section_names[SK_SECTION_COUNT] = {
#define SECTION_NAME(section, member, kind) [section] = #member,
    SK_HOOK_LIST(SECTION_NAME)
#undef SECTION_NAME
        [SK_FULL_RUN] = "full_run",
};

const char *sk_section_name(sk_section s)
{
    if (s == SK_NO_SECTION)
        return "none";
    if ((unsigned)s >= SK_SECTION_COUNT)
        return "unknown";
    return section_names[s];
}
