/* SPDX-License-Identifier: MIT */
/*
 * skproc-mpi under `mpirun -n 3` (scons test runs it so when MPI is found):
 * every call form gives what the local pool gives, per-item failures name
 * the item and the rank, unknown jobs are refused, large items and a
 * million small ones travel. Rank 0 runs these tests; ranks 1 and 2 serve.
 *
 * The local pool to compare with is forked on rank 0 before MPI_Init, as
 * sk_mpi_start forks the servers' own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "skproc.h"
#include "skproc/mpi.h"
#include "support.h"

#include <ctype.h>

static sk_pool *mpool; /* the ranks */
static sk_pool *lpool; /* rank 0's local pool, to compare with */

/* ------------------------------------------------------------ jobs */

/* x * x + the int64 argument (every call passes one: a call without an
 * argument would find the bytes of its slot's last one). */
static int square(const void *item, void *result, const void *arg)
{
    int32_t x = *(const int32_t *)item;
    *(int64_t *)result = (int64_t)x * x + *(const int64_t *)arg;
    return 0;
}

static const int64_t zero;
static const sk_pool_job square_job = {.fn = square,
                                       .arg = &zero,
                                       .arg_size = sizeof zero,
                                       .item_size = sizeof(int32_t),
                                       .result_size = sizeof(int64_t)};

/* Fails items 5 mod 97, crashes on item 13, and sleeps past the item
 * timeout on item 29. */
static int faulty(const void *item, void *result, const void *arg)
{
    (void)arg;
    int32_t x = *(const int32_t *)item;
    if (x == 13)
        raise(SIGSEGV);
    if (x == 29)
        sleep(30);
    if (x % 97 == 5)
        return 7;
    *(int64_t *)result = x;
    return 0;
}

static const sk_pool_job faulty_job = {
    .fn = faulty, .item_size = sizeof(int32_t), .result_size = sizeof(int64_t)};

typedef struct {
    int32_t a, b;
} pair;

static int multiply(void *const *fields, void *result, const void *arg)
{
    (void)arg;
    *(int64_t *)result = (int64_t) * (const int32_t *)fields[0] * *(const int32_t *)fields[1];
    return 0;
}

static const sk_pool_job star_job = {.star = multiply,
                                     .item_size = sizeof(pair),
                                     .item_format = "S(ii)",
                                     .result_size = sizeof(int64_t)};

typedef struct {
    int32_t id;
    char *name;
} record;

