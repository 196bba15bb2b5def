/* SPDX-License-Identifier: MIT */
/*
 * A server rank that lies, under `mpirun -n 3`: rank 1 serves as usual,
 * rank 2 is a forged server written here on raw MPI. It makes the same
 * start as sk_mpi_start (the duplicated communicator, the hello, the go)
 * and then answers every batch in one of several wrong ways, in turn:
 * messages shorter than a head, results for batches that do not exist or
 * are another rank's, wrong counts and first items, lengths past the
 * message, error records with unterminated strings and unknown kinds,
 * statuses that are no code, unasked OPENED and ALIVE messages, split
 * results (wire.h) whose BODY is longer or shorter than their head says,
 * BODY messages no head announced, split heads that are not bare, once a
 * split head whose BODY never comes (the batch ends as corrupt at the
 * liar's next message, and the next batch's BODY is not taken for it);
 * and now and then a right answer, whole or split. Rank 0 must never crash
 * or hang: each map ends, every item is SK_OK with the right result or
 * failed with a documented code and its result untouched (nothing of a
 * wrong BODY is written to the caller's array), kept errors are well
 * formed, and the stop completes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "skproc.h"
#include "skproc/mpi.h"
#include "support.h"

#include "mpi/wire.h"

#include <unistd.h>

#define N_ITEMS 3000
#define FORGED_RANK 2
#define NO_BODY_AT 20 /* the liar's batch whose BODY never comes */

static sk_pool *mpool;

static int triple(const void *item, void *result, const void *arg)
{
    (void)arg;
    *(int32_t *)result = 3 * *(const int32_t *)item + 1;
    return 0;
}

static const sk_pool_job triple_job = {
    .fn = triple, .item_size = sizeof(int32_t), .result_size = sizeof(int32_t)};

/* ------------------------------------------------------- the liar */

static MPI_Comm comm;

static void say(const struct mpi_head *h, const void *body, size_t len)
{
    unsigned char *msg = malloc(sizeof *h + len);
    if (msg == NULL)
        abort();
    memcpy(msg, h, sizeof *h);
    if (len > 0)
        memcpy(msg + sizeof *h, body, len);
    MPI_Send(msg, (int)(sizeof *h + len), MPI_BYTE, 0, (int)h->kind, comm);
    free(msg);
}

/* A BODY message of len bytes (wire.h). */
static void say_body(const void *body, size_t len)
{
    MPI_Send(body, (int)len, MPI_BYTE, 0, MPI_K_BODY, comm);
}

/* The right answer to a batch: every item tripled, bare; split (the head,
 * then a BODY of extra + count results, extra < 0 cutting it short) when
 * split is set. */
static void answer_split(const struct mpi_head *batch, const unsigned char *items, bool split,
                         int extra)
{
    int32_t *out = calloc(batch->count + 8, sizeof *out);
    if (out == NULL)
        abort();
    for (uint32_t k = 0; k < batch->count; k++) {
        int32_t x;
        memcpy(&x, items + (size_t)k * sizeof x, sizeof x);
        out[k] = 3 * x + 1;
    }
    struct mpi_head h = {.kind = MPI_K_RESULT,
                         .slot = batch->slot,
                         .batch = batch->batch,
                         .count = batch->count,
                         .first = batch->first,
                         .image_len = (uint64_t)batch->count * sizeof *out,
                         .bare = 1,
                         .split = split};
    if (split) {
        say(&h, NULL, 0);
        say_body(out, (size_t)((int)batch->count + extra) * sizeof *out);
    } else {
        say(&h, out, h.image_len);
    }
    free(out);
}

static void answer(const struct mpi_head *batch, const unsigned char *items)
{
    answer_split(batch, items, false, 0);
}

/* A non-bare RESULT for batch whose statuses are all `status`, with
 * n_errors error records of garbage (kind 99, unterminated strings). */
static void answer_failed(const struct mpi_head *batch, int32_t status, uint32_t n_errors)
{
    size_t image = mpi_result_floor(batch->count, 0, sizeof(int32_t));
    size_t len = image + (size_t)n_errors * sizeof(sk_error);
    unsigned char *body = calloc(1, len);
    if (body == NULL)
        abort();
    for (uint32_t k = 0; k < batch->count; k++)
        memcpy(body + (size_t)k * sizeof status, &status, sizeof status);
    for (uint32_t i = 0; i < n_errors; i++) {
        sk_error *e = (sk_error *)(void *)(body + image + (size_t)i * sizeof(sk_error));
        memset(e, 'E', sizeof *e);
        e->kind = (sk_error_kind)99;
        e->item = (long)(batch->first + i % (batch->count + 2)); /* some outside the batch */
    }
    struct mpi_head h = {.kind = MPI_K_RESULT,
                         .slot = batch->slot,
                         .batch = batch->batch,
                         .count = batch->count,
                         .first = batch->first,
                         .image_len = image,
                         .failed = batch->count,
                         .n_errors = n_errors};
    say(&h, body, len);
    free(body);
}

