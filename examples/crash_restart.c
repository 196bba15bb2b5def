/* SPDX-License-Identifier: MIT */
/*
 * crash_restart: what a worker restarted after a crash starts from.
 *
 * The process runs 5 iterations with lives = 2. On run 3 the first worker
 * calls abort(): a hard fault, the worker is gone. The supervisor forks a new
 * worker from its own memory, which is the object as it was at sk_start, and
 * that worker goes on at run 3 (the run index is kept), with the timers and
 * the message channel of the first one:
 *
 *   - the object's fields: back to their values at sk_start (sum = 1000);
 *   - current_run: 3, not 0;
 *   - the run timer: the 3 calls the first worker completed;
 *   - the messages: what the first worker told before it died is still
 *     there for the parent, and a message the parent told that the first
 *     worker never read is read by the second.
 *
 * Each worker tells the parent what it saw when it started; the parent reads
 * it all after the end (messages stay readable until sk_release).
 *
 * Only memory mapped MAP_SHARED before sk_start is common to both workers:
 * here, the flag that makes the crash happen once.
 *
 * Build: gcc -std=c11 crash_restart.c $(pkg-config --cflags --libs skproc)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MAP_ANONYMOUS */
#endif
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <skproc.h>

typedef struct {
    sk_process base;
    int64_t sum;   /* 1000 at sk_start, plus the run index of every run */
    int64_t calls; /* run calls this worker's memory has seen */
    int *crashed;  /* MAP_SHARED: set by the first worker before it aborts */
} job;

#define JOB(p) SK_CONTAINER_OF(p, job, base)

/* Tells the parent (what, pid, run, sum, calls, run timer count). */
static int report(sk_process *self, const char *what)
{
    job *j = JOB(self);
    int32_t pid = (int32_t)getpid();
    int64_t run = sk_current_run(self);
    int64_t timed = sk_timer_count(sk_timer_of(self, SK_RUN));
    return sk_tell(self, "siIIII", &what, &pid, &run, &j->sum, &j->calls, &timed);
}

static int job_run(sk_process *self)
{
    job *j = JOB(self);
    if (j->calls == 0) {
        report(self, "worker starts");
        /* The parent told one note before sk_start; the first worker leaves
         * it unread, so the restarted worker finds it. */
        if (*j->crashed) {
            char *note = NULL;
            if (sk_listen(self, 1, "s", &note) == SK_OK) {
                report(self, "read the note");
                free(note);
            }
        }
    }
    j->calls++;
    if (sk_current_run(self) == 3 && !*j->crashed) {
        *j->crashed = 1;
        report(self, "about to abort");
        abort(); /* SIGABRT: a crash, as from a failed assert */
    }
    j->sum += sk_current_run(self);
    return 0;
}

static int job_result(sk_process *self)
{
    return sk_return(self, "I", &JOB(self)->sum);
}

static const sk_class job_class = {.name = "job", .run = job_run, .result = job_result};

int main(void)
{
    int *crashed =
        mmap(NULL, sizeof *crashed, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (crashed == MAP_FAILED)
        return 1;
    *crashed = 0;

    job j = {.sum = 1000, .crashed = crashed}; /* the state at sk_start */
    sk_init(&j.base, &job_class);
    j.base.config.runs = 5;
    j.base.config.lives = 2; /* one crash is tolerated */
    int rc = sk_start(&j.base);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_start: %s\n", sk_strerror(rc));
        return 1;
    }
    const char *note = "for whoever reads it";
    sk_tell(&j.base, "s", &note);

    int64_t sum = 0;
    int result = sk_result(&j.base, "I", &sum);

    printf("what the workers told:\n");
    printf("  %-16s %7s %4s %6s %6s %10s\n", "", "pid", "run", "sum", "calls", "run timer");
    char *what = NULL;
    int32_t pid;
    int64_t run, seen_sum, calls, timed;
    int told = 0;
    while (sk_listen(&j.base, 0, "siIIII", &what, &pid, &run, &seen_sum, &calls, &timed) == SK_OK) {
        printf("  %-16s %7d %4" PRId64 " %6" PRId64 " %6" PRId64 " %10" PRId64 "\n", what, (int)pid,
               run, seen_sum, calls, timed);
        free(what);
        told++;
    }
    printf("sk_result: %s, sum = %" PRId64 " (1000 + 3 + 4: what runs 0 to 2 added went "
           "with the first worker)\n",
           sk_strerror(result), sum);
    printf("current_run = %ld, run timer: %ld calls (the crashed call is not recorded)\n",
           sk_current_run(&j.base), sk_timer_count(sk_timer_of(&j.base, SK_RUN)));
    bool ok = result == SK_OK && sum == 1007 && told == 4 && sk_current_run(&j.base) == 5;
    sk_release(&j.base);
    munmap(crashed, sizeof *crashed);
    return ok ? 0 : 1;
}
