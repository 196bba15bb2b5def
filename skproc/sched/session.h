/* SPDX-License-Identifier: MIT */
/*
 * The session's parts (internal), each using only those after it:
 *
 *   session.c   the public calls that build and tear down a session:
 *               create, release, add, remove, conditions, run_task, log
 *   cycle.c     one cycle (sk_sched_step) and the calls made of cycles:
 *               run, join, next_wake; shutting the runs down
 *   task_run.c  one run in its mode (main, thread, process): start, ask to
 *               stop, kill, collect its outcome; the calls task code makes
 *               (sk_task_return, _stopping, _run_name, _run_of)
 *   params.c    session parameters and a run's resolved parameters
 *               (sk_sched_param, _param_fn, sk_task_param, _param_image)
 *   run_error.c the errors the session writes into the runs it fails or ends
 *   task.c      a task as the session keeps it: built from sk_sched_task,
 *               its dependencies, freed
 *   task_heap.c the tasks ordered by the time they are next looked at
 *   status.c    what conditions read of each task name (cache of the log)
 *   wait.c      the descriptors the session sleeps on (epoll, eventfd,
 *               timerfds), SIGINT/SIGTERM, sk_sched_fd, sk_sched_shutdown
 *   warm.c      process runs forked ahead of their start (prefork)
 *   name_map.c  a map from names to pointers
 *
 * Threads. Everything here belongs to the thread that calls into the
 * session, except: `shutdown_asked` and the eventfd (any thread, a signal
 * handler); a thread run's `done`, `rc`, `end_mono` and value (written by
 * its thread before `done` is set with release order, read by the session
 * after it read `done` with acquire order); `stopping` (the session writes,
 * the task's thread reads).
 */
#ifndef SKPROC_SCHED_SESSION_H
#define SKPROC_SCHED_SESSION_H

#include "skproc.h"

#include "sched/loader.h"
#include "sched/name_map.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------- status.c */

/* What the conditions read of one task name: its latest start and the end
 * of its latest run of each outcome (terminated counts as failed). Loaded
 * from the log the first time the name is asked for, updated as runs
 * begin and end. */
struct task_status {
    char *name;
    int64_t last_start;
    int64_t last_success; /* end of the latest succeeded run */
    int64_t last_failure; /* end of the latest failed or terminated run */
};

/* The status of name (loaded from the log on first use), or NULL without
 * memory. */
struct task_status *sk_status_of(sk_sched *s, const char *name);
/* The shape of sk_cond_log_fn over the cache (log: the session). */
int64_t sk_status_last_time(void *session, const char *task, sk_cond_outcome outcome);
void sk_status_free_all(sk_sched *s);

/* ------------------------------------------------------------ task_heap.c */

#define TASK_NOT_IN_HEAP SIZE_MAX

struct sched_task;
/* Puts t at t->next_check (takes it out when that is SK_COND_NO_CHANGE),
 * wherever it was. SK_ENOMEM when the heap cannot grow. */
int sk_task_heap_set(sk_sched *s, struct sched_task *t);
void sk_task_heap_remove(sk_sched *s, struct sched_task *t);
/* The task looked at first, or NULL. */
struct sched_task *sk_task_heap_top(const sk_sched *s);
/* A task but except whose start condition's next change (due) lies in
 * [from, until], or NULL; walks only the tasks looked at before until. */
struct sched_task *sk_task_heap_due_in(const sk_sched *s, const struct sched_task *except,
                                       int64_t from, int64_t until);

/* ----------------------------------------------------------------- task.c */

/* A declared parameter, as the task keeps it. */
struct task_param {
    char *name;
    sk_param_kind kind;
    void *image; /* SK_PARAM_VALUE */
    size_t len;
    char *task; /* SK_PARAM_RETURN */
};

/* The tasks whose start condition waits for a run of one name ("after
 * task 'x'"), kept under that name. */
struct dependents {
    char *name;
    struct sched_task **tasks;
    size_t n, cap;
};

struct sched_task {
    char *name;
    sk_cond *start; /* never NULL: "false" when none was given */
    sk_cond *end;   /* NULL: none */
    double timeout; /* seconds, 0: none */
    double kill_after;
    sk_task_mode mode;
    sk_task_fn fn;
    void *arg;
    sk_process *process;
    struct task_param *params;
    size_t nparams;
    sk_overlap overlap;
    int max_parallel; /* >= 1 */
    sk_missed missed;

