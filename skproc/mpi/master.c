/* SPDX-License-Identifier: MIT */
/*
 * Rank 0's side of the MPI pool: a transport (pool/transport.h) whose
 * workers are the server ranks' local pools.
 *
 * A batch goes through these states:
 *
 *   FREE -take-> TAKEN -post-> QUEUED -(a rank has room)-> SENT -RESULT-> DONE
 *                                 |                          |            CORRUPT
 *                                 |                          +-split RESULT-> BODY -BODY-> DONE
 *                                 +-revoke-> TAKEN           |                 |         CORRUPT
 *                                                            +-rank died-------+-> DONE (failed)
 *   post of a batch the journal holds: TAKEN -> DONE at once
 *
 * Flow control: each rank has at most `window` batches SENT (backpressure),
 * and take hands out at most twice the ranks' windows, so the engine fills
 * the next batches while the ranks compute. Sends are nonblocking (Isend)
 * from the batch's own buffer, the item image the engine wrote after a
 * head, or split (wire.h): the head, then the items from the caller's
 * array. Results are received whole (Improbe, Mrecv) and read in place,
 * or split: after the head, the rank's next BODY, its length checked
 * first, is received straight into the caller's result array (land) or a
 * buffer after the head. No receive is ever posted ahead: nothing can be
 * written where results go before its length is known right, and nothing
 * needs cancelling when a rank dies.
 *
 * Everything MPI happens in pump(), called by epoch() and wait(), from the
 * one thread that uses the pool: it receives what arrived, sends what is
 * queued to the ranks with room, and takes a rank that was silent for
 * rank_timeout while it had work as dead.
 *
 * Trust: a result is checked against the batch's own record (rank, call,
 * first item, count) and its lengths against the message's size; one that
 * does not match is CORRUPT.
 */
#include "mpi/ranks.h"

#include "core/error.h"
#include "mpi/bufs.h"
#include "mpi/pace.h"
#include "os/clock.h"
#include "mpi/registry.h"

#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_SLICE_NS (100 * 1000 * 1000)
#define PUMP_GAP_NS (1000 * 1000 * 1000) /* rank 0 away this long: silence proves nothing */

enum mb_state { MB_FREE, MB_TAKEN, MB_QUEUED, MB_SENT, MB_BODY, MB_DONE, MB_CORRUPT };

struct mb {
    int state;
    unsigned char *buf;       /* head + item image (POOL_IMAGE_MAX) */
    const unsigned char *ref; /* plain items in the caller's array (refer), or NULL */
    int slot, rank;
    uint64_t first;
    uint32_t count;
    bool sending;
    MPI_Request sreq[2];  /* the head (and image), the body of a split send */
    unsigned char *land;  /* where its plain results belong (land), or NULL */
    bool landed;          /* its results were received there */
    unsigned char *reply; /* head + result image + error records (from bufs); a split
                           * result's head, and its body after it unless landed */
    size_t reply_len, reply_cap;
};

struct mcall {
    int queued;       /* its batches QUEUED */
    bool end_pending; /* posts no more: END goes once none is QUEUED */
    uint32_t seq;     /* the how-manieth call of the program: the journal's key */
    char name[MPI_NAME_MAX];
    uint64_t item_size, result_size;
    bool item_tpl, result_tpl;
};

struct mrank {
    int workers, pid, window;
    char host[MPI_HOST_MAX];
    int outstanding; /* batches SENT or waiting for their BODY */
    int body_for;    /* the batch whose BODY this rank sends next, or -1 */
    int64_t last_heard;
    bool awaiting; /* a reply to OPEN or CLOSE or STOP is due */
    bool dead, closed, bye, opened;
    int open_rc;
    char open_msg[256];
};

struct master {
    struct sk_pool_transport base;
    struct mpi_pace pace; /* how long to nap while results are awaited */
    MPI_Comm comm;
    int size;
    struct mrank *ranks;
    struct mb b[POOL_BATCHES];
    uint32_t free_ids[POOL_BATCHES];
    int n_free, in_use, limit;
    uint32_t queue[POOL_BATCHES]; /* QUEUED ids, oldest first (a ring) */
    int q_head, q_len;
    struct mcall calls[POOL_CALLS];
    uint32_t next_seq;
    uint32_t epoch;
    int64_t rank_timeout, last_pump;
    bool closing, terminated, stopped;
    int dead_rank; /* the first rank taken as dead, or -1 */
    char report[1024];
    struct mpi_journal *journal;
    int sends_pending;    /* batches whose Isend is not complete */
    struct mpi_bufs bufs; /* warm buffers for the messages received */
    int32_t *zeros;       /* SK_OK statuses for bare results, zeros_cap of them */
    uint32_t zeros_cap;
    size_t resumed;
    long done, failed;
};

static struct master *master_of(struct sk_pool_transport *t)
{
    return (struct master *)t;
}

static void send_small(struct master *m, int rank, const struct mpi_head *h, const void *payload,
                       size_t len);
static void send_all(struct master *m, const struct mpi_head *h, const void *payload, size_t len);
static void send_queued_batches(struct master *m);

/* A batch's reply buffer goes back to the warm ones. */
static void reply_drop(struct master *m, struct mb *b)
{
    mpi_buf_give(&m->bufs, b->reply, b->reply_cap);
    b->reply = NULL;
    b->reply_cap = 0;
}

/* ------------------------------------------------------------ the queue */

static void queue_push(struct master *m, uint32_t id)
{
    m->queue[(m->q_head + m->q_len) % POOL_BATCHES] = id;
    m->q_len++;
    m->calls[m->b[id].slot].queued++;
}

static uint32_t queue_pop(struct master *m)
{
    uint32_t id = m->queue[m->q_head];
    m->q_head = (m->q_head + 1) % POOL_BATCHES;
    m->q_len--;
    m->calls[m->b[id].slot].queued--;
    return id;
}