/* The lie for the n-th batch. Those that leave the batch unanswered are
 * followed by the right answer, so that rank 0 does not take the rank for
 * dead; the others end the batch their way. */
static void lie(unsigned n, const struct mpi_head *batch, const unsigned char *items)
{
    struct mpi_head h = *batch;
    h.kind = MPI_K_RESULT;
    if (n == NO_BODY_AT) { /* once: a right split head, and its BODY never comes */
        h.bare = 1;
        h.split = 1;
        h.image_len = (uint64_t)h.count * sizeof(int32_t);
        say(&h, NULL, 0);
        return;
    }
    switch (n % 13) {
    case 0:
        answer(batch, items);
        return;
    case 1: { /* shorter than a head */
        unsigned char three[3] = {MPI_K_RESULT, 0, 0};
        MPI_Send(three, 3, MPI_BYTE, 0, MPI_K_RESULT, comm);
        break;
    }
    case 2: /* a batch that does not exist, then one that is not this rank's */
        h.batch = POOL_BATCHES + 7;
        say(&h, NULL, 0);
        h.batch = (batch->batch + 1) % POOL_BATCHES;
        h.bare = 1;
        h.image_len = (uint64_t)h.count * sizeof(int32_t);
        say(&h, items, h.image_len);
        break;
    case 3: /* unasked messages: OPENED for a slot never opened, ALIVE with bytes */
        h.kind = MPI_K_OPENED;
        h.slot = 250;
        h.rc = SK_OK;
        say(&h, "unterminated", 12);
        h.kind = MPI_K_ALIVE;
        say(&h, items, 64);
        break;
    case 4: /* a count that is not the batch's: the batch is corrupt */
        h.count = batch->count + 1;
        h.bare = 1;
        h.image_len = (uint64_t)h.count * sizeof(int32_t);
        say(&h, items, (size_t)batch->count * sizeof(int32_t));
        return;
    case 5: /* an image longer than the message */
        h.bare = 1;
        h.image_len = UINT64_C(1) << 62;
        say(&h, items, 16);
        return;
    case 6: /* every item failed, with error records of garbage */
        answer_failed(batch, SK_EPROCESS, batch->count);
        return;
    case 7: /* statuses that are no code */
        answer_failed(batch, 123456, 0);
        return;
    case 8: /* n_errors past the count */
        h.bare = 0;
        h.failed = 1;
        h.n_errors = batch->count + 5;
        h.image_len = 0;
        say(&h, NULL, 0);
        return;
    case 9: /* right, split: received into the caller's array */
        answer_split(batch, items, true, 0);
        return;
    case 10: /* split, with a BODY longer than the head says: corrupt */
        answer_split(batch, items, true, 3);
        return;
    case 11: /* split, with a BODY shorter than the head says: corrupt */
        answer_split(batch, items, true, -1);
        return;
    default: /* a BODY no head announced; a split head that is not bare, and its BODY */
        say_body(items, 64);
        h.split = 1;
        h.bare = 0;
        h.failed = 1;
        h.image_len = (uint64_t)h.count * sizeof(int32_t);
        say(&h, NULL, 0);
        say_body(items, (size_t)h.image_len);
        return;
    }
    answer(batch, items);
}

/* sk_mpi_start's MPI steps on a server rank, then the loop: OPEN, BATCH,
 * CLOSE and STOP are answered (BATCH by a lie), the rest ignored. */
