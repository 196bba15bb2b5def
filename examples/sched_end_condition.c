/* SPDX-License-Identifier: MIT */
/*
 * sched_end_condition: process tasks that would run for hours, ended by
 * the session: one by its end condition, one by its timeout (Rocketry's
 * end_cond and timeout), and what the run log says of them.
 *
 *   check_mail   start "daily after 15:00", end "time of day between 16:00
 *                and 20:00": checks mail until the session asks it to stop
 *                (sk_task_stopping), then returns
 *   fetch_news   start "daily after 15:00", timeout 0.3 s: never returns on
 *                its own; its process is killed, with everything it started
 *
 * Both run in processes of their own (SK_TASK_PROCESS, the default). The
 * afternoon is simulated: the session's clock (config.clock) starts at
 * 15:00 and the program moves it on by a minute every 10 ms, so 16:00
 * comes after about 0.6 s. The timeout is real time. The program drives
 * the session itself, waiting on sk_sched_fd between cycles
 * (sk_sched_step); with the real clock, sk_sched_run does all this.
 *
 *     build/default/examples/sched_end_condition
 *
 * Build: gcc -std=c11 sched_end_condition.c $(pkg-config --cflags --libs skproc)
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <skproc.h>

#define NS INT64_C(1000000000)

static int64_t now; /* the simulated clock, ns since the epoch */

static int64_t simulated_clock(void *arg)
{
    (void)arg;
    return now;
}

static const char *hhmm(int64_t t, char *buf, size_t len)
{
    time_t secs = (time_t)(t / NS);
    struct tm tm;
    localtime_r(&secs, &tm);
    strftime(buf, len, "%H:%M", &tm);
    return buf;
}

/* In its own process: checks mail until asked to stop. */
static int check_mail(sk_task_run *run, void *arg)
{
    (void)arg;
    while (!sk_task_stopping(run))
        usleep(20 * 1000); /* check the mailbox */
    return 0;              /* stopped when asked: the log says "terminated" all the same */
}

/* In its own process: waits for news that never comes. */
static int fetch_news(sk_task_run *run, void *arg)
{
    (void)run;
    (void)arg;
    for (;;)
        pause();
    return 0; /* not reached */
}

static const char *outcome_name(sk_run_outcome o)
{
    switch (o) {
    case SK_RUN_RUNNING:
        return "running";
    case SK_RUN_SUCCEEDED:
        return "succeeded";
    case SK_RUN_FAILED:
        return "failed";
    case SK_RUN_TERMINATED:
        return "terminated";
    }
    return "?";
}

static int ended; /* runs that ended */

/* As runs start and end. */
static int on_run(const sk_run_record *run, void *arg)
{
    (void)arg;
    char at[16];
    if (run->outcome == SK_RUN_RUNNING) {
        printf("%s %s started\n", hhmm(run->start, at, sizeof at), run->task);
    } else {
        printf("%s %s ended: %s\n", hhmm(run->end, at, sizeof at), run->task,
               outcome_name(run->outcome));
        ended++;
    }
    return 0;
}

/* What the log holds of a run. */
static int print_run(const sk_run_record *run, void *arg)
{
    (void)arg;
    printf("%s: %s", run->task, outcome_name(run->outcome));
    if (run->error != NULL)
        printf(": %s", run->error->message);
    if (run->error != NULL && run->error->cause[0] != '\0')
        printf(" (%s)", run->error->cause);
    printf("\n");
    return 0;
}

int main(void)
{
    setenv("TZ", "UTC0", 1);
    tzset();
    now = INT64_C(1704121200) * NS; /* Monday 2024-01-01 15:00 UTC */

    sk_sched *s;
    sk_sched_config cfg = {
        .clock = simulated_clock, .on_run = on_run, .no_signals = true, .shutdown_grace = 1};
    if (sk_sched_create(&s, &cfg) != SK_OK) {
        fprintf(stderr, "sk_sched_create: %s\n", sk_last_error_message());
        return 1;
    }
    sk_sched_task mail = {.name = "check_mail",
                          .start = "daily after 15:00",
                          .end = "time of day between 16:00 and 20:00",
                          .fn = check_mail};
    sk_sched_task news = {.name = "fetch_news",
                          .start = "daily after 15:00",
                          .timeout = 0.3,
                          .kill_after = 0.2,
                          .fn = fetch_news};
    if (sk_sched_add(s, &mail, NULL, 0) != SK_OK || sk_sched_add(s, &news, NULL, 0) != SK_OK) {
        fprintf(stderr, "sk_sched_add: %s\n", sk_last_error_message());
        return 1;
    }

    /* Until both runs ended (or 17:00, should something be wrong): a cycle,
     * then up to 10 ms of waiting for the session's descriptor, then the
     * clock a minute on. */
    int64_t give_up = now + 2 * 3600 * NS;
    struct pollfd pfd = {.fd = sk_sched_fd(s), .events = POLLIN};
    while (ended < 2 && now < give_up) {
        if (sk_sched_step(s) != SK_OK) {
            fprintf(stderr, "sk_sched_step: %s\n", sk_last_error_message());
            return 1;
        }
        poll(&pfd, 1, 10);
        now += 60 * NS;
    }

    printf("the log:\n");
    sk_run_log_runs(sk_sched_log(s), NULL, SK_COND_NEVER, print_run, NULL);
    sk_sched_release(s);
    return ended == 2 ? 0 : 1;
}