/* END for the calls that post no more once their last batch has left:
 * a server must have every batch of a call before it ends the call's
 * posting locally. */
static void send_ends(struct master *m)
{
    for (int slot = 0; slot < POOL_CALLS; slot++) {
        struct mcall *c = &m->calls[slot];
        if (!c->end_pending || c->queued > 0)
            continue;
        c->end_pending = false;
        struct mpi_head h = {.kind = MPI_K_END, .slot = (uint32_t)slot};
        send_all(m, &h, NULL, 0);
    }
}

/* ------------------------------------------------------------ failures */

/* A batch waiting for its BODY is not any more (it failed, or is
 * released): a BODY that still comes is dropped (on_body). */
static void body_forget(struct master *m, struct mb *b, uint32_t id)
{
    if (b->state != MB_BODY)
        return;
    if (b->rank > 0 && m->ranks[b->rank].body_for == (int)id)
        m->ranks[b->rank].body_for = -1;
}

/* A DONE batch whose every item failed with the error that cause says
 * (reason: SK_ECRASHED for items in flight on a dead rank, SK_ECANCELED
 * for items never sent). */
static void batch_fail(struct master *m, uint32_t id, int reason, const char *what)
{
    struct mb *b = &m->b[id];
    const struct mcall *c = &m->calls[b->slot];
    size_t image = mpi_result_floor(b->count, c->result_tpl, c->result_size);
    size_t len = sizeof(struct mpi_head) + image + (size_t)b->count * sizeof(sk_error);
    body_forget(m, b, id);
    b->landed = false;
    reply_drop(m, b);
    b->reply = mpi_buf_take(&m->bufs, len, &b->reply_cap);
    if (b->reply != NULL)
        memset(b->reply, 0, len);
    if (b->reply == NULL) {
        b->reply_len = 0;
        b->state = MB_CORRUPT; /* every item fails all the same */
        m->epoch++;
        return;
    }
    b->reply_len = len;
    struct mpi_head *h = (struct mpi_head *)(void *)b->reply;
    *h = (struct mpi_head){.kind = MPI_K_RESULT,
                           .slot = (uint32_t)b->slot,
                           .batch = id,
                           .count = b->count,
                           .first = b->first,
                           .image_len = image,
                           .failed = b->count,
                           .n_errors = b->count};
    int32_t *status = (int32_t *)(void *)(b->reply + sizeof *h);
    unsigned char *errs = b->reply + sizeof *h + image;
    for (uint32_t k = 0; k < b->count; k++) {
        status[k] = SK_EPROCESS;
        sk_error e;
        sk_error_set_internal(&e, SK_PROCESS_ERROR, SK_RUN, 0, reason, what);
        e.item = (long)(b->first + k);
        snprintf(e.message, sizeof e.message, "Item %" PRIu64 " %s", b->first + k, what);
        memcpy(errs + k * sizeof e, &e, sizeof e);
    }
    b->state = MB_DONE;
    m->failed += b->count;
    m->done += b->count;
    m->epoch++;
    mpi_pace_heard(&m->pace, sk_now_ns());
}

/* Appends "a-b" (or "a") to a list of item ranges within len. */
static void report_range(char *buf, size_t len, uint64_t first, uint32_t count)
{
    size_t at = strlen(buf);
    if (at + 32 >= len)
        return;
    if (count == 1)
        snprintf(buf + at, len - at, "%s%" PRIu64, at ? ", " : "", first);
    else
        snprintf(buf + at, len - at, "%s%" PRIu64 "-%" PRIu64, at ? ", " : "", first,
                 first + count - 1);
}

/* A rank died: says so on stderr, fails its batches in flight (with its
 * rank, host and pid), and from now on every batch not sent fails too:
 * the job ends (no MPI in Debian can go on without a rank). */
static void rank_died(struct master *m, int r, const char *why)
{
    struct mrank *rk = &m->ranks[r];
    if (rk->dead)
        return;
    rk->dead = true;
    char items[512] = "";
    char what[256];
    snprintf(what, sizeof what, "was in flight on rank %d (%s, pid %d) when it died", r, rk->host,
             rk->pid);
    for (uint32_t id = 0; id < POOL_BATCHES; id++) {
        struct mb *b = &m->b[id];
        if ((b->state != MB_SENT && b->state != MB_BODY) || b->rank != r)
            continue;
        report_range(items, sizeof items, b->first, b->count);
        batch_fail(m, id, SK_ECRASHED, what);
    }
    rk->outstanding = 0;
    if (m->dead_rank < 0) {
        m->dead_rank = r;
        snprintf(m->report, sizeof m->report,
                 "skproc-mpi: rank %d (%s, pid %d) died (%s); items in flight on it: %s; "
                 "the job ends",
                 r, rk->host, rk->pid, why, items[0] ? items : "none");
        fprintf(stderr, "%s\n", m->report);
        fflush(stderr);
    }
    snprintf(what, sizeof what, "was not run: rank %d died and the job ends", r);
    while (m->q_len > 0)
        batch_fail(m, queue_pop(m), SK_ECANCELED, what);
}

/* ------------------------------------------------------------ receiving */

/* Whether a RESULT message for batch b makes sense: its own record's rank,
 * call, first item and count, and lengths within the message. */
static bool result_valid(const struct master *m, const struct mb *b, int src,
                         const struct mpi_head *h, size_t len)
{
    const struct mcall *c = &m->calls[b->slot];
    if (b->state != MB_SENT || b->rank != src || h->slot != (uint32_t)b->slot ||
        h->first != b->first || h->count != b->count)
        return false;
    if (h->split) /* the head alone: bare results follow as a BODY */
        return len == sizeof *h && h->bare && h->failed == 0 && h->n_errors == 0 &&
               !c->result_tpl && h->image_len == (uint64_t)b->count * c->result_size;
    size_t rest = len - sizeof *h;
    if (h->image_len > rest || h->n_errors > b->count ||
        (rest - h->image_len) != (size_t)h->n_errors * sizeof(sk_error))
        return false;
    if (h->bare) /* every item succeeded: the plain results alone */
        return h->failed == 0 && h->n_errors == 0 && !c->result_tpl &&
               h->image_len == (uint64_t)b->count * c->result_size;
    return h->image_len >= mpi_result_floor(b->count, c->result_tpl, c->result_size);
}

