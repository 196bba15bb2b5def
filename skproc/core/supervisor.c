/* SPDX-License-Identifier: MIT */
/*
 * The supervisor: one small process per skproc process, between the parent
 * and the worker. It exists because the parent may be busy elsewhere (or
 * blocked in its own code) and a worker may never return from a hook, even
 * with every signal blocked: only someone outside the worker can end it on
 * time and start it again.
 *
 * The supervisor is a fork of the parent taken at sk_start, so its memory is
 * the object's state at start: a worker restarted after a hard fault is a
 * fresh fork of it, which is exactly "restart from the state at start".
 *
 * States and events:
 *
 *   SPAWN  --forked-------------------------------> WATCH
 *   SPAWN  --fork failed--------------------------> DONE (ProcessError)
 *   WATCH  --worker exited, engine done-----------> DONE
 *   WATCH  --worker died / deadline passed--------> FAULT
 *   FAULT  --loop section, lives left, no join_in-> SPAWN (loop, same run)
 *   FAULT  --otherwise, error hook defined--------> SPAWN (error hook only)
 *   FAULT  --otherwise----------------------------> DONE
 *
 * It blocks every signal it can, so a Ctrl-C meant for the parent or a
 * stray SIGTERM does not end it behind the parent's back; it dies with its
 * parent through PR_SET_PDEATHSIG, and the worker dies with it the same way.
 */
#include "core/channel.h"
#include "core/class.h"
#include "core/error.h"
#include "core/events.h"
#include "core/spawn.h"
#include "core/supervisor.h"
#include "core/worker.h"
#include "os/clock.h"
#include "os/fd.h"
#include "os/proc.h"
#include "os/spin.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum sup_state { SUP_SPAWN, SUP_WATCH, SUP_FAULT, SUP_DONE };

/* The parent-death signal of the supervisor, and the way to ask it to end
 * its process (the worker and its whole tree) from outside. */
#define SUPERVISOR_END_SIGNAL SIGRTMAX

#define JOIN_RECHECK_NS (1000 * 1000) /* past join_in x 2, between loop hooks */

/* The supervisor's timer slack while it watches: its ppoll wakes at the
 * deadline, not up to 50 us (the default slack) after it. */
#define SUPERVISOR_TIMER_SLACK_NS 1

/* With spinning allowed (config.spin), the supervisor wakes this long
 * before a deadline and spins to it: a sleeping CPU takes 0.1 to 0.2 ms to
 * wake on a virtual machine, which every timeout paid on top of the kill
 * and the reaps. */
#define SUPERVISOR_EARLY_NS (200 * 1000)

enum deadline_kind { DEADLINE_NONE, DEADLINE_SECTION, DEADLINE_JOIN };

struct supervisor {
    sk_process *p;
    struct sk_runtime *rt;
    struct sk_shared *sh;
    enum sk_engine_mode mode;
    pid_t self;
    pid_t worker;
    int sigchld_fd;     /* signalfd: SIGCHLD and SUPERVISOR_END_SIGNAL (all others blocked) */
    bool end_requested; /* SUPERVISOR_END_SIGNAL came: the parent died, or someone asked */
    int64_t timeout_ns[SK_FULL_RUN];
    int64_t join_hard_ns; /* 0: none, or passed with no loop hook running */
    double join_in;
    bool join_held;        /* a held start (sk_start_held): join_in waits for the release */
    sk_error fault;        /* the hard fault being handled */
    bool retryable;        /* the fault happened inside the loop */
    int lives_floor;       /* attempts known used: sh->lives_used is never believed lower */
    uint64_t seen_seq;     /* the section entry last seen, and when: a section start */
    int64_t seen_at_ns;    /* the worker writes later than that does not postpone a deadline */
    long timer_slack;      /* the supervisor's own at start, in ns: its workers' */
    bool slack_lowered;    /* the supervisor's is SUPERVISOR_TIMER_SLACK_NS now */
    int spawns;            /* workers forked so far */
    int restarts;          /* of them, after a hard fault */
    bool after_fault;      /* the next worker replaces one that died */
    bool watches_deadline; /* a timeout or join_in is set: the supervisor may kill on time */
    bool early;            /* wakes SUPERVISOR_EARLY_NS before a deadline and spins to it */
};

