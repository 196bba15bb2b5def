/* SPDX-License-Identifier: MIT */
/*
 * A map from names to pointers (name_map.c): the session's tasks,
 * statuses, parameters and dependents, and the memory run log's tasks.
 */
#ifndef SKPROC_SCHED_NAME_MAP_H
#define SKPROC_SCHED_NAME_MAP_H

#include <stddef.h>

/* Open addressing on a hash of the name; the key is the value's own copy
 * of the name (not copied here). */
struct name_slot {
    const char *key; /* NULL: empty; NAME_MAP_GONE: removed */
    void *value;
};

struct name_map {
    struct name_slot *slots;
    size_t cap;  /* a power of two, or 0 */
    size_t used; /* live and removed slots */
    size_t live;
};

void *sk_name_map_get(const struct name_map *m, const char *key);
/* Inserts or replaces; SK_ENOMEM when it cannot grow. */
int sk_name_map_put(struct name_map *m, const char *key, void *value);
/* Takes key out; returns what it held, or NULL. */
void *sk_name_map_remove(struct name_map *m, const char *key);
/* Calls fn on each value (any order). */
void sk_name_map_each(const struct name_map *m, void (*fn)(void *value, void *arg), void *arg);
void sk_name_map_free(struct name_map *m);

#endif