    char **after; /* the task names the start condition waits for, unique */
    size_t nafter;
    bool start_users; /* the start condition asks user predicates: looked at periodically */
    bool end_watch;   /* the end condition has "after" or user parts: looked at on events */
    struct task_status *status;
    sk_task_run *warm; /* a run forked ahead of the next start (warm.c), or NULL */

    /* scheduling */
    int64_t next_check; /* session clock: look again then; SK_COND_NO_CHANGE: on events only */
    int64_t due;        /* the start condition's next change (next_check is earlier by the
                         * prefork lead while a prefork waits to be made) */
    size_t heap_at;     /* index in the heap, or TASK_NOT_IN_HEAP */
    bool dirty;         /* in the session's dirty list: look at it in this or the next cycle */
    bool forced;        /* sk_sched_run_task, or a missed run: start whatever the condition */
    int queued;         /* SK_OVERLAP_QUEUE: starts waiting for the running one to end */
    int running;        /* runs going */
    bool removed;       /* out of the session; freed once no run of it goes */
    bool cond_error_reported; /* said on stderr once */
    bool log_error_reported;
};

/* True when c asks user predicates somewhere (nothing announces their
 * changes: such conditions are looked at periodically). */
bool sk_cond_asks_users(const sk_cond *c);

/* Builds a task from what sk_sched_add got (name is the name it gets);
 * the conditions of t are owned from the call on, also on failure.
 * SK_EINVAL with the reason, SK_ENOMEM. */
int sk_task_build(const sk_sched_task *t, const char *name, struct sched_task **out);
void sk_task_free(struct sched_task *t);
/* Registers t under the names its start condition waits for; takes it
 * out again. */
int sk_task_depend(sk_sched *s, struct sched_task *t);
void sk_task_undepend(sk_sched *s, struct sched_task *t);
/* Marks t to be looked at in the next cycle (or in this one, when the cycle
 * is going). */
int sk_task_touch(sk_sched *s, struct sched_task *t);
/* Marks every task that waits for a run of name. */
void sk_task_touch_dependents(sk_sched *s, const char *name);
/* Frees the removed tasks none of whose runs go on (not during a cycle). */
void sk_task_bury(sk_sched *s);

/* --------------------------------------------------------------- params.c */

struct session_param {
    char *name;
    void *image; /* fixed value, or */
    size_t len;
    sk_param_fn fn; /* computed before each run */
    void *arg;
};

/* One resolved parameter of a run: its own copies. */
struct run_param {
    char *name;
    void *image; /* NULL: no value */
    size_t len;
};

/* Resolves r's parameters (session thread, right before the run starts).
 * SK_OK, or a failure outside the task's code: *why says which parameter
 * and how. */
int sk_params_resolve(sk_sched *s, sk_task_run *r, sk_error *why);
void sk_params_free_run(sk_task_run *r);
/* True when t's parameters can be resolved ahead of its start (a prefork,
 * warm.c): none comes from a parameter function, which runs right before
 * the run as documented. */
bool sk_params_known_ahead(const sk_sched *s, const struct sched_task *t);
/* True when the parameters r resolved are what resolving them now would
 * give (session parameters and Return values compared byte for byte). */
bool sk_params_current(sk_sched *s, const sk_task_run *r);
void sk_params_free_session(sk_sched *s);

/* ------------------------------------------------------------- task_run.c */

/* A run's life (see task_run.c for who moves it):
 *   STARTING ──started──▶ RUNNING ──ended──▶ ENDED
 *      │ failed to start     │ end condition, timeout, shutdown
 *      ▼                     ▼
 *    ENDED (failed)       STOPPING ──ended──▶ ENDED
 *                            │ kill_after passed
 *                            ▼
 *                          KILLED ──ended──▶ ENDED
 * A thread cannot be killed: KILLED means the session reported it overdue. */
enum run_state { RUN_STARTING, RUN_RUNNING, RUN_STOPPING, RUN_KILLED, RUN_ENDED };

/* Why the session ends a run. */
enum run_stop { STOP_NONE, STOP_END_CONDITION, STOP_TIMEOUT, STOP_SHUTDOWN };

/* The process a function task runs in (SK_TASK_PROCESS). */
struct task_process {
    sk_process base;
    sk_task_run *run;
};

