/* SPDX-License-Identifier: MIT */
/*
 * child_poll: a hook that waits for its inbox and its own file descriptor
 * in one poll() loop.
 *
 * The worker keeps a timerfd that ticks every 100 ms (a stand-in for a
 * socket or a pipe it serves) and polls it together with sk_fd(self), which
 * is readable while a message from the parent waits and once the parent
 * has asked it to stop. The parent sends three commands, then stops it.
 *
 *   $ build/default/examples/child_poll
 *   child: command "hello" after 2 ticks
 *   child: command "status" after 4 ticks
 *   child: command "bye" after 6 ticks
 *   child: stopped after 8 ticks
 *   parent: the child handled 3 commands
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <skproc.h>

typedef struct {
    sk_process base;
    int32_t commands;
} server;

static int server_run(sk_process *self)
{
    server *s = SK_CONTAINER_OF(self, server, base);
    int inbox = sk_fd(self);
    if (inbox < 0)
        return sk_fail(self, inbox, "sk_fd: %s", sk_strerror(inbox));
    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec every_100ms = {{0, 100000000}, {0, 100000000}};
    if (timer < 0 || timerfd_settime(timer, 0, &every_100ms, NULL) != 0)
        return sk_fail(self, 1, "timerfd");
    uint64_t ticks = 0;
    struct pollfd fds[2] = {{.fd = inbox, .events = POLLIN}, {.fd = timer, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0)
            continue; /* EINTR */
        if (fds[1].revents & POLLIN) {
            uint64_t n;
            if (read(timer, &n, sizeof n) == sizeof n)
                ticks += n;
        }
        if (!(fds[0].revents & POLLIN))
            continue;
        char *command = NULL;
        int rc = sk_listen(self, 0, "s", &command);
        if (rc == SK_OK) {
            printf("child: command \"%s\" after %llu ticks\n", command, (unsigned long long)ticks);
            fflush(stdout);
            free(command);
            s->commands++;
        } else if (rc == SK_ECLOSED) { /* the parent called sk_stop */
            printf("child: stopped after %llu ticks\n", (unsigned long long)ticks);
            close(timer);
            return 0;
        }
    }
}

static int server_result(sk_process *self)
{
    return sk_return(self, "i", &SK_CONTAINER_OF(self, server, base)->commands);
}

static const sk_class server_class = {.name = "server", .run = server_run, .result = server_result};

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void)
{
    server s = {0};
    if (sk_init(&s.base, &server_class) != SK_OK)
        return 1;
    s.base.config.runs = 1;
    int rc = sk_start(&s.base);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_start: %s\n", sk_strerror(rc));
        return 1;
    }
    const char *commands[] = {"hello", "status", "bye"};
    for (int i = 0; i < 3; i++) {
        pause_ms(200);
        sk_tell(&s.base, "s", &commands[i]);
    }
    pause_ms(200);
    sk_stop(&s.base);
    int32_t handled = 0;
    rc = sk_result(&s.base, "i", &handled);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_result: %s\n", sk_strerror(rc));
        sk_release(&s.base);
        return 1;
    }
    printf("parent: the child handled %d commands\n", handled);
    sk_release(&s.base);
    return 0;
}