/* A failure of the supervisor's own (no hook was running). */
static enum sup_state supervisor_finish_with(struct supervisor *s, const char *what)
{
    struct sk_shared *sh = s->sh;
    char cause[256];
    snprintf(cause, sizeof cause, "%s: %s", what, strerror(errno));
    sk_error_set_internal(&sh->error, SK_PROCESS_ERROR, SK_NO_SECTION,
                          atomic_load(&sh->current_run), SK_ESYS, cause);
    sh->outcome = SK_OUTCOME_FAILED;
    return SUP_DONE;
}

/* Ended by SUPERVISOR_END_SIGNAL: the parent died (nobody will read this),
 * or someone sent it. */
static void supervisor_record_end(struct supervisor *s)
{
    struct sk_shared *sh = s->sh;
    if (atomic_load(&sh->engine_done))
        return;
    sk_error_set_internal(&sh->error, SK_PROCESS_ERROR, SK_NO_SECTION,
                          atomic_load(&sh->current_run), SK_EKILLED,
                          "the supervisor was asked to end (its parent died, or SIGRTMAX came)");
    sh->outcome = SK_OUTCOME_FAILED;
    sh->has_result = 0;
}

static bool supervisor_kill_requested(const struct supervisor *s)
{
    return atomic_load(&s->sh->kill_requested) != 0;
}

/* Runs, once, the code a timeout will run between the kill and the reap:
 * formatting the error. The supervisor is a fresh fork, so the first run
 * of that code takes page faults (libc's text, copy-on-write stack and
 * data pages), about a dozen, which on a virtual machine made the reap, and
 * so the parent, a few hundred microseconds later. Done while the first
 * worker starts, off the parent's path. */
static void supervisor_warm_up(struct supervisor *s)
{
    /* And maps in the status page's error record, which it writes then. */
    uintptr_t from = (uintptr_t)&s->sh->error & ~(uintptr_t)4095;
    uintptr_t to = (uintptr_t)(&s->sh->error + 1);
    (void)madvise((void *)from, to - from, MADV_POPULATE_WRITE);
    /* Into the very record a fault is formatted in (nothing reads it
     * before a fault writes it again). */
    sk_error_set_timeout(&s->fault, SK_RUN, 1, 1.0, false);
    sk_error_set_crash(&s->fault, SK_RUN, true, 1, SIGKILL, 0);
    memset(&s->fault, 0, sizeof s->fault);
}

static enum sup_state supervisor_spawn(struct supervisor *s)
{
    if (supervisor_kill_requested(s))
        return SUP_DONE;
    atomic_store(&s->sh->spawns, ++s->spawns); /* the worker says START or RESTART */
    /* The worker gets the supervisor's timer slack at start (the parent's). */
    if (s->slack_lowered)
        s->slack_lowered = prctl(PR_SET_TIMERSLACK, s->timer_slack) != 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(s->sigchld_fd); /* the supervisor's, not the hooks' business */
        sk_worker_main(s->p, s->self, s->mode);
    }
    if (pid < 0)
        return supervisor_finish_with(s, "could not fork the worker");
    s->worker = pid;
    atomic_store(&s->sh->worker_pid, pid);
    if (s->timer_slack > SUPERVISOR_TIMER_SLACK_NS)
        s->slack_lowered = prctl(PR_SET_TIMERSLACK, SUPERVISOR_TIMER_SLACK_NS) == 0;
    if (s->after_fault) {
        s->after_fault = false;
        atomic_store(&s->sh->restarts, ++s->restarts);
    }
    if (s->spawns == 1 && s->watches_deadline)
        supervisor_warm_up(s);
    return SUP_WATCH;
}

/* Reaps the worker and leaves the status page as if it had left its last
 * section, so that a new worker does not inherit a stale deadline. The pid
 * is withdrawn before the reap: a pid read from the page then always names
 * a process that is not reaped yet, never a recycled one. Then everything
 * the worker started is ended: the supervisor is a child subreaper, so the
 * worker's orphaned descendants are its children now. */
static void supervisor_reap(struct supervisor *s, siginfo_t *info)
{
    memset(info, 0, sizeof *info);
    atomic_store(&s->sh->worker_pid, 0);
    while (waitid(P_PID, (id_t)s->worker, info, WEXITED) != 0 && errno == EINTR)
        ;
    sk_end_children(0);
    uint64_t seq = atomic_load(&s->sh->seq);
    if (seq & 1)
        atomic_store(&s->sh->seq, seq + 1);
}

