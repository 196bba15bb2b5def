/* SPDX-License-Identifier: MIT */
/*
 * The parent's side of a spawned program's pipes: reads in chunks or by
 * line, writes to its stdin, and communicate, which moves all three at
 * once so that a program that fills one pipe while we wait on another
 * never deadlocks; and sk_spawn_init. The parent's ends are non-blocking; every wait is a
 * poll with the caller's deadline, retried after EINTR.
 */
#include "core/error.h"
#include "core/handle.h"
#include "core/spawn.h"
#include "os/clock.h"
#include "os/fd.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The program runs no hook: the engine never calls this. */
static int spawn_run_hook(sk_process *self)
{
    (void)self;
    return SK_EPROCESS;
}

static const sk_class spawn_class = {.name = "spawn", .run = spawn_run_hook};

/* sk_init with the spawn class, then the plan: the config copied. */
int sk_spawn_init(sk_process *p, const sk_spawn_config *cfg)
{
    if (p == NULL || cfg == NULL)
        return sk_refuse(SK_EINVAL, "sk_spawn_init: %s is NULL", p == NULL ? "the handle" : "cfg");
    int rc = sk_spawn_check(cfg);
    if (rc != SK_OK)
        return rc;
    rc = sk_init(p, &spawn_class);
    if (rc != SK_OK)
        return rc;
    rc = sk_spawn_plan_new(p->rt, cfg);
    if (rc != SK_OK)
        sk_release(p); /* frees what the plan holds */
    return rc;
}

/* The spawn plan of a started program's parent handle, or NULL with *rc. */
static struct sk_spawn *spawn_of(const sk_process *p, const char *call, int *rc)
{
    *rc = sk_handle_check_parent(p, call);
    if (*rc != SK_OK)
        return NULL;
    if (p->rt->spawn == NULL) {
        *rc = sk_refuse(SK_EINVAL, "%s: not a spawned program (sk_spawn_init)", call);
        return NULL;
    }
    if (!p->rt->started) {
        *rc = sk_refuse(SK_ESTATE, "%s: not started", call);
        return NULL;
    }
    return p->rt->spawn;
}

static int stream_fd(struct sk_spawn *sp, int stream, const char *call, int *rc)
{
    if (stream < 0 || stream > 2 || sp->cfg.stdio[stream].mode != SK_STDIO_PIPE) {
        *rc = sk_refuse(SK_EINVAL, "%s: stream %d is not a pipe", call, stream);
        return -1;
    }
    if (sp->parent_fd[stream] < 0) {
        *rc = sk_refuse(SK_ESTATE, "%s: stream %d is closed", call, stream);
        return -1;
    }
    *rc = SK_OK;
    return sp->parent_fd[stream];
}

int sk_spawn_fd(const sk_process *p, int stream)
{
    int rc;
    struct sk_spawn *sp = spawn_of(p, "sk_spawn_fd", &rc);
    if (sp == NULL)
        return rc;
    int fd = stream_fd(sp, stream, "sk_spawn_fd", &rc);
    return fd < 0 ? rc : fd;
}

/* Waits until fd is ready for events or deadline passes: true when ready
 * (or hung up: the next read or write says what happened). */
static bool fd_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        struct timespec ts, *tsp = NULL;
        if (deadline != INT64_MAX) {
            int64_t left = deadline - sk_now_ns();
            ts = sk_ns_to_timespec(left > 0 ? left : 0);
            tsp = &ts;
        }
        int n = ppoll(&pfd, 1, tsp, NULL);
        if (n > 0)
            return true;
        if (n == 0)
            return false;
        if (errno != EINTR)
            return true; /* let the read or write report it */
    }
}

/* One read of what is there, or a wait for it. */
static long read_some(int fd, void *buf, size_t len, int64_t deadline)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return (long)n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return SK_ESYS;
        if (!fd_wait(fd, POLLIN, deadline))
            return SK_ETIMEDOUT;
    }
}

long sk_spawn_read(sk_process *p, int stream, void *buf, size_t len, double timeout)
{
    int rc;
    struct sk_spawn *sp = spawn_of(p, "sk_spawn_read", &rc);
    if (sp == NULL)
        return rc;
    if (stream == 0 || buf == NULL || len == 0)
        return sk_refuse(SK_EINVAL, "sk_spawn_read: %s",
                         stream == 0 ? "stdin is not read" : "no buffer");
    int fd = stream_fd(sp, stream, "sk_spawn_read", &rc);
    if (fd < 0)
        return rc;
    /* What sk_spawn_read_line read ahead comes first. */
    struct sk_spawn_linebuf *lb = &sp->line[stream];
    if (lb->len > 0) {
        size_t n = lb->len < len ? lb->len : len;
        memcpy(buf, lb->data, n);
        memmove(lb->data, lb->data + n, lb->len - n);
        lb->len -= n;
        return (long)n;
    }
    return read_some(fd, buf, len > LONG_MAX ? LONG_MAX : len, sk_deadline_ns(timeout));
}

