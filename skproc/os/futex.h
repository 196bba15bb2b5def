/* SPDX-License-Identifier: MIT */
/*
 * Futex words in shared memory: the one way skproc sleeps until another
 * process changes a 32-bit counter. Waiters check their condition, read the
 * word, publish that they wait, check again and sleep on the value they
 * read, so a wake-up that comes in between is never lost.
 */
#ifndef SKPROC_OS_FUTEX_H
#define SKPROC_OS_FUTEX_H

#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleeps while *word == expected, at most *timeout (NULL: no limit). A
 * spurious or early return is normal: callers re-check their condition. */
static inline void sk_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                                 const struct timespec *timeout)
{
    syscall(SYS_futex, word, FUTEX_WAIT, expected, timeout, NULL, 0);
}

/* One step of a spin-wait: tells the CPU (and a hypervisor) that this is a
 * busy loop, so the sibling hyperthread and the peer get the resources. */
static inline void sk_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Wakes every process sleeping on word. */
static inline void sk_futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

#endif
