/* SPDX-License-Identifier: MIT */
/*
 * Loading tasks from shared objects (sk_sched_load, internal): the path
 * pattern, the walk under a folder, and the libraries a session keeps
 * loaded until it is released.
 *
 * A session holds one struct sched_libs (session.h), zeroed at creation.
 * sk_sched_load adds to it; sk_sched_release calls sk_sched_libs_close
 * last, once no task and no run is left: the tasks' functions and
 * arguments live in the libraries' code and data.
 */
#ifndef SKPROC_SCHED_LOADER_H
#define SKPROC_SCHED_LOADER_H

#include "skproc.h"

#include <stdbool.h>
#include <stddef.h>

/* The handles of the libraries a session loaded, in load order. */
struct sched_libs {
    void **handles;
    size_t count, cap;
    bool keep_loaded; /* a thread run was let go of at shutdown (cycle.c): its code may
                       * still run, so the libraries are never closed */
};

/* dlcloses every library in libs, latest first (unless keep_loaded), and
 * empties it. */
void sk_sched_libs_close(struct sched_libs *libs);

/* True when path (relative, '/'-separated) matches pattern: segment by
 * segment with fnmatch(FNM_PATHNAME | FNM_PERIOD), where a "**" segment
 * matches any number of segments (none too) that do not start with '.'. */
bool sk_sched_path_match(const char *pattern, const char *path);

#endif
