/* SPDX-License-Identifier: MIT */
/* Processes: see proc.h. */
#include "os/proc.h"
#include "os/clock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int sk_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int sk_pidfd_kill(int pidfd)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}

bool sk_pidfd_wait(int pidfd, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - sk_now_ns();
        struct timespec ts = sk_ns_to_timespec(left > 0 ? left : 0);
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
        int n = ppoll(&pfd, 1, &ts, NULL);
        if (n >= 0 || errno != EINTR)
            return n > 0;
    }
}

bool sk_pid_exited(pid_t pid)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD;
    return info.si_pid != 0;
}

bool sk_pid_wait_exit(pid_t pid, int pidfd, int64_t deadline)
{
    bool forever = deadline == INT64_MAX;
    int64_t nap = 50 * 1000;
    for (;;) {
        int64_t left = forever ? 0 : deadline - sk_now_ns();
        if (!forever && left < 0)
            left = 0;
        if (pidfd >= 0) {
            struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
            struct timespec ts = sk_ns_to_timespec(left);
            int n = ppoll(&pfd, 1, forever ? NULL : &ts, NULL);
            if (n >= 0 || errno != EINTR)
                return n > 0 || sk_pid_exited(pid);
            continue;
        }
        if (sk_pid_exited(pid))
            return true;
        if (!forever && left == 0)
            return false;
        struct timespec ts = sk_ns_to_timespec(!forever && nap > left ? left : nap);
        nanosleep(&ts, NULL);
        if (nap < 5 * 1000 * 1000)
            nap *= 2;
    }
}

void (*const sk_child_exit)(int status) __attribute__((noreturn)) = _exit;

/*
 * Right after a fork the child's page tables hold none of libc's symbol
 * tables, so every libc function it calls for the first time costs a lazy
 * lookup and a page fault or several. The calls the supervisor and the
 * worker make that a parent usually never made are made here once,
 * harmlessly; the forks inherit the resolved entries (about a tenth of a
 * process start).
 */
static void resolve_child_calls(void)
{
    int signal_on_death = 0;
    pthread_mutex_t unused;
    prctl(PR_GET_PDEATHSIG, &signal_on_death);
    (void)getppid();
    ssize_t n = pwrite(-1, NULL, 0, 0); /* EBADF */
    (void)n;
    pthread_mutex_init(&unused, NULL);
    pthread_mutex_destroy(&unused);
}

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

void sk_resolve_child_calls(void)
{
    pthread_once(&resolve_once, resolve_child_calls);
}