/* A finished batch's message into the journal: as one unsplit message. */
static void journal_record(struct master *m, const struct mb *b)
{
    const struct mcall *c = &m->calls[b->slot];
    const struct mpi_head *h = (const struct mpi_head *)(const void *)b->reply;
    if (!h->split) {
        (void)mpi_journal_add(m->journal, c->seq, c->name, b->first, b->count, b->reply,
                              b->reply_len, NULL, 0);
        return;
    }
    struct mpi_head whole = *h;
    whole.split = 0;
    const void *body = b->landed ? (const void *)b->land : (const void *)(b->reply + sizeof *h);
    (void)mpi_journal_add(m->journal, c->seq, c->name, b->first, b->count, &whole, sizeof whole,
                          body, (size_t)h->image_len);
}

/* Batch b's answer is all in (b->reply): DONE, and in the journal when
 * every item succeeded, or CORRUPT when it made no sense; its rank owes it
 * nothing more. */
static void batch_settled(struct master *m, struct mb *b, bool valid)
{
    const struct mpi_head *h = (const struct mpi_head *)(const void *)b->reply;
    if (b->rank > 0 && m->ranks[b->rank].outstanding > 0)
        m->ranks[b->rank].outstanding--;
    if (!valid) {
        b->state = MB_CORRUPT;
        m->failed += b->count;
    } else {
        b->state = MB_DONE;
        m->failed += h->failed < b->count ? h->failed : b->count;
        if (m->journal != NULL && h->failed == 0)
            journal_record(m, b);
    }
    m->done += b->count;
    m->epoch++;
    mpi_pace_heard(&m->pace, sk_now_ns());
}

/* A valid split RESULT's head is in b->reply: the batch waits for its BODY,
 * the rank's next (on_body), to be received straight into the caller's
 * array when the engine landed the batch there, else after the head in a
 * reply buffer grown for it. */
static void body_expect(struct master *m, struct mb *b, int src)
{
    const struct mpi_head *h = (const struct mpi_head *)(const void *)b->reply;
    if (b->land == NULL) {
        size_t body = (size_t)h->image_len, cap;
        unsigned char *grown = mpi_buf_take(&m->bufs, sizeof *h + body, &cap);
        if (grown == NULL) {
            batch_settled(m, b, false); /* its BODY comes unasked: dropped */
            return;
        }
        memcpy(grown, b->reply, sizeof *h);
        reply_drop(m, b);
        b->reply = grown;
        b->reply_cap = cap;
        b->reply_len = sizeof *h + body;
    }
    b->state = MB_BODY;
    m->ranks[src].body_for = (int)(b - m->b);
}

static void on_result(struct master *m, int src, unsigned char *msg, size_t len, size_t cap)
{
    const struct mpi_head *h = (const struct mpi_head *)(void *)msg;
    if (h->batch >= POOL_BATCHES || m->b[h->batch].state != MB_SENT || m->b[h->batch].rank != src) {
        mpi_buf_give(&m->bufs, msg, cap); /* a batch given up on (terminate) */
        return;
    }
    struct mb *b = &m->b[h->batch];
    reply_drop(m, b);
    b->reply = msg;
    b->reply_len = len;
    b->reply_cap = cap;
    bool valid = result_valid(m, b, src, h, len);
    if (valid && h->split)
        body_expect(m, b, src);
    else
        batch_settled(m, b, valid);
}

/* Rank src sent something else after a split head: a server sends a head
 * and its BODY back to back, and MPI keeps them in order, so the BODY will
 * not come. Its batch is CORRUPT, and a BODY that comes after all is
 * dropped: a liar can neither hold a call with a head alone (its heartbeat
 * is another message) nor have one batch's BODY taken for another's. */
static void body_missing(struct master *m, int src)
{
    uint32_t id = (uint32_t)m->ranks[src].body_for;
    body_forget(m, &m->b[id], id);
    batch_settled(m, &m->b[id], false);
}

/* Receives a message only to drop it. */
static void drop_message(struct master *m, MPI_Message *msg, size_t n)
{
    size_t cap;
    unsigned char *buf = mpi_buf_take(&m->bufs, n > 0 ? n : 1, &cap);
    if (buf == NULL) {
        unsigned char sink[1];
        MPI_Mrecv(sink, 0, MPI_BYTE, msg, MPI_STATUS_IGNORE); /* cut short */
        return;
    }
    MPI_Mrecv(buf, (int)n, MPI_BYTE, msg, MPI_STATUS_IGNORE);
    mpi_buf_give(&m->bufs, buf, cap);
}

/* A BODY of n bytes from rank src. The one its last split head announced,
 * of the length that head said, is received straight where it belongs
 * (the caller's array or the reply buffer) and its batch is DONE; any other
 * is received only to be dropped, and the batch waiting for it is CORRUPT.
 * Its length is checked before anything is received: nothing of a wrong
 * BODY is written where results go. */