struct sk_task_run {
    struct sched_task *task; /* NULL once orphaned */
    char *name;              /* the task's name, the run's own copy */
    sk_task_fn fn;
    void *arg;
    sk_task_mode mode;
    int64_t log_id;
    int64_t start, end;         /* session clock */
    int64_t start_mono;         /* CLOCK_MONOTONIC ns */
    int64_t deadline_mono;      /* the timeout; 0: none */
    int64_t kill_mono;          /* STOPPING: the kill (or the overdue report) is due; 0: none */
    int64_t end_check;          /* session clock: look at the end condition again */
    _Atomic int64_t thread_end; /* thread and main runs: when fn returned (mono) */
    enum run_state state;
    enum run_stop stop;
    _Atomic bool stopping; /* sk_task_stopping */

    struct run_param *params;
    size_t nparams;

    /* the outcome */
    sk_run_outcome outcome;
    sk_error error;
    bool has_error;
    void *value;
    size_t value_len;

    /* thread runs */
    pthread_t thread;
    bool has_thread;
    _Atomic bool done;
    int rc;
    pthread_mutex_t orphan_lock; /* thread runs: orphan and done are decided under it */
    bool has_lock;
    bool orphan; /* the session let go of it: the thread frees the run */
    int wake_fd; /* the session's eventfd, rung when the thread ends */

    /* process runs */
    sk_process *proc;         /* the task's own handle, or &own->base */
    struct task_process *own; /* a function task's process */
    int watch_fd;             /* a dup of the pidfd in the epoll set; -1: polled */
    bool exited;              /* the pidfd said so, or a poll did */

    pid_t owner_pid;                  /* the session's process: another pid is a forked copy */
    const _Atomic int *shutdown_flag; /* main runs: the session's shutdown_asked */

    sk_task_run *prev, *next; /* the session's live runs */
};

/* A new run of t, STARTING, nothing resolved, logged or started; NULL
 * without memory. */
sk_task_run *sk_run_new(struct sched_task *t);
/* Starts r in its mode (r is STARTING, its parameters resolved, its start
 * logged). Main runs run to their end here. SK_OK (RUNNING, or ENDED for
 * main), or a failure outside the task's code with *why filled. */
int sk_run_launch(sk_sched *s, sk_task_run *r, sk_error *why);
/* A process run forked ahead of its start (warm.c): started held
 * (sk_start_held), its release expected at release_at (CLOCK_MONOTONIC
 * ns), its parameters resolved; r stays STARTING and out of
 * the session's epoll set. SK_OK, or as sk_run_launch. */
int sk_run_launch_held(sk_task_run *r, int64_t release_at, sk_error *why);
/* Lets a held run's process go on (RUNNING, watched). SK_ESTATE when it
 * has ended meanwhile. */
int sk_run_release(sk_sched *s, sk_task_run *r);
/* Ends a launched process run's process quietly (its tree killed and
 * reaped, a function task's handle freed), as if it had never started. */
void sk_run_unlaunch(sk_task_run *r);
/* True once r's code has ended (thread returned, process exited). */
bool sk_run_has_ended(sk_task_run *r);
/* Asks r to stop for `why`; the kill is due after `bound` seconds. */
void sk_run_ask_stop(sk_task_run *r, enum run_stop why, double bound);
/* The bound passed: kills a process run (its tree too); reports a thread
 * run that did not return. */
void sk_run_kill(sk_sched *s, sk_task_run *r);
/* Collects an ended run: reaps its process or joins its thread, fills its
 * outcome, error and value. */
void sk_run_collect(sk_sched *s, sk_task_run *r);
/* A thread run that did not stop within the shutdown's grace: logged as
 * terminated now, and left to its thread, which frees it when fn returns. */
void sk_run_orphan(sk_task_run *r);
/* Frees r (collected). */
void sk_run_free(sk_task_run *r);

/* ------------------------------------------------------------------ warm.c */

/* How far ahead process runs are forked, ns; 0: never (prefork < 0, or a
 * clock of the caller's). */
int64_t sk_warm_lead(const sk_sched *s);
/* True when t's next run may be forked ahead: a process task without a
 * prefork, whose handle is free, whose parameters are known ahead. */
bool sk_warm_fits(const sk_sched *s, const struct sched_task *t);
/* Forks t's next run, held, due at t->due; on any failure nothing (the
 * start forks). Unless another task is due while the fork would hold the
 * session's thread: then nothing, and *retry_at says when to try again
 * (SK_COND_NO_CHANGE: too late for this start). */
void sk_warm_make(sk_sched *s, struct sched_task *t, int64_t now, int64_t *retry_at);
/* t's prefork for a start now, or NULL (none, or dropped: its process
 * died, or its parameters changed). */
sk_task_run *sk_warm_take(sk_sched *s, struct sched_task *t);
/* Ends t's prefork, if any, quietly; every task's. */
void sk_warm_drop(struct sched_task *t);
void sk_warm_drop_all(sk_sched *s);

