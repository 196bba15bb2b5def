/* SPDX-License-Identifier: MIT */
/*
 * sched_week: the tasks of Rocketry's (Red Engine's) guide as one C
 * program, over a simulated week.
 *
 *   wake_up        daily after 08:00
 *   wash_teeth     daily between 08:00 and 08:15 | daily between 22:00 and 22:15
 *   go_to_work     daily between 09:00 and 10:00 & time of week between Monday and Friday
 *   get_data       daily after 07:00 (it fails on Wednesdays and Saturdays)
 *   transform_data after task 'get_data' succeeded (reads what get_data returned)
 *   store_data     after task 'transform_data'
 *   report_errors  after task 'get_data' failed
 *
 * The session runs on a fake clock: the program sets it to the time the
 * session says something can next happen (sk_sched_next_wake) and steps
 * (sk_sched_step), from Monday 2024-01-01 00:00 to the next Monday, so the
 * week takes no time. Every task runs in the session's thread
 * (SK_TASK_MAIN). TZ is UTC, so the output is the same everywhere: one
 * line per run, from the session's on_run callback, then the runs per
 * task.
 *
 *     build/default/examples/sched_week
 *
 * Build: gcc -std=c11 sched_week.c $(pkg-config --cflags --libs skproc)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <skproc.h>

#define NS INT64_C(1000000000)

static int64_t now; /* the fake clock, ns since the epoch */

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return now;
}

/* Local time of t (ns): "Mon 08:00" into buf. */
static const char *when(int64_t t, char *buf, size_t len)
{
    time_t secs = (time_t)(t / NS);
    struct tm tm;
    localtime_r(&secs, &tm);
    strftime(buf, len, "%a %H:%M", &tm);
    return buf;
}

/* ---------------------------------------------------------- the tasks */

static int wake_up(sk_task_run *run, void *arg)
{
    (void)run;
    (void)arg;
    return 0; /* code to make you awake */
}

static int wash_teeth(sk_task_run *run, void *arg)
{
    (void)run;
    (void)arg;
    return 0; /* twice a day */
}

static int go_to_work(sk_task_run *run, void *arg)
{
    (void)run;
    (void)arg;
    return 0; /* week days */
}

/* Gets data; the source is down on Wednesdays and Saturdays. */
static int get_data(sk_task_run *run, void *arg)
{
    (void)arg;
    time_t secs = (time_t)(now / NS);
    struct tm tm;
    localtime_r(&secs, &tm);
    if (tm.tm_wday == 3 || tm.tm_wday == 6)
        return 2; /* a failure, logged with this code */
    int64_t rows = 100 + tm.tm_wday;
    return sk_task_return(run, "I", &rows); /* what transform_data could read (Return) */
}

/* Reads what get_data returned (its parameter "rows", declared below). */
static int transform_data(sk_task_run *run, void *arg)
{
    (void)arg;
    int64_t rows;
    if (sk_task_param(run, "rows", "I", &rows) != SK_OK)
        return 1;
    return rows > 0 ? 0 : 1;
}

static int store_data(sk_task_run *run, void *arg)
{
    (void)run;
    (void)arg;
    return 0;
}

static int report_errors(sk_task_run *run, void *arg)
{
    (void)run;
    (void)arg;
    return 0; /* code to report errors in getting data */
}

/* transform_data's parameter: get_data's return value (Rocketry's
 * Return('get_data')). */
static const sk_param rows_param = {.name = "rows", .kind = SK_PARAM_RETURN, .task = "get_data"};

static const sk_sched_task tasks[] = {
    {.name = "wake_up", .start = "daily after 08:00", .fn = wake_up},
    {.name = "wash_teeth",
     .start = "daily between 08:00 and 08:15 | daily between 22:00 and 22:15",
     .fn = wash_teeth},
    {.name = "go_to_work",
     .start = "daily between 09:00 and 10:00 & time of week between Monday and Friday",
     .fn = go_to_work},
    {.name = "get_data", .start = "daily after 07:00", .fn = get_data},
    {.name = "transform_data",
     .start = "after task 'get_data' succeeded",
     .fn = transform_data,
     .params = &rows_param,
     .param_count = 1},
    {.name = "store_data", .start = "after task 'transform_data'", .fn = store_data},
    {.name = "report_errors", .start = "after task 'get_data' failed", .fn = report_errors},
};
#define NTASKS (sizeof tasks / sizeof tasks[0])

static int runs[NTASKS];

/* Called when a run starts and when it ends: one line per ended run. */
static int on_run(const sk_run_record *run, void *arg)
{
    (void)arg;
    if (run->outcome == SK_RUN_RUNNING)
        return 0;
    char at[32];
    if (run->outcome == SK_RUN_SUCCEEDED)
        printf("%s %s succeeded\n", when(run->start, at, sizeof at), run->task);
    else /* the error says why: "the function returned 2" */
        printf("%s %s failed (%s)\n", when(run->start, at, sizeof at), run->task,
               run->error != NULL ? run->error->cause : "?");
    for (size_t i = 0; i < NTASKS; i++)
        if (strcmp(tasks[i].name, run->task) == 0)
            runs[i]++;
    return 0;
}

int main(void)
{
    setenv("TZ", "UTC0", 1); /* the week in UTC, whatever the machine's zone */
    tzset();
    now = INT64_C(1704067200) * NS; /* Monday 2024-01-01 00:00 UTC */
    int64_t end = now + 7 * 86400 * NS;

    sk_sched *s;
    sk_sched_config cfg = {.clock = fake_clock, .on_run = on_run, .no_signals = true};
    if (sk_sched_create(&s, &cfg) != SK_OK) {
        fprintf(stderr, "sk_sched_create: %s\n", sk_last_error_message());
        return 1;
    }
    for (size_t i = 0; i < NTASKS; i++) {
        sk_sched_task t = tasks[i];
        t.mode = SK_TASK_MAIN; /* in this thread: the fake clock stays still while it runs */
        if (sk_sched_add(s, &t, NULL, 0) != SK_OK) {
            fprintf(stderr, "%s: %s\n", t.name, sk_last_error_message());
            return 1;
        }
    }

    /* A cycle, then the clock moves to the next time a condition can
     * change; a run that ended can make another task due at once ("after
     * task"), so the clock stays when the next wake is not later. */
    while (now < end) {
        if (sk_sched_step(s) != SK_OK) {
            fprintf(stderr, "sk_sched_step: %s\n", sk_last_error_message());
            return 1;
        }
        int64_t next;
        sk_sched_next_wake(s, &next);
        if (next > now)
            now = next < end ? next : end;
    }
    sk_sched_release(s);

    printf("runs in the week:\n");
    for (size_t i = 0; i < NTASKS; i++)
        printf("  %-15s %d\n", tasks[i].name, runs[i]);
    return 0;
}
