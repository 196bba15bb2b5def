/* SPDX-License-Identifier: MIT */
/*
 * self_stopping: a search that stops itself when it finds what it looks for.
 *
 * The process looks for the first number whose Collatz sequence needs at
 * least MIN_STEPS steps to reach 1. Each run checks one batch of candidates;
 * when a batch contains a match, the run hook records it and calls
 * sk_stop(self). The loop then ends, onfinish and result still run, and the
 * parent reads the match with sk_result.
 *
 * config.runs is an upper bound: if nothing is found within that many
 * batches, the loop ends anyway and the result says so.
 */
#include <inttypes.h>
#include <stdio.h>

#include <skproc.h>

#define MIN_STEPS 500
#define BATCH 10000

typedef struct {
    sk_process base;
    int64_t next;  /* the next candidate to check */
    int found;     /* 1 once a match was seen */
    int64_t match; /* the match */
    int steps;     /* its number of steps */
} search;

#define SEARCH(p) SK_CONTAINER_OF(p, search, base)

static int collatz_steps(int64_t n)
{
    int steps = 0;
    while (n != 1) {
        n = (n % 2 == 0) ? n / 2 : 3 * n + 1;
        steps++;
    }
    return steps;
}

static int search_run(sk_process *self)
{
    search *s = SEARCH(self);
    for (int64_t end = s->next + BATCH; s->next < end; s->next++) {
        int steps = collatz_steps(s->next);
        if (steps >= MIN_STEPS) {
            s->found = 1;
            s->match = s->next;
            s->steps = steps;
            sk_stop(self); /* found it: end the loop after this hook */
            return 0;
        }
    }
    return 0;
}

static int search_result(sk_process *self)
{
    search *s = SEARCH(self);
    return sk_return(self, "iIi", &s->found, &s->match, &s->steps);
}

static const sk_class search_class = {
    .name = "search",
    .run = search_run,
    .result = search_result,
};

int main(void)
{
    search s = {.next = 1};
    if (sk_init(&s.base, &search_class) != SK_OK)
        return 1;
    s.base.config.runs = 1000; /* at most 1000 batches: 10 million candidates */

    if (sk_start(&s.base) != SK_OK) {
        sk_release(&s.base);
        return 1;
    }

    int found = 0, steps = 0;
    int64_t match = 0;
    int rc = sk_result(&s.base, "iIi", &found, &match, &steps);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_result: %s\n", sk_strerror(rc));
        sk_release(&s.base);
        return 1;
    }
    if (found)
        printf("first number needing >= %d steps: %" PRId64 " (%d steps), found in batch %ld\n",
               MIN_STEPS, match, steps, sk_current_run(&s.base));
    else
        printf("no number needing >= %d steps in the first %ld batches\n", MIN_STEPS,
               sk_current_run(&s.base));

    sk_release(&s.base);
    return 0;
}