/* A record with a string in, one out: the id doubled, the name in capitals. */
static int shout(const void *item, void *result, const void *arg)
{
    (void)arg;
    const record *in = item;
    record *out = result;
    out->id = in->id * 2;
    out->name = strdup(in->name);
    if (out->name == NULL)
        return 1;
    for (char *c = out->name; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    return 0;
}

static const sk_pool_job shout_job = {.fn = shout,
                                      .item_size = sizeof(record),
                                      .item_format = "S(is)",
                                      .result_size = sizeof(record),
                                      .result_format = "S(is)"};

/* A big string in, its length and last byte out, and a big string back. */
static int reverse(const void *item, void *result, const void *arg)
{
    (void)arg;
    const char *in = *(char *const *)item;
    size_t n = strlen(in);
    char *out = malloc(n + 1);
    if (out == NULL)
        return 1;
    for (size_t i = 0; i < n; i++)
        out[i] = in[n - 1 - i];
    out[n] = '\0';
    *(char **)result = out;
    return 0;
}

static const sk_pool_job reverse_job = {.fn = reverse,
                                        .item_size = sizeof(char *),
                                        .item_format = "s",
                                        .result_size = sizeof(char *),
                                        .result_format = "s"};

/* Registered on rank 0 only: the servers do not know it. */
static int only_here(const void *item, void *result, const void *arg)
{
    (void)arg;
    *(int32_t *)result = *(const int32_t *)item;
    return 0;
}

static const sk_pool_job only_here_job = {
    .fn = only_here, .item_size = sizeof(int32_t), .result_size = sizeof(int32_t)};

/* Registered nowhere. */
static int stray_fn(const void *item, void *result, const void *arg)
{
    (void)item, (void)result, (void)arg;
    return 0;
}

/* A process class per item: n runs (n > 0) summing 0 .. n - 1. */
typedef struct {
    sk_process base;
    int32_t n;
    int64_t sum;
} summer;

static int summer_init(sk_process *self, const void *item)
{
    summer *s = SK_CONTAINER_OF(self, summer, base);
    memcpy(&s->n, item, sizeof s->n);
    self->config.runs = s->n;
    return 0;
}

static int summer_run(sk_process *self)
{
    SK_CONTAINER_OF(self, summer, base)->sum += sk_current_run(self);
    return 0;
}

static int summer_result(sk_process *self)
{
    return sk_return(self, "I", &SK_CONTAINER_OF(self, summer, base)->sum);
}

static const sk_class summer_class = {.name = "summer",
                                      .size = sizeof(summer),
                                      .init = summer_init,
                                      .run = summer_run,
                                      .result = summer_result};

static const sk_pool_job summer_job = {.cls = &summer_class,
                                       .item_size = sizeof(int32_t),
                                       .result_size = sizeof(int64_t),
                                       .result_format = "I"};

static int32_t *ints(size_t n)
{
    int32_t *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (int32_t)i;
    return v;
}

/* ------------------------------------------------------------ call forms */

static void map_equals_local(void **state)
{
    (void)state;
    size_t n = 20000;
    int32_t *items = ints(n);
    int64_t *got = calloc(n, sizeof *got), *want = calloc(n, sizeof *want);
    int *status = calloc(n, sizeof *status);
    int64_t add = 5;
    sk_pool_job job = square_job;
    job.arg = &add;
    job.arg_size = sizeof add;
    assert_int_equal(sk_pool_map(lpool, &job, items, n, want, NULL), SK_OK);
    assert_int_equal(sk_pool_map(mpool, &job, items, n, got, status), SK_OK);
    assert_memory_equal(got, want, n * sizeof *got);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(status[i], SK_OK);
    assert_int_equal(got[100], 100 * 100 + 5);
    free(items), free(got), free(want), free(status);
}

static void imap_keeps_order(void **state)
{
    (void)state;
    size_t n = 5000;
    int32_t *items = ints(n);
    sk_pool_call *call;
    assert_int_equal(sk_pool_imap(mpool, &square_job, items, n, &call), SK_OK);
    size_t index, expect = 0;
    int64_t r;
    int rc;
    while ((rc = sk_pool_next(call, 30, &index, &r)) == SK_OK) {
        assert_int_equal(index, expect);
        assert_int_equal(r, (int64_t)expect * (int64_t)expect);
        expect++;
    }
    assert_int_equal(rc, SK_ECLOSED);
    assert_int_equal(expect, n);
    sk_pool_call_free(call);
    free(items);
}

static void unordered_imap_covers_all(void **state)
{
    (void)state;
    size_t n = 5000;
    int32_t *items = ints(n);
    char *seen = calloc(n, 1);
    sk_pool_call *call;
    assert_int_equal(sk_pool_unordered_imap(mpool, &square_job, items, n, &call), SK_OK);
    size_t index, count = 0;
    int64_t r;
    while (sk_pool_next(call, 30, &index, &r) == SK_OK) {
        assert_true(index < n);
        assert_int_equal(seen[index], 0);
        seen[index] = 1;
        assert_int_equal(r, (int64_t)index * (int64_t)index);
        count++;
    }
    assert_int_equal(count, n);
    sk_pool_call_free(call);
    free(items), free(seen);
}

static void async_map_then_get(void **state)
{
    (void)state;
    size_t n = 3000;
    int32_t *items = ints(n);
    int64_t *got = calloc(n, sizeof *got), *want = calloc(n, sizeof *want);
    sk_pool_call *call;
    assert_int_equal(sk_pool_async_map(mpool, &square_job, items, n, got, NULL, &call), SK_OK);
    assert_int_equal(sk_pool_map(lpool, &square_job, items, n, want, NULL), SK_OK);
    assert_int_equal(sk_pool_get(call, 60), SK_OK);
    assert_true(sk_pool_ready(call));
    sk_pool_call_free(call);
    assert_memory_equal(got, want, n * sizeof *got);
    free(items), free(got), free(want);
}

static void star_equals_local(void **state)
{
    (void)state;
    size_t n = 4000;
    pair *items = malloc(n * sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = (pair){(int32_t)i, (int32_t)(3 * i + 1)};
    int64_t *got = calloc(n, sizeof *got), *want = calloc(n, sizeof *want);
    assert_int_equal(sk_pool_map(lpool, &star_job, items, n, want, NULL), SK_OK);
    assert_int_equal(sk_pool_map(mpool, &star_job, items, n, got, NULL), SK_OK);
    assert_memory_equal(got, want, n * sizeof *got);
    assert_int_equal(got[7], 7 * 22);
    free(items), free(got), free(want);
}

struct counter {
    int32_t next, end;
};

static int produce(void *state, void *item)
{
    struct counter *c = state;
    if (c->next == c->end)
        return 0;
    *(int32_t *)item = c->next++;
    return 1;
}

static void stream_in_order(void **state)
{
    (void)state;
    struct counter c = {0, 7000};
    sk_pool_call *call;
    assert_int_equal(sk_pool_imap_stream(mpool, &square_job, produce, &c, true, &call), SK_OK);
    size_t index, expect = 0;
    int64_t r;
    while (sk_pool_next(call, 30, &index, &r) == SK_OK) {
        assert_int_equal(index, expect);
        assert_int_equal(r, (int64_t)expect * (int64_t)expect);
        expect++;
    }
    assert_int_equal(expect, 7000);
    sk_pool_call_free(call);
}

static void records_with_strings(void **state)
{
    (void)state;
    size_t n = 2000;
    record *items = malloc(n * sizeof *items);
    char(*names)[32] = malloc(n * sizeof *names);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "item-%zu-abc", i);
        items[i] = (record){(int32_t)i, names[i]};
    }
    record *got = calloc(n, sizeof *got), *want = calloc(n, sizeof *want);
    assert_int_equal(sk_pool_map(lpool, &shout_job, items, n, want, NULL), SK_OK);
    assert_int_equal(sk_pool_map(mpool, &shout_job, items, n, got, NULL), SK_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i].id, want[i].id);
        assert_string_equal(got[i].name, want[i].name);
        free(got[i].name), free(want[i].name);
    }
    char expect[32];
    snprintf(expect, sizeof expect, "ITEM-%d-ABC", 1999);
    assert_int_equal(got[1999].id, 3998);
    free(items), free(names), free(got), free(want);
}

