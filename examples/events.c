/* SPDX-License-Identifier: MIT */
/*
 * events: routing what happens to a process to syslog, and reading its
 * recoveries afterwards.
 *
 * The process runs 6 iterations with lives = 3. Its worker crashes on run 2
 * the first time and fails softly (sk_fail) on run 4 the first time; each
 * costs a life and is retried. config.on_event sends every event (start,
 * crash, restart, failure, finish) to syslog as it is delivered, in the
 * parent, in the thread that calls sk_start and sk_wait, and prints it too.
 * After sk_wait the recoveries say what success cost: 3 attempts, 1
 * restart, and the two errors that used up lives.
 *
 * The log lines go to the system log (journalctl -t skproc-events, or
 * /var/log/syslog); LOG_PERROR copies them to stderr where the system has
 * no log daemon.
 *
 * Build: gcc -std=c11 events.c $(pkg-config --cflags --libs skproc)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MAP_ANONYMOUS */
#endif
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <syslog.h>

#include <skproc.h>

typedef struct {
    sk_process base;
    int *failed_once; /* MAP_SHARED: a restarted worker starts from sk_start's memory */
} flaky;

#define FLAKY(p) SK_CONTAINER_OF(p, flaky, base)

static int flaky_run(sk_process *self)
{
    flaky *f = FLAKY(self);
    long run = sk_current_run(self);
    if (run == 2 && !__atomic_exchange_n(&f->failed_once[0], 1, __ATOMIC_ACQ_REL))
        raise(SIGSEGV); /* a hard fault: the worker is restarted */
    if (run == 4 && !__atomic_exchange_n(&f->failed_once[1], 1, __ATOMIC_ACQ_REL))
        return sk_fail(self, 42, "the backend said no on run %ld", run); /* a soft error */
    return 0;
}

static const sk_class flaky_class = {.name = "flaky", .run = flaky_run};

/* The callback: one log line per event. It may log, count or write to a
 * pipe; it must not call into the process it reports on. */
static void to_syslog(const sk_event *ev, void *ctx)
{
    const char *name = ctx;
    int priority = ev->kind == SK_EVENT_CRASH || ev->kind == SK_EVENT_TIMEOUT ? LOG_ERR
                   : ev->kind == SK_EVENT_FAILURE                             ? LOG_WARNING
                                                                              : LOG_INFO;
    if (ev->error != NULL)
        syslog(priority, "%s %s: pid %d, %s on run %ld: %s (%s)", name, sk_event_name(ev->kind),
               (int)ev->pid, sk_section_name(ev->section), ev->run, ev->error->message,
               ev->error->cause);
    else
        syslog(priority, "%s %s: pid %d, run %ld", name, sk_event_name(ev->kind), (int)ev->pid,
               ev->run);
}

int main(void)
{
    openlog("skproc-events", LOG_PID | LOG_PERROR, LOG_USER);

    flaky f = {0};
    f.failed_once =
        mmap(NULL, 2 * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (f.failed_once == MAP_FAILED || sk_init(&f.base, &flaky_class) != SK_OK)
        return 1;
    f.base.config.runs = 6;
    f.base.config.lives = 3;
    f.base.config.on_event = to_syslog;
    f.base.config.event_ctx = "flaky";

    if (sk_start(&f.base) != SK_OK)
        return 1;
    sk_wait(&f.base, -1);

    const sk_error *e = sk_error_of(&f.base);
    printf("%s after %d attempts and %d restart(s)\n", e ? "failed" : "succeeded",
           sk_attempts(&f.base), sk_restarts(&f.base));
    for (int i = 0; i < sk_spent_error_count(&f.base); i++) {
        const sk_error *spent = sk_spent_error(&f.base, i);
        printf("  life %d spent by %s on run %ld\n", i + 1, sk_error_name(spent->kind), spent->run);
    }
    sk_release(&f.base);
    munmap(f.failed_once, 2 * sizeof(int));
    closelog();
    return e != NULL;
}
