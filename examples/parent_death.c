/* SPDX-License-Identifier: MIT */
/*
 * parent_death: no skproc process outlives the program that started it.
 *
 * This program forks an intermediate parent that starts 3 skproc processes
 * (each is a supervisor and a worker: 6 processes in all) whose run hooks
 * would loop forever, reports their pids through a pipe, and waits. Then
 * the intermediate is killed with SIGKILL: it runs no cleanup, calls no
 * sk_release. From outside, the program checks with kill(pid, 0) that all
 * 6 processes are gone, and how fast.
 *
 * The chain that does it: each supervisor asked the kernel to SIGKILL it
 * when its parent dies (PR_SET_PDEATHSIG), and each worker asked the same
 * about its supervisor.
 *
 * A process that has died stays a zombie until its parent reaps it, and
 * kill(pid, 0) still finds a zombie. Orphans are adopted by init, which
 * reaps them in its own time; to count them as gone the moment they die,
 * this program makes itself a "child subreaper", so that the orphans are
 * adopted by it, and reaps them itself.
 *
 * Build: gcc -std=c11 parent_death.c $(pkg-config --cflags --libs skproc)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* prctl, clock_gettime */
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <skproc.h>

#define PROCS 3

static int forever_run(sk_process *self)
{
    (void)self;
    usleep(1000);
    return 0; /* no runs limit: loops until stopped, killed or orphaned */
}

static const sk_class forever_class = {.name = "forever", .run = forever_run};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The parent of pid, from /proc/<pid>/stat, or -1. */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name before it may hold anything */
    int ppid = -1;
    if (p == NULL || sscanf(p + 1, " %*c %d", &ppid) != 1)
        return -1;
    return ppid;
}

/* The intermediate parent: starts the processes, reports, waits to die. */
static void intermediate(int out)
{
    static sk_process procs[PROCS];
    pid_t pids[2 * PROCS]; /* supervisor, worker, supervisor, worker, ... */
    for (int i = 0; i < PROCS; i++) {
        sk_init(&procs[i], &forever_class);
        procs[i].config.lives = 2; /* lives > 1: each process gets a supervisor */
        if (sk_start(&procs[i]) != SK_OK)
            _exit(1);
        while (sk_pid(&procs[i]) <= 0) /* until the supervisor forked the worker */
            usleep(100);
        pids[2 * i + 1] = sk_pid(&procs[i]);
        pids[2 * i] = parent_of(pids[2 * i + 1]);
    }
    if (write(out, pids, sizeof pids) != (ssize_t)sizeof pids)
        _exit(1);
    for (;;)
        pause(); /* until SIGKILL */
}

int main(void)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        perror("prctl(PR_SET_CHILD_SUBREAPER)"); /* the check then waits for init */

    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    fflush(NULL); /* nothing buffered is written twice by the fork */
    pid_t middle = fork();
    if (middle < 0)
        return 1;
    if (middle == 0) {
        close(fds[0]);
        intermediate(fds[1]);
    }
    close(fds[1]);

    pid_t pids[2 * PROCS];
    if (read(fds[0], pids, sizeof pids) != (ssize_t)sizeof pids) {
        fprintf(stderr, "the intermediate parent did not report\n");
        kill(middle, SIGKILL);
        waitpid(middle, NULL, 0);
        return 1;
    }
    close(fds[0]);
    printf("intermediate parent %d started:\n", (int)middle);
    for (int i = 0; i < PROCS; i++)
        printf("  supervisor %d -> worker %d\n", (int)pids[2 * i], (int)pids[2 * i + 1]);

    double t0 = now();
    kill(middle, SIGKILL);
    waitpid(middle, NULL, 0);
    printf("intermediate parent SIGKILLed\n");

    int alive = 2 * PROCS;
    while (alive > 0 && now() - t0 < 1.0) {
        while (waitpid(-1, NULL, WNOHANG) > 0) /* the orphans adopted by us */
            ;
        alive = 0;
        for (int i = 0; i < 2 * PROCS; i++)
            alive += kill(pids[i], 0) == 0 || errno != ESRCH;
        if (alive > 0)
            usleep(200);
    }
    printf("%d of %d processes still there after %.1f ms\n", alive, 2 * PROCS, (now() - t0) * 1e3);
    return alive == 0 ? 0 : 1;
}
