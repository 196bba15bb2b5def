/* SPDX-License-Identifier: MIT */
/*
 * What the two sides of a flow share: the parent (flow.c) and the steps'
 * processes (step.c).
 *
 * The arena. One memfd, mapped before any process is forked:
 *
 *   [flow_ctl] [flow_slot per process] [ring ctl + data per ring]
 *
 * Edges. Edge e joins the producers of e to its consumers: edge 0 the
 * parent to step 0's processes, edge k step k-1's processes to step k's,
 * edge S (S steps) step S-1's processes to the parent. Every pair of a
 * producer and a consumer of an edge has its own ring: one writer and one
 * reader, so end of stream is exact (a consumer has seen everything when
 * every ring into it is closed and empty) and no ring needs a lock.
 *
 * Frames. A ring frame is a struct flow_frame: TASKS holds `count` entries
 * (struct flow_entry, then the record, padded to 8), never more than the
 * consumer's batch size, so a frame always fits an empty hand; FAILED holds
 * one entry followed by a struct flow_failure instead of the record.
 *
 * Status. Each process writes only its own slot. The parent believes a
 * status (ready, finish, error) only from the slot it came from, so the
 * step and process it names are the parent's own; what a slot says about
 * counts and messages is clamped and sanitized. `state` in the control
 * block is a hint the processes share among themselves (the flow is
 * stopping, finishing or failed); the parent reads it only in sk_flow_stop,
 * so as not to turn FAILED back into STOPPING, and reports nothing from it.
 *
 * Hand. A process copies the tasks it takes out of its rings into the hand
 * in its slot before it consumes the frames; it empties the hand only once
 * every task of it was forwarded. A process restarted after a crash finds
 * the batch its predecessor died with there, with the number of attempts
 * already made, and tries it again or fails it. A crash between forwarding
 * and emptying the hand forwards a task twice: the parent delivers each
 * task once (its table of tasks in flight), so the steps after may see a
 * task twice, the user never does.
 */
#ifndef SKPROC_FLOW_INTERNAL_H
#define SKPROC_FLOW_INTERNAL_H

#include "skproc.h"
#include "core/timer.h"
#include "ipc/ring.h"
#include "os/session_dir.h"

#include <pthread.h>
#include <stdatomic.h>

#define FLOW_MAX_STEPS 64
#define FLOW_MAX_PROCESSES 256 /* per step */
#define FLOW_MAX_TASK ((size_t)64 << 10)
#define FLOW_MAX_BATCH 4096
#define FLOW_MAX_QUEUE ((size_t)1 << 20)
#define FLOW_MESSAGE 256
#define FLOW_CAUSE 512
/* The bytes a frame of one task costs in a ring beyond its entry: the
 * ring's own frame header (8) and struct flow_frame. */
#define FLOW_RING_OVERHEAD (8 + sizeof(struct flow_frame))

/* flow_ctl.state */
enum flow_state { FLOW_RUNNING, FLOW_STOPPING, FLOW_FINISHING, FLOW_FAILED };

/* flow_slot.status */
enum flow_status { FLOW_STATUS_NONE, FLOW_STATUS_FINISH, FLOW_STATUS_ERROR };

enum flow_frame_kind { FLOW_FRAME_TASKS = 0x54534b31, FLOW_FRAME_FAILED = 0x4641494c };

struct flow_frame {
    uint32_t kind;
    uint32_t count;
    int64_t sent_ns; /* when its producer committed it: the queue wait's start */
};

struct flow_entry {
    uint64_t id;
    uint32_t slot;     /* the parent's table slot */
    uint32_t attempts; /* unused on the wire; the hand keeps tries per batch */
};

/* Why a task failed, as a step reports it. */
struct flow_failure {
    int32_t step, process;
    int32_t status; /* SK_EPROCESS, ... */
    int32_t kind;   /* sk_error_kind */
    int32_t section;
    int32_t code, reason, signal, exit_status, lives_spent;
    double timeout;
    char message[FLOW_MESSAGE];
    char cause[FLOW_CAUSE];
};

