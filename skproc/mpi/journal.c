/* SPDX-License-Identifier: MIT */
/*
 * The journal (journal.h). On disk, one record per finished batch:
 *
 *   struct jrec_head (magic, call, name, first, count, len, checksum),
 *   then len bytes of the result message.
 *
 * In memory, the records read at open sit in a hash table keyed by (call,
 * first), their messages in one buffer per record.
 */
#include "mpi/journal.h"

#include "core/error.h"
#include "mpi/wire.h"
#include "os/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JREC_MAGIC 0x4a4d4b53u /* "SKMJ" */
#define JOURNAL_SYNC_NS (500 * 1000 * 1000)

struct jrec_head {
    uint32_t magic;
    uint32_t call;
    char name[MPI_NAME_MAX];
    uint64_t first;
    uint32_t count, pad;
    uint64_t len;
    uint64_t checksum; /* FNV-1a of the message */
};

struct jrec {
    struct jrec_head h;
    unsigned char *msg;
};

struct mpi_journal {
    int fd;
    struct jrec *table; /* open addressing, cap a power of two; msg NULL: empty */
    size_t cap, n;
    int64_t synced;
};

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static size_t slot_of(const struct mpi_journal *j, uint32_t call, uint64_t first)
{
    uint64_t h = (first * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)call * 0xc2b2ae3d27d4eb4full);
    return (size_t)(h >> 17) & (j->cap - 1);
}

static int table_put(struct mpi_journal *j, const struct jrec *r);

static int table_grow(struct mpi_journal *j)
{
    struct jrec *old = j->table;
    size_t old_cap = j->cap;
    j->cap = old_cap ? old_cap * 2 : 1024;
    j->table = calloc(j->cap, sizeof *j->table);
    if (j->table == NULL) {
        j->table = old;
        j->cap = old_cap;
        return SK_ENOMEM;
    }
    j->n = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].msg != NULL)
            table_put(j, &old[i]);
    free(old);
    return SK_OK;
}

/* A later record of the same batch replaces the earlier one. */
static int table_put(struct mpi_journal *j, const struct jrec *r)
{
    if ((j->n + 1) * 2 > j->cap && table_grow(j) != SK_OK)
        return SK_ENOMEM;
    for (size_t i = slot_of(j, r->h.call, r->h.first);; i = (i + 1) & (j->cap - 1)) {
        struct jrec *e = &j->table[i];
        if (e->msg == NULL) {
            *e = *r;
            j->n++;
            return SK_OK;
        }
        if (e->h.call == r->h.call && e->h.first == r->h.first) {
            free(e->msg);
            *e = *r;
            return SK_OK;
        }
    }
}

static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Reads every whole record; the file is cut back after the last one. */
static int journal_load(struct mpi_journal *j)
{
    off_t good = 0;
    for (;;) {
        struct jrec r;
        if (read_full(j->fd, &r.h, sizeof r.h) != 0 || r.h.magic != JREC_MAGIC ||
            r.h.len > ((uint64_t)64 << 20))
            break;
        r.h.name[MPI_NAME_MAX - 1] = '\0';
        r.msg = malloc(r.h.len ? r.h.len : 1);
        if (r.msg == NULL)
            return SK_ENOMEM;
        if (read_full(j->fd, r.msg, r.h.len) != 0 || fnv1a(r.msg, r.h.len) != r.h.checksum) {
            free(r.msg);
            break;
        }
        if (table_put(j, &r) != SK_OK) {
            free(r.msg);
            return SK_ENOMEM;
        }
        good += (off_t)(sizeof r.h + r.h.len);
    }
    if (ftruncate(j->fd, good) != 0 || lseek(j->fd, good, SEEK_SET) < 0)
        return SK_ESYS;
    return SK_OK;
}

int mpi_journal_open(struct mpi_journal **out, const char *path)
{
    struct mpi_journal *j = calloc(1, sizeof *j);
    if (j == NULL)
        return SK_ENOMEM;
    j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        int err = errno;
        free(j);
        return sk_refuse(SK_ESYS, "skproc-mpi: cannot open the journal %s: %s", path,
                         strerror(err));
    }
    int rc = table_grow(j);
    if (rc == SK_OK)
        rc = journal_load(j);
    if (rc != SK_OK) {
        mpi_journal_close(j);
        return sk_refuse(rc, "skproc-mpi: cannot read the journal %s", path);
    }
    j->synced = sk_now_ns();
    *out = j;
    return SK_OK;
}

const void *mpi_journal_find(struct mpi_journal *j, uint32_t call, const char *name, uint64_t first,
                             uint32_t count, size_t *len)
{
    if (j->n == 0)
        return NULL;
    for (size_t i = slot_of(j, call, first);; i = (i + 1) & (j->cap - 1)) {
        const struct jrec *e = &j->table[i];
        if (e->msg == NULL)
            return NULL;
        if (e->h.call == call && e->h.first == first) {
            if (e->h.count != count || strcmp(e->h.name, name) != 0)
                return NULL;
            *len = (size_t)e->h.len;
            return e->msg;
        }
    }
}

int mpi_journal_add(struct mpi_journal *j, uint32_t call, const char *name, uint64_t first,
                    uint32_t count, const void *msg, size_t msg_len, const void *more,
                    size_t more_len)
{
    struct jrec_head h = {.magic = JREC_MAGIC, .call = call, .first = first, .count = count};
    snprintf(h.name, sizeof h.name, "%s", name);
    size_t len = msg_len + more_len;
    h.len = len;
    unsigned char *buf = malloc(sizeof h + len);
    if (buf == NULL)
        return SK_ENOMEM;
    memcpy(buf + sizeof h, msg, msg_len);
    if (more_len > 0)
        memcpy(buf + sizeof h + msg_len, more, more_len);
    h.checksum = fnv1a(buf + sizeof h, len);
    memcpy(buf, &h, sizeof h);
    size_t done = 0;
    while (done < sizeof h + len) {
        ssize_t w = write(j->fd, buf + done, sizeof h + len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            free(buf);
            return SK_ESYS;
        }
        done += (size_t)w;
    }
    free(buf);
    int64_t now = sk_now_ns();
    if (now - j->synced > JOURNAL_SYNC_NS) {
        (void)fdatasync(j->fd);
        j->synced = now;
    }
    return SK_OK;
}

size_t mpi_journal_size(const struct mpi_journal *j)
{
    return j->n;
}

void mpi_journal_close(struct mpi_journal *j)
{
    if (j == NULL)
        return;
    if (j->fd >= 0) {
        (void)fdatasync(j->fd);
        close(j->fd);
    }
    for (size_t i = 0; i < j->cap; i++)
        free(j->table[i].msg);
    free(j->table);
    free(j);
}
