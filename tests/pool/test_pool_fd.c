/* SPDX-License-Identifier: MIT */
/*
 * Pools in event loops (sk_pool_call_fd, sk_pool_fd): with poll() and a
 * timeout, a call's fd is not readable while its items wait at a gate,
 * turns readable once they are done (and stays so, level-triggered, until
 * the caller takes the outcome), and is not readable after that; an
 * iterator's fd is readable while a result is ready and not after the
 * caller took every ready one, then once more for the end; the pool's fd
 * follows all its calls. The fds are closed by sk_pool_call_free and
 * sk_pool_release (open fds counted). The examples pool_poll and, when
 * libuv was found, pool_libuv are run and must succeed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <poll.h>
#include <sys/wait.h>

#define BOUND 60.0

#include "pool_support.h"

#include "pool/shm_arena.h"

static struct shm_header *find_header(void)
{
    return (struct shm_header *)(void *)find_arena();
}

#define GATED 1000   /* items from here wait at the gate */
#define SCRIBBLE 999 /* clears the arena's notify word, and junk in the init words */

static int square(const void *item, void *result, const void *arg)
{
    (void)arg;
    int32_t x;
    memcpy(&x, item, sizeof x);
    if (x >= GATED)
        gate_wait(&sh->gate, &sh->started, BOUND);
    if (x == SCRIBBLE) {
        struct shm_header *h = find_header();
        if (h != NULL) {
            atomic_store(&h->notify, 0);
            for (int i = 0; i < 4; i++) {
                atomic_store(&h->workers[i].init_state, UINT32_MAX);
                h->workers[i].init_rc = INT32_MIN;
            }
        }
    }
    int64_t r = (int64_t)x * x;
    memcpy(result, &r, sizeof r);
    return 0;
}

static const sk_pool_job job = {
    .fn = square, .item_size = sizeof(int32_t), .result_size = sizeof(int64_t)};

static bool readable(int fd, double timeout)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n;
    do
        n = poll(&p, 1, (int)(timeout * 1000));
    while (n < 0 && errno == EINTR);
    assert_int_ge(n, 0);
    return n == 1 && (p.revents & POLLIN);
}

static void test_async_map_fd(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(2);
    int32_t items[40];
    int64_t results[40];
    for (int i = 0; i < 40; i++)
        items[i] = GATED + i;
    sk_pool_call *call;
    assert_rc(sk_pool_async_map(pool, &job, items, 40, results, NULL, &call), SK_OK);
    track_call(call);
    int fd = sk_pool_call_fd(call);
    assert_int_ge(fd, 0);
    assert_int_equal(sk_pool_call_fd(call), fd); /* the same one */
    assert_false(readable(fd, 0.1));
    open_gate();
    /* Wakes at batches done, until ready says done. */
    int wakes = 0;
    for (;;) {
        assert_true(readable(fd, BOUND));
        wakes++;
        if (sk_pool_ready(call))
            break;
        assert_int_le(wakes, 41);
    }
    assert_false(readable(fd, 0)); /* ready said it: nothing more for the caller */
    assert_rc(sk_pool_get(call, 0), SK_OK);
    for (int i = 0; i < 40; i++)
        assert_int_equal(results[i], (int64_t)(GATED + i) * (GATED + i));
    assert_false(readable(fd, 0.05));
}

static void test_level_triggered_until_taken(void **state)
{
    (void)state;
    make_shared();
    open_gate();
    sk_pool *pool = new_small_pool(2);
    int32_t item = 9;
    int64_t result = 0;
    sk_pool_call *call;
    assert_rc(sk_pool_submit(pool, &job, &item, &result, &call), SK_OK);
    track_call(call);
    int fd = sk_pool_call_fd(call);
    assert_int_ge(fd, 0);
    assert_true(readable(fd, BOUND));
    /* A call into the pool that takes nothing of this call: it stays so. */
    int32_t other = 2;
    int64_t other_result;
    assert_rc(sk_pool_map(pool, &job, &other, 1, &other_result, NULL), SK_OK);
    assert_true(readable(fd, 0));
    assert_true(readable(fd, 0));
    assert_rc(sk_pool_get(call, 0), SK_OK);
    assert_int_equal(result, 81);
    assert_false(readable(fd, 0));
}

static void test_iterator_fd(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(2);
    int32_t items[11];
    for (int i = 0; i < 10; i++)
        items[i] = i;
    items[10] = GATED; /* the last one waits */
    sk_pool_call *call;
    assert_rc(sk_pool_unordered_imap(pool, &job, items, 11, &call), SK_OK);
    track_call(call);
    int fd = sk_pool_call_fd(call); /* hands out the iterator's first batches */
    assert_int_ge(fd, 0);
    int taken = 0;
    size_t index;
    int64_t r;
    while (taken < 10) {
        assert_true(readable(fd, BOUND));
        int rc;
        while ((rc = sk_pool_next(call, 0, &index, &r)) == SK_OK) {
            assert_true(index < 10);
            assert_int_equal(r, (int64_t)index * (int64_t)index);
            taken++;
        }
        assert_rc(rc, SK_ETIMEDOUT);
    }
    skt_wait_until(__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) == 1, BOUND);
    assert_false(readable(fd, 0.1)); /* every ready result taken; the last one waits */
    open_gate();
    assert_true(readable(fd, BOUND));
    assert_rc(sk_pool_next(call, 0, &index, &r), SK_OK);
    assert_int_equal(index, 10);
    assert_true(readable(fd, 0)); /* the end is something for the caller too */
    assert_rc(sk_pool_next(call, 0, &index, &r), SK_ECLOSED);
    assert_false(readable(fd, 0));
}