static void on_body(struct master *m, MPI_Message *msg, int src, size_t n)
{
    struct mrank *rk = &m->ranks[src];
    rk->last_heard = sk_now_ns();
    if (rk->body_for < 0) {
        drop_message(m, msg, n);
        return;
    }
    struct mb *b = &m->b[rk->body_for];
    body_forget(m, b, (uint32_t)rk->body_for);
    const struct mpi_head *h = (const struct mpi_head *)(const void *)b->reply;
    if (n != h->image_len) {
        drop_message(m, msg, n);
        batch_settled(m, b, false);
        return;
    }
    unsigned char *dst = b->land != NULL ? b->land : b->reply + sizeof *h;
    bool got = MPI_Mrecv(dst, (int)n, MPI_BYTE, msg, MPI_STATUS_IGNORE) == MPI_SUCCESS;
    if (!got && b->land != NULL)
        memset(b->land, 0, n); /* whatever MPI wrote of it */
    b->landed = got && b->land != NULL;
    batch_settled(m, b, got);
}

static void on_message(struct master *m, int src, unsigned char *msg, size_t len, size_t cap)
{
    struct mrank *rk = &m->ranks[src];
    rk->last_heard = sk_now_ns();
    if (len < sizeof(struct mpi_head)) {
        mpi_buf_give(&m->bufs, msg, cap);
        return;
    }
    const struct mpi_head *h = (const struct mpi_head *)(void *)msg;
    switch (h->kind) {
    case MPI_K_RESULT:
        on_result(m, src, msg, len, cap);
        return;
    case MPI_K_OPENED:
        rk->opened = true;
        rk->awaiting = false;
        rk->open_rc = h->rc;
        snprintf(rk->open_msg, sizeof rk->open_msg, "%.*s", (int)(len - sizeof *h),
                 (const char *)(msg + sizeof *h));
        break;
    case MPI_K_CLOSED:
        rk->closed = true;
        rk->awaiting = false;
        break;
    case MPI_K_BYE:
        rk->bye = true;
        rk->awaiting = false;
        break;
    default: /* ALIVE: only last_heard */
        break;
    }
    mpi_buf_give(&m->bufs, msg, cap);
}

static void receive_all(struct master *m)
{
    for (;;) {
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        if (MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, m->comm, &flag, &msg, &st) != MPI_SUCCESS ||
            !flag)
            return;
        int n = 0;
        MPI_Get_count(&st, MPI_BYTE, &n);
        size_t len = n > 0 ? (size_t)n : 0;
        int src = st.MPI_SOURCE;
        if (src <= 0 || src >= m->size) { /* no server rank's */
            drop_message(m, &msg, len);
            continue;
        }
        if (st.MPI_TAG == MPI_K_BODY) {
            on_body(m, &msg, src, len);
            continue;
        }
        if (m->ranks[src].body_for >= 0)
            body_missing(m, src);
        size_t cap;
        unsigned char *buf = mpi_buf_take(&m->bufs, len > 0 ? len : 1, &cap);
        if (buf == NULL) {
            drop_message(m, &msg, len);
            continue;
        }
        MPI_Mrecv(buf, n, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
        on_message(m, src, buf, len, cap);
    }
}

/* ------------------------------------------------------------ sending */

/* The live rank with room that has the fewest batches per window in
 * flight, or -1. */
static int rank_with_room(const struct master *m)
{
    int best = -1;
    for (int r = 1; r < m->size; r++) {
        const struct mrank *rk = &m->ranks[r];
        if (rk->dead || rk->outstanding >= rk->window)
            continue;
        if (best < 0 || (long)rk->outstanding * m->ranks[best].window <
                            (long)m->ranks[best].outstanding * rk->window)
            best = r;
    }
    return best;
}

static size_t item_image_len(const struct master *m, const struct mb *b)
{
    const struct mcall *c = &m->calls[b->slot];
    const unsigned char *img = b->buf + sizeof(struct mpi_head);
    if (!c->item_tpl)
        return (size_t)b->count * c->item_size;
    uint64_t end;
    memcpy(&end, img + (size_t)b->count * sizeof(uint64_t), sizeof end);
    return end <= POOL_IMAGE_MAX ? (size_t)end : POOL_IMAGE_MAX;
}

/* Batch b to rank r without blocking: its head and item image as one
 * message, or, for plain items in the caller's array (refer) large enough,
 * split: the head, then the items as they lie (wire.h). */
static int send_batch(struct master *m, struct mb *b, int r)
{
    size_t items = item_image_len(m, b);
    struct mpi_head *h = (struct mpi_head *)(void *)b->buf;
    b->sreq[0] = b->sreq[1] = MPI_REQUEST_NULL;
    if (b->ref != NULL && items < MPI_SPLIT_MIN) { /* small: one message is cheaper */
        memcpy(b->buf + sizeof *h, b->ref, items);
        b->ref = NULL;
    }
    h->split = b->ref != NULL;
    if (!h->split)
        return MPI_Isend(b->buf, (int)(sizeof *h + items), MPI_BYTE, r, MPI_K_BATCH, m->comm,
                         &b->sreq[0]);
    int rc = MPI_Isend(b->buf, (int)sizeof *h, MPI_BYTE, r, MPI_K_BATCH, m->comm, &b->sreq[0]);
    if (rc != MPI_SUCCESS) {
        b->sreq[0] = MPI_REQUEST_NULL;
        return rc;
    }
    rc = MPI_Isend(b->ref, (int)items, MPI_BYTE, r, MPI_K_BODY, m->comm, &b->sreq[1]);
    if (rc != MPI_SUCCESS)
        b->sreq[1] = MPI_REQUEST_NULL;
    return rc;
}

static void send_queued(struct master *m)
{
    send_queued_batches(m);
    send_ends(m);
}

static void send_queued_batches(struct master *m)
{
    while (m->q_len > 0) {
        int r = rank_with_room(m);
        if (r < 0)
            return;
        uint32_t id = queue_pop(m);
        struct mb *b = &m->b[id];
        if (send_batch(m, b, r) != MPI_SUCCESS) {
            b->sending = true; /* what was sent is settled at release */
            m->sends_pending++;
            rank_died(m, r, "sending to it failed");
            batch_fail(m, id, SK_ECANCELED, "was not run: sending it failed");
            continue;
        }
        b->sending = true;
        m->sends_pending++;
        b->state = MB_SENT;
        b->rank = r;
        m->ranks[r].outstanding++;
        if (m->ranks[r].outstanding == 1)
            m->ranks[r].last_heard = sk_now_ns(); /* its silence counts from now */
    }
}

