/* SPDX-License-Identifier: MIT */
/*
 * Processes written once: pidfds, looking at a child's exit without reaping
 * it, waiting for it with a deadline, and how a forked child leaves.
 *
 * Everything here names one pid that the caller forked (or one it holds a
 * pidfd of): skproc never calls waitpid(-1), so it cannot take the exit
 * status of the user's own children.
 */
#ifndef SKPROC_OS_PROC_H
#define SKPROC_OS_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A pidfd for pid, or -1 where the kernel or a seccomp profile (valgrind,
 * some containers) refuses them: callers then fall back to polling. */
int sk_pidfd_open(pid_t pid);
/* SIGKILL through a pidfd: a recycled pid can never be hit. */
int sk_pidfd_kill(int pidfd);

/* Waits until the process behind pidfd has ended (any process, not only a
 * child) or deadline passes (sk_now_ns() clock). True when it has ended. */
bool sk_pidfd_wait(int pidfd, int64_t deadline);

/* True when the child pid has exited (or is not our child any more),
 * without reaping it. */
bool sk_pid_exited(pid_t pid);

/* Waits until the child pid has exited, not reaping it, or until deadline
 * (sk_now_ns() clock; INT64_MAX: none). Through its pidfd when there is one
 * (pidfd >= 0), otherwise by looking at growing intervals (50 us to 5 ms).
 * True when it has exited. */
bool sk_pid_wait_exit(pid_t pid, int pidfd, int64_t deadline);
/* The same, returning early (false, *woken set) when wake_fd or wake_fd2
 * (each if >= 0) becomes readable. */
bool sk_pid_wait_exit_or(pid_t pid, int pidfd, int wake_fd, int wake_fd2, int64_t deadline,
                         bool *woken);

/* The children of the calling thread (a single-threaded process: all of
 * its children), up to max, into pids; how many, or -1 when /proc cannot
 * say. */
int sk_children(pid_t *pids, int max);

/* Kills (SIGKILL) and reaps every child of the caller but keep (0: none),
 * again until none is left. In a child subreaper (PR_SET_CHILD_SUBREAPER)
 * the orphans of its descendants become its children as their parents
 * die, so this ends the whole tree below it, including processes that left
 * its process group or session. One system call when it has no child. */
void sk_end_children(pid_t keep);

/* Reaps the children of the caller that have exited, until it finds none
 * or finds keep (which its owner reaps; any others wait for the next call).
 * One system call when nothing has exited. */
void sk_reap_exited_children(pid_t keep);

/* How children leave. It is _exit (never exit: a child must not run the
 * parent's atexit handlers or flush its stdio again), called through a
 * pointer bound when the program is loaded, so that a fresh child does not
 * pay a lazy symbol lookup to leave. */
extern void (*const sk_child_exit)(int status) __attribute__((noreturn));

/* Resolves, in the parent, the library calls children make, so that forks
 * inherit them resolved. Once per process. */
void sk_resolve_child_calls(void);

#endif
