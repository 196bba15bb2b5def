/* SPDX-License-Identifier: MIT */
/*
 * A task library for test_sched_load whose register function fails: its
 * task's condition does not parse, and it returns what sk_sched_add said.
 */
#include <skproc.h>

static int never(sk_task_run *run, void *arg)
{
    (void)run;
    (void)arg;
    return 0;
}

int skproc_sched_register(sk_sched *s)
{
    sk_sched_task t = {.name = "bad.task",
                       .start = "daily betwen 08:00 and 09:00",
                       .mode = SK_TASK_MAIN,
                       .fn = never};
    return sk_sched_add(s, &t, NULL, 0);
}
