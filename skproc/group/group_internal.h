/* SPDX-License-Identifier: MIT */
/*
 * The parts of a group, each using only those after it:
 *   group.c      the public calls
 *   supervise.c  the group's thread and its state machine, a child's start,
 *                stop and end (a nested group's too: a group starts its
 *                child groups' threads), the group's lifetime
 *   child.c      what is done to a process child
 *   intensity.c  the restart window and the failures it keeps
 *   state.c      the record: children, published states, events, memory
 *
 * Ownership. The group's thread is the only one that starts, stops, reaps
 * or restarts a child. The caller's calls that change the group (add,
 * remove, stop) are commands handed to that thread, one at a time, and
 * answered through a condition variable. Before sk_group_start (no thread
 * yet) and after the thread ended they act on the group directly.
 *
 * Locking. `lock` guards the children array (its order and membership),
 * every child's published fields (state, pid, restarts, last error), the
 * group's run state and error, and the command slot. The thread reads its
 * children without the lock (it is their only writer) and takes it to
 * publish; events are called with no lock held.
 */
#ifndef SKPROC_GROUP_INTERNAL_H
#define SKPROC_GROUP_INTERNAL_H

#include "skproc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define GROUP_NAME 64

struct group_child {
    char name[GROUP_NAME];
    sk_process *process; /* exactly one of these two */
    sk_group *group;
    sk_restart_type restart;
    double shutdown;      /* seconds, SK_SHUTDOWN_INFINITY or SK_SHUTDOWN_BRUTAL_KILL */
    double ready_timeout; /* seconds, < 0 none */

    bool started; /* ever started: the next start rearms it first */
    bool live;    /* started and not yet reaped or stopped */
    int watch_fd; /* in the thread's epoll set while live: a dup of the pidfd or of the
                   * child group's fd; -1 when the child is polled instead */

    /* published (under the group's lock) */
    sk_group_child_state state;
    pid_t pid;
    int restarts;
    bool has_error;
    sk_error last_error;
};

/* What the caller asks the thread to do. */
enum group_command_kind { GROUP_CMD_NONE, GROUP_CMD_ADD, GROUP_CMD_REMOVE, GROUP_CMD_STOP };

struct group_command {
    enum group_command_kind kind;
    struct group_child *child; /* ADD: made by the caller, owned by the group once added */
    const char *name;          /* REMOVE */
    bool done;
    int rc;
    char why[256]; /* ADD: why the child did not start, for sk_last_error_message */
};

/* Restarts within the period, and the failures that caused them. */
struct group_intensity {
    int limit; /* restarts allowed within period */
    int64_t period_ns;
    int64_t *restarts; /* a ring of limit + 1 restart times */
    int nrestarts;     /* ever made, the ring holds the last min(n, limit + 1) */
    sk_group_failure failures[SK_GROUP_MAX_FAILURES]; /* a ring of the recent ones */
    int nfailures;                                    /* ever recorded */
};

struct sk_group {
    char name[GROUP_NAME];
    sk_group_config cfg;
    bool owned; /* a child of another group */

    pthread_mutex_t lock;
    pthread_cond_t answered;
    struct group_child **children;
    size_t nchildren, cap;
    sk_group_run_state state;
    int total_restarts;
    bool has_error;
    sk_group_error error;
    struct group_command *command;

    int end_fd;   /* eventfd: rung once the group has ended (sk_group_fd) */
    int wake_fd;  /* eventfd: a command for the thread */
    int epoll_fd; /* the thread's: wake_fd and every live child's watch_fd */
    pthread_t thread;
    bool has_thread; /* created and not yet joined */
    int start_rc;    /* what the thread's first start of every child said */
    bool start_done;

    int64_t started_ns;
    struct group_intensity intensity;
};

/* state.c: the record */
void sk_group_emit(sk_group *g, sk_group_event_kind kind, const struct group_child *c,
                   const sk_error *error);
/* The child's state and pid for readers of the group's state (the pid is
 * -1 whatever is given when the state is STOPPED). */
void sk_group_publish(sk_group *g, struct group_child *c, sk_group_child_state state, pid_t pid);
/* The run state after the thread's work; a command still waiting is
 * answered (SK_ESTATE, or SK_OK for a stop), and the end fd turns
 * readable. */
void sk_group_end(sk_group *g, sk_group_run_state state);
/* Appends c to the start order; false (nothing changed) without memory. */
bool sk_group_children_append(sk_group *g, struct group_child *c);
/* The child called name, or NULL. */
struct group_child *sk_group_find_child(const sk_group *g, const char *name);
/* Takes c out of the start order (its handle is left as it is). */
void sk_group_forget_child(sk_group *g, struct group_child *c);
/* Puts a dup of fd (a child's pidfd or group end fd) into the thread's
 * epoll set as c's watch; none (polled) when fd < 0. */
void sk_group_watch(sk_group *g, struct group_child *c, int fd);
void sk_group_unwatch(sk_group *g, struct group_child *c);
/* Back to the state right after the children were added: a group
 * restarted by its parent group. Its thread has ended. */
void sk_group_rearm(sk_group *g);
/* Frees g and all it holds (its thread ended, its children stopped). */
void sk_group_free(sk_group *g);

/* child.c: a process child, in the group's thread */
int sk_group_process_start(sk_group *g, struct group_child *c, sk_error *why);
void sk_group_process_stop(struct group_child *c);
bool sk_group_process_reap(struct group_child *c, sk_error *why);

/* intensity.c */
int sk_group_intensity_init(struct group_intensity *w, int limit, double period);
void sk_group_intensity_reset(struct group_intensity *w);
void sk_group_intensity_free(struct group_intensity *w);
void sk_group_intensity_failure(struct group_intensity *w, const char *child, double at,
                                const sk_error *e);
/* Counts a restart at now; false when it is one too many within the period. */
bool sk_group_intensity_admit(struct group_intensity *w, int64_t now);
/* The failures within the period before now (seconds since the group
 * started), oldest first, into err. */
void sk_group_intensity_report(const struct group_intensity *w, double now, sk_group_error *err);

/* supervise.c: the thread and the group's lifetime */
/* Starts the thread, which starts every child in order: SK_OK once all
 * are ready, else SK_EPROCESS (the group has failed, its thread ended). */
int sk_group_launch(sk_group *g);
/* Hands cmd to the running group's thread and waits for the answer;
 * SK_ESTATE when the group is not running. */
int sk_group_command(sk_group *g, struct group_command *cmd);
/* Stops a running group (every child, in reverse) and joins its thread;
 * nothing when it is not running. */
void sk_group_halt(sk_group *g);
/* sk_group_wait without the argument check. */
int sk_group_await(sk_group *g, double timeout);

#endif