/* The earliest deadline that applies to what the worker is doing now. */
static int64_t supervisor_deadline(struct supervisor *s, uint64_t seq, int section, int64_t start,
                                   enum deadline_kind *kind)
{
    int64_t deadline = INT64_MAX;
    *kind = DEADLINE_NONE;
    if (seq != s->seen_seq) {
        s->seen_seq = seq;
        s->seen_at_ns = sk_now_ns();
    }
    /* The start is the worker's word: never later than we saw the section
     * begin, so a forged one cannot overflow the sum or postpone the end. */
    if (start > s->seen_at_ns)
        start = s->seen_at_ns;
    if ((seq & 1) && section >= 0 && section < SK_FULL_RUN && s->timeout_ns[section]) {
        int64_t limit = s->timeout_ns[section];
        deadline = start > INT64_MAX - limit ? INT64_MAX : start + limit;
        *kind = DEADLINE_SECTION;
    }
    if (s->join_hard_ns && s->join_hard_ns < deadline) {
        deadline = s->join_hard_ns;
        *kind = DEADLINE_JOIN;
    }
    return deadline;
}

/* After a signal: drains the signalfd, notes an end request, reaps
 * orphans of the worker's descendants that have exited, and says whether
 * the worker has exited, without reaping it. */
static bool supervisor_worker_exited(struct supervisor *s)
{
    struct signalfd_siginfo si;
    while (read(s->sigchld_fd, &si, sizeof si) == (ssize_t)sizeof si)
        if ((int)si.ssi_signo == SUPERVISOR_END_SIGNAL)
            s->end_requested = true;
    sk_reap_exited_children(s->worker);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)s->worker, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD;
    return info.si_pid != 0;
}

/* The item the worker just reaped had in hand, when the process is a
 * pool's worker (sk_process_fault_item); else -1. */
static long supervisor_fault_item(const struct supervisor *s)
{
    long item = s->rt->fault_item != NULL ? s->rt->fault_item(s->rt->fault_item_ctx) : -1;
    return item >= 0 ? item : -1;
}

static void supervisor_timeout_error(struct supervisor *s, enum deadline_kind kind, int section,
                                     long run)
{
    if (kind == DEADLINE_JOIN)
        sk_error_set_timeout(&s->fault, section, run, s->join_in, true);
    else
        sk_error_set_timeout(&s->fault, section, run, s->timeout_ns[section] / 1e9, false);
}

/* The section the supervisor watches, as it last saw it. */
struct section_watch {
    const struct sk_shared *sh;
    uint64_t seq;
};

/* The worker left that section (or entered another). */
static bool section_left(const void *ctx)
{
    const struct section_watch *w = ctx;
    return atomic_load_explicit(&w->sh->seq, memory_order_acquire) != w->seq;
}

/* Sleeps until the worker exits or a deadline passes. On a deadline the
 * worker is killed; either way it is reaped before returning. */
static enum sup_state supervisor_watch(struct supervisor *s)
{
    struct sk_shared *sh = s->sh;
    siginfo_t info;
    for (;;) {
        if (supervisor_kill_requested(s) || s->end_requested) {
            kill(s->worker, SIGKILL);
            supervisor_reap(s, &info);
            if (s->end_requested && !supervisor_kill_requested(s))
                supervisor_record_end(s);
            return SUP_DONE;
        }
        if (s->join_held && atomic_load_explicit(&sh->released, memory_order_acquire)) {
            /* The parent rang us with the release: our own clock, not the
             * status page's start_ns, which the worker can write. */
            s->join_held = false;
            s->join_hard_ns = sk_now_ns() + 2 * sk_seconds_to_ns(s->join_in);
        }
        /* sk_stop of a spawned program: SIGTERM, sent by us, who know its
         * pid for sure (the parent rang the doorbell). */
        if (s->rt->spawn != NULL && atomic_load(&sh->stop))
            sk_spawn_stop(s->rt, s->worker);
        uint64_t seq = atomic_load_explicit(&sh->seq, memory_order_acquire);
        int section = atomic_load_explicit(&sh->section, memory_order_relaxed);
        int64_t start = atomic_load_explicit(&sh->section_start_ns, memory_order_relaxed);
        enum deadline_kind kind;
        int64_t deadline = supervisor_deadline(s, seq, section, start, &kind);

        atomic_store_explicit(&sh->supervisor_wake, deadline, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&sh->seq, memory_order_acquire) != seq)
            continue; /* the worker moved on while we looked */

