/* SPDX-License-Identifier: MIT */
/*
 * A flow's arena: the layout of the control block, the slots and the rings
 * in one memfd (flow_internal.h), the doorbells that wake each ring's
 * reader, and the edges' shapes. Made by the parent before any step
 * process is forked; both sides read it.
 */
#include "flow/flow_internal.h"

#include "os/fd.h"
#include "os/shm.h"

#include <errno.h>
#include <stdlib.h>

int flow_edge_producers(const struct sk_flow *f, int edge)
{
    return edge == 0 ? 1 : f->steps[edge - 1].processes;
}

int flow_edge_consumers(const struct sk_flow *f, int edge)
{
    return edge == f->n_steps ? 1 : f->steps[edge].processes;
}

void flow_wake_all(struct sk_flow *f)
{
    for (int i = 0; i < f->n_procs; i++)
        sk_doorbell_ring(f->procs[i].doorbell);
    sk_doorbell_ring(f->doorbell);
}

/* The largest frame on an edge: a batch of the consumer (of the last step
 * for the parent), or one failed task. */
static size_t edge_max_message(const struct sk_flow *f, int edge)
{
    size_t batch = edge < f->n_steps ? f->steps[edge].batch : f->steps[f->n_steps - 1].batch;
    size_t tasks = sizeof(struct flow_frame) + batch * f->entry_size;
    size_t failed =
        sizeof(struct flow_frame) + sizeof(struct flow_entry) + sizeof(struct flow_failure);
    return tasks > failed ? tasks : failed;
}

/* Lays out and maps the arena: control block, slots, rings. */
int flow_arena_create(struct sk_flow *f)
{
    f->slot_offset = calloc((size_t)f->n_procs, sizeof *f->slot_offset);
    f->edge_ring = calloc((size_t)f->n_steps + 1, sizeof *f->edge_ring);
    if (f->slot_offset == NULL || f->edge_ring == NULL)
        return SK_ENOMEM;
    size_t at = flow_align_up(sizeof(struct flow_ctl), 64);
    for (int s = 0, g = 0; s < f->n_steps; s++)
        for (int p = 0; p < f->steps[s].processes; p++, g++) {
            f->slot_offset[g] = at;
            at = flow_align_up(at + sizeof(struct flow_slot) + f->steps[s].batch * f->entry_size,
                               64);
        }
    f->n_rings = 0;
    for (int e = 0; e <= f->n_steps; e++) {
        f->edge_ring[e] = (size_t)f->n_rings;
        f->n_rings += flow_edge_producers(f, e) * flow_edge_consumers(f, e);
    }
    f->rings = calloc((size_t)f->n_rings, sizeof *f->rings);
    if (f->rings == NULL)
        return SK_ENOMEM;
    size_t ctl_at = flow_align_up(at, 64);
    size_t data_at = sk_page_round(ctl_at + (size_t)f->n_rings * sizeof(struct sk_ring_ctl));
    size_t *data_size = calloc((size_t)f->n_rings, sizeof *data_size);
    size_t *capacity = calloc((size_t)f->n_rings, sizeof *capacity);
    size_t *max_msg = calloc((size_t)f->n_rings, sizeof *max_msg);
    if (data_size == NULL || capacity == NULL || max_msg == NULL) {
        free(data_size);
        free(capacity);
        free(max_msg);
        return SK_ENOMEM;
    }
    size_t total = data_at;
    for (int e = 0; e <= f->n_steps; e++) {
        size_t mm = edge_max_message(f, e);
        /* Every task in flight, each in a frame of its own at worst, and
         * the bytes a wrap skips until the reader passes it (at most the
         * data area past the capacity: two frames and a page's rounding). */
        size_t cap = f->queue * (f->entry_size + FLOW_RING_OVERHEAD) + 3 * (mm + 64) + 4096;
        int n = flow_edge_producers(f, e) * flow_edge_consumers(f, e);
        for (int k = 0; k < n; k++) {
            size_t r = f->edge_ring[e] + (size_t)k;
            capacity[r] = cap;
            max_msg[r] = mm;
            data_size[r] = sk_ring_data_size(cap, mm);
            total += data_size[r];
        }
    }
    int rc = SK_OK;
    if (sk_shm_create("skproc-flow", total, true, &f->memfd, &f->base) != 0) {
        rc = errno == ENOMEM ? SK_ENOMEM : SK_ESYS;
    } else {
        f->size = total;
        f->ctl = f->base;
        size_t off = data_at;
        for (int r = 0; r < f->n_rings; r++) {
            struct sk_ring_ctl *ctl = (struct sk_ring_ctl *)((char *)f->base + ctl_at) + r;
            struct flow_ring *fr = &f->rings[r];
            sk_ring_init(&fr->writer.out, ctl, (char *)f->base + off, data_size[r], capacity[r],
                         max_msg[r], off);
            fr->reader.in = fr->writer.out;
            fr->writer.memfd = fr->reader.memfd = -1;
            fr->writer.in_doorbell = fr->reader.in_doorbell = -1;
            fr->writer.out_doorbell = fr->reader.out_doorbell = -1;
            off += data_size[r];
        }
    }
    free(data_size);
    free(capacity);
    free(max_msg);
    return rc;
}

/* Doorbells: each ring rings its reader's. */
int flow_doorbells_create(struct sk_flow *f)
{
    f->doorbell = sk_doorbell_create();
    if (f->doorbell < 0)
        return SK_ESYS;
    for (int g = 0; g < f->n_procs; g++) {
        f->procs[g].doorbell = sk_doorbell_create();
        if (f->procs[g].doorbell < 0)
            return SK_ESYS;
    }
    for (int e = 0; e <= f->n_steps; e++) {
        int producers = flow_edge_producers(f, e), consumers = flow_edge_consumers(f, e);
        for (int p = 0; p < producers; p++)
            for (int c = 0; c < consumers; c++) {
                struct flow_ring *r = flow_ring_of(f, e, p, c, consumers);
                r->writer.out_doorbell =
                    e == f->n_steps ? f->doorbell : f->steps[e].procs[c].doorbell;
            }
    }
    return SK_OK;
}