struct flow_ctl {
    _Atomic uint32_t state;      /* enum flow_state: a hint among the processes */
    _Atomic int32_t finish_step; /* FINISHING: the step that said finish */
};

/* One process's status and hand: written by that process only. */
struct flow_slot {
    _Alignas(64) _Atomic uint32_t ready; /* its start hook returned */
    _Atomic uint32_t status;             /* enum flow_status */
    int32_t code;
    char message[FLOW_MESSAGE];
    /* counters, for metrics */
    _Atomic uint64_t tasks_in, tasks_out, tasks_failed, tasks_skipped, batches;
    _Atomic uint64_t batch_bins[SK_FLOW_BATCH_BINS];
    struct sk_timer handle_timer; /* seconds per handle call */
    struct sk_timer queue_timer;  /* seconds a frame waited before its batch was handled */
    /* the hand */
    _Atomic uint32_t hand_count; /* tasks in hand */
    _Atomic uint32_t hand_tries; /* handle attempts made on them */
    /* then batch_size entries of entry_size bytes */
};

struct sk_flow;

/* One ring as the flow keeps it: an endpoint for its writer (out) and one
 * for its reader (in), each only ever used on its own side. */
struct flow_ring {
    struct sk_endpoint writer, reader;
};

/* A process of a step: an skproc process whose hooks run the step. */
struct flow_proc {
    sk_process base;
    struct sk_flow *flow;
    int step, index; /* which step, which of its processes */
    int global;      /* index among all processes: its slot */
    int doorbell;    /* eventfd: its input rings turned non-empty, or the flow's state moved */
    /* worker side */
    bool started;
    bool killed_at_end; /* parent side: killed for not leaving within stop_timeout */
    int wake_pidfd;     /* parent side: a dup of its pidfd in the flow's epoll set, or -1 */
    int cause_code;
    bool cause_set;
    char cause[FLOW_CAUSE];
};

/* The parent's description of a step. */
struct sk_flow_step {
    sk_step *user;
    struct sk_flow *flow;
    int index;
    int processes;
    size_t batch; /* clamped batch size */
    int64_t batch_timeout_ns;
    int lives;
    struct flow_proc *procs;   /* processes of them */
    struct flow_proc *current; /* in a step's process: this process */
};

/* A task the parent has in flight (or done and not yet collected). */
enum flow_task_state { FLOW_TASK_FREE, FLOW_TASK_QUEUED, FLOW_TASK_DONE, FLOW_TASK_TAKEN };

struct flow_task {
    uint64_t id;
    int32_t state;
    int32_t status;      /* when DONE */
    int64_t deadline_ns; /* INT64_MAX: none */
    int64_t submitted_ns;
    sk_flow_result *failure; /* when DONE with a failure: why (NULL when out of memory) */
};

/* A task named by its table slot and its id (the id tells a slot's
 * tenants apart). */
struct flow_ref {
    uint64_t id;
    uint32_t slot;
};

/* A range of the payload area (payload.c). */
struct flow_extent {
    uint64_t offset, size;
};

struct flow_extents {
    struct flow_extent *v; /* sorted by offset */
    size_t len, cap;
};

struct flow_fifo {
    struct flow_ref *refs;
    size_t cap, head, len;
};

struct sk_flow {
    sk_flow_config config;
    size_t task_size;  /* bytes of the user's record */
    size_t wire_size;  /* bytes of a record on the wire (record.c) */
    size_t entry_size; /* entry + wire record, padded */
    bool tpl;          /* records travel as tpl images */
    char format[256];
    size_t queue; /* tasks in flight at most */
    int n_steps;
    struct sk_flow_step steps[FLOW_MAX_STEPS];
    int n_procs;
    struct flow_proc *procs; /* every process, step by step */

    /* the arena */
    int memfd;
    void *base;
    size_t size;
    struct flow_ctl *ctl;
    size_t *slot_offset; /* per process */
    size_t *edge_ring;   /* first ring of each edge (n_steps + 1 entries) */
    struct flow_ring *rings;
    int n_rings;
    int doorbell;     /* the parent's: output rings, statuses */
    int poll_fd;      /* sk_flow_fd: epoll of the doorbell, timer_fd, each process's pidfd */
    int timer_fd;     /* armed for the earliest task deadline */
    int64_t timer_at; /* what it is armed for; INT64_MAX: not armed */

