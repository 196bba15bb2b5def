/* SPDX-License-Identifier: MIT */
/*
 * The number of CPUs online, read once per process. sysconf's answer comes
 * from /sys/devices/system/cpu/online (an open, a read and a close each
 * time), which sk_start paid on every call for the spin default.
 */
#ifndef SKPROC_OS_CPU_H
#define SKPROC_OS_CPU_H

/* The CPUs online when it was first asked (at least 1); thread-safe. A CPU
 * brought on or off line later is not seen: the count only picks defaults. */
int sk_cpus_online(void);

#endif
