/* SPDX-License-Identifier: MIT */
/*
 * One run of a task in its mode, and what the task's code calls.
 *
 *   main     fn runs in the session's thread, inside sk_sched_step: nothing
 *            can end it; sk_task_stopping turns true at its timeout or a
 *            shutdown request, and a run that returns after its timeout
 *            is logged terminated
 *   thread   fn runs in a thread of its own; it can only be asked
 *            (sk_task_stopping). When it does not return within kill_after
 *            the session reports it (on_run, outcome still RUNNING, with
 *            an error saying so) and logs it terminated when it returns;
 *            at shutdown, past the grace, it is logged terminated and left
 *            to its thread, which frees the run when fn returns
 *   process  an skproc process with a supervisor (config.supervise), so
 *            that its whole tree ends with it: a function task's own
 *            process of the class below (runs = 1, fn called once in the
 *            run hook, its sk_task_return value published as the process's
 *            result, its timeout the run hook's, enforced by the
 *            supervisor), or a process-class task's own handle, rearmed
 *            before each run as a group rearms its children. Ended by
 *            sk_stop, then sk_kill (whole tree) after the bound
 *
 * The run's outcome from what ended it:
 *   the session asked it to stop (end condition, timeout, shutdown)
 *                                   TERMINATED, the session's error (the
 *                                   code's own error in its cause)
 *   a function task's process timed out (its run hook's timeout)
 *                                   TERMINATED, the core's timeout error
 *   a function returned non-zero    FAILED, a RunError with that code
 *   a process failed (hook error, crash, lives spent)
 *                                   FAILED, the process's typed error
 *   anything else                   SUCCEEDED, with the value returned
 */
#include "codec/message.h"
#include "core/error.h"
#include "core/process.h"
#include "core/result.h"
#include "os/clock.h"
#include "os/fd.h"
#include "sched/session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --------------------------------------- the process of a function task */

static int task_process_run(sk_process *self)
{
    struct task_process *tp = SK_CONTAINER_OF(self, struct task_process, base);
    sk_task_run *r = tp->run;
    /* The timeout from here, for sk_task_stopping: a prefork (warm.c)
     * forked this copy of the run before its start was known. */
    r->deadline_mono = r->task->timeout > 0 ? sk_now_ns() + sk_seconds_to_ns(r->task->timeout) : 0;
    int rc = r->fn(r, r->arg);
    if (rc != 0)
        return sk_fail(self, rc, "task '%.200s' returned %d", r->name, rc);
    return 0;
}

static const sk_class task_process_class = {.name = "skproc-task", .run = task_process_run};

/* Starts r's process; held_until > 0: forked, but waiting for
 * sk_run_release, expected then (CLOCK_MONOTONIC ns). */
static int launch_process(sk_task_run *r, const struct sched_task *t, int64_t held_until,
                          sk_error *why)
{
    sk_process *p;
    int rc;
    if (t->process != NULL) {
        p = t->process;
        rc = sk_process_rearm(p); /* what the previous run left goes; the class and config stay */
    } else {
        r->own = calloc(1, sizeof *r->own);
        if (r->own == NULL) {
            sk_run_error(why, SK_PROCESS_ERROR, SK_ENOMEM,
                         "Task '%.200s' was not started: out of memory", r->name);
            return SK_ENOMEM;
        }
        r->own->run = r;
        p = &r->own->base;
        rc = sk_init(p, &task_process_class);
        if (rc == SK_OK) {
            p->config.runs = 1;
            p->config.timeouts.run = t->timeout;
        }
    }
    if (rc == SK_OK) {
        p->config.supervise = true; /* the run's whole tree ends with it */
        sk_process_set_tag(p, r);
        r->proc = p; /* before the fork: the child's copy of the run has it */
        rc = held_until > 0 ? sk_start_held(p, held_until) : sk_start(p);
    }
    if (rc != SK_OK) {
        r->proc = NULL;
        sk_run_error(why, SK_PROCESS_ERROR, rc, "Task '%.200s' was not started: %s", r->name,
                     *sk_last_error_message() ? sk_last_error_message() : sk_strerror(rc));
        sk_process_set_tag(p, NULL);
        if (r->own != NULL) {
            sk_release(&r->own->base);
            free(r->own);
            r->own = NULL;
        }
        return rc;
    }
    return SK_OK;
}