    /* parent side */
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a task came out, a slot was freed, the flow ended */
    bool started, closed, ended, stopping;
    int waiting_room;
    struct flow_task *tasks; /* queue entries */
    unsigned char *records;  /* queue x task_size: the records that came out */
    uint32_t *free_slots;
    size_t n_free;
    uint64_t next_id;
    size_t in_flight;       /* QUEUED */
    struct flow_fifo order; /* ordered: every task by submit order; else: done tasks */
    size_t next_ring;       /* round robin over step 0's processes */
    long deadlines;         /* queued tasks with a deadline */
    int64_t next_deadline_scan;
    bool has_error;
    sk_flow_result error;
    uint64_t corrupt, late; /* records dropped */
    int64_t next_process_check;
    int news_waiters; /* threads in wait_for_news */

    /* payloads (payload.c): the area, and the parent's own bookkeeping */
    int payload_fd;
    void *payload_base;
    size_t payload_size, payload_used;
    struct flow_extents payload_free, payload_live;

    /* the run's session directory (all empty: none) */
    struct sk_session_dir session;
    char session_prefix[SK_SESSION_DIR_PREFIX_MAX + 1];

    /* metrics, the parent's own */
    int64_t started_ns;
    uint64_t submitted, sent, completed, failed;
    struct sk_timer *latency; /* submit to out, per task */
};

static inline size_t flow_align_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

/* The ring of edge e from producer p to consumer c. */
static inline struct flow_ring *flow_ring_of(struct sk_flow *f, int edge, int p, int c,
                                             int consumers)
{
    return &f->rings[f->edge_ring[edge] + (size_t)p * (size_t)consumers + (size_t)c];
}

static inline struct flow_slot *flow_slot_of(struct sk_flow *f, int global)
{
    return (struct flow_slot *)((char *)f->base + f->slot_offset[global]);
}

static inline unsigned char *flow_hand(struct flow_slot *s)
{
    return (unsigned char *)(s + 1);
}

/* Producers and consumers of an edge (the parent counts as one). */
int flow_edge_producers(const struct sk_flow *f, int edge);
int flow_edge_consumers(const struct sk_flow *f, int edge);

/* The arena (arena.c): maps it for the frozen steps and describes every
 * ring; then makes the doorbells (after the processes' structs exist). */
int flow_arena_create(struct sk_flow *f);
int flow_doorbells_create(struct sk_flow *f);

/* wakeup.c: the flow's fd. create after the doorbells, watch_processes
 * after every process started; arm for a task deadline; take what woke the
 * fd (returns FLOW_DUE_* bits: what the caller must look at now). */
#define FLOW_DUE_DEADLINES 1u
#define FLOW_DUE_PROCESSES 2u
int flow_wakeup_create(struct sk_flow *f);
int flow_wakeup_watch_processes(struct sk_flow *f);
void flow_wakeup_arm(struct sk_flow *f, int64_t deadline);
unsigned flow_wakeup_take(struct sk_flow *f);
void flow_wakeup_release(struct sk_flow *f);

/* The payload area (payload.c), made by sk_flow_create. */
int flow_payload_area_create(struct sk_flow *f, size_t size);
void flow_payload_area_release(struct sk_flow *f);

/* Records on the wire (record.c): plain bytes or a tpl image in a cell of
 * wire_size bytes. decode allocates a tpl record's strings (release frees
 * them); check validates an image without decoding it. */
int flow_record_encode(const struct sk_flow *f, const void *record, unsigned char *wire);
int flow_record_decode(const struct sk_flow *f, const unsigned char *wire, void *record);
void flow_record_release(const struct sk_flow *f, void *record);
int flow_record_check(const struct sk_flow *f, const unsigned char *wire);

/* The class every step process runs (step.c). */
extern const sk_class flow_proc_class;

/* Wakes every process and the parent (a state change they must see). */
void flow_wake_all(struct sk_flow *f);

#endif
