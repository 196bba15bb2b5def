/* SPDX-License-Identifier: MIT */
/* The rules every run log store keeps the same way: what "latest" means,
 * which outcomes count as failed, how a run left running is ended, the
 * names of outcomes in files, and the one-session-per-file lock. */
#include "sched/runlog_store.h"

#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void sk_runlog_recovered_error(sk_error *e)
{
    sk_error_set_internal(e, SK_PROCESS_ERROR, SK_NO_SECTION, 0, SK_ECLOSED,
                          "the session that started the run ended before the run did");
    snprintf(e->message, sizeof e->message, "%s", RUNLOG_RECOVERED_MESSAGE);
}

int64_t sk_runlog_recovered_end(int64_t start, int64_t previous_alive)
{
    return previous_alive != SK_COND_NEVER && previous_alive > start ? previous_alive : start;
}

bool sk_runlog_outcome_is(sk_run_outcome run, sk_cond_outcome outcome)
{
    switch (outcome) {
    case SK_COND_SUCCEEDED:
        return run == SK_RUN_SUCCEEDED;
    case SK_COND_FAILED:
        return run == SK_RUN_FAILED || run == SK_RUN_TERMINATED;
    case SK_COND_FINISHED:
        return run != SK_RUN_RUNNING;
    }
    return false;
}

bool sk_runlog_ended_after(int64_t end_a, int64_t id_a, int64_t end_b, int64_t id_b)
{
    return end_a > end_b || (end_a == end_b && id_a > id_b);
}

static const char *const outcome_names[] = {
    [SK_RUN_RUNNING] = "running",
    [SK_RUN_SUCCEEDED] = "succeeded",
    [SK_RUN_FAILED] = "failed",
    [SK_RUN_TERMINATED] = "terminated",
};

const char *sk_runlog_outcome_name(sk_run_outcome outcome)
{
    if ((unsigned)outcome >= sizeof outcome_names / sizeof outcome_names[0])
        return "unknown";
    return outcome_names[outcome];
}

int sk_runlog_outcome_parse(const char *text, size_t len)
{
    for (size_t i = 0; i < sizeof outcome_names / sizeof outcome_names[0]; i++)
        if (strlen(outcome_names[i]) == len && memcmp(outcome_names[i], text, len) == 0)
            return (int)i;
    return -1;
}

/* A byte far past anything SQLite locks (its lock bytes sit at 1 GiB) and
 * past any CSV log's end: the lock is advisory and covers no data. */
#define RUNLOG_LOCK_BYTE ((off_t)1 << 50)

int sk_runlog_lock(int fd, const char *path)
{
    struct flock fl = {
        .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = RUNLOG_LOCK_BYTE, .l_len = 1};
    for (int tries = 0;; tries++) {
        if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
            return SK_OK;
        if (errno == EINTR)
            continue;
        if ((errno != EAGAIN && errno != EACCES) || tries >= 200)
            break;
        struct timespec ten_ms = {.tv_nsec = 10 * 1000 * 1000};
        nanosleep(&ten_ms, NULL);
    }
    if (errno == EAGAIN || errno == EACCES)
        return sk_refuse(SK_ESYS, "%s: another session has this run log open for writing", path);
    return sk_refuse(SK_ESYS, "%s: cannot lock the run log: %s", path, strerror(errno));
}