static void test_pool_fd(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(2);
    int fd = sk_pool_fd(pool);
    assert_int_ge(fd, 0);
    assert_int_equal(sk_pool_fd(pool), fd);
    assert_false(readable(fd, 0));
    int32_t a = GATED, b = GATED + 1;
    int64_t ra, rb;
    sk_pool_call *ca, *cb;
    assert_rc(sk_pool_submit(pool, &job, &a, &ra, &ca), SK_OK);
    track_call(ca);
    assert_rc(sk_pool_submit(pool, &job, &b, &rb, &cb), SK_OK);
    track_call(cb);
    assert_false(readable(fd, 0.1));
    open_gate();
    int done = 0;
    while (done < 2) {
        assert_true(readable(fd, BOUND));
        done += sk_pool_ready(ca) + sk_pool_ready(cb);
    }
    assert_false(readable(fd, 0));
    assert_rc(sk_pool_get(ca, 0), SK_OK);
    assert_rc(sk_pool_get(cb, 0), SK_OK);
    assert_int_equal(ra, (int64_t)GATED * GATED);
    assert_false(readable(fd, 0));
}

static void test_fds_closed(void **state)
{
    (void)state;
    make_shared();
    open_gate();
    int before = skt_fd_count();
    sk_pool *pool = new_small_pool(1);
    int with_pool = skt_fd_count();
    int32_t item = 3;
    int64_t result;
    sk_pool_call *call;
    assert_rc(sk_pool_submit(pool, &job, &item, &result, &call), SK_OK);
    assert_int_ge(sk_pool_call_fd(call), 0);
    assert_int_equal(skt_fd_count(), with_pool + 2);
    sk_pool_call_free(call);
    assert_int_equal(skt_fd_count(), with_pool);
    assert_int_ge(sk_pool_fd(pool), 0);
    assert_int_equal(skt_fd_count(), with_pool + 2);
    release_pool(pool);
    assert_int_equal(skt_fd_count(), before);
}

/* Hostile: a worker clears the notify word (the workers then do not wake
 * the fd: a wake may be lost until the next call into the pool, which
 * writes the word again) and writes junk in the initializer words (read
 * only by sk_pool_create). The parent's poll only waits its timeout, the
 * next call into the pool sees the truth, and later calls wake the fd. */
static void test_scribbled_notify_word(void **state)
{
    (void)state;
    make_shared();
    open_gate();
    sk_pool *pool = new_small_pool(1);
    int fd = sk_pool_fd(pool);
    assert_int_ge(fd, 0);
    int32_t item = SCRIBBLE;
    int64_t result;
    sk_pool_call *call;
    assert_rc(sk_pool_submit(pool, &job, &item, &result, &call), SK_OK);
    track_call(call);
    (void)readable(fd, 0.5); /* may time out: the wake was scribbled away */
    assert_rc(sk_pool_wait(call, BOUND), SK_OK);
    assert_false(readable(fd, 0));
    free_call(call);
    /* the word is written again: the next task wakes the fd */
    item = 5;
    assert_rc(sk_pool_submit(pool, &job, &item, &result, &call), SK_OK);
    track_call(call);
    assert_true(readable(fd, BOUND));
    assert_rc(sk_pool_get(call, 0), SK_OK);
    assert_int_equal(result, 25);
}

static void run_example(const char *name)
{
    char path[PATH_MAX + 64], cmd[PATH_MAX + 128];
    assert_true(skt_example_path(name, path, sizeof path));
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' < /dev/null > /dev/null", path);
    int status = system(cmd);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_example_poll(void **state)
{
    (void)state;
    run_example("pool_poll");
}

static void test_example_libuv(void **state)
{
    (void)state;
#ifdef SKPROC_HAVE_LIBUV
    run_example("pool_libuv");
#else
    print_message("    libuv not found by pkg-config: pool_libuv not built\n");
    skip();
#endif
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_async_map_fd), SKT_TEST(test_level_triggered_until_taken),
        SKT_TEST(test_iterator_fd),  SKT_TEST(test_pool_fd),
        SKT_TEST(test_fds_closed),   SKT_TEST(test_scribbled_notify_word),
        SKT_TEST(test_example_poll), SKT_TEST(test_example_libuv),
    };
    return skt_run(argc, argv, tests);
}
