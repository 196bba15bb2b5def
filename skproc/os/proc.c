/* SPDX-License-Identifier: MIT */
/* Processes: see proc.h. */
#include "os/proc.h"
#include "os/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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
    bool woken;
    return sk_pid_wait_exit_or(pid, pidfd, -1, -1, deadline, &woken);
}

bool sk_pid_wait_exit_or(pid_t pid, int pidfd, int wake_fd, int wake_fd2, int64_t deadline,
                         bool *woken)
{
    bool forever = deadline == INT64_MAX;
    int64_t nap = 50 * 1000;
    *woken = false;
    for (;;) {
        int64_t left = forever ? 0 : deadline - sk_now_ns();
        if (!forever && left < 0)
            left = 0;
        /* A negative fd is ignored by ppoll. */
        struct pollfd pfd[3] = {{.fd = wake_fd, .events = POLLIN},
                                {.fd = wake_fd2, .events = POLLIN},
                                {.fd = pidfd, .events = POLLIN}};
        if (pidfd >= 0) {
            struct timespec ts = sk_ns_to_timespec(left);
            int n = ppoll(pfd, 3, forever ? NULL : &ts, NULL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n > 0 && (pfd[2].revents & POLLIN))
                return true;
            *woken = n > 0 && ((pfd[0].revents | pfd[1].revents) & (POLLIN | POLLHUP));
            return sk_pid_exited(pid);
        }
        if (sk_pid_exited(pid))
            return true;
        if (!forever && left == 0)
            return false;
        /* Without a pidfd: growing naps, cut short by the wake fds. */
        struct timespec ts = sk_ns_to_timespec(!forever && nap > left ? left : nap);
        int n = ppoll(pfd, 2, &ts, NULL); /* with none to wake it: a plain sleep */
        if (n > 0 && ((pfd[0].revents | pfd[1].revents) & (POLLIN | POLLHUP))) {
            *woken = true;
            return sk_pid_exited(pid);
        }
        if (nap < 5 * 1000 * 1000)
            nap *= 2;
    }
}

/* Where /proc/PID/task/TID/children is missing (a kernel without
 * CONFIG_PROC_CHILDREN): every process whose parent is us. */
static int children_by_scan(pid_t *pids, int max)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return -1;
    pid_t self = getpid();
    int n = 0;
    struct dirent *ent;
    while (n < max && (ent = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(ent->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        char *paren = strrchr(buf, ')'); /* the command name may hold anything */
        int ppid;
        if (paren != NULL && sscanf(paren + 1, " %*c %d", &ppid) == 1 && ppid == self)
            pids[n++] = (pid_t)pid;
    }
    closedir(d);
    return n;
}

int sk_children(pid_t *pids, int max)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)getpid(), (int)gettid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return children_by_scan(pids, max);
    char buf[4096];
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len < 0)
        return -1;
    buf[len] = '\0';
    int n = 0;
    for (char *p = buf; n < max;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        pids[n++] = (pid_t)pid;
        p = end;
    }
    return n;
}

#define CHILDREN_AT_ONCE 256

/* No child at all, exited or not: one system call, the common case. */
static bool no_children(void)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD;
}

void sk_end_children(pid_t keep)
{
    pid_t pids[CHILDREN_AT_ONCE];
    while (!no_children()) {
        int n = sk_children(pids, CHILDREN_AT_ONCE);
        int killed = 0;
        for (int i = 0; i < n; i++)
            if (pids[i] != keep && kill(pids[i], SIGKILL) == 0)
                pids[killed++] = pids[i];
        if (killed == 0)
            return;
        for (int i = 0; i < killed; i++)
            while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
                ;
    }
}

void sk_reap_exited_children(pid_t keep)
{
    for (;;) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0 ||
            info.si_pid == keep)
            return; /* none has exited, or the first one is keep: its owner reaps it */
        while (waitpid(info.si_pid, NULL, 0) < 0 && errno == EINTR)
            ;
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
