/* SPDX-License-Identifier: MIT */
/*
 * lives: retries after errors, and what a process reports when it runs out.
 *
 * config.lives is the total number of attempts the whole process gets:
 * lives = 3 tolerates two failures, wherever they happen. This program runs
 * three processes:
 *
 *   1. flaky:   run fails now and then (a soft error: the hook returns
 *               non-zero). With lives = 3 the failed iteration is retried
 *               from prerun at the same run index, and the worker's memory is
 *               kept (attempts counts across the retry), so the process
 *               still ends with the right result.
 *   2. broken:  run always fails. After three attempts the error hook runs
 *               instead of onfinish and result; it can still publish a value,
 *               which sk_result hands over together with SK_EPROCESS. The
 *               parent prints the error with sk_error_format.
 *   3. crashy:  run aborts once (a hard fault: the worker dies of a
 *               signal). The supervisor starts a new worker from the object's
 *               state at sk_start, at the same run index: the fields the
 *               crashed worker had updated are back to their start values.
 *               Only memory mapped MAP_SHARED before sk_start is shared by
 *               both workers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MAP_ANONYMOUS */
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <skproc.h>

/* ------------------------------------------------------------ 1. flaky */

typedef struct {
    sk_process base;
    int sum;      /* sum of the run indexes 0..9 */
    int attempts; /* attempts of the current iteration */
} flaky;

#define FLAKY(p) SK_CONTAINER_OF(p, flaky, base)

static int flaky_run(sk_process *self)
{
    flaky *f = FLAKY(self);
    long run = sk_current_run(self);
    f->attempts++;
    /* Pretend that a remote service is unavailable on the first attempt of
     * runs 3 and 7. */
    if ((run == 3 || run == 7) && f->attempts == 1) {
        printf("  [child] run %ld: attempt %d failed, retrying\n", run, f->attempts);
        fflush(stdout);
        return sk_fail(self, 503, "service unavailable on run %ld", run);
    }
    f->sum += (int)run;
    f->attempts = 0;
    return 0;
}

static int flaky_result(sk_process *self)
{
    return sk_return(self, "i", &FLAKY(self)->sum);
}

static const sk_class flaky_class = {
    .name = "flaky",
    .run = flaky_run,
    .result = flaky_result,
};

static int demo_flaky(void)
{
    printf("1. flaky: fails on the first attempt of runs 3 and 7, lives = 3\n");
    flaky f = {.sum = 0};
    sk_init(&f.base, &flaky_class);
    f.base.config.runs = 10;
    f.base.config.lives = 3;
    sk_start(&f.base);

    int sum = -1;
    int rc = sk_result(&f.base, "i", &sum);
    printf("  sk_result: %s, sum of runs 0..9 = %d, current_run = %ld\n\n", sk_strerror(rc), sum,
           sk_current_run(&f.base));
    sk_release(&f.base);
    return rc == SK_OK && sum == 45 ? 0 : 1;
}

/* ----------------------------------------------------------- 2. broken */

typedef struct {
    sk_process base;
    int rows_done; /* what was done before the failure */
} broken;

#define BROKEN(p) SK_CONTAINER_OF(p, broken, base)

static int broken_run(sk_process *self)
{
    broken *b = BROKEN(self);
    if (sk_current_run(self) < 2) {
        b->rows_done += 100;
        return 0;
    }
    return sk_fail(self, ENOENT, "cannot open part-%ld.csv: %s", sk_current_run(self),
                   strerror(ENOENT));
}

static int broken_result(sk_process *self)
{
    return sk_return(self, "i", &BROKEN(self)->rows_done);
}

/* Runs instead of onfinish and result once the lives are spent. */
static int broken_error(sk_process *self)
{
    const sk_error *e = sk_error_of(self); /* the error being handled */
    printf("  [child] error hook: %s, publishing the partial count\n", e->message);
    fflush(stdout);
    return sk_return(self, "i", &BROKEN(self)->rows_done);
}

static const sk_class broken_class = {
    .name = "broken",
    .run = broken_run,
    .result = broken_result,
    .error = broken_error,
};

static int demo_broken(void)
{
    printf("2. broken: run 2 always fails, lives = 3\n");
    broken b = {.rows_done = 0};
    sk_init(&b.base, &broken_class);
    b.base.config.runs = 5;
    b.base.config.lives = 3;
    sk_start(&b.base);

    int rows = -1;
    int rc = sk_result(&b.base, "i", &rows);
    printf("  sk_result: %s, rows done (from the error hook) = %d\n", sk_strerror(rc), rows);

    const sk_error *e = sk_error_of(&b.base);
    printf("  sk_error_is(e, SK_RUN_ERROR) = %d, sk_error_is(e, SK_PROCESS_ERROR) = %d\n",
           sk_error_is(e, SK_RUN_ERROR), sk_error_is(e, SK_PROCESS_ERROR));
    char report[2048];
    sk_error_format(e, report, sizeof report);
    printf("\n%s\n", report);
    bool ok = rc == SK_EPROCESS && rows == 200 && e != NULL && e->kind == SK_RUN_ERROR &&
              e->run == 2 && e->lives_spent == 3;
    sk_release(&b.base);
    return ok ? 0 : 1;
}

/* ----------------------------------------------------------- 3. crashy */

typedef struct {
    sk_process base;
    int *crashed;   /* in a MAP_SHARED page: survives the worker */
    int64_t first;  /* the first run this worker's memory has seen, or -1 */
    int iterations; /* iterations this worker's memory has seen */
} crashy;

#define CRASHY(p) SK_CONTAINER_OF(p, crashy, base)

static int crashy_run(sk_process *self)
{
    crashy *c = CRASHY(self);
    if (c->first < 0)
        c->first = (int64_t)sk_current_run(self);
    if (sk_current_run(self) == 5 && !*c->crashed) {
        *c->crashed = 1;
        abort(); /* a hard fault: the worker dies of SIGABRT, as on a failed assert */
    }
    c->iterations++;
    return 0;
}

static int crashy_result(sk_process *self)
{
    crashy *c = CRASHY(self);
    return sk_return(self, "Ii", &c->first, &c->iterations);
}

static const sk_class crashy_class = {
    .name = "crashy",
    .run = crashy_run,
    .result = crashy_result,
};

static int demo_crashy(void)
{
    printf("3. crashy: abort() once on run 5, lives = 2\n");
    int *flag = mmap(NULL, sizeof *flag, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (flag == MAP_FAILED)
        return 1;
    *flag = 0;

    crashy c = {.crashed = flag, .first = -1};
    sk_init(&c.base, &crashy_class);
    c.base.config.runs = 10;
    c.base.config.lives = 2;
    sk_start(&c.base);

    int64_t first = -1;
    int iterations = -1;
    int rc = sk_result(&c.base, "Ii", &first, &iterations);
    long timed = sk_timer_count(sk_timer_of(&c.base, SK_RUN));
    printf("  sk_result: %s, current_run = %ld, run timer: %ld calls (the crashed one is not "
           "recorded)\n",
           sk_strerror(rc), sk_current_run(&c.base), timed);
    printf("  the worker that finished started at run %lld and ran %d iterations:\n"
           "  its memory is a fresh copy of the state at sk_start\n",
           (long long)first, iterations);
    sk_release(&c.base);
    munmap(flag, sizeof *flag);
    return rc == SK_OK && first == 5 && iterations == 5 && timed == 10 ? 0 : 1;
}

int main(void)
{
    int failed = 0;
    failed |= demo_flaky();
    failed |= demo_broken();
    failed |= demo_crashy();
    return failed;
}