static int forged_server(int *argc, char ***argv)
{
    MPI_Init(argc, argv);
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    struct mpi_hello hello = {.workers = 1, .pid = getpid()};
    snprintf(hello.host, sizeof hello.host, "liar");
    MPI_Gather(&hello, (int)sizeof hello, MPI_BYTE, NULL, 0, MPI_BYTE, 0, comm);
    int go = 0;
    MPI_Bcast(&go, 1, MPI_INT, 0, comm);
    unsigned batches = 0;
    while (go) {
        MPI_Status st;
        MPI_Probe(0, MPI_ANY_TAG, comm, &st);
        int n = 0;
        MPI_Get_count(&st, MPI_BYTE, &n);
        unsigned char *msg = malloc(n > 0 ? (size_t)n : 1);
        if (msg == NULL)
            abort();
        MPI_Recv(msg, n, MPI_BYTE, 0, st.MPI_TAG, comm, MPI_STATUS_IGNORE);
        struct mpi_head h = {0};
        if ((size_t)n >= sizeof h)
            memcpy(&h, msg, sizeof h);
        if (h.kind == MPI_K_BATCH && h.split) { /* its items come as a BODY */
            free(msg);
            msg = malloc(sizeof h + h.image_len);
            if (msg == NULL)
                abort();
            memcpy(msg, &h, sizeof h);
            MPI_Recv(msg + sizeof h, (int)h.image_len, MPI_BYTE, 0, MPI_K_BODY, comm,
                     MPI_STATUS_IGNORE);
        }
        struct mpi_head reply = {.slot = h.slot};
        switch (h.kind) {
        case MPI_K_OPEN:
            reply.kind = MPI_K_OPENED;
            say(&reply, NULL, 0);
            break;
        case MPI_K_BATCH:
            lie(batches++, &h, msg + sizeof h);
            break;
        case MPI_K_CLOSE:
            reply.kind = MPI_K_CLOSED;
            say(&reply, NULL, 0);
            break;
        case MPI_K_STOP:
            reply.kind = MPI_K_BYE;
            say(&reply, NULL, 0);
            go = 0;
            break;
        default:
            break;
        }
        free(msg);
    }
    MPI_Comm_free(&comm);
    MPI_Finalize();
    return 0;
}

/* ------------------------------------------------------- rank 0 */

/* Maps that the liar answers: each ends; an item is SK_OK with the right
 * result or failed with SK_EPROCESS (the liar's failures) or SK_ECORRUPT
 * (its corrupt answers); both ranks did some good work; kept errors are
 * terminated and name their item. */
static void maps_survive_a_liar(void **state)
{
    (void)state;
    int32_t *items = xcalloc(N_ITEMS, sizeof *items);
    int32_t *results = xcalloc(N_ITEMS, sizeof *results);
    int *status = xcalloc(N_ITEMS, sizeof *status);
    for (int i = 0; i < N_ITEMS; i++)
        items[i] = i;
    int seen_ok = 0, seen_failed = 0, seen_corrupt = 0;
    for (int round = 0; round < 3; round++) {
        memset(results, 0, N_ITEMS * sizeof *results);
        sk_pool_call *call = NULL;
        assert_int_equal(
            sk_pool_async_map(mpool, &triple_job, items, N_ITEMS, results, status, &call), SK_OK);
        int rc = sk_pool_get(call, 60);
        assert_true(rc == SK_OK || rc == SK_EPROCESS || rc == SK_ECORRUPT);
        for (int i = 0; i < N_ITEMS; i++) {
            if (status[i] == SK_OK) {
                assert_int_equal(results[i], 3 * i + 1);
                seen_ok++;
                continue;
            }
            assert_true(status[i] == SK_EPROCESS || status[i] == SK_ECORRUPT);
            assert_int_equal(results[i], 0);
            seen_failed += status[i] == SK_EPROCESS;
            seen_corrupt += status[i] == SK_ECORRUPT;
            const sk_error *e = sk_pool_item_error(call, (size_t)i);
            if (e != NULL) {
                assert_int_equal(e->item, i);
                assert_true(strnlen(e->message, sizeof e->message) < sizeof e->message);
                assert_true(strnlen(e->cause, sizeof e->cause) < sizeof e->cause);
                assert_true((unsigned)e->kind <= SK_CRASH_ERROR);
            }
        }
        sk_pool_call_free(call);
    }
    print_message("items: %d right, %d failed, %d corrupt\n", seen_ok, seen_failed, seen_corrupt);
    assert_true(seen_ok > N_ITEMS); /* rank 1's, and the liar's right answers */
    assert_true(seen_failed > 0);
    assert_true(seen_corrupt > 0);
    xfree(items);
    xfree(results);
    xfree(status);
}

int main(int argc, char **argv)
{
    sk_mpi_register_job("triple", &triple_job);
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (rank == NULL)
        rank = getenv("PMI_RANK");
    if (rank != NULL && atoi(rank) == FORGED_RANK)
        return forged_server(&argc, &argv);
    /* Small batches: many answers, so every lie is told more than once. */
    sk_mpi_config cfg = {.pool = {.workers = 1, .batch = 40}, .rank_timeout = 20};
    if (sk_mpi_start(&mpool, &cfg, &argc, &argv) != SK_OK) {
        fprintf(stderr, "sk_mpi_start: %s\n", sk_last_error_message());
        return 1;
    }
    if (mpool == NULL)
        return 0; /* rank 1: an honest server */
    const struct CMUnitTest tests[] = {SKT_TEST(maps_survive_a_liar)};
    int failed = skt_run(argc, argv, tests);
    if (sk_mpi_stop(mpool) != SK_OK)
        return 1;
    return failed;
}
