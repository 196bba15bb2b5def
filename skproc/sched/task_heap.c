/* SPDX-License-Identifier: MIT */
/*
 * The tasks ordered by the time their start condition can next change
 * (sched_task.next_check): a binary min-heap whose entries know their
 * index, so that a task whose time moves is moved in O(log n). A cycle
 * looks only at the top, which is what keeps a cycle of a session of
 * 10,000 tasks as cheap as one of ten when nothing is due.
 */
#include "sched/session.h"

#include <stdlib.h>

static void put_at(sk_sched *s, size_t i, struct sched_task *t)
{
    s->heap[i] = t;
    t->heap_at = i;
}

static void sift_up(sk_sched *s, size_t i)
{
    struct sched_task *t = s->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent]->next_check <= t->next_check)
            break;
        put_at(s, i, s->heap[parent]);
        i = parent;
    }
    put_at(s, i, t);
}

static void sift_down(sk_sched *s, size_t i)
{
    struct sched_task *t = s->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= s->heap_len)
            break;
        if (child + 1 < s->heap_len && s->heap[child + 1]->next_check < s->heap[child]->next_check)
            child++;
        if (s->heap[child]->next_check >= t->next_check)
            break;
        put_at(s, i, s->heap[child]);
        i = child;
    }
    put_at(s, i, t);
}

void sk_task_heap_remove(sk_sched *s, struct sched_task *t)
{
    size_t i = t->heap_at;
    if (i == TASK_NOT_IN_HEAP)
        return;
    t->heap_at = TASK_NOT_IN_HEAP;
    struct sched_task *last = s->heap[--s->heap_len];
    if (i == s->heap_len)
        return;
    put_at(s, i, last);
    sift_up(s, i);
    sift_down(s, last->heap_at);
}

int sk_task_heap_set(sk_sched *s, struct sched_task *t)
{
    if (t->next_check == SK_COND_NO_CHANGE) {
        sk_task_heap_remove(s, t);
        return SK_OK;
    }
    if (t->heap_at != TASK_NOT_IN_HEAP) {
        sift_up(s, t->heap_at);
        sift_down(s, t->heap_at);
        return SK_OK;
    }
    if (s->heap_len == s->heap_cap) {
        size_t cap = s->heap_cap ? 2 * s->heap_cap : 64;
        struct sched_task **grown = realloc(s->heap, cap * sizeof *grown);
        if (grown == NULL)
            return SK_ENOMEM;
        s->heap = grown;
        s->heap_cap = cap;
    }
    put_at(s, s->heap_len++, t);
    sift_up(s, t->heap_at);
    return SK_OK;
}

struct sched_task *sk_task_heap_top(const sk_sched *s)
{
    return s->heap_len > 0 ? s->heap[0] : NULL;
}

/* The nodes whose key is at most until form a subtree at the root: only
 * those are walked. `except` is the task being looked at, whose key may
 * have moved while it waits to be put back in its place (plan_next sets
 * it before the heap is fixed): its own key says nothing of its subtree,
 * so it is walked through, never pruned at (a prefork looked at from the
 * root missed every task due at that very instant). */
static struct sched_task *due_in(const sk_sched *s, size_t i, const struct sched_task *except,
                                 int64_t from, int64_t until)
{
    if (i >= s->heap_len)
        return NULL;
    struct sched_task *t = s->heap[i];
    if (t != except && t->next_check > until)
        return NULL;
    if (t != except && t->due >= from && t->due <= until)
        return t;
    struct sched_task *found = due_in(s, 2 * i + 1, except, from, until);
    return found != NULL ? found : due_in(s, 2 * i + 2, except, from, until);
}

struct sched_task *sk_task_heap_due_in(const sk_sched *s, const struct sched_task *except,
                                       int64_t from, int64_t until)
{
    return due_in(s, 0, except, from, until);
}
