/* SPDX-License-Identifier: MIT */
/* The csv run log store: to come (refuses for now). */
#include "sched/runlog_store.h"

#include "core/error.h"

int runlog_csv_open(const char *path, bool writer, size_t max_runs, int64_t now, void **out)
{
    (void)writer;
    (void)max_runs;
    (void)now;
    (void)out;
    return sk_refuse(SK_ESYS, "%s: the CSV run log is not built yet", path);
}

const runlog_ops runlog_csv_ops = {.name = "csv"};
