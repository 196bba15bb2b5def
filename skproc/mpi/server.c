/* SPDX-License-Identifier: MIT */
/*
 * A server rank's loop: what rank 0 sends goes to the rank's local pool,
 * forked before MPI_Init, through that pool's own transport (its engine
 * stays idle: the batches arrive as images already), and what the local
 * workers finish goes back to rank 0.
 *
 *   receive   OPEN: find the job by name, describe it as this rank's
 *             program has it, open the call locally, answer OPENED
 *             BATCH: the item image into a local batch (a split one's
 *             BODY received straight there), then posted
 *             END, CONTROL, CLOSE, TERMINATE, STOP: the same locally
 *   collect   a local batch done: its statuses, results (plain or tpl
 *             images) and error records (each naming this rank) into one
 *             RESULT message, sent without blocking; when every item
 *             succeeded with plain results, a large one goes split (wire.h),
 *             its BODY sent straight from the local batch
 *   idle      sleep on the local pool's completions (when it has work) or
 *             a short nap, paced by how often batches come (mpi/pace.h),
 *             never longer than 1 ms, so that MPI stays served; ALIVE to
 *             rank 0 every 0.2 s
 *
 * Only this thread calls MPI.
 */
#include "mpi/ranks.h"

#include "core/error.h"
#include "mpi/bufs.h"
#include "mpi/pace.h"
#include "mpi/registry.h"
#include "os/clock.h"
#include "pool/call.h"
#include "pool/pool_internal.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A local batch: which of rank 0's batches it is. */
struct sbatch {
    bool used;
    uint32_t remote; /* rank 0's batch id */
    int slot;
    uint64_t first;
    uint32_t count;
};

/* A message in flight to rank 0: buf is the server's until MPI is done
 * with it, and so is local batch `local` (-1: none) when the message is
 * sent straight from its result image. */
struct sending {
    MPI_Request req;
    unsigned char *buf;
    size_t cap;
    int64_t local;
};

struct server {
    MPI_Comm comm;
    int rank;
    char host[MPI_HOST_MAX];
    sk_pool *local;
    struct sk_pool_transport *t;
    struct sbatch b[POOL_BATCHES];
    int in_flight;
    struct {
        bool open;
        bool result_tpl;
        uint64_t result_size;
    } calls[POOL_CALLS];
    struct sending *sends;
    int n_sends, cap_sends;
    struct mpi_bufs bufs; /* warm message buffers */
    struct mpi_pace pace; /* how long to nap while batches are awaited */
    int32_t *status;      /* result_message's statuses, status_cap of them */
    size_t status_cap;
    bool closing, closed_said, terminated, stop;
    int64_t last_sent;
};

/* ------------------------------------------------------------ sending */

/* What a finished send held goes back. */
static void sent(struct server *s, const struct sending *x)
{
    mpi_buf_give(&s->bufs, x->buf, x->cap);
    if (x->local >= 0)
        s->t->ops->release(s->t, (uint32_t)x->local);
}

static void sends_reap(struct server *s)
{
    for (int i = 0; i < s->n_sends;) {
        int done = 0;
        MPI_Test(&s->sends[i].req, &done, MPI_STATUS_IGNORE);
        if (!done) {
            i++;
            continue;
        }
        sent(s, &s->sends[i]);
        s->sends[i] = s->sends[--s->n_sends];
    }
}

/* Waits for every send, then gives back what they held. */
static void sends_wait_all(struct server *s)
{
    while (s->n_sends > 0) {
        struct sending *x = &s->sends[--s->n_sends];
        MPI_Wait(&x->req, MPI_STATUS_IGNORE);
        sent(s, x);
    }
}

/* Sends len bytes at `at` to rank 0 with tag without blocking, holding buf
 * (cap bytes, or NULL) and local batch `local` (-1: none) until MPI is done
 * with them. */
