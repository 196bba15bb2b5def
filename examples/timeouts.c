/* SPDX-License-Identifier: MIT */
/*
 * timeouts: a hook that can only be ended from outside, ended on time.
 *
 * On run 3, the run hook blocks every signal it can and spins forever: no
 * signal handler, alarm or cancellation point inside the process could end
 * it. config.timeouts.run = 0.05 gives each run call 50 ms. The supervisor,
 * a separate process, watches the deadline and ends the worker with SIGKILL
 * (which cannot be blocked) when it passes; the process then fails with a
 * ProcessTimeoutError, which the parent prints.
 *
 * The hook writes the moment it started spinning into memory shared with
 * the parent (mapped MAP_SHARED before sk_start), so the parent can measure
 * how late after the 50 ms deadline sk_wait returned.
 *
 * Build: gcc -std=c11 timeouts.c $(pkg-config --cflags --libs skproc)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MAP_ANONYMOUS, clock_gettime */
#endif
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#include <skproc.h>

#define LIMIT 0.05

typedef struct {
    sk_process base;
    volatile double *entered; /* shared with the parent */
} spinner;

#define SPINNER(p) SK_CONTAINER_OF(p, spinner, base)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int spinner_run(sk_process *self)
{
    if (sk_current_run(self) < 3)
        return 0; /* runs 0 to 2 are quick */
    *SPINNER(self)->entered = now();
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL); /* SIGKILL and SIGSTOP stay deliverable */
    for (;;)                              /* never returns */
        ;
}

static const sk_class spinner_class = {.name = "spinner", .run = spinner_run};

int main(void)
{
    volatile double *entered =
        mmap(NULL, sizeof *entered, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (entered == MAP_FAILED)
        return 1;
    *entered = 0;

    spinner s = {.entered = entered};
    sk_init(&s.base, &spinner_class);
    s.base.config.timeouts.run = LIMIT; /* 50 ms per run call */
    s.base.config.runs = 10;
    int rc = sk_start(&s.base);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_start: %s\n", sk_strerror(rc));
        return 1;
    }
    rc = sk_wait(&s.base, 5);
    double returned = now();

    const sk_error *e = sk_error_of(&s.base);
    bool ok = rc == SK_OK && e != NULL && e->kind == SK_TIMEOUT_ERROR && e->run == 3;
    if (e != NULL) {
        char report[2048];
        sk_error_format(e, report, sizeof report);
        printf("%s\n", report);
    }
    ok = ok && *entered > 0;
    double late = returned - (*entered + LIMIT);
    printf("sk_wait returned %.2f ms after the deadline\n", late * 1e3);
    sk_release(&s.base);
    munmap((void *)entered, sizeof *entered);
    return ok && late >= 0 ? 0 : 1;
}