static void class_items(void **state)
{
    (void)state;
    size_t n = 40;
    int32_t *items = ints(n);
    for (size_t i = 0; i < n; i++)
        items[i] += 1; /* runs = 0 would be the default: no limit */
    int64_t got[40] = {0}, want[40] = {0};
    assert_int_equal(sk_pool_map(lpool, &summer_job, items, n, want, NULL), SK_OK);
    assert_int_equal(sk_pool_map(mpool, &summer_job, items, n, got, NULL), SK_OK);
    assert_memory_equal(got, want, sizeof got);
    assert_int_equal(got[10], 55); /* 11 runs: 0 + 1 + ... + 10 */
    free(items);
}

/* ------------------------------------------------------------ failures */

static void failures_name_item_and_rank(void **state)
{
    (void)state;
    skt_bound(120);
    size_t n = 400;
    int32_t *items = ints(n);
    int64_t *got = calloc(n, sizeof *got);
    int *status = calloc(n, sizeof *status);
    sk_pool_call *call;
    assert_int_equal(sk_pool_async_map(mpool, &faulty_job, items, n, got, status, &call), SK_OK);
    assert_int_equal(sk_pool_get(call, 120), SK_EPROCESS);
    for (size_t i = 0; i < n; i++) {
        bool bad = i == 13 || i == 29 || i % 97 == 5;
        assert_int_equal(status[i], bad ? SK_EPROCESS : SK_OK);
        if (!bad)
            assert_int_equal(got[i], (int64_t)i);
    }
    const sk_error *crash = sk_pool_item_error(call, 13);
    assert_non_null(crash);
    assert_int_equal(crash->item, 13);
    assert_true(sk_error_is(crash, SK_CRASH_ERROR));
    assert_non_null(strstr(crash->message, "(rank "));
    const sk_error *timeout = sk_pool_item_error(call, 29);
    assert_non_null(timeout);
    assert_int_equal(timeout->item, 29);
    assert_true(sk_error_is(timeout, SK_TIMEOUT_ERROR));
    assert_non_null(strstr(timeout->message, "(rank "));
    const sk_error *fail = sk_pool_item_error(call, 102);
    assert_non_null(fail);
    assert_int_equal(fail->item, 102);
    assert_int_equal(fail->code, 7);
    assert_non_null(strstr(fail->message, "(rank "));
    assert_int_equal(sk_pool_error(call)->item, 5);
    sk_pool_call_free(call);
    /* The pool goes on after them. */
    int32_t one = 9;
    int64_t r = 0;
    assert_int_equal(sk_pool_map(mpool, &square_job, &one, 1, &r, NULL), SK_OK);
    assert_int_equal(r, 81);
    free(items), free(got), free(status);
}