static void send_small(struct master *m, int rank, const struct mpi_head *h, const void *payload,
                       size_t len)
{
    if (m->ranks[rank].dead)
        return;
    unsigned char *buf = malloc(sizeof *h + len);
    if (buf == NULL)
        return;
    memcpy(buf, h, sizeof *h);
    if (len > 0)
        memcpy(buf + sizeof *h, payload, len);
    if (MPI_Send(buf, (int)(sizeof *h + len), MPI_BYTE, rank, (int)h->kind, m->comm) != MPI_SUCCESS)
        rank_died(m, rank, "sending to it failed");
    free(buf);
}

static void send_all(struct master *m, const struct mpi_head *h, const void *payload, size_t len)
{
    for (int r = 1; r < m->size; r++)
        send_small(m, r, h, payload, len);
}

/* Silent ranks that owe an answer are dead. When rank 0 itself was away
 * (the caller did other things), silence proves nothing: it counts again. */
static void check_silence(struct master *m, int64_t now)
{
    if (now - m->last_pump > PUMP_GAP_NS)
        for (int r = 1; r < m->size; r++)
            m->ranks[r].last_heard = now;
    m->last_pump = now;
    for (int r = 1; r < m->size; r++) {
        struct mrank *rk = &m->ranks[r];
        if (!rk->dead && (rk->outstanding > 0 || rk->awaiting) &&
            now - rk->last_heard > m->rank_timeout) {
            char why[96];
            snprintf(why, sizeof why, "silent for %.1f s", (double)(now - rk->last_heard) / 1e9);
            rank_died(m, r, why);
        }
    }
}

/* Whether both of a batch's sends (head, body) are complete. */
static bool sends_done(struct mb *b)
{
    int head = 0, body = 0;
    MPI_Test(&b->sreq[0], &head, MPI_STATUS_IGNORE);
    MPI_Test(&b->sreq[1], &body, MPI_STATUS_IGNORE);
    return head && body;
}

/* Completes the batches' Isends that are done. A large message moves
 * only while both sides call MPI (rendezvous), so while one is pending,
 * rank 0 does not sleep (see nap). */
static void test_sends(struct master *m)
{
    for (int i = 0; i < POOL_BATCHES && m->sends_pending > 0; i++) {
        struct mb *b = &m->b[i];
        if (b->sending && sends_done(b)) {
            b->sending = false;
            m->sends_pending--;
        }
    }
}

/* Whether a rank has announced a BODY that has not come yet. */
static bool body_due(const struct master *m)
{
    for (int r = 1; r < m->size; r++)
        if (m->ranks[r].body_for >= 0)
            return true;
    return false;
}

/* Between two looks: a yield while a send or a BODY is moving (it moves
 * only while both sides call MPI), else a nap paced by how often results come
 * (mpi/pace.h): results that come often are seen within tens of
 * microseconds, and slow items cost rank 0 a wake-up a millisecond. */
static void nap(struct master *m)
{
    if (m->sends_pending > 0 || body_due(m)) {
        sched_yield();
        return;
    }
    struct timespec ts = {0, (long)mpi_pace_nap(&m->pace)};
    nanosleep(&ts, NULL);
}

static void pump(struct master *m)
{
    receive_all(m);
    test_sends(m);
    check_silence(m, sk_now_ns());
    if (!m->terminated)
        send_queued(m);
}

/* Pumps until done(m, ctx) or a rank owes an answer past rank_timeout. */
static void pump_until(struct master *m, bool (*done)(struct master *, void *), void *ctx,
                       int64_t deadline)
{
    while (!done(m, ctx) && sk_now_ns() < deadline) {
        pump(m);
        if (done(m, ctx))
            return;
        nap(m);
    }
}

/* ------------------------------------------------------------ calls */

static bool all_opened(struct master *m, void *ctx)
{
    (void)ctx;
    for (int r = 1; r < m->size; r++)
        if (!m->ranks[r].dead && m->ranks[r].awaiting)
            return false;
    return true;
}

static int m_open_call(struct sk_pool_transport *t, int slot, const struct pool_job *job,
                       const void *arg, size_t arg_size)
{
    struct master *m = master_of(t);
    if (m->dead_rank >= 0)
        return sk_refuse(SK_EPROCESS, "%s", m->report);
    const char *name = mpi_job_name_of(job);
    if (name == NULL)
        return sk_refuse(SK_EINVAL, "skproc-mpi: the job is not registered: register it by name "
                                    "with sk_mpi_register_job on every rank before sk_mpi_start");
    size_t len = sizeof(struct mpi_open) + arg_size;
    struct mpi_open *o = calloc(1, len);
    if (o == NULL)
        return SK_ENOMEM;
    snprintf(o->name, sizeof o->name, "%s", name);
    o->job = *job;
    o->arg_size = arg_size;
    if (arg_size > 0)
        memcpy(o + 1, arg, arg_size);
    struct mpi_head h = {.kind = MPI_K_OPEN, .slot = (uint32_t)slot};
    for (int r = 1; r < m->size; r++) {
        m->ranks[r].opened = false;
        m->ranks[r].awaiting = !m->ranks[r].dead;
        m->ranks[r].last_heard = sk_now_ns();
    }
    send_all(m, &h, o, len);
    free(o);
    pump_until(m, all_opened, NULL, INT64_MAX);
    int rc = SK_OK;
    for (int r = 1; r < m->size && rc == SK_OK; r++) {
        struct mrank *rk = &m->ranks[r];
        if (rk->dead)
            rc = sk_refuse(SK_EPROCESS, "%s", m->report);
        else if (rk->open_rc != SK_OK)
            rc = sk_refuse(rk->open_rc, "skproc-mpi: rank %d (%s): %s", r, rk->host, rk->open_msg);
    }
    if (rc != SK_OK) {
        struct mpi_head end = {.kind = MPI_K_END, .slot = (uint32_t)slot};
        send_all(m, &end, NULL, 0);
        return rc;
    }
    struct mcall *c = &m->calls[slot];
    c->queued = 0;
    c->end_pending = false;
    c->seq = m->next_seq++;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->item_size = job->item_size;
    c->result_size = job->result_size;
    c->item_tpl = job->item_tpl != 0;
    c->result_tpl = job->result_tpl != 0;
    return SK_OK;
}

