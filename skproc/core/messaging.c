/* SPDX-License-Identifier: MIT */
/*
 * tell and listen: the public face of the channel. The same calls work on
 * both sides; the handle's role (parent or worker) picks the direction.
 *
 * listen decodes the frame in place, at the head of the ring, and consumes
 * it only when the unpack succeeded: a format mismatch leaves the message
 * where it was, and a corrupt image is dropped with SK_ECORRUPT.
 */
#include "codec/message.h"
#include "core/channel.h"
#include "core/error.h"
#include "core/handle.h"
#include "os/clock.h"
#include "os/fd.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct sk_message {
    size_t len;
    char *format;
    unsigned char image[];
};

/* Who may use the channel: a started parent handle, or a worker. */
static int channel_state(const sk_process *p, const char *call)
{
    int rc = sk_handle_check(p, call);
    if (rc != SK_OK)
        return rc;
    const struct sk_runtime *rt = p->rt;
    if (rt->role == SK_ROLE_WORKER)
        return SK_OK;
    rc = sk_handle_check_parent(p, call);
    if (rc != SK_OK)
        return rc;
    if (!rt->started || rt->sh == NULL)
        return sk_refuse(SK_ESTATE, "%s: the process is not started", call);
    return SK_OK;
}

/* The format is what the call refuses, or nothing at all. */
static int format_refused(const char *call, const char *fmt)
{
    if (fmt == NULL || fmt[0] == '\0')
        return sk_refuse(SK_EINVAL, "%s: the format is %s", call, fmt == NULL ? "NULL" : "empty");
    return sk_refuse(SK_EINVAL, "%s: \"%.64s\" is not a tpl format skproc can carry", call, fmt);
}

/* Why the codec refused to encode: a malformed format, or an image larger
 * than the channel's max_message. */
static int encode_refused(const sk_process *p, const char *call, const char *fmt, int rc)
{
    if (rc != SK_EINVAL)
        return rc;
    if (sk_msg_format_check(fmt) != SK_OK)
        return format_refused(call, fmt);
    return sk_refuse(SK_EINVAL, "%s: the message is larger than config.max_message (%zu bytes)",
                     call, p->rt->config.max_message);
}

static int tell_checked(sk_process *p, const void *img, size_t len)
{
    if (sk_channel_peer_gone(p->rt))
        return SK_ECLOSED;
    return sk_ring_send(&p->rt->ep, img, len);
}

/* Where a message is going: the endpoint, and how long it may wait for
 * room (0: not at all). */
struct frame_request {
    struct sk_endpoint *ep;
    int64_t deadline;
};

/* sk_msg_encode writes the image straight into a reserved frame. */
static int frame_reserve(void *ctx, size_t len, void **dst)
{
    struct frame_request *f = ctx;
    if (f->deadline == 0)
        return sk_ring_reserve(f->ep, len, dst);
    return sk_ring_reserve_wait(f->ep, len, f->deadline, dst);
}

static int tell_values(sk_process *p, const char *call, int64_t deadline, const char *fmt,
                       va_list ap)
{
    int rc = channel_state(p, call);
    if (rc != SK_OK)
        return rc;
    if (fmt == NULL || fmt[0] == '\0')
        return format_refused(call, fmt);
    if (sk_channel_peer_gone(p->rt))
        return SK_ECLOSED;
    struct frame_request f = {.ep = &p->rt->ep, .deadline = deadline};
    size_t len;
    rc = sk_msg_encode(fmt, ap, frame_reserve, &f, &len);
    if (rc == SK_OK)
        sk_ring_commit(&p->rt->ep);
    return encode_refused(p, call, fmt, rc);
}

int sk_tell(sk_process *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = tell_values(p, "sk_tell", 0, fmt, ap);
    va_end(ap);
    return rc;
}

int sk_tell_wait(sk_process *p, double timeout, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = tell_values(p, "sk_tell_wait", sk_deadline_ns(timeout), fmt, ap);
    va_end(ap);
    return rc;
}

int sk_tell_image(sk_process *p, const void *img, size_t len)
{
    int rc = channel_state(p, "sk_tell_image");
    if (rc != SK_OK)
        return rc;
    if (img == NULL || len == 0)
        return sk_refuse(SK_EINVAL, "sk_tell_image: the image is %s",
                         img == NULL ? "NULL" : "empty");
    if (sk_msg_validate(img, len) != SK_OK)
        return SK_EFORMAT;
    return tell_checked(p, img, len);
}

/* A valid image whose format differs stays queued; garbage is dropped. */
static int listen_failed(struct sk_runtime *rt, const void *img, size_t len, int rc)
{
    if (rc == SK_EFORMAT && sk_msg_validate(img, len) != SK_OK) {
        sk_ring_consume(&rt->ep);
        return SK_ECORRUPT;
    }
    return rc;
}

int sk_listen(sk_process *p, double timeout, const char *fmt, ...)
{
    int rc = channel_state(p, "sk_listen");
    if (rc != SK_OK)
        return rc;
    if (fmt == NULL || fmt[0] == '\0')
        return format_refused("sk_listen", fmt);
    struct sk_runtime *rt = p->rt;
    const void *img;
    size_t len;
    rc = sk_ring_peek(&rt->ep, 0, &img, &len);
    if (rc == SK_ETIMEDOUT) {
        /* A message in hand is checked by the unpack; before waiting for
         * one, a format that can never match is refused at once. */
        rc = sk_msg_format_check(fmt);
        if (rc != SK_OK)
            return rc == SK_EINVAL ? format_refused("sk_listen", fmt) : rc;
        rc = timeout == 0 ? SK_ETIMEDOUT
                          : sk_ring_peek(&rt->ep, sk_deadline_ns(timeout), &img, &len);
    }
    if (rc != SK_OK)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    rc = sk_msg_unpack(img, len, fmt, ap);
    va_end(ap);
    if (rc != SK_OK)
        return listen_failed(rt, img, len, rc);
    sk_ring_consume(&rt->ep);
    return SK_OK;
}

