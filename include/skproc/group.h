/* SPDX-License-Identifier: MIT */
/*
 * skproc groups: supervision trees in the manner of Erlang/OTP supervisors.
 * A group supervises an ordered list of children (skproc processes, spawned
 * programs, other groups), restarts them by a strategy, gives up when they
 * fail too often, starts them in order (each once the one before is ready)
 * and stops them in reverse order within a bound.
 *
 *     sk_group *g;
 *     sk_group_config gc = {.name = "service", .strategy = SK_ONE_FOR_ONE,
 *                           .intensity = 3, .period = 5.0};
 *     sk_group_create(&g, &gc);
 *
 *     listener l;                                  // embeds sk_process
 *     sk_init(&l.base, &listener_class);
 *     l.base.config.ready = SK_READY_ON_NOTIFY;    // prerun calls sk_ready
 *     sk_group_child lc = {.name = "listener", .process = &l.base};
 *     sk_group_add(g, &lc);
 *
 *     sk_process helper;                           // an external program
 *     sk_spawn_init(&helper, &helper_cfg);
 *     sk_group_child hc = {.name = "helper", .process = &helper,
 *                          .restart = SK_TRANSIENT, .shutdown = 2.0};
 *     sk_group_add(g, &hc);
 *
 *     sk_group_start(g);          // listener ready, then helper started
 *     ...                         // the group restarts what ends
 *     sk_group_stop(g);           // helper, then listener
 *     sk_group_release(g);
 *
 * The group's work is done by a thread of its own: it sees a child end (by
 * its pidfd) and restarts it while the caller's threads are busy elsewhere.
 * That thread owns the children's handles from sk_group_add until the child
 * is removed or the group released: do not call into a child's sk_process
 * while it belongs to a group; read sk_group_state instead. Children's
 * processes are started by the group's thread, so they end with the parent
 * (parent-death signals follow the thread that forked them) and, with a
 * supervisor, their whole trees do too (the group gives every child a
 * supervisor unless the child spec says otherwise).
 *
 * Restarting a process child starts its handle again from the class, the
 * config and the program it was added with (the struct embedding it is the
 * same memory: what the parent wrote there before sk_group_add is what every
 * incarnation starts from).
 *
 * Threads: every call below may be made from any thread, one at a time per
 * group; sk_group_state may be called at any time from any thread.
 */
#ifndef SKPROC_GROUP_H
#define SKPROC_GROUP_H

#ifndef SKPROC_H
#error "include <skproc.h>, which includes this file"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct sk_group sk_group;

/* Which children a group restarts when one ends and must be restarted. */
typedef enum sk_group_strategy {
    SK_ONE_FOR_ONE = 0, /* that child alone */
    SK_ONE_FOR_ALL,     /* every child: the others are stopped (in reverse order), then all are
                         * started again in order */
    SK_REST_FOR_ONE     /* that child and every child added after it */
} sk_group_strategy;

/* When a child that ended is restarted. */
typedef enum sk_restart_type {
    SK_PERMANENT = 0, /* always */
    SK_TRANSIENT,     /* only after a failure (an error, a crash, a non-zero exit, a kill
                       * the group did not make); a normal end removes it */
    SK_TEMPORARY      /* never: it is removed when it ends, however it ends (a child that
                       * leaves the group so is released by it: sk_release) */
} sk_restart_type;

/* sk_group_child.shutdown: wait for the child as long as it takes. */
#define SK_SHUTDOWN_INFINITY (-1.0)
/* sk_group_child.shutdown: kill at once, no stop request. */
#define SK_SHUTDOWN_BRUTAL_KILL (-2.0)
/* The default shutdown bound, seconds. */
#define SK_DEFAULT_SHUTDOWN 5.0
/* The default time a child has to become ready, seconds. */
#define SK_DEFAULT_READY_TIMEOUT 30.0

