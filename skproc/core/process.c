/* SPDX-License-Identifier: MIT */
/*
 * The parent-side handle: init, start, wait, stop, kill, release, and the
 * read-only views (alive, current run, pid, error, timers).
 *
 * The parent has one child per process: the supervisor, or the worker
 * itself when no supervision is needed (needs_supervisor). It never calls
 * waitpid(-1): it reaps exactly the pid it forked, so it cannot steal the
 * user's own children's exit statuses.
 */
#include "core/channel.h"
#include "core/class.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/handle.h"
#include "core/process.h"
#include "core/events.h"
#include "core/ready.h"
#include "core/spawn.h"
#include "core/supervisor.h"
#include "core/worker.h"
#include "os/clock.h"
#include "os/fd.h"
#include "os/proc.h"
#include "os/shm.h"
#include "os/spin.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static bool registry_holds(const struct sk_runtime *rt);
static int registry_add(struct sk_runtime *rt);
static void registry_remove(struct sk_runtime *rt);

/* A runtime as sk_init leaves it: the parent's, no fd, nothing started. */
static void runtime_fresh(struct sk_runtime *rt)
{
    rt->role = SK_ROLE_PARENT;
    rt->memfd = rt->doorbell = rt->child_pidfd = rt->msg_doorbell = rt->worker_doorbell =
        rt->epoll_fd = rt->epoll_pidfd = rt->event_doorbell = rt->ready_doorbell = -1;
    rt->hook_section = -1;
}

/* A handle that is already initialized (its runtime is registered) is
 * refused: re-initializing it would orphan its child and leak its memory.
 * Any other value in p->rt (zeros, stack garbage) is overwritten unread. */
int sk_init(sk_process *p, const sk_class *cls)
{
    if (p == NULL || cls == NULL || cls->run == NULL)
        return sk_refuse(SK_EINVAL, "sk_init: %s",
                         p == NULL     ? "the handle is NULL"
                         : cls == NULL ? "the class is NULL"
                                       : "the class has no run hook");
    if (registry_holds(p->rt))
        return sk_refuse(SK_ESTATE,
                         "sk_init: the handle is already initialized%s; "
                         "sk_release it first",
                         p->rt->started && !p->rt->finished ? " and its process runs" : "");
    sk_resolve_child_calls();
    struct sk_runtime *rt = calloc(1, sizeof *rt);
    if (rt == NULL)
        return SK_ENOMEM;
    if (registry_add(rt) != SK_OK) {
        free(rt);
        return SK_ENOMEM;
    }
    runtime_fresh(rt);
    p->cls = cls;
    memset(&p->config, 0, sizeof p->config);
    p->config.lives = 1;
    p->rt = rt;
    sk_handle_seal(p);
    return SK_OK;
}

/* Every value that cannot mean anything is refused, with the field named,
 * before anything is created or forked. Infinities mean something: +inf
 * seconds is "never", -inf is "zero or lower" (the default). NaN does not. */
static int config_check(const sk_config *c)
{
    if (isnan(c->join_in))
        return sk_refuse(SK_EINVAL, "config.join_in is NaN");
    if (isnan(c->spin))
        return sk_refuse(SK_EINVAL, "config.spin is NaN");
    for (int s = 0; s < SK_FULL_RUN; s++) {
        double t = *sk_config_timeout_field((sk_config *)c, (sk_section)s);
        if (isnan(t))
            return sk_refuse(SK_EINVAL, "config.timeouts.%s is NaN",
                             sk_section_name((sk_section)s));
    }
    if (c->capacity > SK_MAX_CAPACITY)
        return sk_refuse(SK_EINVAL, "config.capacity is %zu bytes, over SK_MAX_CAPACITY (%zu)",
                         c->capacity, SK_MAX_CAPACITY);
    if (c->max_message > SK_MAX_MAX_MESSAGE)
        return sk_refuse(SK_EINVAL,
                         "config.max_message is %zu bytes, over SK_MAX_MAX_MESSAGE (%zu)",
                         c->max_message, SK_MAX_MAX_MESSAGE);
    return SK_OK;
}