        int64_t now = sk_now_ns();
        if (kind != DEADLINE_NONE && s->early && now < deadline &&
            deadline - now <= SUPERVISOR_EARLY_NS) {
            if (sk_spin_until(deadline, section_left, &(struct section_watch){sh, seq}))
                continue;
            now = sk_now_ns();
        }
        if (kind != DEADLINE_NONE && now >= deadline) {
            bool in_loop_hook = (seq & 1) && sk_section_is_loop(section);
            if (kind == DEADLINE_JOIN && !in_loop_hook) {
                /* Past the loop: the limit no longer applies. Between two
                 * hooks of an iteration: the next one may still hang. */
                s->join_hard_ns = sk_section_is_loop(section) ? now + JOIN_RECHECK_NS : 0;
                continue;
            }
            pid_t worker = s->worker;
            kill(worker, SIGKILL);
            /* The error is written while the worker dies (its teardown takes
             * longer than the formatting, whose first use in this process
             * faults pages in), and again if its run moved on meanwhile. */
            long run = atomic_load(&sh->current_run);
            supervisor_timeout_error(s, kind, section, run);
            supervisor_reap(s, &info);
            long final_run = atomic_load(&sh->current_run);
            if (final_run != run)
                supervisor_timeout_error(s, kind, section, final_run);
            s->retryable = kind == DEADLINE_SECTION && sk_section_is_loop(section);
            s->fault.item = supervisor_fault_item(s);
            return SUP_FAULT;
        }

        struct pollfd fds[2] = {{.fd = s->sigchld_fd, .events = POLLIN},
                                {.fd = s->rt->doorbell, .events = POLLIN}};
        struct timespec ts, *tsp = NULL;
        if (kind != DEADLINE_NONE) {
            int64_t wake = s->early ? deadline - SUPERVISOR_EARLY_NS : deadline;
            ts = sk_ns_to_timespec(wake > now ? wake - now : 0);
            tsp = &ts;
        }
        int n = ppoll(fds, 2, tsp, NULL);
        if (n < 0 && errno != EINTR)
            return supervisor_finish_with(s, "ppoll");
        if (n > 0 && (fds[1].revents & POLLIN))
            sk_doorbell_drain(s->rt->doorbell);
        if (n > 0 && (fds[0].revents & POLLIN) && supervisor_worker_exited(s) && !s->end_requested)
            break;
    }

    bool in_section = atomic_load(&sh->seq) & 1;
    int section = atomic_load(&sh->section);
    supervisor_reap(s, &info);
    if (atomic_load(&sh->engine_done))
        return SUP_DONE;
    bool spawn_retry = true;
    if (s->rt->spawn != NULL && sk_spawn_supervised_exit(s->rt, &info, &spawn_retry))
        return SUP_DONE; /* the program exited 0, or ended after sk_stop */
    if (s->rt->spawn == NULL && atomic_exchange(&sh->recycle, 0))
        return SUP_SPAWN; /* it asked for a fresh worker */
    bool exited = info.si_code == CLD_EXITED;
    sk_error_set_crash(&s->fault, section, in_section, atomic_load(&sh->current_run),
                       exited ? 0 : info.si_status, exited ? info.si_status : 0);
    if (s->rt->spawn != NULL)
        sk_spawn_crash_text(s->rt, &s->fault);
    s->retryable = sk_section_is_loop(section) && s->mode == SK_ENGINE_LOOP && spawn_retry;
    s->fault.item = supervisor_fault_item(s);
    return SUP_FAULT;
}

/* Logs the hard fault of the worker just reaped, for config.on_event. */
static void supervisor_log_fault(struct supervisor *s, const sk_error *err)
{
    sk_event_log(s->rt, err->kind == SK_TIMEOUT_ERROR ? SK_EVENT_TIMEOUT : SK_EVENT_CRASH,
                 err->section, err->run, s->worker, err);
}

/* The error hook itself timed out or crashed: report that, naming the
 * error it was handling (already in the status page). It never runs twice. */
static enum sup_state supervisor_error_hook_fault(struct supervisor *s)
{
    struct sk_shared *sh = s->sh;
    sk_error first = sh->error; /* written by the worker: checked before use */
    sk_error_sanitize(&first);
    sh->error = s->fault;
    sk_error_while_handling(&sh->error, &first);
    supervisor_log_fault(s, &sh->error);
    sh->outcome = SK_OUTCOME_FAILED;
    sh->has_result = 0;
    return SUP_DONE;
}

/* A hard fault: restart the loop while lives last, else end with the error
 * (running the error hook in a fresh worker when the class has one). Only
 * faults inside the loop use lives, as for soft errors. */