long sk_spawn_read_line(sk_process *p, int stream, char *buf, size_t len, double timeout)
{
    int rc;
    struct sk_spawn *sp = spawn_of(p, "sk_spawn_read_line", &rc);
    if (sp == NULL)
        return rc;
    if (stream == 0 || buf == NULL || len < 2)
        return sk_refuse(SK_EINVAL, "sk_spawn_read_line: %s",
                         stream == 0 ? "stdin is not read" : "the buffer holds less than 2 bytes");
    int fd = stream_fd(sp, stream, "sk_spawn_read_line", &rc);
    if (fd < 0)
        return rc;
    struct sk_spawn_linebuf *lb = &sp->line[stream];
    int64_t deadline = sk_deadline_ns(timeout);
    bool eof = false;
    for (;;) {
        char *nl = lb->len ? memchr(lb->data, '\n', lb->len) : NULL;
        size_t take = nl != NULL ? (size_t)(nl - lb->data) + 1 : lb->len;
        if (nl != NULL || take >= len - 1 || (eof && take > 0)) {
            if (take > len - 1)
                take = len - 1;
            memcpy(buf, lb->data, take);
            buf[take] = '\0';
            memmove(lb->data, lb->data + take, lb->len - take);
            lb->len -= take;
            return (long)take;
        }
        if (eof) {
            buf[0] = '\0';
            return 0;
        }
        if (lb->cap - lb->len < 4096) {
            size_t cap = lb->cap ? 2 * lb->cap : 8192;
            char *grown = realloc(lb->data, cap);
            if (grown == NULL)
                return SK_ENOMEM;
            lb->data = grown;
            lb->cap = cap;
        }
        long n = read_some(fd, lb->data + lb->len, lb->cap - lb->len, deadline);
        if (n < 0)
            return n;
        if (n == 0)
            eof = true;
        lb->len += (size_t)n;
    }
}

/* write() with SIGPIPE blocked in this thread, and a SIGPIPE it raised
 * taken back, so that a program that closed its stdin is SK_ECLOSED and
 * never kills the parent. A SIGPIPE that was already pending stays. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n = write(fd, buf, len);
    int saved = errno;
    if (n < 0 && saved == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return n;
}

/* Writes what it can of buf without waiting; *done grows. SK_OK when all
 * is written or the pipe is full, SK_ECLOSED, SK_ESYS. */