int sk_listen_message(sk_process *p, double timeout, sk_message **msg)
{
    if (msg == NULL)
        return sk_refuse(SK_EINVAL, "sk_listen_message: msg is NULL");
    *msg = NULL;
    int rc = channel_state(p, "sk_listen_message");
    if (rc != SK_OK)
        return rc;
    struct sk_runtime *rt = p->rt;
    const void *img;
    size_t len;
    rc = sk_ring_peek(&rt->ep, sk_deadline_ns(timeout), &img, &len);
    if (rc != SK_OK)
        return rc;
    if (sk_msg_validate(img, len) != SK_OK) {
        sk_ring_consume(&rt->ep);
        return SK_ECORRUPT;
    }
    sk_message *m = malloc(sizeof *m + len);
    char *format = malloc(len + 1); /* a format is never longer than its image */
    if (m == NULL || format == NULL || sk_msg_format(img, len, format, len + 1) != SK_OK) {
        free(m);
        free(format);
        return SK_ENOMEM; /* the message stays queued */
    }
    m->len = len;
    m->format = format;
    memcpy(m->image, img, len);
    sk_ring_consume(&rt->ep);
    *msg = m;
    return SK_OK;
}

const char *sk_message_format(const sk_message *msg)
{
    return msg != NULL ? msg->format : NULL;
}

int sk_message_unpack(const sk_message *msg, const char *fmt, ...)
{
    if (msg == NULL || fmt == NULL)
        return sk_refuse(SK_EINVAL, "sk_message_unpack: %s is NULL", msg == NULL ? "msg" : "fmt");
    va_list ap;
    va_start(ap, fmt);
    int rc = sk_msg_unpack(msg->image, msg->len, fmt, ap);
    va_end(ap);
    return rc;
}

int sk_image_pack(void **img, size_t *len, const char *fmt, ...)
{
    if (img == NULL || len == NULL)
        return sk_refuse(SK_EINVAL, "sk_image_pack: %s is NULL", img == NULL ? "img" : "len");
    va_list ap;
    va_start(ap, fmt);
    int rc = sk_msg_pack(fmt, ap, img, len);
    va_end(ap);
    return rc;
}

int sk_image_unpack(const void *img, size_t len, const char *fmt, ...)
{
    if (img == NULL && len > 0)
        return sk_refuse(SK_EINVAL, "sk_image_unpack: img is NULL");
    va_list ap;
    va_start(ap, fmt);
    int rc = sk_msg_unpack(img, len, fmt, ap);
    va_end(ap);
    return rc;
}

const void *sk_message_image(const sk_message *msg, size_t *len)
{
    if (msg == NULL)
        return NULL;
    if (len != NULL)
        *len = msg->len;
    return msg->image;
}

void sk_message_free(sk_message *msg)
{
    if (msg == NULL)
        return;
    free(msg->format);
    free(msg);
}

/* In a hook: the worker's own doorbell, readable while a message waits or
 * once the parent has asked it to stop (then sk_listen says SK_ECLOSED).
 * The stop flag is read after the doorbell is armed, and sk_stop reads the
 * arming after it sets the flag, so one of the two always rings it. */
static int worker_fd(struct sk_runtime *rt)
{
    if (rt->worker_doorbell < 0)
        return sk_refuse(SK_ESTATE, "sk_fd: this worker has no doorbell");
    bool waiting = sk_ring_arm_doorbell(&rt->ep);
    if (waiting || atomic_load(&rt->sh->stop))
        sk_doorbell_ring(rt->worker_doorbell);
    return rt->worker_doorbell;
}

/* One fd for poll loops: the message doorbell and the child's pidfd, which
 * stays readable once the process has ended. */
int sk_fd(sk_process *p)
{
    int rc = channel_state(p, "sk_fd");
    if (rc != SK_OK)
        return rc;
    struct sk_runtime *rt = p->rt;
    if (rt->role == SK_ROLE_WORKER)
        return worker_fd(rt);
    if (rt->epoll_fd >= 0)
        return rt->epoll_fd;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return SK_ESYS;
    struct epoll_event ev = {.events = EPOLLIN};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, rt->msg_doorbell, &ev) != 0) {
        close(ep);
        return SK_ESYS;
    }
    if (rt->child_pidfd >= 0) {
        /* epoll keeps the registration while the file stays open: a dup
         * outlives the pidfd the handle closes when it reaps. */
        int pidfd = fcntl(rt->child_pidfd, F_DUPFD_CLOEXEC, 0);
        if (pidfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, pidfd, &ev) != 0) {
            if (pidfd >= 0)
                close(pidfd);
            close(ep);
            return SK_ESYS;
        }
        rt->epoll_pidfd = pidfd;
    }
    rt->epoll_fd = ep;
    if (sk_ring_arm_doorbell(&rt->ep) || rt->finished)
        sk_doorbell_ring(rt->msg_doorbell);
    return ep;
}
