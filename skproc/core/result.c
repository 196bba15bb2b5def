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
#include "core/error.h"
#include "core/handle.h"
#include "core/result.h"
#include "core/runtime.h"
#include "os/fd.h"

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* sk_return refused its values: the reason for sk_last_error_message, and
 * the hook's cause too (unless it gave one with sk_fail), so that the
 * error report says why the result hook failed. */
static int return_refused(struct sk_runtime *rt, const char *fmt, int rc)
{
    if (rc == SK_EINVAL && (fmt == NULL || fmt[0] == '\0'))
        rc = sk_refuse(rc, "sk_return: the format is %s", fmt == NULL ? "NULL" : "empty");
    else if (rc == SK_EINVAL || rc == SK_EFORMAT)
        rc = sk_refuse(rc,
                       "sk_return: \"%.64s\" is not a tpl format skproc can carry, or the "
                       "values do not fit it",
                       fmt);
    else
        rc = sk_refuse(rc, "sk_return: %s", sk_strerror(rc));
    if (!rt->cause_set) {
        snprintf(rt->cause, sizeof rt->cause, "%s", sk_last_error_message());
        rt->cause_set = true;
        rt->cause_code = rc;
    }
    return rc;
}

/* Writes a packed result where the parent reads it (sk_return and
 * sk_result_publish). */
static int result_write(struct sk_runtime *rt, const void *img, size_t len)
{
    if (sk_pwrite_all(rt->memfd, img, len, (off_t)rt->result_offset) != 0)
        return SK_ESYS;
    rt->sh->result_len = len;
    rt->sh->has_result = len > 0;
    return SK_OK;
}

int sk_return(sk_process *self, const char *fmt, ...)
{
    int rc = sk_handle_check(self, "sk_return");
    if (rc != SK_OK)
        return rc;
    struct sk_runtime *rt = self->rt;
    if (rt->role != SK_ROLE_WORKER ||
        (rt->hook_section != SK_RESULT && rt->hook_section != SK_ERROR))
        return sk_refuse(SK_ESTATE, "sk_return: only the result and error hooks may publish a "
                                    "result (pass self)");
    void *img = NULL;
    size_t len = 0;
    if (fmt == NULL || fmt[0] == '\0')
        return return_refused(rt, fmt, SK_EINVAL);
    va_list ap;
    va_start(ap, fmt);
    rc = sk_msg_pack(fmt, ap, &img, &len);
    va_end(ap);
    if (rc != SK_OK)
        return return_refused(rt, fmt, rc);
    rc = result_write(rt, img, len);
    free(img);
    return rc != SK_OK ? return_refused(rt, fmt, rc) : SK_OK;
}

int sk_result_publish(sk_process *self, const void *img, size_t len)
{
    int rc = sk_handle_check(self, "sk_result_publish");
    if (rc != SK_OK)
        return rc;
    struct sk_runtime *rt = self->rt;
    if (rt->role != SK_ROLE_WORKER || rt->hook_section < 0)
        return sk_refuse(SK_ESTATE, "sk_result_publish: only a hook may publish a result");
    if (img == NULL || len == 0)
        return sk_refuse(SK_EINVAL, "sk_result_publish: the image is %s",
                         img == NULL ? "NULL" : "empty");
    if (result_write(rt, img, len) != SK_OK)
        return sk_refuse(SK_ESYS, "sk_result_publish: %s", strerror(errno));
    return SK_OK;
}

int sk_fail(sk_process *self, int code, const char *fmt, ...)
{
    int rc = code != 0 ? code : SK_EPROCESS;
    if (!sk_handle_sealed(self))
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
    int rc = sk_handle_check_parent(p, "sk_result");
    if (rc != SK_OK)
        return rc;
    struct sk_runtime *rt = p->rt;
    if (!rt->started)
        return sk_refuse(SK_ESTATE, "sk_result: the process is not started");
    rc = sk_wait(p, -1);
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
        return wants_values ? SK_ENORESULT : SK_OK;
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
    int rc = sk_handle_check_parent(p, "sk_result_image");
    if (rc != SK_OK)
        return rc;
    if (img == NULL || len == NULL)
        return sk_refuse(SK_EINVAL, "sk_result_image: %s is NULL", img == NULL ? "img" : "len");
    struct sk_runtime *rt = p->rt;
    if (!rt->finished || rt->killed)
        return sk_refuse(SK_ESTATE, "sk_result_image: the process %s",
                         rt->killed ? "was killed" : "is not finished");
    rc = result_image(rt);
    *img = rt->result_image;
    *len = rt->result_image != NULL ? rt->result_len : 0;
    return rc;
}