static void unknown_job_is_refused(void **state)
{
    (void)state;
    int32_t items[4] = {1, 2, 3, 4};
    int32_t out[4];
    assert_int_equal(sk_pool_map(mpool, &only_here_job, items, 4, out, NULL), SK_EINVAL);
    const char *why = sk_last_error_message();
    assert_non_null(strstr(why, "no job named \"only_here\""));
    assert_non_null(strstr(why, "rank 1"));
    /* A job whose function no name was registered for. */
    sk_pool_job stray = {.fn = stray_fn, .item_size = sizeof(int32_t)};
    assert_int_equal(sk_pool_map(mpool, &stray, items, 4, NULL, NULL), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "not registered"));
    /* And the pool goes on. */
    int64_t r = 0;
    assert_int_equal(sk_pool_map(mpool, &square_job, items, 1, &r, NULL), SK_OK);
    assert_int_equal(r, 1);
}

/* ------------------------------------------------------------ sizes */

static void large_items_and_results(void **state)
{
    (void)state;
    size_t n = 6, len = (size_t)3 << 20; /* 3 MiB each way */
    char **items = calloc(n, sizeof *items), **got = calloc(n, sizeof *got);
    for (size_t i = 0; i < n; i++) {
        items[i] = malloc(len + 1);
        for (size_t k = 0; k < len; k++)
            items[i][k] = (char)('a' + (k * 7 + i) % 26);
        items[i][len] = '\0';
    }
    assert_int_equal(sk_pool_map(mpool, &reverse_job, items, n, got, NULL), SK_OK);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(got[i]);
        assert_int_equal(strlen(got[i]), len);
        assert_int_equal(got[i][0], items[i][len - 1]);
        assert_int_equal(got[i][len - 1], items[i][0]);
        assert_int_equal(got[i][12345], items[i][len - 1 - 12345]);
        free(got[i]), free(items[i]);
    }
    free(items), free(got);
}

static void a_million_small_items(void **state)
{
    (void)state;
    skt_bound(120);
    size_t n = 1000000;
    int32_t *items = ints(n);
    int64_t *got = calloc(n, sizeof *got);
    double t0 = skt_now();
    assert_int_equal(sk_pool_map(mpool, &square_job, items, n, got, NULL), SK_OK);
    double took = skt_now() - t0;
    for (size_t i = 0; i < n; i += 9973)
        assert_int_equal(got[i], (int64_t)i * (int64_t)i);
    assert_int_equal(got[n - 1], (int64_t)(n - 1) * (int64_t)(n - 1));
    print_message("1,000,000 items over 2 ranks: %.2f s\n", took);
    assert_true(took < 60);
    free(items), free(got);
}

int main(int argc, char **argv)
{
    sk_mpi_register_job("square", &square_job);
    sk_mpi_register_job("faulty", &faulty_job);
    sk_mpi_register_job("star", &star_job);
    sk_mpi_register_job("shout", &shout_job);
    sk_mpi_register_job("reverse", &reverse_job);
    sk_mpi_register_job("summer", &summer_job);
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (rank == NULL)
        rank = getenv("PMI_RANK");
    bool root = rank != NULL && strcmp(rank, "0") == 0;
    if (root) {
        sk_mpi_register_job("only_here", &only_here_job);
        sk_pool_config local = {.workers = 2};
        if (sk_pool_create(&lpool, &local) != SK_OK)
            return 2;
    }
    sk_mpi_config cfg = {.pool = {.workers = 2, .item_timeout = 2}};
    if (sk_mpi_start(&mpool, &cfg, &argc, &argv) != SK_OK) {
        fprintf(stderr, "sk_mpi_start: %s\n", sk_last_error_message());
        return 1;
    }
    if (mpool == NULL)
        return 0; /* a server rank */
    const struct CMUnitTest tests[] = {
        SKT_TEST(map_equals_local),
        SKT_TEST(imap_keeps_order),
        SKT_TEST(unordered_imap_covers_all),
        SKT_TEST(async_map_then_get),
        SKT_TEST(star_equals_local),
        SKT_TEST(stream_in_order),
        SKT_TEST(records_with_strings),
        SKT_TEST(class_items),
        SKT_TEST(failures_name_item_and_rank),
        SKT_TEST(unknown_job_is_refused),
        SKT_TEST(large_items_and_results),
        SKT_TEST(a_million_small_items),
    };
    int failed = skt_run(argc, argv, tests);
    sk_pool_release(lpool);
    if (sk_mpi_stop(mpool) != SK_OK)
        return 1;
    return failed;
}
