/* SPDX-License-Identifier: MIT */
/*
 * timers: the built-in timing of every hook.
 *
 * Each defined hook has a timer that records how long every successful call
 * took, and SK_FULL_RUN records prerun + run + postrun of every completed
 * iteration. The timers live in memory shared with the child, so the parent
 * reads them after sk_wait, until sk_release.
 *
 * Here prerun fills an array of a varying size with pseudo-random numbers,
 * run sorts it and postrun checks the order; the program prints count, mean,
 * median, 95th percentile and max of every timer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <skproc.h>

#define MAX_N 20000

typedef struct {
    sk_process base;
    uint32_t seed;
    int n;
    int values[MAX_N];
} sorter;

#define SORTER(p) SK_CONTAINER_OF(p, sorter, base)

static uint32_t next_random(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int sorter_prerun(sk_process *self)
{
    sorter *s = SORTER(self);
    s->n = 1000 + (int)(next_random(&s->seed) % (MAX_N - 1000)); /* 1000 .. 19999 */
    for (int i = 0; i < s->n; i++)
        s->values[i] = (int)(next_random(&s->seed) >> 1);
    return 0;
}

static int sorter_run(sk_process *self)
{
    sorter *s = SORTER(self);
    qsort(s->values, (size_t)s->n, sizeof s->values[0], cmp_int);
    return 0;
}

static int sorter_postrun(sk_process *self)
{
    sorter *s = SORTER(self);
    for (int i = 1; i < s->n; i++)
        if (s->values[i - 1] > s->values[i])
            return sk_fail(self, 1, "not sorted at index %d", i);
    return 0;
}

static const sk_class sorter_class = {
    .name = "sorter",
    .prerun = sorter_prerun,
    .run = sorter_run,
    .postrun = sorter_postrun,
};

static void print_timer(const sk_process *p, sk_section s)
{
    const sk_timer *t = sk_timer_of(p, s);
    if (t == NULL) { /* that hook is not defined */
        printf("%-9s (no timer)\n", sk_section_name(s));
        return;
    }
    printf("%-9s %6ld %10.1f %10.1f %10.1f %10.1f\n", sk_section_name(s), sk_timer_count(t),
           sk_timer_mean(t) * 1e6, sk_timer_median(t) * 1e6, sk_timer_percentile(t, 95) * 1e6,
           sk_timer_max(t) * 1e6);
}

int main(void)
{
    static sorter s; /* 80 KB: keep it off the stack */
    s.seed = 12345;
    if (sk_init(&s.base, &sorter_class) != SK_OK)
        return 1;
    s.base.config.runs = 500;
    if (sk_start(&s.base) != SK_OK) {
        sk_release(&s.base);
        return 1;
    }
    sk_wait(&s.base, -1);
    if (sk_error_of(&s.base) != NULL) {
        char report[2048];
        sk_error_format(sk_error_of(&s.base), report, sizeof report);
        fputs(report, stderr);
        sk_release(&s.base);
        return 1;
    }

    printf("%ld runs; times in microseconds\n\n", sk_current_run(&s.base));
    printf("%-9s %6s %10s %10s %10s %10s\n", "timer", "count", "mean", "median", "p95", "max");
    const sk_section sections[] = {SK_PRERUN, SK_RUN, SK_POSTRUN, SK_FULL_RUN, SK_ONFINISH};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        print_timer(&s.base, sections[i]);

    const sk_timer *full = sk_timer_of(&s.base, SK_FULL_RUN);
    printf("\nfull_run: total %.3f s, min %.1f us, stdev %.1f us, last %.1f us\n",
           sk_timer_total(full), sk_timer_min(full) * 1e6, sk_timer_stdev(full) * 1e6,
           sk_timer_last(full) * 1e6);

    sk_release(&s.base); /* the timers are gone after this */
    return 0;
}
