/* SPDX-License-Identifier: MIT */
/*
 * Task records on the wire. A plain record (no format, or a format without
 * strings and buffers) travels as its task_size bytes. A record with
 * strings or buffers (config.format has s or B) travels as a tpl image in
 * a fixed cell of the ring entry: a 32-bit length, then the image, at most
 * config.image_size bytes. Every process that looks at the record decodes
 * it into a struct of task_size bytes (strings malloc'ed), and encodes it
 * again when it passes it on.
 *
 * An image that comes from a step is memory that step could write: it is
 * validated before it is decoded (sk_msg_unpack checks it against the
 * format and never reads past its length).
 */
#include "flow/flow_internal.h"

#include "codec/message.h"

#include <stdarg.h>
#include <string.h>

struct cell {
    unsigned char *at;
    size_t cap;
};

static int reserve_cell(void *ctx, size_t size, void **dst)
{
    struct cell *c = ctx;
    if (size > c->cap)
        return SK_EFULL;
    *dst = c->at;
    return SK_OK;
}

static int encode_va(const char *fmt, struct cell *c, size_t *len, ...)
{
    va_list ap;
    va_start(ap, len);
    int rc = sk_msg_encode(fmt, ap, reserve_cell, c, len);
    va_end(ap);
    return rc;
}

static int decode_va(const void *img, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sk_msg_unpack(img, len, fmt, ap);
    va_end(ap);
    return rc;
}

int flow_record_encode(const struct sk_flow *f, const void *record, unsigned char *wire)
{
    if (!f->tpl) {
        memcpy(wire, record, f->task_size);
        return SK_OK;
    }
    struct cell c = {wire + sizeof(uint32_t), f->wire_size - sizeof(uint32_t)};
    size_t len = 0;
    int rc = encode_va(f->format, &c, &len, record);
    if (rc != SK_OK)
        return rc;
    uint32_t n = (uint32_t)len;
    memcpy(wire, &n, sizeof n);
    return SK_OK;
}

int flow_record_decode(const struct sk_flow *f, const unsigned char *wire, void *record)
{
    if (!f->tpl) {
        memcpy(record, wire, f->task_size);
        return SK_OK;
    }
    uint32_t n;
    memcpy(&n, wire, sizeof n);
    if (n > f->wire_size - sizeof n)
        return SK_EFORMAT;
    memset(record, 0, f->task_size);
    return decode_va(wire + sizeof n, n, f->format, record);
}

void flow_record_release(const struct sk_flow *f, void *record)
{
    if (f->tpl)
        sk_msg_release_one(f->format, record);
}

int flow_record_check(const struct sk_flow *f, const unsigned char *wire)
{
    if (!f->tpl)
        return SK_OK;
    uint32_t n;
    memcpy(&n, wire, sizeof n);
    if (n > f->wire_size - sizeof n)
        return SK_EFORMAT;
    return sk_msg_validate(wire + sizeof n, n);
}
