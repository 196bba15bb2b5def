/* SPDX-License-Identifier: MIT */
/*
 * The library's version at run time (sk_version, sk_version_number), and the
 * compile-time guard on the public structs users embed or fill: their sizes
 * are part of the ABI (docs/packaging.md), so a change of size must be a
 * deliberate change of the soname, never an accident. A new field takes its
 * room from the struct's trailing reserved[] array and shrinks it, keeping
 * the size.
 */
#include <stddef.h>
#include <stdint.h>

#include "skproc.h"

#define SK_STR_(x) #x
#define SK_STR(x) SK_STR_(x)

const char *sk_version(void)
{
    return SK_STR(SKPROC_VERSION_MAJOR) "." SK_STR(SKPROC_VERSION_MINOR) "." SK_STR(
        SKPROC_VERSION_PATCH);
}

int sk_version_number(void)
{
    return SKPROC_VERSION_NUMBER;
}

/* The reserved room is the last member of each struct, so a field added
 * before it and taken from it leaves every other offset where it was. */
#define SK_RESERVED_LAST(type)                                                                     \
    _Static_assert(offsetof(type, reserved) + sizeof(((type *)0)->reserved) == sizeof(type),       \
                   #type ": reserved[] must stay the last member")
SK_RESERVED_LAST(sk_process);
SK_RESERVED_LAST(sk_class);
SK_RESERVED_LAST(sk_config);
SK_RESERVED_LAST(sk_pool_config);
SK_RESERVED_LAST(sk_pool_job);
SK_RESERVED_LAST(sk_spawn_config);

/* ready (with reserved0) took the room of one of sk_config's uint64_t
 * reserved slots, ready_fd one of sk_spawn_config's pointer-wide ones: the
 * size is the one each struct had with reserved[4] right after its last
 * older field (no_spin, close_fds), whatever the target's alignment, so no
 * offset moved either. */
#define SK_ROUND_UP(n, a) (((n) + (a)-1) / (a) * (a))
#define SK_SIZE_WITH_FOUR_RESERVED(type, last, slot)                                               \
    SK_ROUND_UP(SK_ROUND_UP(offsetof(type, last) + sizeof(((type *)0)->last), _Alignof(slot)) +    \
                    4 * sizeof(slot),                                                              \
                _Alignof(type))
_Static_assert(sizeof(sk_config) == SK_SIZE_WITH_FOUR_RESERVED(sk_config, no_spin, uint64_t),
               "ready must take its room from sk_config's reserved slots");
_Static_assert(sizeof(sk_spawn_config) ==
                   SK_SIZE_WITH_FOUR_RESERVED(sk_spawn_config, close_fds, void *),
               "ready_fd must take its room from sk_spawn_config's reserved slots");

#if UINTPTR_MAX == UINT64_MAX && SIZE_MAX == UINT64_MAX
/* on_event and event_ctx took two of sk_config's uint64_t reserved slots
 * (and two of sk_pool_config's): each is one slot wide. */
_Static_assert(sizeof(sk_event_fn) == sizeof(uint64_t) && sizeof(void *) == sizeof(uint64_t),
               "on_event and event_ctx must each fill one reserved slot");
/* sk_pool_job's range took one of its pointer-wide reserved slots. */
_Static_assert(sizeof(sk_pool_range_fn) == sizeof(void *), "range must fill one reserved slot");
/* The sizes of soname libskproc.so.0 on LP64 targets (x86_64, aarch64, ...). */
_Static_assert(sizeof(sk_process) == 208, "sk_process changed size: an ABI break");
_Static_assert(sizeof(sk_class) == 136, "sk_class changed size: an ABI break");
_Static_assert(sizeof(sk_config) == 160, "sk_config changed size: an ABI break");
_Static_assert(sizeof(sk_pool_config) == 112, "sk_pool_config changed size: an ABI break");
_Static_assert(sizeof(sk_pool_job) == 136, "sk_pool_job changed size: an ABI break");
_Static_assert(sizeof(sk_spawn_config) == 368, "sk_spawn_config changed size: an ABI break");
#endif
