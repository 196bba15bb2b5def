/* SPDX-License-Identifier: MIT */
/*
 * service_tree: a small service as a supervision tree that survives the
 * death of any of its parts.
 *
 *   service (one_for_one, at most 10 restarts in 10 s)
 *   ├── listener   answers "ping" with "pong <pid>" on a TCP port
 *   ├── worker-1   does work in a loop
 *   ├── worker-2   the same
 *   └── helper     an external program (sh), ready when it writes a line to fd 3
 *
 * The parent opens the listening socket itself and every incarnation of
 * the listener inherits it, so the port stays the same across restarts (as
 * with systemd's socket activation). The listener declares itself ready
 * once it can serve (sk_ready at the end of prerun); the workers start only
 * then.
 *
 * The program starts the tree, asks the listener for a pong, then kills
 * each child in turn with SIGKILL and shows the group start a new one,
 * asks for a pong again, and stops the tree (later children first). Exit
 * status 0 when every child came back and the listener answered each time.
 *
 *     build/default/examples/service_tree
 *
 * Build: gcc -std=c11 service_tree.c $(pkg-config --cflags --libs skproc)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <skproc.h>

typedef struct {
    sk_process base;
    int listen_fd; /* opened by the parent, inherited by every incarnation */
} listener;

static int listener_prerun(sk_process *self)
{
    sk_ready(self); /* the socket is there: we can serve */
    return 0;
}

/* Serves one connection at a time until the group asks us to stop (our
 * sk_fd turns readable). */
static int listener_run(sk_process *self)
{
    listener *l = SK_CONTAINER_OF(self, listener, base);
    struct pollfd fds[2] = {{.fd = l->listen_fd, .events = POLLIN},
                            {.fd = sk_fd(self), .events = POLLIN}};
    if (poll(fds, 2, -1) < 0 || fds[1].revents != 0) {
        sk_stop(self);
        return 0;
    }
    int conn = accept(l->listen_fd, NULL, NULL);
    if (conn < 0)
        return 0;
    char buf[64];
    ssize_t n = read(conn, buf, sizeof buf - 1);
    if (n > 0 && strncmp(buf, "ping", 4) == 0) {
        int len = snprintf(buf, sizeof buf, "pong %d\n", (int)getpid());
        if (write(conn, buf, (size_t)len) != len)
            perror("listener: write");
    }
    close(conn);
    return 0;
}

static const sk_class listener_class = {
    .name = "listener", .prerun = listener_prerun, .run = listener_run};

typedef struct {
    sk_process base;
    long done;
} worker;

/* One unit of work per run, until the group asks us to stop. */
static int worker_run(sk_process *self)
{
    worker *w = SK_CONTAINER_OF(self, worker, base);
    int ignored;
    if (sk_listen(self, 0.01, "i", &ignored) == SK_ECLOSED) {
        sk_stop(self);
        return 0;
    }
    w->done++;
    return 0;
}

static const sk_class worker_class = {.name = "worker", .run = worker_run};

/* Connects to the listener and returns the pid in its pong, or -1. */
static int ping(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int pid = -1;
    char buf[64] = {0};
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && write(fd, "ping\n", 5) == 5 &&
        read(fd, buf, sizeof buf - 1) > 0)
        sscanf(buf, "pong %d", &pid);
    close(fd);
    return pid;
}

static void on_event(const sk_group_event *ev, void *ctx)
{
    (void)ctx;
    if (ev->kind == SK_GROUP_CHILD_ENDED || ev->kind == SK_GROUP_CHILD_RESTARTING)
        printf("  [%s] %s %s%s%s\n", ev->group, ev->child, sk_group_event_name(ev->kind),
               ev->error ? ": " : "", ev->error ? ev->error->message : "");
}

/* Waits up to 5 s for child `name` to run under a pid other than old. */
static pid_t wait_replaced(sk_group *g, const char *name, pid_t old)
{
    for (int i = 0; i < 5000; i++) {
        pid_t pid = sk_group_pid(g, name);
        if (pid > 0 && pid != old)
            return pid;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    return -1;
}

int main(void)
{
    /* The listening socket, owned by the parent. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 16) != 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0) {
        perror("socket");
        return 1;
    }
    int port = ntohs(addr.sin_port);

    sk_group *g;
    sk_group_config gc = {.name = "service",
                          .strategy = SK_ONE_FOR_ONE,
                          .intensity = 10,
                          .period = 10,
                          .on_event = on_event};
    if (sk_group_create(&g, &gc) != SK_OK)
        return 1;

    listener l = {.listen_fd = lfd};
    sk_init(&l.base, &listener_class);
    l.base.config.ready = SK_READY_ON_NOTIFY;
    sk_group_child lc = {.name = "listener", .process = &l.base, .shutdown = 1};
    sk_group_add(g, &lc);

    worker w1 = {0}, w2 = {0};
    sk_init(&w1.base, &worker_class);
    sk_init(&w2.base, &worker_class);
    sk_group_child c1 = {.name = "worker-1", .process = &w1.base};
    sk_group_child c2 = {.name = "worker-2", .process = &w2.base};
    sk_group_add(g, &c1);
    sk_group_add(g, &c2);

    const char *argv[] = {"sh", "-c", "echo >&3; exec sleep 1000", NULL};
    sk_spawn_config hc = {.argv = argv, .ready_fd = 3};
    sk_process helper;
    sk_spawn_init(&helper, &hc);
    sk_group_child ch = {.name = "helper", .process = &helper, .shutdown = 1};
    sk_group_add(g, &ch);

    if (sk_group_start(g) != SK_OK) {
        fprintf(stderr, "start: %s\n", sk_group_error_of(g)->error.message);
        return 1;
    }
    printf("service tree up on port %d; pong from %d\n", port, ping(port));

    const char *names[] = {"listener", "worker-1", "worker-2", "helper"};
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        pid_t old = sk_group_pid(g, names[i]);
        if (old <= 0) { /* never kill(-1, ...): that is every process we may signal */
            ok = 0;
            continue;
        }
        printf("killing %s (pid %d)\n", names[i], (int)old);
        kill(old, SIGKILL);
        pid_t now = wait_replaced(g, names[i], old);
        int pong = ping(port);
        printf("  %s is back as pid %d; pong from %d\n", names[i], (int)now, pong);
        ok &= now > 0 && pong > 0;
    }

    sk_group_state st;
    sk_group_state_read(g, &st);
    printf("%d restarts; stopping\n", st.total_restarts);
    sk_group_state_free(&st);
    sk_group_stop(g);
    sk_group_release(g);
    close(lfd);
    printf(ok ? "all children came back\n" : "a child did not come back\n");
    return ok ? 0 : 1;
}