/* One child, as sk_group_add takes it (copied: name and the spec may go
 * away afterwards; the process or group itself must outlive its time in
 * the group). Exactly one of process and group is set. */
typedef struct sk_group_child {
    const char *name;    /* unique within the group, 1 to 63 bytes */
    sk_process *process; /* sk_init'ed or sk_spawn_init'ed, config set, not started */
    sk_group *group;     /* a group created and filled, not started: trees nest */
    sk_restart_type restart;
    double shutdown;      /* seconds between the stop request and the kill; 0: the default
                           * (SK_DEFAULT_SHUTDOWN); SK_SHUTDOWN_INFINITY; SK_SHUTDOWN_BRUTAL_KILL */
    double ready_timeout; /* seconds from start to ready (see sk_ready); past it the child
                           * counts as failed; 0: SK_DEFAULT_READY_TIMEOUT; < 0: none */
    bool no_supervisor;   /* do not force config.supervise on a process child: starts are
                           * faster, but what its worker forks may outlive it */
    void *reserved[4];    /* zero */
} sk_group_child;

/* What a group reports through sk_group_config.on_event. */
typedef enum sk_group_event_kind {
    SK_GROUP_CHILD_STARTED,      /* a child was started (pid set) */
    SK_GROUP_CHILD_READY,        /* it is ready; the next one may start */
    SK_GROUP_CHILD_ENDED,        /* it ended; error says how, NULL for a normal end */
    SK_GROUP_CHILD_RESTARTING,   /* the strategy restarts it (restarts: the count so far) */
    SK_GROUP_CHILD_START_FAILED, /* it could not be started or was not ready in time */
    SK_GROUP_CHILD_STOPPED,      /* the group stopped it (stop, remove, a strategy) */
    SK_GROUP_CHILD_REMOVED,      /* it left the group (sk_group_remove, a temporary or
                                  * transient child that ended) */
    SK_GROUP_GAVE_UP,            /* intensity exceeded: the group stops and fails */
    SK_GROUP_STOPPED             /* the group has stopped every child and ended */
} sk_group_event_kind;

typedef struct sk_group_event {
    sk_group_event_kind kind;
    const char *group;     /* the group's name */
    const char *child;     /* the child's name, or NULL for the group's own events */
    pid_t pid;             /* the child's worker (sk_pid), or -1 */
    int restarts;          /* restarts of this child so far */
    const sk_error *error; /* ENDED, START_FAILED, GAVE_UP: why; else NULL */
} sk_group_event;

/* Called in the group's own thread, in the order things happen, everything
 * valid during the call only. It may log, count or write to a pipe; it must
 * not call into the group. The children's own config.on_event callbacks are
 * called in that thread too. */
typedef void (*sk_group_event_fn)(const sk_group_event *ev, void *ctx);

typedef struct sk_group_config {
    const char *name; /* in errors and events; copied; default "group" */
    sk_group_strategy strategy;
    int intensity; /* at most this many restarts ... (default 1, as OTP; < 0: 0) */
    double period; /* ... within this many seconds, a sliding window (default 5) */
    sk_group_event_fn on_event;
    void *event_ctx;
    void *reserved[4]; /* zero */
} sk_group_config;

/* One recent failure, as a group keeps them. */
typedef struct sk_group_failure {
    char child[64];
    double at; /* seconds since the group started */
    sk_error error;
} sk_group_failure;

#define SK_GROUP_MAX_FAILURES 16

/* Why a group failed: the child whose failure exceeded the intensity, and
 * the failures that counted (oldest first, at most SK_GROUP_MAX_FAILURES).
 * error summarizes it as one sk_error (kind SK_PROCESS_ERROR, reason
 * SK_EPROCESS, message "Group 'g' gave up: child 'c' ...") and is what a
 * parent group records when this group, its child, fails. */
typedef struct sk_group_error {
    char child[64];
    int nfailures;
    sk_group_failure failures[SK_GROUP_MAX_FAILURES];
    sk_error error;
} sk_group_error;