static void send_held(struct server *s, const void *at, size_t len, int tag, unsigned char *buf,
                      size_t cap, int64_t local)
{
    if (s->n_sends == s->cap_sends) {
        int grow = s->cap_sends ? 2 * s->cap_sends : 16;
        struct sending *grown = realloc(s->sends, (size_t)grow * sizeof *grown);
        if (grown == NULL) { /* blocking, then */
            struct sending x = {.buf = buf, .cap = cap, .local = local};
            MPI_Send(at, (int)len, MPI_BYTE, 0, tag, s->comm);
            sent(s, &x);
            return;
        }
        s->sends = grown;
        s->cap_sends = grow;
    }
    struct sending *x = &s->sends[s->n_sends++];
    *x = (struct sending){.buf = buf, .cap = cap, .local = local};
    MPI_Isend(at, (int)len, MPI_BYTE, 0, tag, s->comm, &x->req);
    s->last_sent = sk_now_ns();
}

/* Sends buf (len bytes, head first) to rank 0 without blocking. */
static void send_owned(struct server *s, unsigned char *buf, size_t len, size_t cap)
{
    const struct mpi_head *h = (const struct mpi_head *)(const void *)buf;
    send_held(s, buf, len, (int)h->kind, buf, cap, -1);
}

static void send_head(struct server *s, const struct mpi_head *h, const char *text)
{
    size_t len = sizeof *h + (text != NULL ? strlen(text) : 0);
    size_t cap;
    unsigned char *buf = mpi_buf_take(&s->bufs, len, &cap);
    if (buf == NULL)
        return;
    memcpy(buf, h, sizeof *h);
    if (text != NULL)
        memcpy(buf + sizeof *h, text, len - sizeof *h);
    send_owned(s, buf, len, cap);
}

/* ------------------------------------------------------------ messages */

static void on_open(struct server *s, const struct mpi_head *h, const unsigned char *p, size_t n)
{
    struct mpi_head reply = {.kind = MPI_K_OPENED, .slot = h->slot, .rc = SK_OK};
    char text[256] = "";
    const struct mpi_open *o = (const struct mpi_open *)(const void *)p;
    struct pool_job js;
    const sk_pool_job *job = NULL;
    if (n < sizeof *o || h->slot >= POOL_CALLS || o->arg_size != n - sizeof *o) {
        reply.rc = SK_ECORRUPT;
        snprintf(text, sizeof text, "a malformed OPEN message");
    } else if ((job = mpi_job_by_name(o->name)) == NULL) {
        reply.rc = SK_EINVAL;
        snprintf(text, sizeof text,
                 "no job named \"%.63s\" on this rank (register it with sk_mpi_register_job on "
                 "every rank before sk_mpi_start)",
                 o->name);
    } else if (pool_job_prepare(job, &js) != SK_OK || js.item_size != o->job.item_size ||
               js.result_size != o->job.result_size ||
               strcmp(js.item_format, o->job.item_format) != 0 ||
               strcmp(js.result_format, o->job.result_format) != 0) {
        reply.rc = SK_EINVAL;
        snprintf(text, sizeof text,
                 "the job \"%.63s\" registered here differs from rank 0's (item or result size "
                 "or format): is it the same program?",
                 o->name);
    } else {
        const void *arg = o->arg_size > 0 ? (const void *)(o + 1) : NULL;
        int rc = s->t->ops->open_call(s->t, (int)h->slot, &js, arg, (size_t)o->arg_size);
        if (rc != SK_OK) {
            reply.rc = rc;
            snprintf(text, sizeof text, "the local pool refused the call: %s",
                     sk_last_error_message());
        } else {
            s->calls[h->slot].open = true;
            s->calls[h->slot].result_tpl = js.result_tpl != 0;
            s->calls[h->slot].result_size = js.result_size;
        }
    }
    send_head(s, &reply, text);
}

/* A BATCH whose item image is in local batch `in` already: posted to the
 * local workers. A batch rank 0 never sends (a closed call, no items) is
 * dropped; if it came, rank 0 would wait on this rank. */
static void batch_post(struct server *s, const struct mpi_head *h, const struct pool_batch_in *in)
{
    if (h->slot >= POOL_CALLS || !s->calls[h->slot].open || h->count == 0 ||
        s->t->ops->post(s->t, in->id, (int)h->slot, h->first, h->count) != SK_OK) {
        s->t->ops->release(s->t, in->id);
        return;
    }
    s->b[in->id] = (struct sbatch){.used = true,
                                   .remote = h->batch,
                                   .slot = (int)h->slot,
                                   .first = h->first,
                                   .count = h->count};
    s->in_flight++;
    s->t->ops->flush(s->t);
}

