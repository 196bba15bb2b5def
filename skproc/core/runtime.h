/*
 * The private runtime of one skproc process, shared by the three parties
 * that take part in it:
 *
 *   parent      the user's process, holding the sk_process handle
 *   supervisor  forked by sk_start; owns the worker, enforces deadlines,
 *               restarts the worker after hard faults
 *   worker      forked by the supervisor; runs the engine (the hook loop)
 *
 * They talk through one status page (struct sk_shared), a MAP_SHARED mapping
 * of a memfd that all three hold. The worker publishes where it is (section,
 * run, section start); the parent and supervisor read it without messages.
 * The result image is written to the same memfd, past the page.
 */
#ifndef SKPROC_RUNTIME_H
#define SKPROC_RUNTIME_H

#include "core/channel.h"
#include "skproc.h"
#include "core/timer.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#define SK_SECTION_COUNT 7 /* SK_PRERUN .. SK_FULL_RUN */

enum sk_role {
    SK_ROLE_PARENT,
    SK_ROLE_SUPERVISOR,
    SK_ROLE_WORKER,
    SK_ROLE_INHERITED /* another handle's copy in a child: inert, every call says SK_ESTATE */
};

/* What the engine does when a worker is forked. */
enum sk_engine_mode {
    SK_ENGINE_LOOP,      /* the full lifecycle, from sh->current_run */
    SK_ENGINE_ERROR_ONLY /* after a fatal hard fault: only the error hook */
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

    _Atomic int stop;           /* (P or W) the loop should end */
    _Atomic int kill_requested; /* (P) sk_kill: the supervisor ends everything */
    _Atomic int lives_used; /* (W soft errors, S hard faults) failed attempts */
    _Atomic pid_t worker_pid;        /* (S) 0 when no worker lives */
    _Atomic int64_t supervisor_wake; /* (S) when the supervisor wakes next, ns */

    struct sk_ring rings[2]; /* the channel: to the parent, to the worker */

    int64_t start_ns; /* (P) the first start, for join_in */

    _Atomic int recycle;  /* (W) leaving on purpose: start a fresh worker, no fault */
    sk_error last_fault;  /* (S) the hard fault a restarted worker follows */
    _Atomic int faults;   /* (S) hard faults so far; last_fault is valid when > 0 */

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
    bool supervised; /* a supervisor sits between the parent and the worker */
    sk_config config; /* frozen copy */

    struct sk_shared *sh;
    size_t map_size;      /* status page + both rings */
    size_t result_offset; /* in the memfd, past the mapping */
    struct sk_ring *to_parent, *to_worker;
    size_t ring_data_offset[2]; /* in the memfd: to_parent, to_worker */
    size_t peeked_frame;        /* bytes of the frame sk_channel_peek returned */
    int msg_doorbell;           /* eventfd: a message for the parent (sk_fd) */
    int epoll_fd;               /* sk_fd: doorbell + supervisor pidfd */
    int epoll_pidfd;            /* the dup of the supervisor pidfd inside it */
    int memfd;     /* backs sh and the rings, holds the result image past them */
    int doorbell;  /* eventfd: the worker or the parent wakes the supervisor */
    pid_t parent_pid;
    pid_t child_pid;  /* the parent's child: the supervisor, or the worker itself */
    int child_pidfd;  /* when unsupervised */
    sigset_t user_sigmask;          /* the parent's mask at sk_start, for the worker */
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

/* process.c: the supervisor has exited (not reaped yet, or reaped). */
bool sk_child_exited(const struct sk_runtime *rt);

/* engine.c: runs in the worker; never returns. */
_Noreturn void sk_engine_main(sk_process *p, enum sk_engine_mode mode);

/* supervisor.c: runs in the supervisor; never returns. */
_Noreturn void sk_supervisor_main(sk_process *p);
/* supervisor.c: runs in a fresh worker forked by forked_by; never returns. */
_Noreturn void sk_worker_main(sk_process *p, pid_t forked_by, enum sk_engine_mode mode);

/* error.c: fill an error record. */
void sk_error_set(sk_error *e, sk_error_kind kind, sk_section section, long run, int code,
                  const char *cause);
void sk_error_set_timeout(sk_error *e, sk_section section, long run, double limit, bool join_in);
void sk_error_set_crash(sk_error *e, sk_section section, bool in_section, long run, int signal,
                        int exit_status);
sk_error_kind sk_error_kind_of_section(sk_section s);
/* e failed in the error hook while it handled first: e takes first's run
 * and lives, and its cause names first. */
void sk_error_while_handling(sk_error *e, const sk_error *first);

/* engine.c, for hooks that work through many items (the pool's workers):
 * the section in progress starts again now (its timeout counts from here),
 * leaves its section while idle (no deadline), or comes back. */
void sk_section_restart(sk_process *self);
void sk_section_idle(sk_process *self);
void sk_section_resume(sk_process *self);
/* Ends the worker now so that its supervisor starts a fresh one (from the
 * state at start) without counting a fault. */
_Noreturn void sk_worker_recycle(sk_process *self);
/* The hard fault the current worker is a restart after, or NULL. */
const sk_error *sk_worker_last_fault(const sk_process *self);

/* result.c: the image the process published (parent side, after the end). */
int sk_result_image(sk_process *p, const void **img, size_t *len);

/* process.c: how children leave. It is _exit (never exit: a child must not
 * run the parent's atexit handlers or flush its stdio again), called
 * through a pointer bound when the program is loaded, so that a fresh child
 * does not pay a lazy symbol lookup to leave. */
extern void (*const sk_child_exit)(int status) __attribute__((noreturn));
/* process.c: resolves, in the parent, the library calls children make, so
 * that forks inherit them resolved. Once per process. */
void sk_resolve_child_calls(void);

/* The hook of a section, or NULL. */
sk_hook sk_class_hook(const sk_class *cls, sk_section s);
/* The configured timeout of a section in seconds, or 0 for none. */
double sk_config_timeout(const sk_config *cfg, sk_section s);

#endif