/* A child's state in sk_group_state. */
typedef enum sk_group_child_state {
    SK_CHILD_STOPPED = 0, /* not running: before start, after stop, between restarts */
    SK_CHILD_STARTING,    /* started, not ready yet */
    SK_CHILD_RUNNING      /* ready and running */
} sk_group_child_state;

typedef struct sk_group_child_info {
    char name[64];
    sk_group_child_state state;
    pid_t pid;    /* its worker (sk_pid), as of when it became ready; -1 while it is not
                   * running, and for a group child */
    int restarts; /* restarts made by the group */
    bool has_error;
    sk_error last_error; /* its last failure, when has_error */
} sk_group_child_info;

typedef enum sk_group_run_state {
    SK_GROUP_IDLE = 0, /* created, not started */
    SK_GROUP_RUNNING,
    SK_GROUP_ENDED, /* stopped by sk_group_stop */
    SK_GROUP_FAILED /* gave up (intensity) or could not start: sk_group_error */
} sk_group_run_state;

typedef struct sk_group_state {
    sk_group_run_state state;
    int total_restarts;
    size_t nchildren;
    sk_group_child_info *children; /* nchildren entries, in start order; free with
                                    * sk_group_state_free */
} sk_group_state;

/* A group with no children. SK_EINVAL for a bad strategy, a negative or
 * non-finite period. */
int sk_group_create(sk_group **g, const sk_group_config *cfg);

/* Adds a child at the end of the start order. Before sk_group_start it is
 * only recorded; while the group runs it is started at once, and the call
 * returns once it is ready: SK_OK, or SK_EPROCESS when it could not start
 * or was not ready in time (it is then not in the group). SK_EINVAL for a
 * bad spec or a name already in the group; SK_ESTATE when the group has
 * ended. */
int sk_group_add(sk_group *g, const sk_group_child *child);

/* Stops a child (its shutdown bound applies) and takes it out of the group;
 * the handle is the caller's again (finished: sk_release it, or read its
 * result). SK_EINVAL for an unknown name. */
int sk_group_remove(sk_group *g, const char *name);

/* Starts every child in order, each once the one before is ready, then
 * supervises them. SK_OK when all are ready; SK_EPROCESS when one could not
 * start or was not ready in time: the ones already started are stopped in
 * reverse order and sk_group_error says which (the group is FAILED).
 * SK_ESTATE when already started. */
int sk_group_start(sk_group *g);

/* Stops every child in reverse order, each within its shutdown bound (then
 * killed with its whole tree), and ends the group. SK_OK; at once when the
 * group has already ended. */
int sk_group_stop(sk_group *g);

/* Waits until the group has ended: SK_OK when it was stopped, SK_EPROCESS
 * when it gave up (sk_group_error says why), SK_ETIMEDOUT; timeout < 0
 * waits forever, 0 polls. SK_OK at once before sk_group_start. */
int sk_group_wait(sk_group *g, double timeout);

/* A file descriptor that polls readable once the group has ended, for
 * poll/epoll loops. Owned by the group. */
int sk_group_fd(const sk_group *g);

/* Why the group failed, or NULL while it has not. */
const sk_group_error *sk_group_error_of(const sk_group *g);

/* The worker pid of child `name` while it runs (what sk_group_state_read
 * shows for it), or -1: no such child, or it is not running now. */
pid_t sk_group_pid(sk_group *g, const char *name);

/* A snapshot of the group and its children. SK_ENOMEM. */
int sk_group_state_read(sk_group *g, sk_group_state *out);
void sk_group_state_free(sk_group_state *s);

/* Stops the group if it runs, then frees it. Process children are left
 * finished and released (sk_release); group children are released too. */
void sk_group_release(sk_group *g);

/* "started", "ready", ... for an event kind; "unknown" otherwise. */
const char *sk_group_event_name(sk_group_event_kind kind);

#endif /* SKPROC_GROUP_H */