/* Zero or lower means the default, for every field. */
static sk_config config_normalize(sk_config c)
{
    if (c.runs < 0)
        c.runs = 0;
    if (!(c.join_in > 0))
        c.join_in = 0;
    if (c.lives <= 0)
        c.lives = 1;
    for (int s = 0; s < SK_FULL_RUN; s++) {
        double *t = sk_config_timeout_field(&c, (sk_section)s);
        if (!(*t > 0))
            *t = 0;
    }
    if (c.capacity == 0)
        c.capacity = SK_DEFAULT_CAPACITY;
    if (c.max_message == 0)
        c.max_message = SK_DEFAULT_MAX_MESSAGE;
    c.spin = sk_spin_seconds(c.spin, c.no_spin, SK_DEFAULT_SPIN, SK_MAX_SPIN);
    return c;
}

/* The memfd behind everything the three parties share:
 *   [status page][ring to parent][ring to worker][result image]
 * Only the pages that get written take memory. */
static int shared_create(struct sk_runtime *rt)
{
    size_t status = sk_page_round(sizeof(struct sk_shared));
    size_t rings = sk_channel_span(rt->config.capacity, rt->config.max_message);
    if (rings == 0 || rings > SIZE_MAX - status)
        return SK_EINVAL;
    rt->map_size = status + rings;
    rt->result_offset = rt->map_size;
    void *base;
    if (sk_shm_create("skproc", rt->map_size, false, &rt->memfd, &base) != 0)
        return errno == ENOMEM ? SK_ENOMEM : SK_ESYS;
    struct sk_shared *sh = base;
    rt->sh = sh;
    /* A fresh memfd reads as zeros, and a zeroed timer is an empty one:
     * nothing to initialize, and no page of a timer is touched until its
     * hook runs. */
    sh->start_ns = sk_now_ns();
    sk_channel_init(rt, (char *)base + status, status, rt->config.capacity, rt->config.max_message);
    return SK_OK;
}

/*
 * Every initialized handle of this process. A child (supervisor or worker)
 * is a fork of the parent, so without this it would keep every other
 * handle's mapping (about capacity + 2 x max_message of address space each)
 * and descriptors alive,
 * and hand them on to its workers. The registry lock is held across the
 * fork so that the child's copy of the list is whole.
 */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sk_runtime **registry;
static size_t registry_len, registry_cap;

static int registry_add_locked(struct sk_runtime *rt)
{
    if (registry_len == registry_cap) {
        size_t cap = registry_cap ? 2 * registry_cap : 16;
        struct sk_runtime **grown = realloc(registry, cap * sizeof *grown);
        if (grown == NULL)
            return SK_ENOMEM;
        registry = grown;
        registry_cap = cap;
    }
    registry[registry_len++] = rt;
    return SK_OK;
}

static int registry_add(struct sk_runtime *rt)
{
    pthread_mutex_lock(&registry_lock);
    int rc = registry_add_locked(rt);
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

static bool registry_holds(const struct sk_runtime *rt)
{
    bool found = false;
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < registry_len && !found; i++)
        found = registry[i] == rt;
    pthread_mutex_unlock(&registry_lock);
    return rt != NULL && found;
}

/* With the registry lock held. */
static void registry_remove(struct sk_runtime *rt)
{
    for (size_t i = 0; i < registry_len; i++) {
        if (registry[i] == rt) {
            registry[i] = registry[--registry_len];
            break;
        }
    }
}

/* Lets go of the mapping and the fds. Under the registry lock: a fork in
 * another thread then sees either all of them or none, so that the child
 * never unmaps or closes, through this handle's stale fields, a mapping or
 * an fd number that another handle got in the meantime. */
