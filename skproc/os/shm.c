/* SPDX-License-Identifier: MIT */
/* Shared memory: see shm.h. */
#include "os/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

size_t sk_page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (n > SIZE_MAX - (page - 1))
        return 0;
    return (n + page - 1) / page * page;
}

int sk_shm_create(const char *name, size_t size, bool noreserve, int *fd, void **base)
{
    int memfd = memfd_create(name, MFD_CLOEXEC);
    if (memfd < 0)
        return -1;
    if (size > (size_t)INT64_MAX || ftruncate(memfd, (off_t)size) != 0) {
        int saved = errno;
        close(memfd);
        errno = saved;
        return -1;
    }
    int flags = MAP_SHARED | (noreserve ? MAP_NORESERVE : 0);
    void *at = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, memfd, 0);
    if (at == MAP_FAILED) {
        int saved = errno;
        close(memfd);
        errno = saved;
        return -1;
    }
    *fd = memfd;
    *base = at;
    return 0;
}

#ifndef MADV_POPULATE_READ /* Linux 5.14; older kernels refuse it, and pages fault in */
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

void sk_shm_prefault(const void *addr, size_t len, bool write)
{
    uintptr_t from = (uintptr_t)addr & ~(uintptr_t)4095;
    uintptr_t end = (uintptr_t)addr + len;
    if (len == 0)
        return;
    (void)madvise((void *)from, end - from, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
    /* And one read of each page from user mode: madvise fills the page
     * table, but a virtual machine with shadow page tables (a PVM guest,
     * as the development machine is) builds its own entry only at the
     * process's first access, a hypervisor round trip that costs as much
     * as a fault. Done here, in one pass, rather than at the first use. */
    for (uintptr_t pg = from; pg < end; pg += 4096)
        (void)*(volatile const unsigned char *)pg;
}

void sk_shm_punch(int fd, uint64_t offset, uint64_t len)
{
    uint64_t from = (offset + 4095) / 4096 * 4096;
    uint64_t end = (offset + len) / 4096 * 4096;
    if (end > from)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(end - from));
}