static void m_end_posting(struct sk_pool_transport *t, int slot)
{
    struct master *m = master_of(t);
    m->calls[slot].end_pending = true;
    send_ends(m);
}

/* ------------------------------------------------------------ batches */

static int m_take(struct sk_pool_transport *t, struct pool_batch_in *in)
{
    struct master *m = master_of(t);
    if (m->n_free == 0 || m->in_use >= m->limit)
        return SK_EFULL;
    uint32_t id = m->free_ids[m->n_free - 1];
    struct mb *b = &m->b[id];
    if (b->buf == NULL && (b->buf = malloc(sizeof(struct mpi_head) + POOL_IMAGE_MAX)) == NULL)
        return SK_EFULL;
    m->n_free--;
    m->in_use++;
    b->state = MB_TAKEN;
    b->ref = NULL;
    b->land = NULL;
    b->landed = false;
    in->id = id;
    in->items = b->buf + sizeof(struct mpi_head);
    in->cap = POOL_IMAGE_MAX;
    return SK_OK;
}

static int m_post(struct sk_pool_transport *t, uint32_t id, int slot, uint64_t first,
                  uint32_t count)
{
    struct master *m = master_of(t);
    struct mb *b = &m->b[id];
    b->slot = slot;
    b->first = first;
    b->count = count;
    b->rank = -1;
    struct mpi_head *h = (struct mpi_head *)(void *)b->buf;
    *h = (struct mpi_head){
        .kind = MPI_K_BATCH, .slot = (uint32_t)slot, .batch = id, .count = count, .first = first};
    if (m->dead_rank >= 0) {
        batch_fail(m, id, SK_ECANCELED, "was not run: a rank died and the job ends");
        return SK_OK;
    }
    const struct mcall *c = &m->calls[slot];
    size_t len;
    const void *old = m->journal != NULL
                          ? mpi_journal_find(m->journal, c->seq, c->name, first, count, &len)
                          : NULL;
    if (old != NULL && len >= sizeof *h) {
        reply_drop(m, b);
        if ((b->reply = mpi_buf_take(&m->bufs, len, &b->reply_cap)) != NULL) {
            memcpy(b->reply, old, len);
            b->reply_len = len;
            struct mpi_head *rh = (struct mpi_head *)(void *)b->reply;
            rh->batch = id;
            b->state = MB_SENT; /* as if rank rh's answer had come */
            b->rank = -1;
            /* a record is a whole message, as journal_record writes it */
            if (!rh->split && result_valid(m, b, -1, rh, len)) {
                b->state = MB_DONE;
                m->resumed += count;
                m->done += count;
                m->epoch++;
                return SK_OK;
            }
            reply_drop(m, b);
        }
    }
    h->image_len = item_image_len(m, b);
    b->state = MB_QUEUED;
    queue_push(m, id);
    return SK_OK;
}

/* The engine's plain items, sent from where they lie (send_batch). */
static void m_refer(struct sk_pool_transport *t, uint32_t id, const void *items)
{
    master_of(t)->b[id].ref = items;
}

/* Where the batch's plain results belong: a split RESULT's BODY is
 * received there (body_expect). */
static void m_land(struct sk_pool_transport *t, uint32_t id, void *results)
{
    master_of(t)->b[id].land = results;
}

static void m_flush(struct sk_pool_transport *t)
{
    struct master *m = master_of(t);
    if (!m->terminated)
        send_queued(m);
}

static int m_poll(struct sk_pool_transport *t, uint32_t id)
{
    struct master *m = master_of(t);
    switch (m->b[id].state) {
    case MB_DONE:
        return POOL_BATCH_DONE;
    case MB_CORRUPT:
        return POOL_BATCH_CORRUPT;
    default:
        return POOL_BATCH_PENDING;
    }
}

static uint32_t m_epoch(struct sk_pool_transport *t)
{
    struct master *m = master_of(t);
    pump(m);
    return m->epoch;
}

static int m_wait(struct sk_pool_transport *t, uint32_t seen, int64_t deadline)
{
    struct master *m = master_of(t);
    int64_t start = sk_now_ns();
    if (start >= deadline)
        return SK_ETIMEDOUT;
    for (;;) {
        pump(m);
        int64_t now = sk_now_ns();
        if (m->epoch != seen || now >= deadline || now - start >= WAIT_SLICE_NS)
            return SK_OK;
        nap(m);
    }
}

/* count SK_OK statuses (zeros) for a bare result. */
static const int32_t *bare_statuses(struct master *m, uint32_t count)
{
    if (m->zeros_cap < count) {
        int32_t *grown = calloc(count, sizeof *grown);
        if (grown == NULL)
            return m->zeros; /* unread all the same: failed is 0 */
        free(m->zeros);
        m->zeros = grown;
        m->zeros_cap = count;
    }
    return m->zeros;
}

static const unsigned char *reply_image(const struct mb *b)
{
    return b->reply + sizeof(struct mpi_head);
}