/* ------------------------------------------------------ a thread run */

static void *thread_main(void *arg)
{
    sk_task_run *r = arg;
    int rc = r->fn(r, r->arg);
    atomic_store(&r->thread_end, sk_now_ns());
    pthread_mutex_lock(&r->orphan_lock);
    r->rc = rc;
    bool orphan = r->orphan;
    if (!orphan) {
        atomic_store_explicit(&r->done, true, memory_order_release);
        sk_doorbell_ring(r->wake_fd);
    }
    pthread_mutex_unlock(&r->orphan_lock);
    if (orphan) /* the session let go of it: nobody else will free it */
        sk_run_free(r);
    return NULL;
}

static int launch_thread(sk_sched *s, sk_task_run *r, sk_error *why)
{
    r->wake_fd = s->wake_fd;
    int err = pthread_mutex_init(&r->orphan_lock, NULL);
    if (err == 0) {
        r->has_lock = true;
        err = pthread_create(&r->thread, NULL, thread_main, r);
    }
    if (err != 0) {
        int rc = err == EAGAIN || err == ENOMEM ? SK_ENOMEM : SK_ESYS;
        sk_run_error(why, SK_PROCESS_ERROR, rc, "Task '%.200s' was not started: no thread (%s)",
                     r->name, strerror(err));
        return rc;
    }
    r->has_thread = true;
    return SK_OK;
}

/* -------------------------------------------------------- the session */

sk_task_run *sk_run_new(struct sched_task *t)
{
    sk_task_run *r = calloc(1, sizeof *r);
    if (r == NULL || (r->name = strdup(t->name)) == NULL) {
        free(r);
        return NULL;
    }
    r->task = t;
    r->fn = t->fn;
    r->arg = t->arg;
    r->mode = t->mode;
    r->owner_pid = getpid();
    r->watch_fd = -1;
    r->state = RUN_STARTING;
    return r;
}

int sk_run_launch(sk_sched *s, sk_task_run *r, sk_error *why)
{
    const struct sched_task *t = r->task;
    int rc = SK_OK;
    switch (r->mode) {
    case SK_TASK_MAIN:
        r->shutdown_flag = &s->shutdown_asked;
        r->state = RUN_RUNNING;
        r->rc = r->fn(r, r->arg);
        atomic_store(&r->thread_end, sk_now_ns());
        atomic_store(&r->done, true);
        return SK_OK;
    case SK_TASK_THREAD:
        rc = launch_thread(s, r, why);
        break;
    case SK_TASK_PROCESS:
        rc = launch_process(r, t, 0, why);
        if (rc == SK_OK)
            sk_wait_watch(s, r, sk_process_pidfd(r->proc));
        break;
    }
    if (rc == SK_OK)
        r->state = RUN_RUNNING;
    return rc;
}

int sk_run_launch_held(sk_task_run *r, int64_t release_at, sk_error *why)
{
    return launch_process(r, r->task, release_at > 0 ? release_at : 1, why);
}

int sk_run_release(sk_sched *s, sk_task_run *r)
{
    int rc = sk_start_release(r->proc);
    if (rc != SK_OK)
        return rc;
    sk_wait_watch(s, r, sk_process_pidfd(r->proc));
    r->state = RUN_RUNNING;
    return SK_OK;
}

void sk_run_unlaunch(sk_task_run *r)
{
    if (r->proc == NULL)
        return;
    sk_kill(r->proc); /* its whole tree, reaped */
    sk_process_set_tag(r->proc, NULL);
    if (r->own != NULL) {
        sk_release(&r->own->base);
        free(r->own);
        r->own = NULL;
    }
    r->proc = NULL;
}

bool sk_run_has_ended(sk_task_run *r)
{
    if (r->mode != SK_TASK_PROCESS)
        return atomic_load_explicit(&r->done, memory_order_acquire);
    if (!r->exited && r->watch_fd < 0)
        r->exited = !sk_alive(r->proc);
    return r->exited;
}

