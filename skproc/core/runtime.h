/* SPDX-License-Identifier: MIT */
/*
 * The private runtime of one skproc process, shared by the three parties
 * that take part in it:
 *
 *   parent      the user's process, holding the sk_process handle
 *   supervisor  forked by sk_start when the process needs one (timeouts,
 *               lives, join_in, an error hook); owns the worker, enforces
 *               deadlines, restarts the worker after hard faults
 *   worker      forked by the supervisor, or by the parent itself when no
 *               supervisor is needed; runs the engine (the hook loop)
 *
 * They talk through one status page (struct sk_shared), a MAP_SHARED mapping
 * of a memfd that all three hold. The worker publishes where it is (section,
 * run, section start); the parent and supervisor read it without messages.
 * The two message rings' data follow the page; the result image is written
 * to the same memfd, past the mapping.
 *
 * Trust: the worker runs user code and can write every byte of the status
 * page and the rings. struct sk_runtime is private to each party (copied by
 * fork, never shared): it holds every pointer, size, fd and pid a party
 * needs. What the parent and the supervisor read from the status page is
 * data to check, never an address or a size to use as it is.
 */
#ifndef SKPROC_CORE_RUNTIME_H
#define SKPROC_CORE_RUNTIME_H

#include "core/tables.h"
#include "core/timer.h"
#include "ipc/ring.h"
#include "skproc.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

enum sk_role {
    SK_ROLE_PARENT,
    SK_ROLE_SUPERVISOR,
    SK_ROLE_WORKER,
    SK_ROLE_INHERITED /* another handle's copy in a child: inert, every call says SK_ESTATE */
};

enum sk_outcome { SK_OUTCOME_NONE, SK_OUTCOME_OK, SK_OUTCOME_FAILED };

/* The status page. Fields marked (W) are written by the worker, (S) by the
 * supervisor, (P) by the parent; everyone may read them. */
struct sk_shared {
    /* (W) Section entry bumps seq to an odd value, section exit to an even
     * one, so "odd and unchanged since I looked" means "still inside that
     * very call". */
    _Atomic uint64_t seq;
    _Atomic int section;
    _Atomic int64_t section_start_ns;
    _Atomic long current_run;
    _Atomic int engine_done; /* (W) outcome, error and result are final */

    _Atomic int stop;                /* (P or W) the loop should end */
    _Atomic int kill_requested;      /* (P) sk_kill: the supervisor ends everything */
    _Atomic int lives_used;          /* (W soft errors, S hard faults) failed attempts */
    _Atomic pid_t worker_pid;        /* (S) 0 when no worker lives */
    _Atomic int64_t supervisor_wake; /* (S) when the supervisor wakes next, ns */

    struct sk_ring_ctl rings[2]; /* the channel's control: to the parent, to the worker */

    int64_t start_ns; /* (P) the first start, for join_in */

    _Atomic int recycle; /* (W) leaving on purpose: start a fresh worker, no fault */
    sk_error last_fault; /* (S) the hard fault a restarted worker follows */
    _Atomic int faults;  /* (S) hard faults so far; last_fault is valid when > 0 */

    /* (W, or S for hard faults) the outcome */
    int outcome;
    sk_error error;
    int has_result;
    uint64_t result_len;

    struct sk_timer timers[SK_SECTION_COUNT]; /* (W) */
};

struct sk_runtime {
    enum sk_role role;
    bool started, finished, killed;
    bool supervised;  /* a supervisor sits between the parent and the worker */
    sk_config config; /* frozen copy */

    struct sk_shared *sh;
    size_t map_size;                       /* status page + both rings' data */
    size_t result_offset;                  /* in the memfd, past the mapping */
    struct sk_endpoint ep;                 /* this party's end of the channel */
    struct sk_ring *to_parent, *to_worker; /* inside ep, whichever side we are */
    int msg_doorbell;                      /* eventfd: a message for the parent (sk_fd) */
    int worker_doorbell; /* eventfd: a message or a stop for the worker (its sk_fd) */
    int epoll_fd;        /* sk_fd: doorbell + the child's pidfd */
    int epoll_pidfd;     /* the dup of the child's pidfd inside it */
    int memfd;           /* backs sh and the rings, holds the result image past them */
    int doorbell;        /* eventfd: the worker or the parent wakes the supervisor */
    pid_t parent_pid;
    pid_t child_pid;               /* the parent's child: the supervisor, or the worker itself */
    int child_pidfd;               /* its pidfd; -1 where pidfds cannot be had */
    sigset_t user_sigmask;         /* the parent's mask at sk_start, for the worker */
    struct sigaction user_sigchld; /* and its SIGCHLD disposition */

    /* parent side, after the end */
    sk_error error; /* copy of sh->error, or a supervisor failure */
    bool has_error;
    void *result_image; /* read from the memfd on the first sk_result */
    size_t result_len;

    /* worker side */
    int hook_section; /* the section whose hook is running, or -1 */
    bool cause_set;   /* sk_fail was called in the current hook */
    int cause_code;
    char cause[sizeof(((sk_error *)0)->cause)];
};

#endif