static void m_output(struct sk_pool_transport *t, uint32_t id, struct pool_batch_out *out)
{
    struct master *m = master_of(t);
    const struct mb *b = &m->b[id];
    const struct mpi_head *h = (const struct mpi_head *)(const void *)b->reply;
    const unsigned char *img = reply_image(b);
    if (h->bare) { /* failed is 0: the engine reads no status (statuses stay zeros) */
        out->status = bare_statuses(m, b->count);
        out->results = b->landed ? b->land : img;
        out->failed = 0;
        out->retried = h->retried < b->count ? h->retried : b->count;
        return;
    }
    out->status = (const int32_t *)(const void *)img;
    out->results = img + pool_results_at(b->count);
    out->failed = h->failed;
    out->retried = h->retried < b->count ? h->retried : b->count;
}

static int m_result_image(struct sk_pool_transport *t, uint32_t id, uint32_t k, const void **img,
                          size_t *len, void **owned)
{
    struct master *m = master_of(t);
    const struct mb *b = &m->b[id];
    const struct mpi_head *h = (const struct mpi_head *)(const void *)b->reply;
    *owned = NULL;
    if (k >= b->count)
        return SK_ECORRUPT;
    const unsigned char *image = reply_image(b);
    uint64_t at, n;
    memcpy(&at, image + pool_results_at(b->count) + 16 * (size_t)k, sizeof at);
    memcpy(&n, image + pool_results_at(b->count) + 16 * (size_t)k + 8, sizeof n);
    if (at < pool_images_at(b->count) || at > h->image_len || n > h->image_len - at)
        return SK_ECORRUPT;
    *img = image + at;
    *len = (size_t)n;
    return SK_OK;
}

static size_t m_errors(struct sk_pool_transport *t, uint32_t id, sk_error *out, size_t room)
{
    struct master *m = master_of(t);
    const struct mb *b = &m->b[id];
    const struct mpi_head *h = (const struct mpi_head *)(const void *)b->reply;
    if (h->n_errors == 0) /* a split reply holds its head alone */
        return 0;
    const unsigned char *recs = reply_image(b) + h->image_len;
    size_t got = 0;
    for (uint32_t i = 0; i < h->n_errors && got < room; i++) {
        sk_error e;
        memcpy(&e, recs + (size_t)i * sizeof e, sizeof e);
        if (e.item < 0 || (uint64_t)e.item < b->first || (uint64_t)e.item - b->first >= b->count)
            continue;
        e.message[sizeof e.message - 1] = '\0';
        e.cause[sizeof e.cause - 1] = '\0';
        long item = e.item;
        if ((unsigned)e.kind > SK_CRASH_ERROR || (unsigned)e.section > SK_FULL_RUN)
            sk_error_set_internal(&e, SK_PROCESS_ERROR, SK_RUN, 0, SK_ECORRUPT,
                                  "the rank's error record is corrupt");
        sk_error_sanitize(&e);
        e.item = item;
        out[got++] = e;
    }
    return got;
}

/* Done with a batch's Isends. To a live rank they complete (the rank has
 * answered, or was told to terminate); to a dead rank they may never: the
 * requests are let go and so is the buffer MPI may still read (leaked on
 * purpose: a dead rank ends the job). */
static void send_settle(struct master *m, struct mb *b)
{
    b->sending = false;
    m->sends_pending--;
    if (sends_done(b))
        return;
    for (int i = 0; i < 2; i++) {
        if (b->sreq[i] == MPI_REQUEST_NULL)
            continue;
        if (b->rank > 0 && m->ranks[b->rank].dead) {
            MPI_Request_free(&b->sreq[i]);
            b->buf = NULL;
            continue;
        }
        if (m->terminated)
            MPI_Cancel(&b->sreq[i]);
        MPI_Wait(&b->sreq[i], MPI_STATUS_IGNORE);
    }
}

static void m_release(struct sk_pool_transport *t, uint32_t id)
{
    struct master *m = master_of(t);
    struct mb *b = &m->b[id];
    if (b->state == MB_FREE)
        return;
    if (b->state == MB_QUEUED) { /* only after terminate: out of the queue */
        for (int i = 0; i < m->q_len; i++) {
            int at = (m->q_head + i) % POOL_BATCHES;
            if (m->queue[at] != id)
                continue;
            for (int j = i; j + 1 < m->q_len; j++)
                m->queue[(m->q_head + j) % POOL_BATCHES] =
                    m->queue[(m->q_head + j + 1) % POOL_BATCHES];
            m->q_len--;
            m->calls[b->slot].queued--;
            break;
        }
    }
    if ((b->state == MB_SENT || b->state == MB_BODY) && b->rank > 0 &&
        m->ranks[b->rank].outstanding > 0)
        m->ranks[b->rank].outstanding--;
    body_forget(m, b, id);
    if (b->sending)
        send_settle(m, b);
    reply_drop(m, b);
    b->state = MB_FREE;
    m->free_ids[m->n_free++] = id;
    m->in_use--;
}

/* The batches' buffers stay (at most `limit` of them, only their written
 * pages take memory): taking them afresh costs a page fault per 4 KiB at
 * the next call. */
static void m_idle(struct sk_pool_transport *t)
{
    (void)t;
}

static bool m_revoke(struct sk_pool_transport *t, uint32_t id)
{
    struct master *m = master_of(t);
    if (m->b[id].state != MB_QUEUED)
        return false;
    m_release(t, id); /* out of the queue, then taken again: the engine's to release */
    m->b[id].state = MB_TAKEN;
    m->n_free--;
    m->in_use++;
    send_ends(m);
    return true;
}

static int m_notify_fd(struct sk_pool_transport *t)
{
    (void)t;
    return -1;
}

static void m_notify_clear(struct sk_pool_transport *t)
{
    (void)t;
}

static int m_control(struct sk_pool_transport *t, uint32_t id, uint32_t k, bool kill)
{
    struct master *m = master_of(t);
    struct mb *b = &m->b[id];
    if (b->state != MB_SENT)
        return SK_ESTATE;
    struct mpi_head h = {.kind = MPI_K_CONTROL, .batch = id, .k = k, .kill = kill};
    send_small(m, b->rank, &h, NULL, 0);
    return SK_OK;
}