static void shared_destroy(struct sk_runtime *rt)
{
    pthread_mutex_lock(&registry_lock);
    if (rt->sh != NULL)
        munmap(rt->sh, rt->map_size);
    rt->sh = NULL;
    sk_channel_forget(rt);
    sk_fd_close(&rt->memfd);
    sk_fd_close(&rt->doorbell);
    sk_fd_close(&rt->msg_doorbell);
    sk_fd_close(&rt->worker_doorbell);
    sk_fd_close(&rt->event_doorbell);
    sk_fd_close(&rt->ready_doorbell);
    sk_fd_close(&rt->epoll_fd);
    sk_fd_close(&rt->epoll_pidfd);
    sk_fd_close(&rt->child_pidfd);
    pthread_mutex_unlock(&registry_lock);
    free(rt->result_image);
    rt->result_image = NULL;
    free(rt->event_copy);
    rt->event_copy = NULL;
}

/* In a new child (single-threaded, the lock copied as held): every
 * handle but ours becomes inert and lets go of its memory and fds. */
static void registry_drop_others(struct sk_runtime *mine)
{
    pthread_mutex_init(&registry_lock, NULL);
    for (size_t i = 0; i < registry_len; i++) {
        struct sk_runtime *rt = registry[i];
        if (rt == mine)
            continue;
        if (rt->sh != NULL)
            munmap(rt->sh, rt->map_size);
        rt->sh = NULL;
        sk_channel_forget(rt);
        int *fds[] = {&rt->memfd,           &rt->doorbell,       &rt->msg_doorbell,
                      &rt->worker_doorbell, &rt->child_pidfd,    &rt->epoll_fd,
                      &rt->epoll_pidfd,     &rt->event_doorbell, &rt->ready_doorbell};
        for (size_t k = 0; k < sizeof fds / sizeof fds[0]; k++)
            sk_fd_close(fds[k]);
        sk_spawn_forget(rt); /* a pipe held here would keep its program from EOF */
        rt->role = SK_ROLE_INHERITED;
    }
    registry[0] = mine;
    registry_len = 1;
}

static int start_failed(struct sk_runtime *rt, int code)
{
    int saved = errno;
    shared_destroy(rt);
    errno = saved;
    return code;
}

/* A supervisor is needed only for what the parent cannot do when it is
 * busy elsewhere: deadlines, restarts, and the error hook after a hard
 * fault (which runs in a fresh fork of the state at start). Without those,
 * the parent forks the worker itself, and start costs one fork, not two. */
static bool needs_supervisor(const sk_class *cls, const sk_config *c,
                             const struct sigaction *sigchld)
{
    /* With SIGCHLD ignored the kernel discards a dead child's status: only
     * a supervisor (which resets SIGCHLD for itself) could tell the crash. */
    if (sigchld->sa_handler == SIG_IGN || (sigchld->sa_flags & SA_NOCLDWAIT))
        return true;
    if (c->supervise || c->lives > 1 || c->join_in > 0 || cls->error != NULL)
        return true;
    for (int s = 0; s < SK_FULL_RUN; s++)
        if (sk_config_timeout(c, (sk_section)s) > 0)
            return true;
    return false;
}

void sk_process_fault_item(sk_process *p, long (*fn)(void *ctx), void *ctx)
{
    if (!sk_handle_sealed(p) || p->rt->started)
        return;
    p->rt->fault_item = fn;
    p->rt->fault_item_ctx = ctx;
}