static int write_ready(int fd, const char *buf, size_t len, size_t *done)
{
    while (*done < len) {
        ssize_t n = write_nosigpipe(fd, buf + *done, len - *done);
        if (n > 0) {
            *done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return SK_OK;
        return n < 0 && errno == EPIPE ? SK_ECLOSED : SK_ESYS;
    }
    return SK_OK;
}

int sk_spawn_write(sk_process *p, const void *buf, size_t len, double timeout, size_t *written)
{
    size_t done = 0;
    if (written != NULL)
        *written = 0;
    int rc;
    struct sk_spawn *sp = spawn_of(p, "sk_spawn_write", &rc);
    if (sp == NULL)
        return rc;
    if (buf == NULL && len > 0)
        return sk_refuse(SK_EINVAL, "sk_spawn_write: buf is NULL");
    int fd = stream_fd(sp, 0, "sk_spawn_write", &rc);
    if (fd < 0)
        return rc;
    int64_t deadline = sk_deadline_ns(timeout);
    for (;;) {
        rc = write_ready(fd, buf, len, &done);
        if (rc != SK_OK || done == len)
            break;
        if (!fd_wait(fd, POLLOUT, deadline)) {
            rc = SK_ETIMEDOUT;
            break;
        }
    }
    if (written != NULL)
        *written = done;
    return rc;
}

int sk_spawn_close_stdin(sk_process *p)
{
    int rc;
    struct sk_spawn *sp = spawn_of(p, "sk_spawn_close_stdin", &rc);
    if (sp == NULL)
        return rc;
    if (sp->cfg.stdio[0].mode != SK_STDIO_PIPE)
        return sk_refuse(SK_EINVAL, "sk_spawn_close_stdin: stdin is not a pipe");
    sk_fd_close(&sp->parent_fd[0]);
    return SK_OK;
}

/* A growing output buffer of communicate; kept NUL-terminated. */
struct sink {
    char **out;
    size_t *out_len;
    char *data;
    size_t len, cap;
};

static int sink_read(struct sink *s, int fd, bool *eof)
{
    char scratch[16384];
    for (;;) {
        if (s->out != NULL && s->cap - s->len < 65536 + 1) {
            size_t cap = s->cap ? 2 * s->cap : 65536 * 2;
            char *grown = realloc(s->data, cap);
            if (grown == NULL)
                return SK_ENOMEM;
            s->data = grown;
            s->cap = cap;
        }
        char *to = s->out != NULL ? s->data + s->len : scratch;
        size_t room = s->out != NULL ? s->cap - s->len - 1 : sizeof scratch;
        ssize_t n = read(fd, to, room);
        if (n > 0) {
            if (s->out != NULL)
                s->len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return SK_OK;
        *eof = true; /* end of stream, or an error that ends it alike */
        return n == 0 ? SK_OK : SK_ESYS;
    }
}

static void sink_finish(struct sink *s)
{
    if (s->out == NULL)
        return;
    if (s->data == NULL)
        s->data = calloc(1, 1);
    else
        s->data[s->len] = '\0';
    *s->out = s->data;
    if (s->out_len != NULL)
        *s->out_len = s->data != NULL ? s->len : 0;
}

int sk_spawn_communicate(sk_process *p, const void *input, size_t input_len, char **out,
                         size_t *out_len, char **err, size_t *err_len, double timeout)
{
    int rc;
    struct sk_spawn *sp = spawn_of(p, "sk_spawn_communicate", &rc);
    if (sp == NULL)
        return rc;
    if (input != NULL && sp->parent_fd[0] < 0)
        return sk_refuse(SK_EINVAL,
                         "sk_spawn_communicate: input given but stdin is not an open pipe");
    struct sink sinks[3] = {{0}, {out, out_len, NULL, 0, 0}, {err, err_len, NULL, 0, 0}};
    /* What read_line read ahead is output too. */
    for (int i = 1; i <= 2; i++) {
        struct sk_spawn_linebuf *lb = &sp->line[i];
        if (lb->len > 0 && sinks[i].out != NULL) {
            sinks[i].data = malloc(lb->len + 65536 * 2);
            if (sinks[i].data == NULL)
                return SK_ENOMEM;
            memcpy(sinks[i].data, lb->data, lb->len);
            sinks[i].len = lb->len;
            sinks[i].cap = lb->len + 65536 * 2;
        }
        lb->len = 0;
    }
    bool open_[3] = {input != NULL, sp->parent_fd[1] >= 0, sp->parent_fd[2] >= 0};
    size_t written = 0;
    int64_t deadline = sk_deadline_ns(timeout);
    rc = SK_OK;
    /* As Python's communicate: stdin is closed once the input is written,
     * and at once when there is none, so that a program reading it to its
     * end (cat, sort) finishes. */
    if (input == NULL || input_len == 0) {
        sk_fd_close(&sp->parent_fd[0]);
        open_[0] = false;
    }
    while (rc == SK_OK && (open_[0] || open_[1] || open_[2])) {
        struct pollfd fds[3];
        int map[3], n = 0;
        for (int i = 0; i < 3; i++)
            if (open_[i]) {
                fds[n] = (struct pollfd){.fd = sp->parent_fd[i], .events = i ? POLLIN : POLLOUT};
                map[n++] = i;
            }
        struct timespec ts, *tsp = NULL;
        if (deadline != INT64_MAX) {
            int64_t left = deadline - sk_now_ns();
            if (left <= 0) {
                rc = SK_ETIMEDOUT;
                break;
            }
            ts = sk_ns_to_timespec(left);
            tsp = &ts;
        }
        int ready = ppoll(fds, (nfds_t)n, tsp, NULL);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            rc = SK_ESYS;
            break;
        }
        for (int k = 0; k < n && rc == SK_OK; k++) {
            int i = map[k];
            if (fds[k].revents == 0)
                continue;
            if (i == 0) {
                int w = write_ready(sp->parent_fd[0], input, input_len, &written);
                if (w == SK_ECLOSED || written == input_len) {
                    sk_fd_close(&sp->parent_fd[0]); /* the program reads EOF */
                    open_[0] = false;
                } else if (w != SK_OK) {
                    rc = w;
                }
                continue;
            }
            bool eof = false;
            rc = sink_read(&sinks[i], sp->parent_fd[i], &eof);
            if (eof)
                open_[i] = false;
        }
    }
    sink_finish(&sinks[1]);
    sink_finish(&sinks[2]);
    return rc;
}
