/* SPDX-License-Identifier: MIT */
/* The sqlite run log store: to come (refuses for now). */
#include "sched/runlog_store.h"

#include "core/error.h"

int runlog_sqlite_open(const char *path, bool writer, int64_t now, void **out)
{
    (void)writer;
    (void)now;
    (void)out;
    return sk_refuse(SK_ESYS, "%s: the SQLite run log is not built yet", path);
}

const runlog_ops runlog_sqlite_ops = {.name = "sqlite"};