int sk_start(sk_process *p)
{
    int rc = sk_handle_check_parent(p, "sk_start");
    if (rc != SK_OK)
        return rc;
    if (p->cls == NULL || p->cls->run == NULL)
        return sk_refuse(SK_EINVAL, "sk_start: the class %s",
                         p->cls == NULL ? "is NULL" : "has no run hook");
    struct sk_runtime *rt = p->rt;
    if (rt->started)
        return sk_refuse(SK_ESTATE, "sk_start: already started; sk_release and sk_init the "
                                    "handle to start it again");
    rc = config_check(&p->config);
    if (rc != SK_OK)
        return rc;
    rt->config = config_normalize(p->config);
    rc = sk_ready_settle(rt);
    if (rc != SK_OK)
        return rc;
    if (rt->spawn != NULL) {
        /* A program never uses the channel: the smallest rings, so that
         * the mapping made and unmapped per spawn is a few pages, not the
         * default 130 MiB of address space. */
        rt->config.capacity = 4096;
        rt->config.max_message = 4096;
    }
    rt->msg_doorbell = sk_doorbell_create();
    rt->worker_doorbell = sk_doorbell_create();
    if (rt->msg_doorbell < 0 || rt->worker_doorbell < 0)
        return start_failed(rt, SK_ESYS);
    rc = shared_create(rt);
    if (rc != SK_OK)
        return start_failed(rt, rc);
    sigaction(SIGCHLD, NULL, &rt->user_sigchld);
    rt->supervised = needs_supervisor(p->cls, &rt->config, &rt->user_sigchld);
    if (rt->supervised && (rt->doorbell = sk_doorbell_create()) < 0)
        return start_failed(rt, SK_ESYS);
    if (rt->config.on_event != NULL && (rt->event_doorbell = sk_doorbell_create()) < 0)
        return start_failed(rt, SK_ESYS);
    if (sk_ready_prepare(rt) != SK_OK)
        return start_failed(rt, SK_ESYS);
    sigprocmask(SIG_SETMASK, NULL, &rt->user_sigmask);
    sigaction(SIGCHLD, NULL, &rt->user_sigchld);
    rt->parent_pid = getpid();

    /* Whatever the parent has buffered would otherwise be written again by
     * the worker when it flushes its own output. A program exec'd at once
     * flushes nothing of ours. */
    bool fast_spawn = rt->spawn != NULL && !rt->supervised;
    if (!fast_spawn)
        fflush(NULL);
    pthread_mutex_lock(&registry_lock);
    /* A program's pipes and files are made under the lock: a fork of
     * another handle in another thread then either comes before them or
     * sees them in the registry and closes them (registry_drop_others). */
    if (rt->spawn != NULL) {
        atomic_store(&rt->sh->spawn_status, -1000);
        rc = sk_spawn_prepare(rt);
        if (rc != SK_OK) {
            pthread_mutex_unlock(&registry_lock);
            return start_failed(rt, rc);
        }
    }
    pid_t pid;
    if (fast_spawn) {
        pid = sk_spawn_fast(rt);
    } else {
        pid = fork();
        if (pid == 0) {
            setpgid(0, 0); /* the process's own group: its whole tree, for kill(-pid) */
            registry_drop_others(rt);
            if (rt->supervised) {
                sk_spawn_in_supervisor(rt);
                sk_supervisor_main(p);
            }
            sk_worker_main(p, rt->parent_pid, SK_ENGINE_LOOP);
        }
    }
    int fork_errno = errno;
    sk_spawn_after_fork(rt);
    pthread_mutex_unlock(&registry_lock);
    if (pid < 0) {
        sk_spawn_forget(rt);
        return start_failed(rt, fork_errno == ENOMEM ? SK_ENOMEM : SK_ESYS);
    }
    rt->child_pid = pid;
    /* Also here, so that it holds before fork returns on either side; a
     * program started by clone(CLONE_VFORK) has set it before we return. */
    if (!fast_spawn)
        setpgid(pid, pid);
    /* Without pidfds (valgrind, some seccomp profiles) waits poll instead. */
    rt->child_pidfd = sk_pidfd_open(pid);
    rt->started = true;
    sk_ready_started(rt);
    if (!rt->supervised)
        rt->event_pid = pid;
    if (rt->config.on_event != NULL && rt->supervised)
        sk_events_await_start(rt); /* the worker's START, with its pid */
    else
        sk_event_emit(rt, SK_EVENT_START, pid, SK_NO_SECTION, 0, NULL);
    return SK_OK;
}

/* A count of attempts: within 1 and the lives the process had, for a
 * process that failed in one of them (the worker can write any count). */
static int lives_clamp(const struct sk_runtime *rt, long used)
{
    return used < 1 ? 1 : used > rt->config.lives ? rt->config.lives : (int)used;
}