static enum sup_state supervisor_fault(struct supervisor *s)
{
    struct sk_shared *sh = s->sh;
    if (s->mode == SK_ENGINE_ERROR_ONLY || s->fault.section == SK_ERROR)
        return supervisor_error_hook_fault(s);
    /* Soft errors are counted by the worker, in the status page: believed
     * only within what is known used and the lives there are. */
    int lives = s->rt->config.lives;
    int used = atomic_load(&sh->lives_used);
    used = used < s->lives_floor ? s->lives_floor : used > lives ? lives : used;
    if (s->retryable) {
        used = used < lives ? used + 1 : lives;
        atomic_store(&sh->lives_used, used);
        s->lives_floor = used;
        if (used < lives) {
            sh->last_fault = s->fault;
            sh->last_fault.lives_spent = used;
            atomic_fetch_add(&sh->faults, 1);
            sk_spent_record(sh, &sh->last_fault);
            supervisor_log_fault(s, &sh->last_fault);
            s->mode = SK_ENGINE_LOOP;
            s->after_fault = true;
            return SUP_SPAWN;
        }
    }
    sh->error = s->fault;
    /* A fault after the loop ends the attempt it happened in, which counts
     * although it is not retried. */
    sh->error.lives_spent = s->retryable || used >= lives ? used : used + 1;
    sh->outcome = SK_OUTCOME_FAILED;
    sh->has_result = 0;
    supervisor_log_fault(s, &sh->error);
    if (s->p->cls->error == NULL)
        return SUP_DONE;
    s->mode = SK_ENGINE_ERROR_ONLY;
    s->after_fault = true;
    return SUP_SPAWN;
}

static void supervisor_init(struct supervisor *s, sk_process *p)
{
    struct sk_runtime *rt = p->rt;
    memset(s, 0, sizeof *s);
    s->p = p;
    s->rt = rt;
    s->sh = rt->sh;
    s->mode = SK_ENGINE_LOOP;
    s->self = getpid();
    sigset_t watched;
    sigemptyset(&watched);
    sigaddset(&watched, SIGCHLD);
    sigaddset(&watched, SUPERVISOR_END_SIGNAL);
    s->sigchld_fd = signalfd(-1, &watched, SFD_CLOEXEC | SFD_NONBLOCK);
    for (int i = 0; i < SK_FULL_RUN; i++) {
        s->timeout_ns[i] = sk_seconds_to_ns(sk_config_timeout(&rt->config, (sk_section)i));
        s->watches_deadline |= s->timeout_ns[i] != 0;
    }
    s->join_in = rt->config.join_in > 0 ? rt->config.join_in : 0;
    int64_t join = sk_seconds_to_ns(s->join_in);
    s->join_hard_ns = join ? s->sh->start_ns + 2 * join : 0;
    s->join_held = join != 0 && rt->held;
    if (s->join_held)
        s->join_hard_ns = 0; /* set at the release */
    s->watches_deadline |= join != 0;
    s->early = rt->config.spin > 0; /* normalized: 0 with no_spin or one CPU */
    s->seen_seq = atomic_load(&s->sh->seq);
    s->seen_at_ns = sk_now_ns();
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    s->timer_slack = slack > 0 ? slack : 0;
}

_Noreturn void sk_supervisor_main(sk_process *p)
{
    struct sk_runtime *rt = p->rt;
    pid_t parent = rt->parent_pid;
    rt->role = SK_ROLE_SUPERVISOR;
    /* Signals are blocked before the parent-death signal is set, so that it
     * arrives through the signalfd and the supervisor ends its tree. */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    if (prctl(PR_SET_PDEATHSIG, SUPERVISOR_END_SIGNAL) != 0 || getppid() != parent ||
        prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        sk_child_exit(127);
    /* If the parent ignores SIGCHLD, workers would be reaped by the kernel
     * and their exit status lost. */
    signal(SIGCHLD, SIG_DFL);

    struct supervisor s;
    supervisor_init(&s, p);
    enum sup_state state = SUP_SPAWN;
    if (s.sigchld_fd < 0)
        state = supervisor_finish_with(&s, "signalfd");
    while (state != SUP_DONE) {
        switch (state) {
        case SUP_SPAWN:
            state = supervisor_spawn(&s);
            break;
        case SUP_WATCH:
            state = supervisor_watch(&s);
            break;
        case SUP_FAULT:
            state = supervisor_fault(&s);
            break;
        case SUP_DONE:
            break;
        }
    }
    sk_channel_close_to_parent(rt);
    sk_child_exit(0);
}
