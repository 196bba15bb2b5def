/* SPDX-License-Identifier: MIT */
/*
 * sk_fd in a hook: the worker polls its inbox together with its own file
 * descriptors. The fd is readable exactly while a message waits, and for
 * good once the parent has asked the process to stop, so a poll loop in a
 * hook serves both and ends with SK_ECLOSED.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include <poll.h>
#include <stdatomic.h>

/* What the child saw, in order: 'p' a byte on its pipe, 'm' a message (its
 * value follows in values[]), 'c' the end (SK_ECLOSED). */
struct events {
    char seen[64];
    int64_t values[16];
    int n_seen, n_values;
    int idle_polls_readable; /* polls that said readable with nothing there */
    _Atomic int polling;     /* the hook has its fd and is about to poll */
};

typedef struct {
    sk_process base;
    int pipe_in;
    struct events *ev;
} poller;

static void note(struct events *ev, char c)
{
    if (ev->n_seen < (int)sizeof ev->seen - 1)
        ev->seen[ev->n_seen++] = c;
}

static int poller_run(sk_process *self)
{
    poller *w = SK_CONTAINER_OF(self, poller, base);
    int fd = sk_fd(self);
    if (fd < 0)
        return sk_fail(self, fd, "sk_fd: %s", sk_strerror(fd));
    struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = w->pipe_in, .events = POLLIN}};
    atomic_store(&w->ev->polling, 1);
    for (;;) {
        if (poll(fds, 2, 30000) <= 0)
            return sk_fail(self, 1, "poll timed out or failed");
        if (fds[1].revents & POLLIN) {
            char c;
            if (read(w->pipe_in, &c, 1) == 1)
                note(w->ev, 'p');
        }
        if (fds[0].revents & POLLIN) {
            int64_t v;
            int rc = sk_listen(self, 0, "I", &v);
            if (rc == SK_OK) {
                note(w->ev, 'm');
                if (w->ev->n_values < 16)
                    w->ev->values[w->ev->n_values++] = v;
            } else if (rc == SK_ECLOSED) {
                note(w->ev, 'c');
                return 0;
            } else if (rc == SK_ETIMEDOUT) {
                w->ev->idle_polls_readable++;
            } else {
                return sk_fail(self, rc, "listen: %s", sk_strerror(rc));
            }
        }
    }
}

static const sk_class poller_class = {.name = "poller", .run = poller_run};

static void test_hook_polls_inbox_and_its_own_fd(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    poller *w = skt_new(poller);
    assert_rc(sk_init(&w->base, &poller_class), SK_OK);
    w->pipe_in = fds[0];
    w->ev = skt_shared(sizeof *w->ev);
    w->base.config.runs = 1;
    int64_t first = 41;
    assert_rc(sk_tell(&w->base, "I", &first), SK_ESTATE); /* not started yet */
    assert_rc(sk_start(&w->base), SK_OK);
    close(fds[0]);
    assert_rc(sk_tell(&w->base, "I", &first), SK_OK); /* may be queued before sk_fd */
    skt_wait_until(w->ev->n_seen >= 1, 10);
    skt_write_byte(fds[1], 'x');
    skt_wait_until(w->ev->n_seen >= 2, 10);
    int64_t second = 42;
    assert_rc(sk_tell(&w->base, "I", &second), SK_OK);
    skt_wait_until(w->ev->n_seen >= 3, 10);
    assert_rc(sk_stop(&w->base), SK_OK);
    assert_rc(sk_wait(&w->base, 10), SK_OK);
    assert_no_error(&w->base);
    close(fds[1]);
    assert_string_equal(w->ev->seen, "mpmc");
    assert_int_equal(w->ev->n_values, 2);
    assert_int_equal(w->ev->values[0], 41);
    assert_int_equal(w->ev->values[1], 42);
    /* Level-triggered, drained only when empty: a readable fd had a message
     * (or the end) behind it nearly always; a rare spurious wake-up is
     * allowed, a busy loop is not. */
    assert_cmp(w->ev->idle_polls_readable, <=, 2);
}

/* The parent's stop wakes a hook that sleeps in poll on its inbox alone. */
static void test_stop_wakes_a_polling_hook(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0); /* nobody writes: only the inbox can wake it */
    poller *w = skt_new(poller);
    assert_rc(sk_init(&w->base, &poller_class), SK_OK);
    w->pipe_in = fds[0];
    w->ev = skt_shared(sizeof *w->ev);
    assert_rc(sk_start(&w->base), SK_OK);
    skt_wait_until(atomic_load(&w->ev->polling), 10);
    skt_sleep(0.05); /* most likely asleep in poll now; a stop just before is fine too */
    double t0 = skt_now();
    assert_rc(sk_stop(&w->base), SK_OK);
    assert_rc(sk_wait(&w->base, 10), SK_OK);
    assert_cmp(skt_now() - t0, <, 5.0 * skt_slowdown());
    assert_no_error(&w->base);
    assert_string_equal(w->ev->seen, "c");
    close(fds[0]);
    close(fds[1]);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_hook_polls_inbox_and_its_own_fd),
        SKT_TEST(test_stop_wakes_a_polling_hook),
    };
    return skt_run(argc, argv, tests);
}
