/* SPDX-License-Identifier: MIT */
/* The CPU count: see cpu.h. */
#include "os/cpu.h"

#include <pthread.h>
#include <unistd.h>

static pthread_once_t cpus_once = PTHREAD_ONCE_INIT;
static int cpus_online;

static void cpus_read(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpus_online = n > 0 ? (int)n : 1;
}

int sk_cpus_online(void)
{
    pthread_once(&cpus_once, cpus_read);
    return cpus_online;
}
