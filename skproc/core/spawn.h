/* SPDX-License-Identifier: MIT */
/*
 * Spawned programs, inside core: the plan made in the parent before any
 * fork (every string, array and fd the child needs), the child's side
 * between fork and exec (async-signal-safe calls only), and the fast start
 * through clone(CLONE_VM | CLONE_VFORK) for a program that needs no
 * supervisor. The public calls are in include/skproc/spawn.h.
 *
 * It lives in core, not in the group layer, because sk_start, the
 * supervisor and the worker's entry each have to choose between running
 * hooks and running a program, and core may not call a layer above it.
 */
#ifndef SKPROC_CORE_SPAWN_H
#define SKPROC_CORE_SPAWN_H

#include "core/runtime.h"

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

struct sk_spawn_linebuf {
    char *data;
    size_t len, cap;
};

struct sk_spawn {
    sk_spawn_config cfg; /* pointers below are our own copies */
    char **argv;
    char **env;     /* cfg.env copied */
    char *file;     /* the program as given (argv[0] by default) */
    char *cwd;      /* or NULL */
    char *paths[3]; /* SK_STDIO_FILE paths */
    /* Made by sk_spawn_prepare, under the registry lock, before the fork. */
    char **envp;       /* what execve gets: environ itself, or a malloc'ed array */
    bool envp_owned;   /* envp (not its strings, which are env's or environ's) is ours */
    char **candidates; /* the full paths execve tries, in order (PATH search) */
    int child_fd[3];   /* what becomes the program's 0, 1, 2; -1: inherit (or 2>&1) */
    int parent_fd[3];  /* the parent's pipe ends (0: write, 1 and 2: read); -1: none */
    int ready_child;   /* the write end of the ready pipe (cfg.ready_fd), dup2'ed to ready_fd */
    int ready_parent;  /* its read end, the parent's alone: -1 without ready_fd and after EOF */
    pid_t parent;      /* who forks the program: PDEATHSIG and the getppid() check */
    int64_t start_ns;  /* when the program was started (its run timer) */
    /* Written by the child before it leaves without exec (CLONE_VM shares
     * it with the suspended parent) */
    volatile int exec_errno;
    volatile int exec_step; /* which setting failed: enum in spawn.c */
    bool stopped;           /* sk_stop sent SIGTERM */
    int status;             /* the wait status, once reaped (unsupervised) */
    bool have_status;
    struct sk_spawn_linebuf line[3];
};

/* SK_OK for a config sk_spawn_init takes, else SK_EINVAL with why. */
int sk_spawn_check(const sk_spawn_config *cfg);

/* rt->spawn from cfg, every string copied. SK_ENOMEM leaves a partial
 * plan for sk_spawn_free. */
int sk_spawn_plan_new(struct sk_runtime *rt, const sk_spawn_config *cfg);

/* Frees everything the plan holds and closes its fds. */
void sk_spawn_free(struct sk_runtime *rt);

/* For sk_process_rearm, under the registry lock: closes the fds and frees
 * what one run made (environment array, PATH candidates, line buffers),
 * keeping the copies of the config, so that the next sk_start runs the
 * program afresh. */
void sk_spawn_rearm(struct sk_runtime *rt);

/* In a forked child of another handle: closes this handle's fds (they must
 * not keep a pipe open in someone else's process). Also how the parent
 * lets go of them before a new start (sk_spawn_prepare, sk_process_rearm). */
void sk_spawn_forget(struct sk_runtime *rt);

/* In the parent, before the fork: environment, PATH candidates, files and
 * pipes. SK_OK, or a code with sk_last_error_message set. */
int sk_spawn_prepare(struct sk_runtime *rt);

/* In the parent after the fork (or clone): closes the child's ends. */
void sk_spawn_after_fork(struct sk_runtime *rt);

/* In a supervisor: closes the parent's ends (the supervisor keeps the
 * child's ends for the programs it starts after a restart). */
void sk_spawn_in_supervisor(struct sk_runtime *rt);

/* The fast start: clone(CLONE_VM | CLONE_VFORK), the program in its own
 * process group. The pid (the program, or a child that already _exited
 * after an exec failure recorded in exec_errno), or -1 with errno set. */
pid_t sk_spawn_fast(struct sk_runtime *rt);

/* In a supervised worker: marks the run section (for timeouts.run) and
 * execs the program. On failure writes the error to the status page and
 * exits. */
_Noreturn void sk_spawn_worker_exec(struct sk_runtime *rt);

/* In the parent after the reap of an unsupervised program: its outcome
 * (error or not) and its run timer. */
void sk_spawn_outcome(struct sk_runtime *rt, int status, bool reaped);

/* In the supervisor after the reap of a program that exited by itself:
 * true when it is done (outcome written: ok, or failed with no retry);
 * false when it is a fault (s->fault filled by the caller). */
bool sk_spawn_supervised_exit(struct sk_runtime *rt, const siginfo_t *info, bool *retryable);

/* A crash error's message and cause say "Program NAME exited with status
 * n" / "was ended by signal n" rather than name a hook. */
void sk_spawn_crash_text(const struct sk_runtime *rt, sk_error *e);

/* In the parent: reads what the program wrote to its ready pipe, in
 * bounded chunks (at most 64 KiB a call, thrown away), without waiting.
 * True when a '\n' was among it. At end of file the read end is closed. */
bool sk_spawn_ready_read(struct sk_runtime *rt);

/* sk_stop for a program: SIGTERM to pid, once. */
void sk_spawn_stop(struct sk_runtime *rt, pid_t pid);

#endif
