/* SPDX-License-Identifier: MIT */
/*
 * A task library for test_sched_load (built as sched_tasks/a/tasks.so): one
 * task run in the session's thread. It writes its name to the descriptor
 * named by $SKT_SCHED_TASKS_FD, so that the test sees its code ran.
 */
#include <skproc.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int report_fd = -1;

static int a_main(sk_task_run *run, void *arg)
{
    (void)arg;
    const char *name = sk_task_run_name(run);
    char line[64];
    size_t n = strlen(name);
    if (report_fd < 0 || n + 1 > sizeof line)
        return 1;
    memcpy(line, name, n);
    line[n] = '\n';
    return write(report_fd, line, n + 1) == (ssize_t)(n + 1) ? 0 : 1;
}

int skproc_sched_register(sk_sched *s)
{
    const char *fd = getenv("SKT_SCHED_TASKS_FD");
    report_fd = fd != NULL ? atoi(fd) : -1;
    sk_sched_task t = {
        .name = "a.main", .start = "every 60 seconds", .mode = SK_TASK_MAIN, .fn = a_main};
    return sk_sched_add(s, &t, NULL, 0);
}
