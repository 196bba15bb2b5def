/* SPDX-License-Identifier: MIT */
/*
 * The result: published by the child's result or error hook with sk_return,
 * read by the parent with sk_result; and sk_fail, the hooks' way to say why
 * they fail.
 *
 * The image travels through the memfd behind the status page, past its end:
 * the child pwrite()s it, the parent pread()s it after the end. Nothing of it
 * is lost when the child dies afterwards, and it needs no channel.
 */
#include "codec/message.h"
#include "core/result.h"
#include "core/runtime.h"
#include "os/fd.h"

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int sk_return(sk_process *self, const char *fmt, ...)
{
    if (self == NULL || self->rt == NULL)
        return SK_EINVAL;
    struct sk_runtime *rt = self->rt;
    if (rt->role != SK_ROLE_WORKER ||
        (rt->hook_section != SK_RESULT && rt->hook_section != SK_ERROR))
        return SK_ESTATE;
    void *img = NULL;
    size_t len = 0;
    va_list ap;
    va_start(ap, fmt);
    int rc = sk_msg_pack(fmt, ap, &img, &len);
    va_end(ap);
    if (rc != SK_OK)
        return rc;
    rc = sk_pwrite_all(rt->memfd, img, len, (off_t)rt->result_offset) == 0 ? SK_OK : SK_ESYS;
    free(img);
    if (rc != SK_OK)
        return rc;
    rt->sh->result_len = len;
    rt->sh->has_result = len > 0;
    return SK_OK;
}

int sk_fail(sk_process *self, int code, const char *fmt, ...)
{
    int rc = code != 0 ? code : SK_EPROCESS;
    if (self == NULL || self->rt == NULL)
        return rc;
    struct sk_runtime *rt = self->rt;
    if (rt->role != SK_ROLE_WORKER || rt->hook_section < 0)
        return rc;
    rt->cause[0] = '\0';
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rt->cause, sizeof rt->cause, fmt, ap);
        va_end(ap);
    }
    rt->cause_set = true;
    rt->cause_code = rc;
    return rc;
}

/* Reads the published image once; later calls reuse it. The length comes
 * from the status page, which the child can write: it must fit in what the
 * memfd holds past the mapping, or the result is corrupt. */
static int result_image(struct sk_runtime *rt)
{
    if (rt->result_image != NULL || !rt->sh->has_result)
        return SK_OK;
    uint64_t len = rt->sh->result_len;
    struct stat st;
    if (fstat(rt->memfd, &st) != 0)
        return SK_ESYS;
    uint64_t stored =
        (uint64_t)st.st_size > rt->result_offset ? (uint64_t)st.st_size - rt->result_offset : 0;
    if (len == 0 || len > stored)
        return SK_ECORRUPT;
    void *img = malloc(len);
    if (img == NULL)
        return SK_ENOMEM;
    if (sk_pread_all(rt->memfd, img, len, (off_t)rt->result_offset) != 0) {
        int rc = errno == 0 ? SK_EFORMAT : SK_ESYS; /* a short image: not what was published */
        free(img);
        return rc;
    }
    rt->result_image = img;
    rt->result_len = len;
    return SK_OK;
}

int sk_result(sk_process *p, const char *fmt, ...)
{
    if (p == NULL || p->rt == NULL)
        return SK_EINVAL;
    struct sk_runtime *rt = p->rt;
    if (rt->role != SK_ROLE_PARENT || !rt->started)
        return SK_ESTATE;
    int rc = sk_wait(p, -1);
    if (rc != SK_OK)
        return rc;
    if (rt->killed)
        return SK_EKILLED;
    rc = result_image(rt);
    if (rc != SK_OK)
        return rc;
    bool wants_values = fmt != NULL && fmt[0] != '\0';
    if (rt->result_image == NULL) {
        if (rt->has_error)
            return SK_EPROCESS;
        return wants_values ? SK_EFORMAT : SK_OK;
    }
    if (wants_values) {
        va_list ap;
        va_start(ap, fmt);
        rc = sk_msg_unpack(rt->result_image, rt->result_len, fmt, ap);
        va_end(ap);
    }
    return rt->has_error ? SK_EPROCESS : rc;
}

int sk_result_image(sk_process *p, const void **img, size_t *len)
{
    if (p == NULL || p->rt == NULL || img == NULL || len == NULL)
        return SK_EINVAL;
    struct sk_runtime *rt = p->rt;
    if (rt->role != SK_ROLE_PARENT || !rt->finished || rt->killed)
        return SK_ESTATE;
    int rc = result_image(rt);
    *img = rt->result_image;
    *len = rt->result_image != NULL ? rt->result_len : 0;
    return rc;
}