/* A BATCH head (p, n: its payload). Its item image follows the head in the
 * same message, or, split, comes next as a BODY, received straight into
 * the local batch where the workers read it. A batch that cannot be taken
 * or does not fit is dropped (its body too): rank 0's window keeps a rank's
 * batches within what its local pool holds, so only a broken rank 0 does
 * that. SK_OK, SK_ENOMEM (no buffer to drop a body into) or SK_ESYS (MPI
 * failed). */
static int on_batch(struct server *s, const struct mpi_head *h, const unsigned char *p, size_t n)
{
    struct pool_batch_in in;
    bool taken = s->t->ops->take(s->t, &in) == SK_OK;
    size_t len = h->split ? (size_t)h->image_len : n;
    if (taken && len > in.cap) {
        s->t->ops->release(s->t, in.id);
        taken = false;
    }
    if (!h->split) {
        if (!taken)
            return SK_OK;
        memcpy(in.items, p, n);
        batch_post(s, h, &in);
        return SK_OK;
    }
    MPI_Message msg;
    MPI_Status st;
    int got = 0;
    if (MPI_Mprobe(0, MPI_K_BODY, s->comm, &msg, &st) != MPI_SUCCESS) {
        if (taken)
            s->t->ops->release(s->t, in.id);
        return SK_ESYS;
    }
    MPI_Get_count(&st, MPI_BYTE, &got);
    if (!taken || (size_t)got != len) { /* received only to be dropped */
        if (taken)
            s->t->ops->release(s->t, in.id);
        size_t cap;
        unsigned char *sink = mpi_buf_take(&s->bufs, got > 0 ? (size_t)got : 1, &cap);
        if (sink == NULL)
            return SK_ENOMEM;
        int rc = MPI_Mrecv(sink, got, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
        mpi_buf_give(&s->bufs, sink, cap);
        return rc == MPI_SUCCESS ? SK_OK : SK_ESYS;
    }
    if (MPI_Mrecv(in.items, got, MPI_BYTE, &msg, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        s->t->ops->release(s->t, in.id);
        return SK_ESYS;
    }
    batch_post(s, h, &in);
    return SK_OK;
}

static void on_control(struct server *s, const struct mpi_head *h)
{
    for (uint32_t id = 0; id < POOL_BATCHES; id++)
        if (s->b[id].used && s->b[id].remote == h->batch && h->k < s->b[id].count) {
            s->t->ops->control(s->t, id, h->k, h->kill != 0);
            return;
        }
}

static int on_message(struct server *s, const unsigned char *msg, size_t len)
{
    if (len < sizeof(struct mpi_head))
        return SK_OK;
    const struct mpi_head *h = (const struct mpi_head *)(const void *)msg;
    const unsigned char *p = msg + sizeof *h;
    size_t n = len - sizeof *h;
    switch (h->kind) {
    case MPI_K_OPEN:
        on_open(s, h, p, n);
        break;
    case MPI_K_BATCH:
        return on_batch(s, h, p, n);
    case MPI_K_END:
        if (h->slot < POOL_CALLS && s->calls[h->slot].open) {
            s->calls[h->slot].open = false;
            s->t->ops->end_posting(s->t, (int)h->slot);
        }
        break;
    case MPI_K_CONTROL:
        on_control(s, h);
        break;
    case MPI_K_CLOSE:
        if (!s->closing) {
            s->closing = true;
            s->t->ops->close(s->t);
        }
        break;
    case MPI_K_TERMINATE:
        s->terminated = s->closing = true;
        s->t->ops->terminate(s->t);
        break;
    case MPI_K_STOP:
        s->stop = true;
        break;
    default: /* an unknown kind, or a BODY no head announced: dropped */
        break;
    }
    return SK_OK;
}

static int receive_all(struct server *s, int *got)
{
    for (;;) {
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        if (MPI_Improbe(0, MPI_ANY_TAG, s->comm, &flag, &msg, &st) != MPI_SUCCESS)
            return SK_ESYS;
        if (!flag)
            return SK_OK;
        int n = 0;
        MPI_Get_count(&st, MPI_BYTE, &n);
        if (st.MPI_TAG == MPI_K_BATCH)
            mpi_pace_heard(&s->pace, sk_now_ns());
        size_t cap;
        unsigned char *buf = mpi_buf_take(&s->bufs, n > 0 ? (size_t)n : 1, &cap);
        if (buf == NULL)
            return SK_ENOMEM;
        if (MPI_Mrecv(buf, n, MPI_BYTE, &msg, &st) != MPI_SUCCESS) {
            mpi_buf_give(&s->bufs, buf, cap);
            return SK_ESYS;
        }
        int rc = on_message(s, buf, (size_t)n);
        mpi_buf_give(&s->bufs, buf, cap);
        if (rc != SK_OK)
            return rc;
        (*got)++;
    }
}

/* ------------------------------------------------------------ results */

/* The rank in each error's message, so that rank 0's caller sees where the
 * item failed. */
static void error_mark(const struct server *s, sk_error *e)
{
    size_t at = strlen(e->message);
    snprintf(e->message + at, sizeof e->message - at, " (rank %d on %s)", s->rank, s->host);
}

/* The head of a RESULT whose items all succeeded, with plain results:
 * they alone travel, no statuses (a third fewer bytes for 4-byte results),
 * and nothing is looked at item by item. */
static struct mpi_head bare_head(const struct sbatch *sb, const struct pool_batch_out *out,
                                 uint64_t rsize)
{
    return (struct mpi_head){.kind = MPI_K_RESULT,
                             .slot = (uint32_t)sb->slot,
                             .batch = sb->remote,
                             .count = sb->count,
                             .first = sb->first,
                             .image_len = (size_t)sb->count * rsize,
                             .retried = out->retried,
                             .bare = 1};
}

/* Such a RESULT, in one message buffer. */
static unsigned char *bare_message(struct server *s, const struct sbatch *sb,
                                   const struct pool_batch_out *out, uint64_t rsize,
                                   size_t *len_out, size_t *cap_out)
{
    struct mpi_head h = bare_head(sb, out, rsize);
    unsigned char *msg = mpi_buf_take(&s->bufs, sizeof h + h.image_len, cap_out);
    if (msg == NULL)
        return NULL;
    memcpy(msg, &h, sizeof h);
    if (h.image_len > 0)
        memcpy(msg + sizeof h, out->results, h.image_len);
    *len_out = sizeof h + h.image_len;
    return msg;
}

/* The RESULT message of local batch id, which poll said is done (state):
 * the plain results alone when every item succeeded (bare_message), else
 * statuses, then plain results or the tpl index and images, then error
 * records. A corrupt local batch reads as every item failed. */
static unsigned char *result_message(struct server *s, uint32_t id, int state, size_t *len_out,
                                     size_t *cap_out)
{
    const struct sbatch *sb = &s->b[id];
    struct sk_pool_transport *t = s->t;
    bool tpl = s->calls[sb->slot].result_tpl;
    uint64_t rsize = s->calls[sb->slot].result_size;
    uint32_t count = sb->count;
    struct pool_batch_out out = {0};
    if (state == POOL_BATCH_DONE)
        t->ops->output(t, id, &out);
    else
        out.failed = count;
    if (out.failed == 0 && !tpl) /* every item succeeded, plain results: those alone */
        return bare_message(s, sb, &out, rsize, len_out, cap_out);
    /* Sizes first: the tpl images' total length. */
    size_t image = mpi_result_floor(count, tpl, rsize);
    unsigned char *msg = NULL;
    sk_error *errs = NULL;
    size_t n_errs = 0;
    const void **imgs = NULL;
    size_t *lens = NULL;
    void **owned = NULL;
    if (s->status_cap < count) {
        int32_t *grown = realloc(s->status, (size_t)count * sizeof *grown);
        if (grown == NULL)
            return NULL;
        s->status = grown;
        s->status_cap = count;
    }
    int32_t *status = s->status;
    for (uint32_t k = 0; k < count; k++) {
        int32_t v = state != POOL_BATCH_DONE ? SK_ECORRUPT
                    : out.failed == 0        ? SK_OK
                                             : pool_peer_load32(&out.status[k]);
        status[k] = v == SK_OK ? SK_OK : SK_EPROCESS;
    }
    if (tpl) {
        imgs = calloc(count, sizeof *imgs);
        lens = calloc(count, sizeof *lens);
        owned = calloc(count, sizeof *owned);
        if (imgs == NULL || lens == NULL || owned == NULL)
            goto fail;
        for (uint32_t k = 0; k < count; k++) {
            if (status[k] != SK_OK)
                continue;
            if (t->ops->result_image(t, id, k, &imgs[k], &lens[k], &owned[k]) != SK_OK) {
                status[k] = SK_EPROCESS;
                imgs[k] = NULL;
                lens[k] = 0;
                continue;
            }
            image += lens[k];
        }
    }
    uint32_t failed = 0;
    for (uint32_t k = 0; k < count; k++)
        failed += status[k] != SK_OK;
    if (failed > 0 && state == POOL_BATCH_DONE) {
        errs = calloc(count, sizeof *errs);
        if (errs != NULL)
            n_errs = t->ops->errors(t, id, errs, count);
        for (size_t i = 0; i < n_errs; i++)
            error_mark(s, &errs[i]);
    }
    size_t len = sizeof(struct mpi_head) + image + n_errs * sizeof(sk_error);
    msg = mpi_buf_take(&s->bufs, len, cap_out);
    if (msg == NULL)
        goto fail;
    memset(msg, 0, sizeof(struct mpi_head) + pool_results_at(count)); /* padding */
    struct mpi_head *h = (struct mpi_head *)(void *)msg;
    *h = (struct mpi_head){.kind = MPI_K_RESULT,
                           .slot = (uint32_t)sb->slot,
                           .batch = sb->remote,
                           .count = count,
                           .first = sb->first,
                           .image_len = image,
                           .failed = failed,
                           .retried = out.retried,
                           .n_errors = (uint32_t)n_errs};
    unsigned char *img = msg + sizeof *h;
    memcpy(img, status, (size_t)count * sizeof *status);
    if (tpl) {
        size_t at = pool_images_at(count);
        for (uint32_t k = 0; k < count; k++) {
            uint64_t pair[2] = {at, lens[k]};
            memcpy(img + pool_results_at(count) + 16 * (size_t)k, pair, sizeof pair);
            if (lens[k] > 0)
                memcpy(img + at, imgs[k], lens[k]);
            at += lens[k];
        }
    } else if (rsize > 0) { /* a failed item's result is zeros */
        for (uint32_t k = 0; k < count; k++)
            if (status[k] == SK_OK && state == POOL_BATCH_DONE)
                memcpy(img + pool_results_at(count) + k * rsize, out.results + k * rsize, rsize);
            else
                memset(img + pool_results_at(count) + k * rsize, 0, rsize);
    }
    if (n_errs > 0)
        memcpy(img + image, errs, n_errs * sizeof *errs);
    *len_out = len;
fail:
    for (uint32_t k = 0; owned != NULL && k < count; k++)
        free(owned[k]);
    free(owned);
    free(imgs);
    free(lens);
    free(errs);
    return msg;
}

/* The common case, a done batch whose items all succeeded with plain
 * results, large enough to go split (wire.h): its head, then its results
 * as a BODY sent straight from the local batch, which is given back when
 * MPI is done with it. False when the batch is not such a one. */
static bool send_bare_split(struct server *s, uint32_t id, int state)
{
    const struct sbatch *sb = &s->b[id];
    uint64_t rsize = s->calls[sb->slot].result_size;
    if (state != POOL_BATCH_DONE || s->calls[sb->slot].result_tpl ||
        (uint64_t)sb->count * rsize < MPI_SPLIT_MIN)
        return false;
    struct pool_batch_out out = {0};
    s->t->ops->output(s->t, id, &out);
    if (out.failed != 0)
        return false;
    size_t cap;
    unsigned char *head = mpi_buf_take(&s->bufs, sizeof(struct mpi_head), &cap);
    if (head == NULL)
        return false;
    struct mpi_head h = bare_head(sb, &out, rsize);
    h.split = 1;
    memcpy(head, &h, sizeof h);
    send_held(s, head, sizeof h, MPI_K_RESULT, head, cap, -1);
    send_held(s, out.results, (size_t)h.image_len, MPI_K_BODY, NULL, 0, id);
    return true;
}

/* Every local batch that is done goes back to rank 0. Returns how many. */
static int collect(struct server *s)
{
    int got = 0;
    for (uint32_t id = 0; id < POOL_BATCHES && s->in_flight > 0; id++) {
        if (!s->b[id].used)
            continue;
        int state = s->t->ops->poll(s->t, id);
        if (state == POOL_BATCH_PENDING)
            continue;
        if (!send_bare_split(s, id, state)) {
            size_t len = 0, cap = 0;
            unsigned char *msg = result_message(s, id, state, &len, &cap);
            if (msg != NULL)
                send_owned(s, msg, len, cap);
            s->t->ops->release(s->t, id);
        }
        s->b[id].used = false;
        s->in_flight--;
        got++;
    }
    return got;
}

/* ------------------------------------------------------------ the loop */

/* Nothing came and nothing was done: sleeps on the local pool's
 * completions when it has work (its wait also restarts a worker that
 * ended), else naps, for as long as the pace of batches says (mpi/pace.h),
 * so that an idle rank yields its CPU and a busy one answers MPI within
 * tens of microseconds. */
static void idle(struct server *s, uint32_t seen)
{
    if (s->n_sends > 0) { /* a large result moves only while we call MPI */
        sched_yield();
        return;
    }
    int64_t nap = mpi_pace_nap(&s->pace);
    if (s->in_flight > 0 && !s->terminated) {
        s->t->ops->wait(s->t, seen, sk_now_ns() + nap);
    } else {
        struct timespec ts = {0, (long)nap};
        nanosleep(&ts, NULL);
    }
}

int mpi_serve(MPI_Comm comm, sk_pool *local)
{
    struct server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return SK_ENOMEM;
    s->comm = comm;
    MPI_Comm_rank(comm, &s->rank);
    if (gethostname(s->host, sizeof s->host) != 0)
        snprintf(s->host, sizeof s->host, "?");
    s->host[sizeof s->host - 1] = '\0';
    s->local = local;
    s->t = local->t;
    s->last_sent = sk_now_ns();
    int rc = SK_OK;
    while (!s->stop) {
        uint32_t seen = s->t->ops->epoch(s->t);
        int got = 0;
        rc = receive_all(s, &got);
        if (rc != SK_OK)
            break;
        if (!s->terminated)
            got += collect(s);
        sends_reap(s);
        if (s->closing && !s->closed_said && s->in_flight == 0 &&
            (s->terminated || s->t->ops->join(s->t, sk_now_ns()) == SK_OK)) {
            struct mpi_head h = {.kind = MPI_K_CLOSED};
            send_head(s, &h, NULL);
            s->closed_said = true;
        }
        if (sk_now_ns() - s->last_sent > MPI_ALIVE_NS) {
            struct mpi_head h = {.kind = MPI_K_ALIVE};
            send_head(s, &h, NULL);
        }
        if (got > 0) {
            s->pace.nap = MPI_PACE_MIN_NS;
            continue;
        }
        if (!s->stop)
            idle(s, seen);
    }
    /* STOP (or MPI failed): the local pool goes first, so that no worker
     * outlives the rank's part of the job, then BYE. Sends from its
     * batches end before its memory goes. */
    sends_wait_all(s);
    sk_pool_terminate(local);
    for (uint32_t id = 0; id < POOL_BATCHES; id++)
        if (s->b[id].used)
            s->t->ops->release(s->t, id);
    sk_pool_release(local);
    if (rc == SK_OK) {
        struct mpi_head h = {.kind = MPI_K_BYE};
        send_head(s, &h, NULL);
    }
    sends_wait_all(s);
    mpi_bufs_free(&s->bufs);
    free(s->status);
    free(s->sends);
    free(s);
    return rc;
}
