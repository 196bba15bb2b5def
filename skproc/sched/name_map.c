/* SPDX-License-Identifier: MIT */
/*
 * A map from names to pointers: open addressing with linear probing on a
 * 64-bit FNV-1a hash, at most half full (removed slots count), so that a
 * session of 10,000 tasks finds a task, a status or a parameter by name in
 * a probe or two; the memory run log finds its tasks the same way.
 */
#include "sched/name_map.h"
#include "skproc.h"

#include <stdlib.h>
#include <string.h>

static const char name_map_gone[] = "";
#define NAME_MAP_GONE name_map_gone

static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static struct name_slot *slot_of(const struct name_map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)name_hash(key) & mask;; i = (i + 1) & mask) {
        struct name_slot *slot = &m->slots[i];
        if (slot->key == NULL)
            return NULL;
        if (slot->key != NAME_MAP_GONE && strcmp(slot->key, key) == 0)
            return slot;
    }
}

void *sk_name_map_get(const struct name_map *m, const char *key)
{
    struct name_slot *slot = slot_of(m, key);
    return slot != NULL ? slot->value : NULL;
}

/* Places key in a table known to lack it and to have room. */
static void place(struct name_slot *slots, size_t cap, const char *key, void *value)
{
    size_t mask = cap - 1;
    size_t i = (size_t)name_hash(key) & mask;
    while (slots[i].key != NULL && slots[i].key != NAME_MAP_GONE)
        i = (i + 1) & mask;
    slots[i].key = key;
    slots[i].value = value;
}

static int grow(struct name_map *m)
{
    size_t cap = m->cap == 0 ? 16 : m->cap;
    while (cap / 2 <= m->live + 1)
        cap *= 2;
    struct name_slot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return SK_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key != NULL && m->slots[i].key != NAME_MAP_GONE)
            place(slots, cap, m->slots[i].key, m->slots[i].value);
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->used = m->live;
    return SK_OK;
}

int sk_name_map_put(struct name_map *m, const char *key, void *value)
{
    struct name_slot *slot = slot_of(m, key);
    if (slot != NULL) {
        slot->key = key;
        slot->value = value;
        return SK_OK;
    }
    if ((m->used + 1) * 2 > m->cap && grow(m) != SK_OK)
        return SK_ENOMEM;
    size_t mask = m->cap - 1;
    size_t i = (size_t)name_hash(key) & mask;
    while (m->slots[i].key != NULL && m->slots[i].key != NAME_MAP_GONE)
        i = (i + 1) & mask;
    if (m->slots[i].key == NULL)
        m->used++;
    m->slots[i].key = key;
    m->slots[i].value = value;
    m->live++;
    return SK_OK;
}

void *sk_name_map_remove(struct name_map *m, const char *key)
{
    struct name_slot *slot = slot_of(m, key);
    if (slot == NULL)
        return NULL;
    void *value = slot->value;
    slot->key = NAME_MAP_GONE;
    slot->value = NULL;
    m->live--;
    return value;
}

void sk_name_map_each(const struct name_map *m, void (*fn)(void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key != NULL && m->slots[i].key != NAME_MAP_GONE)
            fn(m->slots[i].value, arg);
}

void sk_name_map_free(struct name_map *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}