void sk_run_ask_stop(sk_task_run *r, enum run_stop why, double bound)
{
    int64_t kill_at = sk_now_ns() + sk_seconds_to_ns(bound);
    if (r->state == RUN_STOPPING) { /* asked already: a shutdown shortens the bound */
        if (kill_at < r->kill_mono)
            r->kill_mono = kill_at;
        return;
    }
    if (r->state == RUN_KILLED) { /* a thread reported overdue: the shutdown's bound */
        r->kill_mono = kill_at;
        return;
    }
    if (r->state != RUN_RUNNING)
        return;
    r->stop = why;
    r->state = RUN_STOPPING;
    r->kill_mono = kill_at;
    atomic_store(&r->stopping, true);
    if (r->mode == SK_TASK_PROCESS)
        sk_stop(r->proc); /* ends the loop after the hook in progress */
}

void sk_run_kill(sk_sched *s, sk_task_run *r)
{
    (void)s;
    r->state = RUN_KILLED;
    if (r->mode == SK_TASK_PROCESS) {
        sk_kill(r->proc); /* the supervisor ends the whole tree; reaped */
        r->exited = true;
        return;
    }
    /* A thread cannot be killed: what the session reports meanwhile. */
    sk_run_error_stopped(&r->error, r->name, r->stop, r->task->timeout, NULL);
    snprintf(r->error.cause, sizeof r->error.cause,
             "the thread did not return within %gs of the stop request; it still runs",
             r->task->kill_after);
    r->has_error = true;
}

/* The outcome of a main or thread run. */
static void collect_function(sk_task_run *r)
{
    int64_t end = atomic_load(&r->thread_end);
    if (r->stop == STOP_NONE && r->deadline_mono != 0 && end > r->deadline_mono)
        r->stop = STOP_TIMEOUT; /* it returned, but after its timeout */
    if (r->stop != STOP_NONE) {
        r->outcome = SK_RUN_TERMINATED;
        sk_run_error_stopped(&r->error, r->name, r->stop, r->task->timeout, NULL);
        snprintf(r->error.cause, sizeof r->error.cause,
                 "the function returned %d, %.3fs after it started", r->rc,
                 (double)(end - r->start_mono) / 1e9);
        r->has_error = true;
    } else if (r->rc != 0) {
        r->outcome = SK_RUN_FAILED;
        sk_run_error(&r->error, SK_RUN_ERROR, SK_EPROCESS, "Error in task '%.200s'", r->name);
        r->error.section = SK_RUN;
        r->error.code = r->rc;
        r->error.lives_spent = 1;
        snprintf(r->error.cause, sizeof r->error.cause, "the function returned %d", r->rc);
        r->has_error = true;
    } else {
        r->outcome = SK_RUN_SUCCEEDED;
        r->has_error = false;
    }
}

/* The value a process published: its own copy, checked (a hostile
 * process can publish any bytes). */
static void collect_value(sk_task_run *r)
{
    const void *img = NULL;
    size_t len = 0;
    int rc = sk_result_image(r->proc, &img, &len);
    if (rc == SK_OK && img != NULL && sk_msg_validate(img, len) != SK_OK)
        rc = SK_ECORRUPT;
    if (rc == SK_OK && img != NULL && (r->value = malloc(len)) == NULL)
        rc = SK_ENOMEM;
    if (rc != SK_OK) {
        r->outcome = SK_RUN_FAILED;
        sk_run_error(&r->error, SK_RESULT_ERROR, rc,
                     "Task '%.200s': its return value could not be read (%s)", r->name,
                     sk_strerror(rc));
        r->has_error = true;
        return;
    }
    if (img != NULL) {
        memcpy(r->value, img, len);
        r->value_len = len;
    }
}

static void collect_process(sk_task_run *r)
{
    sk_process *p = r->proc;
    sk_wait(p, -1); /* it exited: this reaps it at once */
    const sk_error *e = sk_error_of(p);
    if (r->stop != STOP_NONE) {
        r->outcome = SK_RUN_TERMINATED;
        sk_run_error_stopped(&r->error, r->name, r->stop, r->task->timeout, e);
        r->has_error = true;
    } else if (e != NULL && r->own != NULL && r->task->timeout > 0 && e->kind == SK_TIMEOUT_ERROR) {
        r->outcome = SK_RUN_TERMINATED; /* the supervisor enforced the task's timeout */
        r->error = *e;
        r->has_error = true;
    } else if (e != NULL) {
        r->outcome = SK_RUN_FAILED;
        r->error = *e;
        r->has_error = true;
    } else {
        r->outcome = SK_RUN_SUCCEEDED;
        collect_value(r);
    }
    sk_process_set_tag(p, NULL);
    if (r->own != NULL) {
        sk_release(&r->own->base);
        free(r->own);
        r->own = NULL;
    }
    r->proc = NULL;
}