/* ------------------------------------------------------------ run_error.c */

/* An error the session makes (not the task's code): kind, reason (an SK_E*
 * code), no section, the message from fmt, no cause. */
void sk_run_error(sk_error *e, sk_error_kind kind, int reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The error of a run the session ended (end condition, timeout,
 * shutdown); `own` (may be NULL) is what the run's code itself reported,
 * kept in the cause. */
void sk_run_error_stopped(sk_error *e, const char *task, enum run_stop why, double timeout,
                          const sk_error *own);

/* ------------------------------------------------------------------ wait.c */

/* epoll data of the session's own descriptors; anything else is a run. */
#define SCHED_EV_WAKE 1u
#define SCHED_EV_CLOCK 2u
#define SCHED_EV_MONO 3u

int sk_wait_open(sk_sched *s);
void sk_wait_close(sk_sched *s);
/* Arms the timerfds: the session clock's next time (real clock only) and
 * the next CLOCK_MONOTONIC deadline (INT64_MAX: none). Only changes are
 * written. */
void sk_wait_arm(sk_sched *s, int64_t clock_at, int64_t mono_at);
/* Clears a timerfd that fired. */
void sk_wait_clear(int fd);
/* Puts a run's pidfd (dup'ed) into the epoll set; -1 in r->watch_fd when
 * there is none (the run is polled). */
void sk_wait_watch(sk_sched *s, sk_task_run *r, int pidfd);
void sk_wait_unwatch(sk_sched *s, sk_task_run *r);
/* SIGINT and SIGTERM call sk_sched_shutdown(s) while s runs; restored
 * after. */
int sk_wait_signals_on(sk_sched *s);
void sk_wait_signals_off(sk_sched *s);

/* ----------------------------------------------------------------- cycle.c */

/* Ends every live run: asked to stop, killed after the grace, logged,
 * reaped (thread runs past the grace are orphaned). */
void sk_cycle_stop_all(sk_sched *s, double grace);

/* ------------------------------------------------------------- the session */

struct user_cond {
    char *name;
    sk_cond_user_fn fn;
    void *arg;
};

struct sk_sched {
    sk_sched_config cfg;
    char *log_path; /* cfg.log_path's copy */
    sk_cond *shutdown_cond;
    bool shutdown_users;    /* it asks user predicates: looked at every second */
    int64_t shutdown_check; /* session clock: look at it again */
    int64_t created;        /* session clock at create: "since" for the shutdown condition */
    sk_run_log *log;

    struct name_map tasks;    /* name -> struct sched_task */
    struct name_map depends;  /* name -> struct dependents */
    struct name_map statuses; /* name -> struct task_status */
    struct name_map params;   /* name -> struct session_param */
    sk_cond_user_def *users;  /* what conditions look up; names owned */
    size_t nusers, users_cap;

    struct sched_task **heap;
    size_t heap_len, heap_cap;
    struct sched_task **dirty; /* looked at in the next cycle */
    size_t ndirty, dirty_cap;
    struct sched_task **graveyard; /* removed, freed once their runs ended */
    size_t ngrave, grave_cap;
    size_t nusers_tasks; /* tasks whose start condition asks user predicates */

    sk_task_run *runs; /* live runs, newest first */
    size_t nruns;
    size_t npolled; /* process runs without a pidfd */

    bool run_ended; /* since the runs' end conditions were last looked at */
    bool in_step;
    bool first_cycle_done;
    bool crashed_prerun; /* this cycle: a failure outside a task's code to report */
    int crash_rc;

    /* wait.c */
    int epoll_fd;
    int wake_fd;  /* eventfd: a command, a thread's end, a signal */
    int clock_fd; /* timerfd CLOCK_REALTIME (real clock only; else -1) */
    int mono_fd;  /* timerfd CLOCK_MONOTONIC: timeouts, kill bounds, polling */
    int64_t armed_clock, armed_mono;
    _Atomic int shutdown_asked;
    int signal_slot; /* in wait.c's table while sk_sched_run runs; -1 */

    struct sched_libs libs; /* loader.c: what sk_sched_load loaded, closed last */
    int64_t fork_ns;        /* warm.c: how long a prefork's launch takes (a running mean) */
    int64_t started_at;     /* the session clock at the last start of a run (warm.c) */
};

/* The session clock (cfg.clock, or CLOCK_REALTIME), ns. */
int64_t sk_sched_now(const sk_sched *s);

#endif