/* The attempts of a process that failed without saying so: those the
 * status page counts as failed, and the one in progress. */
static int attempts_spent(const struct sk_runtime *rt)
{
    return lives_clamp(rt, (long)atomic_load(&rt->sh->lives_used) + 1);
}

/* An unsupervised worker died before finishing: the hard fault the
 * supervisor would have recorded (with lives = 1 there is no restart). */
static void worker_fault(struct sk_runtime *rt, int status, bool reaped)
{
    struct sk_shared *sh = rt->sh;
    int section = atomic_load(&sh->section);
    bool in_section = atomic_load(&sh->seq) & 1;
    long run = atomic_load(&sh->current_run);
    if (reaped && WIFSIGNALED(status))
        sk_error_set_crash(&rt->error, (sk_section)section, in_section, run, WTERMSIG(status), 0);
    else if (reaped)
        sk_error_set_crash(&rt->error, (sk_section)section, in_section, run, 0,
                           WEXITSTATUS(status));
    else
        sk_error_set_internal(&rt->error, SK_PROCESS_ERROR, (sk_section)section, run, SK_ESYS,
                              "the worker ended before finishing and its exit status was taken "
                              "(SIGCHLD set to SIG_IGN)");
    rt->error.lives_spent = attempts_spent(rt);
    sk_error_sanitize(&rt->error); /* the section came from the status page */
    rt->has_error = true;
    sk_ready_check(rt); /* what the worker logged came first */
    sk_event_emit(rt, SK_EVENT_CRASH, rt->event_pid, rt->error.section, rt->error.run, &rt->error);
}

/* After the child is reaped: what became of the process. */
static void process_outcome(struct sk_runtime *rt, int status, bool reaped)
{
    if (rt->killed)
        return;
    struct sk_shared *sh = rt->sh;
    if (sh->outcome == SK_OUTCOME_FAILED) {
        rt->error = sh->error;
        sk_error_sanitize(&rt->error); /* the worker could write it */
        rt->error.lives_spent = lives_clamp(rt, rt->error.lives_spent);
        rt->has_error = true;
    } else if (rt->spawn != NULL && !rt->supervised) {
        sk_spawn_outcome(rt, status, reaped);
    } else if (sh->outcome == SK_OUTCOME_NONE && !rt->supervised) {
        worker_fault(rt, status, reaped);
    } else if (sh->outcome == SK_OUTCOME_NONE) {
        /* The supervisor itself was ended from outside; the group kill in
         * child_reap ended its worker. */
        char cause[128];
        if (reaped && WIFSIGNALED(status))
            snprintf(cause, sizeof cause, "the supervisor was ended by signal %d (%s)",
                     WTERMSIG(status), strsignal(WTERMSIG(status)));
        else if (reaped)
            snprintf(cause, sizeof cause, "the supervisor exited with status %d",
                     WEXITSTATUS(status));
        else
            snprintf(cause, sizeof cause, "the supervisor ended and could not be reaped");
        sk_error_set_internal(&rt->error, SK_PROCESS_ERROR, SK_NO_SECTION,
                              atomic_load(&sh->current_run), SK_ESYS, cause);
        rt->error.lives_spent = attempts_spent(rt);
        rt->has_error = true;
    } else if (sh->outcome != SK_OUTCOME_OK) {
        sk_error_set_internal(&rt->error, SK_PROCESS_ERROR, SK_NO_SECTION,
                              atomic_load(&sh->current_run), SK_ECORRUPT,
                              "the status page says no outcome skproc writes: it is corrupt");
        rt->error.lives_spent = attempts_spent(rt);
        rt->has_error = true;
    }
    if (rt->has_error)
        sk_error_sanitize(&rt->error); /* parts of it come from the status page */
}

/* After the child is reaped: the outcome, the recoveries, and FINISH. */
static void process_finalize(struct sk_runtime *rt, int status, bool reaped)
{
    rt->finished = true;
    sk_fd_close(&rt->child_pidfd);
    sk_channel_close_to_parent(rt);
    sk_ready_check(rt); /* a ready line or flag left behind comes before the end */
    process_outcome(rt, status, reaped);
    sk_recovery_copy(rt);
    sk_events_finish(rt);
}