/* ------------------------------------------------------------ workers */

static void m_close(struct sk_pool_transport *t)
{
    struct master *m = master_of(t);
    if (m->closing)
        return;
    m->closing = true;
    struct mpi_head h = {.kind = MPI_K_CLOSE};
    send_all(m, &h, NULL, 0);
}

static void m_terminate(struct sk_pool_transport *t)
{
    struct master *m = master_of(t);
    m->terminated = m->closing = true;
    struct mpi_head h = {.kind = MPI_K_TERMINATE};
    send_all(m, &h, NULL, 0);
}

static bool all_closed(struct master *m, void *ctx)
{
    (void)ctx;
    for (int r = 1; r < m->size; r++)
        if (!m->ranks[r].dead && !m->ranks[r].closed)
            return false;
    return true;
}

static int m_join(struct sk_pool_transport *t, int64_t deadline)
{
    struct master *m = master_of(t);
    for (int r = 1; r < m->size; r++)
        m->ranks[r].awaiting = !m->ranks[r].closed && !m->ranks[r].dead;
    pump_until(m, all_closed, NULL, deadline);
    return all_closed(m, NULL) ? SK_OK : SK_ETIMEDOUT;
}

static void m_counters(struct sk_pool_transport *t, sk_pool_counters *out)
{
    struct master *m = master_of(t);
    long flight = 0;
    for (int i = 0; i < POOL_BATCHES; i++)
        if (m->b[i].state == MB_QUEUED || m->b[i].state == MB_SENT || m->b[i].state == MB_BODY)
            flight += m->b[i].count;
    out->done = m->done;
    out->failed = m->failed < m->done ? m->failed : m->done;
    out->in_flight = flight;
}

static bool all_bye(struct master *m, void *ctx)
{
    (void)ctx;
    for (int r = 1; r < m->size; r++)
        if (!m->ranks[r].dead && !m->ranks[r].bye)
            return false;
    return true;
}

/* Stops every live server rank (each releases its local pool and says
 * BYE) unless a rank died: then nothing can end cleanly, and sk_mpi_stop
 * aborts. */
static void m_destroy(struct sk_pool_transport *t)
{
    struct master *m = master_of(t);
    if (m->dead_rank < 0 && !m->stopped) {
        m->stopped = true;
        struct mpi_head h = {.kind = MPI_K_STOP};
        send_all(m, &h, NULL, 0);
        for (int r = 1; r < m->size; r++)
            m->ranks[r].awaiting = !m->ranks[r].dead;
        pump_until(m, all_bye, NULL, INT64_MAX);
    }
    for (int i = 0; i < POOL_BATCHES; i++) {
        struct mb *b = &m->b[i];
        if (b->sending)
            send_settle(m, b);
        free(b->buf);
        reply_drop(m, b);
    }
    mpi_bufs_free(&m->bufs);
    free(m->zeros);
    mpi_journal_close(m->journal);
    free(m->ranks);
    free(m);
}

static const struct pool_transport_ops master_ops = {
    .open_call = m_open_call,
    .end_posting = m_end_posting,
    .take = m_take,
    .post = m_post,
    .refer = m_refer,
    .land = m_land,
    .flush = m_flush,
    .poll = m_poll,
    .epoch = m_epoch,
    .wait = m_wait,
    .output = m_output,
    .result_image = m_result_image,
    .errors = m_errors,
    .release = m_release,
    .idle = m_idle,
    .revoke = m_revoke,
    .notify_fd = m_notify_fd,
    .notify_clear = m_notify_clear,
    .control = m_control,
    .close = m_close,
    .terminate = m_terminate,
    .join = m_join,
    .counters = m_counters,
    .destroy = m_destroy,
};

int mpi_master_create(struct sk_pool_transport **out, const struct mpi_master_setup *setup)
{
    struct master *m = calloc(1, sizeof *m);
    if (m == NULL)
        return SK_ENOMEM;
    m->ranks = calloc((size_t)setup->size, sizeof *m->ranks);
    if (m->ranks == NULL) {
        free(m);
        return SK_ENOMEM;
    }
    m->base.ops = &master_ops;
    m->comm = setup->comm;
    m->size = setup->size;
    m->rank_timeout = setup->rank_timeout;
    m->journal = setup->journal;
    m->dead_rank = -1;
    m->last_pump = sk_now_ns();
    int windows = 0;
    for (int r = 1; r < m->size; r++) {
        struct mrank *rk = &m->ranks[r];
        const struct mpi_hello *h = &setup->hellos[r];
        rk->workers = h->workers > 0 ? h->workers : 1;
        rk->pid = h->pid;
        snprintf(rk->host, sizeof rk->host, "%.*s", MPI_HOST_MAX - 1, h->host);
        rk->window = setup->window > 0 ? setup->window : 2 * rk->workers + 2;
        rk->last_heard = m->last_pump;
        rk->body_for = -1;
        m->base.workers += rk->workers;
        windows += rk->window;
    }
    m->limit = 2 * windows < POOL_BATCHES ? 2 * windows : POOL_BATCHES;
    for (int i = 0; i < POOL_BATCHES; i++)
        m->free_ids[i] = (uint32_t)(POOL_BATCHES - 1 - i);
    m->n_free = POOL_BATCHES;
    *out = &m->base;
    return SK_OK;
}

bool mpi_master_dead(struct sk_pool_transport *t, char *report, size_t len)
{
    struct master *m = master_of(t);
    if (m->dead_rank < 0)
        return false;
    snprintf(report, len, "%s", m->report);
    return true;
}

size_t mpi_master_resumed(struct sk_pool_transport *t)
{
    return master_of(t)->resumed;
}
