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

/* The event log in the status page: the last SK_EVENT_LOG events the worker
 * and the supervisor recorded (never both at once: the supervisor writes
 * only while no worker lives). Entry k % SK_EVENT_LOG holds the k-th event;
 * events_written counts them all. The parent delivers the ones it has not
 * delivered yet, each checked field by field. The writer may overwrite an
 * entry while the parent copies it (the log overflowed): each entry's stamp
 * says which event it holds, k when whole and k - 1 (never a number this
 * entry holds) while being written, so the parent keeps a copy only if the
 * stamp said k before and after it. */
#define SK_EVENT_LOG 32

struct sk_logged_event {
    _Atomic uint32_t stamp;
    int kind; /* sk_event_kind: START, RESTART, TIMEOUT, CRASH, FAILURE or READY */
    int section;
    long run;
    pid_t pid;
    int has_error;
    sk_error error;
};

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
    _Atomic int released;            /* (P) a held start may go on (core/held_start.c) */
    _Atomic int kill_requested;      /* (P) sk_kill: the supervisor ends everything */
    _Atomic int lives_used;          /* (W soft errors, S hard faults) failed attempts */
    _Atomic pid_t worker_pid;        /* (S) 0 when no worker lives */
    _Atomic int64_t supervisor_wake; /* (S) when the supervisor wakes next, ns */
    /* Recoveries (issue 11 item 3): the failed attempts that were retried,
     * all counted (W soft errors, S hard faults), the first
     * SK_MAX_SPENT_ERRORS kept in spent[] below; the fresh workers started
     * after hard faults (S). Here, on the first page, which every party
     * has touched: the parent reads them at every end, and a page nobody
     * wrote costs a fault that allocates it (about 40 us on a virtual
     * machine). */
    _Atomic int spent_count;
    _Atomic int restarts;
    _Atomic int spawns; /* (S) workers forked so far: the worker says START or RESTART */
    /* (W) non-zero once a hook called sk_ready (SK_READY_ON_NOTIFY): the
     * worker logs READY, then sets it, then rings the ready doorbell. Never
     * cleared by skproc, so a restarted worker finds it set. The parent
     * believes any non-zero value and remembers it (rt->ready): a worker
     * that clears or scribbles it changes nothing the parent decided. */
    _Atomic uint32_t ready;

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

    sk_error spent[SK_MAX_SPENT_ERRORS]; /* the first spent_count errors */

    /* (W or S) events for config.on_event; the parent sleeps on
     * events_written in sk_start until the first worker says START. */
    _Atomic uint32_t events_written;
    struct sk_logged_event events[SK_EVENT_LOG];

    /* (S) a spawned program's last wait status as sk_spawn_status says it
     * (exit code, or -signal); -1000 when none ran. The program itself
     * cannot write here: exec dropped the mapping. */
    _Atomic int spawn_status;
};

struct sk_runtime {
    enum sk_role role;
    bool started, finished, killed;
    bool supervised;         /* a supervisor sits between the parent and the worker */
    bool held;               /* started held: the worker waits for sk_start_release */
    int64_t held_release_at; /* when the release is expected (CLOCK_MONOTONIC ns), or 0 */
    sk_config config;        /* frozen copy */

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
    int event_doorbell;  /* eventfd: an event was logged (only with config.on_event) */
    int ready_doorbell;  /* eventfd: a hook called sk_ready (SK_READY_ON_NOTIFY, hooks only) */
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

    /* parent side: recoveries, copied and checked after the end */
    bool recovery_copied;
    int attempts, restarts, spent_total;

    /* parent side: events (config.on_event) */
    uint32_t events_delivered;          /* log entries delivered (or given up) so far */
    struct sk_logged_event *event_copy; /* SK_EVENT_LOG entries, taken before delivery */
    pid_t event_pid;                    /* the last worker an event named, for KILL and FINISH */
    bool finish_delivered;

    /* parent side: readiness (config.ready), kept from sk_start to the end */
    bool ready;           /* seen: with SK_READY_ON_START from sk_start on */
    bool ready_delivered; /* READY went to config.on_event (or the log's entry was taken) */

    /* Set by a pool before sk_start (sk_process_fault_item): the supervisor
     * asks it which item a dead worker had in hand, for the fault's .item. */
    long (*fault_item)(void *ctx);
    void *fault_item_ctx;

    /* What a layer above that started the process knows it by (a
     * scheduler's run: sk_process_set_tag); the worker inherits it. NULL:
     * none. Cleared by sk_process_rearm. */
    void *tag;

    /* A spawned program (sk_spawn_init): what it runs and its pipes; NULL
     * for a process of hooks. */
    struct sk_spawn *spawn;

    /* worker side */
    int hook_section; /* the section whose hook is running, or -1 */
    bool cause_set;   /* sk_fail was called in the current hook */
    int cause_code;
    char cause[sizeof(((sk_error *)0)->cause)];

    /* Last: what sk_wait writes when the child has ended lies in the
     * struct's first pages, which sk_start already wrote after its fork.
     * Each page the parent first writes after a fork takes a copy-on-write
     * fault, 10 to 20 us on a virtual machine; these 10 KiB are written
     * only after failed attempts. */
    sk_error spent[SK_MAX_SPENT_ERRORS]; /* parent side, with the recoveries above */
};

#endif