/* Reaps the child (supervisor or worker). First everything left in its
 * process group is ended: the child is still unreaped, so its pid, which is
 * the group's id, cannot name anyone else's group. ECHILD happens when the
 * user set SIGCHLD to SIG_IGN: the kernel reaped it for us and the status
 * page still says what happened. */
static void child_reap(struct sk_runtime *rt)
{
    int status = 0;
    pid_t r;
    kill(-rt->child_pid, SIGKILL);
    while ((r = waitpid(rt->child_pid, &status, 0)) < 0 && errno == EINTR)
        ;
    process_finalize(rt, status, r == rt->child_pid);
}

static bool parent_handle(const sk_process *p)
{
    return sk_handle_sealed(p) && p->rt->role == SK_ROLE_PARENT;
}

/* The child (supervisor or worker) has exited, reaped or not. */
static bool child_exited(const struct sk_runtime *rt)
{
    return rt->finished || (rt->started && sk_pid_exited(rt->child_pid));
}

/* Waits until the child has exited (not reaping it) or the deadline
 * (INT64_MAX: none) passes. */
static bool child_wait_exit(struct sk_runtime *rt, int64_t deadline)
{
    return rt->finished || sk_pid_wait_exit(rt->child_pid, rt->child_pidfd, deadline);
}

int sk_wait(sk_process *p, double timeout)
{
    int rc = sk_handle_check_parent(p, "sk_wait");
    if (rc != SK_OK)
        return rc;
    struct sk_runtime *rt = p->rt;
    if (!rt->started || rt->finished)
        return SK_OK;
    int64_t deadline = sk_deadline_ns(timeout);
    /* With on_event, what the worker and the supervisor log rings the event
     * doorbell: delivered as it happens, not only at the end. Readiness
     * too, and a program's ready pipe is emptied meanwhile, so that a
     * program writing there never blocks while we wait for it. */
    for (;;) {
        if (rt->event_doorbell >= 0)
            sk_doorbell_drain(rt->event_doorbell);
        sk_ready_check(rt);
        bool woken = false;
        if (sk_pid_wait_exit_or(rt->child_pid, rt->child_pidfd, rt->event_doorbell,
                                sk_ready_wake_fd(rt), deadline, &woken))
            break;
        if (!woken) {
            sk_ready_check(rt);
            return SK_ETIMEDOUT;
        }
    }
    child_reap(rt);
    return SK_OK;
}

/* Why a process that finished was never ready. */
static int never_ready(const struct sk_runtime *rt)
{
    if (rt->killed)
        return SK_EKILLED;
    return rt->has_error ? SK_EPROCESS : SK_ECLOSED;
}

/* As sk_wait, but it returns as soon as the process is ready too: each
 * round looks (which delivers the events), reaps a child that exited (the
 * look after the reap still finds a readiness it left behind), then sleeps
 * on the ready fd, the event doorbell and the child's pidfd. */
int sk_wait_ready(sk_process *p, double timeout)
{
    int rc = sk_handle_check_parent(p, "sk_wait_ready");
    if (rc != SK_OK)
        return rc;
    struct sk_runtime *rt = p->rt;
    if (!rt->started)
        return sk_refuse(SK_ESTATE, "sk_wait_ready: the process is not started");
    int64_t deadline = sk_deadline_ns(timeout);
    for (;;) {
        if (rt->event_doorbell >= 0)
            sk_doorbell_drain(rt->event_doorbell);
        if (sk_ready_check(rt))
            return SK_OK;
        if (rt->finished)
            return never_ready(rt);
        bool woken = false;
        if (sk_pid_wait_exit_or(rt->child_pid, rt->child_pidfd, rt->event_doorbell,
                                sk_ready_wake_fd(rt), deadline, &woken)) {
            child_reap(rt);
            continue;
        }
        if (!woken)
            return sk_ready_check(rt) ? SK_OK : SK_ETIMEDOUT;
    }
}