void sk_run_collect(sk_sched *s, sk_task_run *r)
{
    if (r->mode == SK_TASK_PROCESS) {
        sk_wait_unwatch(s, r);
        collect_process(r);
    } else {
        if (r->has_thread)
            pthread_join(r->thread, NULL);
        r->has_thread = false;
        collect_function(r);
    }
    if (r->outcome != SK_RUN_SUCCEEDED) { /* only a success returns a value */
        free(r->value);
        r->value = NULL;
        r->value_len = 0;
    }
    r->state = RUN_ENDED;
}

void sk_run_orphan(sk_task_run *r)
{
    pthread_mutex_lock(&r->orphan_lock);
    bool done = atomic_load(&r->done);
    r->orphan = !done;
    r->task = NULL;
    pthread_mutex_unlock(&r->orphan_lock);
    if (done) { /* it returned meanwhile */
        pthread_join(r->thread, NULL);
        sk_run_free(r);
        return;
    }
    pthread_detach(r->thread);
}

void sk_run_free(sk_task_run *r)
{
    if (r == NULL)
        return;
    sk_params_free_run(r);
    if (r->has_lock)
        pthread_mutex_destroy(&r->orphan_lock);
    free(r->value);
    free(r->name);
    free(r);
}

/* ------------------------------------------------- in the task's code */

/* True in a process the run forked (its copy of the run). */
static bool in_child(const sk_task_run *r)
{
    return getpid() != r->owner_pid;
}

int sk_task_return_image(sk_task_run *run, const void *img, size_t len)
{
    if (run == NULL || img == NULL || len == 0)
        return sk_refuse(SK_EINVAL, "sk_task_return_image: %s",
                         run == NULL ? "run is NULL" : "the image is NULL or empty");
    if (sk_msg_validate(img, len) != SK_OK)
        return sk_refuse(SK_EFORMAT, "sk_task_return_image: not a tpl image");
    if (in_child(run)) {
        sk_process *self = run->own != NULL ? &run->own->base : run->proc;
        return sk_result_publish(self, img, len);
    }
    void *copy = malloc(len);
    if (copy == NULL)
        return SK_ENOMEM;
    memcpy(copy, img, len);
    free(run->value);
    run->value = copy;
    run->value_len = len;
    return SK_OK;
}

int sk_task_return(sk_task_run *run, const char *fmt, ...)
{
    if (run == NULL || fmt == NULL || fmt[0] == '\0')
        return sk_refuse(SK_EINVAL, "sk_task_return: %s",
                         run == NULL ? "run is NULL" : "the format is NULL or empty");
    void *img = NULL;
    size_t len = 0;
    va_list ap;
    va_start(ap, fmt);
    int rc = sk_msg_pack(fmt, ap, &img, &len);
    va_end(ap);
    if (rc != SK_OK)
        return sk_refuse(rc, "sk_task_return: the values do not fit \"%.64s\"", fmt);
    rc = sk_task_return_image(run, img, len);
    free(img);
    return rc;
}

bool sk_task_stopping(const sk_task_run *run)
{
    if (run == NULL)
        return false;
    if (run->deadline_mono != 0 && sk_now_ns() >= run->deadline_mono)
        return true;
    if (in_child(run)) {
        const sk_process *self = run->own != NULL ? &run->own->base : run->proc;
        return sk_process_stop_asked(self);
    }
    if (atomic_load(&run->stopping))
        return true;
    return run->shutdown_flag != NULL && atomic_load(run->shutdown_flag) != 0;
}

const char *sk_task_run_name(const sk_task_run *run)
{
    return run != NULL ? run->name : NULL;
}

sk_task_run *sk_task_run_of(sk_process *self)
{
    return sk_process_tag(self);
}