int sk_stop(sk_process *p)
{
    int rc = sk_handle_check(p, "sk_stop");
    if (rc != SK_OK)
        return rc;
    if (p->rt->sh == NULL)
        return sk_refuse(SK_ESTATE, "sk_stop: not started");
    atomic_store(&p->rt->sh->stop, 1);
    if (p->rt->spawn != NULL && p->rt->role == SK_ROLE_PARENT) {
        /* A program is asked with SIGTERM: by us when it is our own child
         * (unreaped, so its pid is still its), else by its supervisor. */
        if (!p->rt->supervised && !p->rt->finished)
            sk_spawn_stop(p->rt, p->rt->child_pid);
        else if (p->rt->supervised && p->rt->doorbell >= 0)
            sk_doorbell_ring(p->rt->doorbell);
        return SK_OK;
    }
    sk_channel_wake_worker(p->rt); /* a worker blocked in sk_listen returns */
    return SK_OK;
}

/* The supervisor is asked to kill and reap its worker and exit: it is the
 * only one that knows whether it is about to fork a new worker, and it ends
 * the worker's whole tree. If it does not answer within a second (stopped,
 * or wedged), its process group is killed from here. The parent never kills
 * a pid it read from the status page: the worker could have written any. */
int sk_kill(sk_process *p)
{
    int rc = sk_handle_check_parent(p, "sk_kill");
    if (rc != SK_OK)
        return rc;
    struct sk_runtime *rt = p->rt;
    if (!rt->started)
        return sk_refuse(SK_ESTATE, "sk_kill: not started");
    if (rt->finished)
        return SK_OK;
    if (child_exited(rt)) { /* it finished on its own: not a kill */
        child_reap(rt);
        return SK_OK;
    }
    if (rt->config.on_event != NULL) {
        sk_ready_check(rt);
        pid_t worker = sk_pid(p);
        sk_event_emit(rt, SK_EVENT_KILL, worker > 0 ? worker : rt->event_pid, SK_NO_SECTION,
                      atomic_load(&rt->sh->current_run), NULL);
    }
    rt->killed = true;
    if (!rt->supervised) { /* the worker is our own unreaped child; child_reap ends its group */
        child_reap(rt);
        return SK_OK;
    }
    atomic_store(&rt->sh->kill_requested, 1);
    uint64_t one = 1;
    ssize_t n = write(rt->doorbell, &one, sizeof one);
    (void)n;
    /* If it does not answer, child_reap's group kill ends it, its worker and
     * everything in their group. */
    child_wait_exit(rt, sk_now_ns() + SK_NS_PER_SEC);
    child_reap(rt);
    return SK_OK;
}

void sk_release(sk_process *p)
{
    if (!sk_handle_sealed(p))
        return;
    struct sk_runtime *rt = p->rt;
    if (rt->role != SK_ROLE_PARENT)
        return; /* a worker's copy of the handle dies with the worker */
    if (rt->started && !rt->finished)
        sk_kill(p);
    shared_destroy(rt);
    /* A program's pipes close under the lock too (see shared_destroy), and
     * the runtime leaves the registry before a fork could see it half gone. */
    pthread_mutex_lock(&registry_lock);
    sk_spawn_free(rt);
    registry_remove(rt);
    pthread_mutex_unlock(&registry_lock);
    free(rt);
    p->rt = NULL;
    sk_handle_unseal(p);
}

/* Everything of the run goes; what the handle was made with stays: the
 * class, p->config as the user set it (never touched here), a program's
 * plan and a pool's fault_item. The fds are let go of under the registry
 * lock (shared_destroy, then the rest), as everywhere: a fork in another
 * thread sees each of them open and named, or gone. */
int sk_process_rearm(sk_process *p)
{
    int rc = sk_handle_check_parent(p, "sk_process_rearm");
    if (rc != SK_OK)
        return rc;
    struct sk_runtime *rt = p->rt;
    if (rt->started && !rt->finished)
        return sk_refuse(SK_ESTATE, "sk_process_rearm: the process still runs; sk_wait until it "
                                    "ended, or sk_kill it, first");
    shared_destroy(rt);
    struct sk_spawn *spawn = rt->spawn;
    long (*fault_item)(void *ctx) = rt->fault_item;
    void *fault_item_ctx = rt->fault_item_ctx;
    pthread_mutex_lock(&registry_lock);
    if (spawn != NULL)
        sk_spawn_rearm(rt);
    memset(rt, 0, sizeof *rt);
    runtime_fresh(rt);
    sk_channel_forget(rt);
    rt->spawn = spawn;
    rt->fault_item = fault_item;
    rt->fault_item_ctx = fault_item_ctx;
    pthread_mutex_unlock(&registry_lock);
    return SK_OK;
}

bool sk_alive(const sk_process *p)
{
    if (!sk_handle_sealed(p))
        return false;
    struct sk_runtime *rt = p->rt;
    if (rt->role != SK_ROLE_PARENT)
        return rt->role == SK_ROLE_WORKER;
    if (rt->started && !rt->finished)
        sk_ready_check(rt);
    return rt->started && !rt->finished && !child_exited(rt);
}

long sk_current_run(const sk_process *p)
{
    if (!sk_handle_sealed(p) || p->rt->sh == NULL)
        return 0;
    return atomic_load_explicit(&p->rt->sh->current_run, memory_order_relaxed);
}

pid_t sk_pid(const sk_process *p)
{
    if (!sk_handle_sealed(p) || p->rt->sh == NULL)
        return -1;
    if (p->rt->role == SK_ROLE_WORKER)
        return getpid();
    if (p->rt->finished)
        return -1;
    if (p->rt->spawn != NULL && !p->rt->supervised)
        return p->rt->child_pid; /* the program itself, our own unreaped child */
    /* Written by the supervisor, or by the worker itself: believed only
     * when it names a process of this process's group. */
    pid_t worker = atomic_load(&p->rt->sh->worker_pid);
    /* A supervised program may be in a session of its own (new_session);
     * its worker_pid was written by skproc's code alone (the supervisor,
     * the worker before exec; the program has no mapping), so it is
     * believed as it is. */
    if (p->rt->spawn != NULL)
        return worker > 0 ? worker : -1;
    if (worker <= 0 || (worker != p->rt->child_pid && getpgid(worker) != p->rt->child_pid))
        return -1;
    return worker;
}

int sk_process_pidfd(const sk_process *p)
{
    if (!sk_handle_sealed(p) || p->rt == NULL)
        return -1;
    return p->rt->child_pidfd;
}

const sk_error *sk_error_of(const sk_process *p)
{
    if (!sk_handle_sealed(p))
        return NULL;
    const struct sk_runtime *rt = p->rt;
    if (rt->role == SK_ROLE_WORKER)
        return rt->hook_section == SK_ERROR ? &rt->sh->error : NULL;
    return parent_handle(p) && rt->finished && rt->has_error ? &rt->error : NULL;
}

const sk_timer *sk_timer_of(const sk_process *p, sk_section s)
{
    if (!sk_handle_sealed(p) || p->rt->sh == NULL || (unsigned)s >= SK_SECTION_COUNT)
        return NULL;
    if (s != SK_FULL_RUN && sk_class_hook(p->cls, s) == NULL)
        return NULL;
    return &p->rt->sh->timers[s];
}

void sk_process_set_tag(sk_process *p, void *tag)
{
    if (sk_handle_sealed(p))
        p->rt->tag = tag;
}

void *sk_process_tag(const sk_process *p)
{
    return sk_handle_sealed(p) ? p->rt->tag : NULL;
}

bool sk_process_stop_asked(const sk_process *self)
{
    if (!sk_handle_sealed(self) || self->rt->role != SK_ROLE_WORKER || self->rt->sh == NULL)
        return false;
    return atomic_load_explicit(&self->rt->sh->stop, memory_order_relaxed) != 0;
}
