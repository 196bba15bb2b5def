/* SPDX-License-Identifier: MIT */
/*
 * skproc flows: pipelines of process groups. A flow is a chain of steps;
 * each step is N supervised processes that take tasks from the step before,
 * in batches, and hand them to the step after; the parent submits tasks at
 * the front and collects them at the end.
 *
 *     typedef struct { sk_step base; int add; } adder;
 *     static int adder_handle(sk_step *self, sk_task *tasks, size_t n) {
 *         adder *a = SK_CONTAINER_OF(self, adder, base);
 *         for (size_t i = 0; i < n; i++)
 *             *(int64_t *)tasks[i].record += a->add;
 *         return 0;
 *     }
 *     static const sk_step_class adder_class = {.name = "adder", .handle = adder_handle};
 *
 *     sk_flow *flow;
 *     sk_flow_config cfg = {.task_size = sizeof(int64_t)};
 *     sk_flow_create(&flow, &cfg);
 *     adder a = {.add = 1}, b = {.add = 10};
 *     sk_step_init(&a.base, &adder_class);
 *     sk_step_init(&b.base, &adder_class);
 *     b.base.config.processes = 2;
 *     sk_flow_add(flow, &a.base);
 *     sk_flow_add(flow, &b.base);
 *     sk_flow_start(flow);                      // every process is ready
 *     int64_t v = 5;
 *     sk_flow_call(flow, &v, 1.0, NULL);        // v == 16
 *     sk_flow_release(flow);
 *
 * Steps are objects in skproc's style: embed sk_step in a struct of your
 * own, fill a class table of hooks, set config after sk_step_init. Each
 * process of a step is forked from the parent when the flow starts and has
 * its own copy of that struct, as it was then.
 *
 * Tasks are records of task_size bytes (plain bytes: no pointers). They
 * travel between steps through shared-memory rings, one ring per pair of
 * processes of adjacent steps, each written by one process and read by one:
 * no lock, no system call while both sides are busy.
 *
 * End of stream is exact: sk_flow_close says no more input; every process
 * of the first step finishes what it holds, handles its partial batch, runs
 * its stop hook and closes its output rings; a process of the next step
 * ends when every ring into it is closed and empty, and so on. The flow is
 * finished when every ring into the parent is closed.
 *
 * Trust: a step's process can write every byte it shares with the parent.
 * The parent checks every record it reads (task ids, slots, lengths) against
 * its own table of tasks in flight; a forged one costs that record
 * (SK_ECORRUPT), never a crash, a hang or a task delivered twice.
 *
 * Threads: any number of threads may submit to one flow at once, and any
 * thread may collect; the other calls are for one thread at a time.
 */
#ifndef SKPROC_FLOW_H
#define SKPROC_FLOW_H

#ifndef SKPROC_H
#error "include <skproc.h>, which includes this file"
#endif

#include <stdio.h>

typedef struct sk_flow sk_flow;
typedef struct sk_step sk_step;

/* One task as a step's hooks see it. */
typedef struct sk_task {
    uint64_t id;  /* the flow's number for it, from sk_flow_submit (0, 1, 2, ...) */
    void *record; /* task_size bytes; the hooks may change them, the next step sees that */
    int attempt;  /* 1 on the first attempt in this step, 2 after one failed, ... */
    int status;   /* out: set by sk_task_fail; 0 */
} sk_task;

/* The hooks of a step. Only handle is required. Each returns 0 for
 * success; non-zero is a failure (sk_step_fail attaches a message). */
typedef struct sk_step_class {
    const char *name; /* names the step in errors, metrics and logs */
    /* Once in each process of the step, before it takes any task (load a
     * model, open a connection). The step is ready when it has returned in
     * every process. After a crash the restarted process runs it again. A
     * failure is retried while the process has restarts left, then fails
     * the flow's start (or the flow, when it had started). */
    int (*start)(sk_step *self);
    /* A batch of 1 up to config.batch_size tasks. Fill in or change their
     * records; mark one task failed with sk_task_fail. A non-zero return
     * fails the whole batch: each task is tried again while it has lives in
     * this step, else it fails with the error. */
    int (*handle)(sk_step *self, sk_task *tasks, size_t count);
    /* Once in each process of the step when its input has ended (or the
     * flow stops), after its last batch: clean up, flush. */
    int (*stop)(sk_step *self);
    /* In the step's process, for tasks that failed for good in this step
     * (their lives are spent): log them, release what they held. The
     * tasks go on to the parent as failed whatever it returns. */
    void (*error)(sk_step *self, sk_task *tasks, size_t count, const sk_error *err);
    /* Whether this step handles the task; false passes it on to the next
     * step untouched (it is counted as skipped). NULL: every task. */
    bool (*condition)(sk_step *self, const sk_task *task);
} sk_step_class;

/* Per-hook limits, seconds; zero or lower: none. A hook that runs past its
 * limit is killed with its process; the process is restarted, and the
 * batch it held is tried again while its tasks have lives. */
typedef struct sk_step_timeouts {
    double start, handle, stop;
} sk_step_timeouts;

/* For every field, zero (or lower) means the default. */
typedef struct sk_step_config {
    int processes;         /* processes in the step; default 1 */
    size_t batch_size;     /* tasks per handle call, at most; default 1 */
    double batch_timeout;  /* seconds a partial batch waits for more tasks; default 0:
                            * handle what is queued at once */
    int lives;             /* attempts of a task in this step; default 1 */
    int restarts;          /* how often a process of the step may be restarted after a crash,
                            * a timeout or a failed start before the flow fails; default 16 */
    bool crash_stops_flow; /* a crash or a timeout ends the whole flow with an error instead
                            * of a restart */
    sk_step_timeouts timeouts;
    uint64_t reserved[4]; /* leave zero */
} sk_step_config;

/* The base struct every step embeds. */
struct sk_step {
    const sk_step_class *cls;
    sk_step_config config; /* set after sk_step_init, frozen by sk_flow_start */
    /* private */
    struct sk_flow_step *impl;
};

typedef struct sk_flow_config {
    size_t task_size;           /* bytes of one task record; required, at most 64 KiB */
    size_t queue_size;          /* tasks in flight: submitted and not yet collected (the bound of
                                 * every queue and of the parent's memory); default: 32 x the
                                 * largest batch, or 4 x that x the most processes in a step
                                 * when more, at least 256 */
    bool ordered;               /* sk_flow_collect gives tasks in the order they were submitted;
                                 * default: in the order they finish */
    double start_timeout;       /* seconds sk_flow_start waits for every step to be ready;
                                 * default 30 */
    double stop_timeout;        /* seconds sk_flow_stop lets steps drain before it kills them;
                                 * default 5 */
    size_t payload_area;        /* bytes of shared memory for payloads (sk_flow_payload_alloc);
                                 * 0: none. Pages are committed as they are first written */
    const char *format;         /* tpl format of one task record: "S(is)", "S(ij$(ff))", or "B"
                                 * alone for a buffer (tpl allows no B inside S); NULL: plain
                                 * bytes. With strings or buffers (s, B) in it, records travel as
                                 * tpl images: every hook sees the record decoded (strings
                                 * malloc'ed, freed by the flow after the hook), and records
                                 * coming out are decoded into the caller's struct (its strings
                                 * and buffers malloc'ed: free them). Without, plain bytes */
    size_t image_size;          /* the largest tpl image of one record, bytes; default 1024, at
                                 * most 64 KiB. A record whose image is larger is refused
                                 * (submit: SK_EINVAL) or fails its task (in a step) */
    const char *session_prefix; /* the run's session directory is <$TMPDIR or /tmp>/<prefix>-
                                 * XXXXXX, mode 0700; default "skflow". No '/', at most 200
                                 * characters */
    bool no_session_dir;        /* true: the run gets no session directory (saves a mkdtemp
                                 * and a fork at start) */
    uint64_t reserved[3];       /* leave zero */
} sk_flow_config;

/* A payload: bytes in the flow's shared payload area, named by where they
 * are. Put one in a task's record; every step reaches the same bytes with
 * sk_step_payload, in place: a payload is never copied from step to step
 * (Aqueduct's share_value, without the copy). */
typedef struct sk_payload {
    uint64_t offset; /* in the payload area */
    uint64_t size;   /* bytes */
} sk_payload;

/* A task that came out of the flow. */
typedef struct sk_flow_result {
    uint64_t id;    /* what sk_flow_submit returned */
    int status;     /* SK_OK, or why it failed: SK_EPROCESS (a hook failed: error says which and
                     * how), SK_ETIMEDOUT (its timeout passed first), SK_ECLOSED (the flow ended
                     * before the task got through: an error status, a finish, a stop),
                     * SK_ECORRUPT (its record came out of the last step broken),
                     * SK_EFORMAT or SK_ENOMEM (a tpl record that could not be decoded into
                     * the caller's struct; the record is zeroed) */
    int step;       /* a failure: the index of the step it failed in, or -1 */
    int process;    /* a failure: the process of that step (0 to processes - 1), or -1 */
    sk_error error; /* a failure: what happened, in skproc's error kinds; .item is the id.
                     * Written only for a failure: on SK_OK it is left as it was (it is
                     * 1.3 KiB, and tasks come out by the million) */
} sk_flow_result;

/* Hook-side calls. */

/* Initializes a step: the automatic super().__init__(). SK_EINVAL without a
 * class or a handle hook. */
int sk_step_init(sk_step *step, const sk_step_class *cls);
/* In a hook: records a message for the failure the hook is about to
 * return; returns code (or -1 when code is 0). */
int sk_step_fail(sk_step *self, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* In handle: task i of the batch fails (its lives in this step count);
 * the others go on. */
int sk_task_fail(sk_step *self, sk_task *task, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* In any hook: ends the whole flow after what this step has handled is
 * forwarded (status "finish"): the flow takes no more input, the steps
 * after this one drain and stop, the steps before it stop; tasks that had
 * not got past this step come out as SK_ECLOSED. */
int sk_step_finish(sk_step *self);
/* In any hook: ends the whole flow with an error (status "error"): every
 * step stops at once; the tasks in flight fail with SK_ECLOSED and this
 * error; sk_flow_wait returns SK_EPROCESS. Returns SK_EPROCESS (SK_ESTATE
 * outside a hook), so that a hook can end with return sk_step_error(...). */
int sk_step_error(sk_step *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* In a hook: the bytes of payload p (p->size of them, writable), or NULL
 * when p does not lie inside the payload area. A step may change them and
 * lower p->size; it cannot allocate: the parent gives each task the
 * payloads it needs, its output's too. */
void *sk_step_payload(sk_step *self, const sk_payload *p);
/* In a hook: which process of its step this is (0 to processes - 1), and
 * the step's index in the flow. */
int sk_step_process(const sk_step *self);
int sk_step_index(const sk_step *self);
/* In a hook: the run's session directory (see sk_flow_session_dir), the
 * same path in every process of every step; NULL with no_session_dir. */
const char *sk_step_session_dir(const sk_step *self);

/* Parent-side calls. */

int sk_flow_create(sk_flow **flow, const sk_flow_config *cfg);
/* Appends a step. The step must stay in place until sk_flow_release.
 * SK_ESTATE once started. */
int sk_flow_add(sk_flow *flow, sk_step *step);
/* Forks every process of every step and returns when all are ready (their
 * start hooks returned). SK_ETIMEDOUT or SK_EPROCESS otherwise, with
 * sk_flow_error naming the step that was not ready and why; SK_ESYS when
 * the session directory or a process could not be made, SK_ENOMEM; nothing
 * is left running then. SK_EINVAL (nothing started) for a step whose
 * config was changed past the limits after sk_flow_add. */
int sk_flow_start(sk_flow *flow);

/* Puts one task (task_size bytes, copied) into the flow; *id (may be NULL)
 * gets its number. Waits up to timeout seconds for room (0: never waits,
 * negative: forever): SK_EFULL when queue_size tasks are in flight.
 * task_timeout (seconds, 0 or lower: none) fails the task with
 * SK_ETIMEDOUT when it has not come out by then; a late result is dropped.
 * SK_ECLOSED after sk_flow_close or the flow's end. */
int sk_flow_submit(sk_flow *flow, const void *record, double timeout, double task_timeout,
                   uint64_t *id);
/* Puts count tasks (records: count x task_size bytes, copied) into the
 * flow, in frames of up to the first step's batch size: one lock and one
 * wake-up per frame instead of per task. Waits for room as sk_flow_submit
 * does, for the whole call; *submitted (may be NULL) gets how many went in
 * (all on SK_OK; the first *submitted otherwise), ids (may be NULL, count
 * entries) their numbers. */
int sk_flow_submit_many(sk_flow *flow, const void *records, size_t count, double timeout,
                        double task_timeout, uint64_t *ids, size_t *submitted);
/* The next task out of the flow (in the order of config.ordered) into
 * *out, its record into record (task_size bytes; may be NULL). Waits up to
 * timeout seconds (0 polls, negative forever). SK_OK (look at
 * out->status), SK_ETIMEDOUT, or SK_ECLOSED when the flow has ended and
 * every task came out. */
int sk_flow_collect(sk_flow *flow, double timeout, void *record, sk_flow_result *out);
/* Up to max tasks at once: waits up to timeout for the first, then takes
 * what is ready. records (may be NULL) gets max x task_size bytes at most,
 * results max entries; *count how many. Returns as sk_flow_collect. */
int sk_flow_collect_many(sk_flow *flow, double timeout, void *records, sk_flow_result *results,
                         size_t max, size_t *count);
/* Submits one task and waits for it: its record is replaced by the
 * result. Returns the task's status (out, may be NULL, gets the rest).
 * Tasks submitted by others that come out meanwhile stay for
 * sk_flow_collect. */
int sk_flow_call(sk_flow *flow, void *record, double timeout, sk_flow_result *out);

/* End of stream: no more input. Every step finishes what it holds. */
int sk_flow_close(sk_flow *flow);
/* Waits until the flow has ended: every process of every step ended, after
 * end of stream, a finish or an error status, or sk_flow_stop. Tasks not
 * collected stay for sk_flow_collect. SK_OK, SK_ETIMEDOUT, or SK_EPROCESS
 * when it ended with an error (sk_flow_error). */
int sk_flow_wait(sk_flow *flow, double timeout);
/* Ends the flow now: no more input, the steps get stop_timeout seconds to
 * finish what they hold and run their stop hooks, then are killed. Tasks
 * that had not come out fail with SK_ECLOSED. */
int sk_flow_stop(sk_flow *flow);
/* Stops if needed, reaps every process, frees everything. */
void sk_flow_release(sk_flow *flow);

/* Payloads, parent side. Any time after sk_flow_create (so input can be
 * written straight into shared memory before it is submitted), from any
 * thread. alloc: size bytes (64-byte aligned) into *p, their address into
 * *data (may be NULL); SK_EFULL when the area has no such room,
 * SK_ESTATE without a payload area. */
int sk_flow_payload_alloc(sk_flow *flow, size_t size, sk_payload *p, void **data);
/* The bytes of p, or NULL unless p lies inside a payload allocated and not
 * freed: a handle a step forged or changed is refused here. */
void *sk_flow_payload(sk_flow *flow, const sk_payload *p);
/* Gives p's space back (p as sk_flow_payload_alloc gave it, or with a
 * smaller size). SK_EINVAL when no payload starts at p->offset. */
int sk_flow_payload_free(sk_flow *flow, const sk_payload *p);

/* Readable when sk_flow_collect has something to give: a task, a task
 * whose timeout passed, the end (also when a step process ended for good);
 * not readable any more once sk_flow_collect said SK_ETIMEDOUT. For
 * poll/epoll (it is an epoll fd); do not read or close it. Where pidfds
 * cannot be had (valgrind), a process's end is noticed by the next
 * collect or wait with a timeout instead. */
int sk_flow_fd(const sk_flow *flow);
/* What ended the flow or its start with an error, or NULL. */
const sk_flow_result *sk_flow_error(const sk_flow *flow);
/* The run's session directory: made by sk_flow_start (mode 0700, under
 * $TMPDIR or /tmp, named by config.session_prefix) before any step
 * process, private to the run and shared by all its processes. It is
 * removed when the run ends, whichever way: by sk_flow_wait or
 * sk_flow_stop once every process is reaped, by sk_flow_release, and when
 * the parent dies (even by SIGKILL) by a janitor process once the parent and
 * every step are gone. NULL before start, after removal, and with
 * config.no_session_dir. */
const char *sk_flow_session_dir(const sk_flow *flow);

/* --------------------------------------------------------------- metrics */

/* Batch sizes are counted in power-of-two bins: bin k counts handle calls
 * of 2^k to 2^(k+1) - 1 tasks (bin 0: one task). */
#define SK_FLOW_BATCH_BINS 13

/* One step, summed over its processes (restarted ones included). */
typedef struct sk_flow_step_metrics {
    const char *name; /* the class's name, or "step" */
    int index;        /* the step's place in the flow */
    int processes;
    uint64_t tasks_in;      /* taken from its input queue */
    uint64_t tasks_out;     /* handled (or skipped) and passed on */
    uint64_t tasks_failed;  /* failed for good in this step */
    uint64_t tasks_skipped; /* passed on untouched: the condition said no */
    uint64_t batches;       /* handle calls */
    uint64_t batch_sizes[SK_FLOW_BATCH_BINS];
    uint64_t queue_depth;       /* tasks waiting in its input queue now */
    uint64_t restarts;          /* of its processes, after crashes and timeouts */
    const sk_timer *handle;     /* seconds per handle call */
    const sk_timer *queue_wait; /* seconds a frame of tasks waited in its input queue */
} sk_flow_step_metrics;

/* A snapshot of a flow's metrics, read by sk_flow_metrics_read. */
typedef struct sk_flow_metrics {
    int steps;
    sk_flow_step_metrics *step; /* steps entries */
    uint64_t submitted;         /* tasks put into the flow */
    uint64_t completed;         /* came out with SK_OK */
    uint64_t failed;            /* came out failed (any status but SK_OK) */
    uint64_t in_flight;         /* submitted and not yet out */
    double elapsed;             /* seconds since sk_flow_start */
    double throughput;          /* tasks out (ok or failed) per second since the start */
    const sk_timer *latency;    /* seconds from submit to coming out of the last step */
    /* private */
    void *impl;
} sk_flow_metrics;

/* A snapshot of the metrics now, at any time after sk_flow_start (from any
 * thread). What the steps' processes report is read from memory they can
 * write: counts are believed as numbers, never used to index anything.
 * Free with sk_flow_metrics_free. */
int sk_flow_metrics_read(sk_flow *flow, sk_flow_metrics *out);
void sk_flow_metrics_free(sk_flow_metrics *m);

/* Writes m to out in the Prometheus text exposition format 0.0.4, ready
 * to serve on a /metrics page (Content-Type: text/plain; version=0.0.4).
 * Every metric name is one family (HELP and TYPE lines, then its samples);
 * the output passes `promtool check metrics` with no lint.
 *
 *   <prefix>_tasks_submitted_total, _tasks_completed_total,
 *     _tasks_failed_total                          counters
 *   <prefix>_tasks_in_flight                       gauge
 *   <prefix>_elapsed_seconds                       gauge
 *   <prefix>_throughput_tasks_per_second           gauge (the average since the start)
 *   <prefix>_latency_seconds                       summary
 *   per step, labelled step="<name>",index="<index>":
 *   <prefix>_step_processes                        gauge
 *   <prefix>_step_tasks_total{outcome="in|out|failed|skipped"}  counter
 *   <prefix>_step_batches_total                    counter
 *   <prefix>_step_batch_size                       histogram
 *   <prefix>_step_queue_depth                      gauge
 *   <prefix>_step_restarts_total                   counter
 *   <prefix>_step_handle_seconds                   summary
 *   <prefix>_step_queue_wait_seconds               summary
 *
 * Label values have backslash, double quote and newline escaped; a byte of
 * a step's name that is not well-formed UTF-8 is written as U+FFFD. Both
 * labels are there because two steps may have one name.
 *
 * Summaries: quantile="0.5", "0.9", "0.99" (sk_timer_percentile), _sum in
 * seconds and _count, over the whole run (a timer is not windowed). A timer
 * with no samples has NaN quantiles, _sum 0 and _count 0; a NULL timer is
 * written the same way, so the set of series never changes.
 *
 * The batch-size histogram is the bins as they are: le="1", "3", "7", ...,
 * "8191" (2^(k+1) - 1 for bin k, cumulative, exact), "+Inf", and _count
 * (the bins' total, equal to +Inf). It has no _sum: the flow does not
 * record the sum of batch sizes, and tasks_in - tasks_skipped is not it
 * (batches retried after a failure hand tasks again; tasks taken and not
 * yet handled count in it), nor does it only grow, which a _sum must. _sum
 * is optional to Prometheus; for a mean batch size,
 * rate(step_tasks_total{outcome="in"}) / rate(step_batches_total) is close.
 *
 * Numbers: counts as integers, other values as the shortest decimal that
 * reads back exactly, "." as the decimal point whatever the locale, NaN
 * and +Inf as the format spells them.
 *
 * prefix NULL: "skproc_flow"; otherwise a metric name,
 * [a-zA-Z_:][a-zA-Z0-9_:]*, else SK_EINVAL (a colon is valid, but kept for
 * recording rules: promtool lints it). The output is flushed: SK_ESYS
 * when a write or the flush fails (out may then hold part of the text). */
int sk_flow_metrics_prometheus(const sk_flow_metrics *m, const char *prefix, FILE *out);

/* Sends m to a StatsD server over UDP, in the plain StatsD line format
 * ("name:value|type"), as Aqueduct's StatsD exporter does.
 *
 * sk_statsd_open: host is an IPv4 or IPv6 address or a name (getaddrinfo,
 * any family; the first address that a UDP socket connects to is used),
 * port 1 to 65535 (StatsD's usual one is 8125). prefix NULL: "skproc.flow";
 * otherwise 1 to 200 characters of [A-Za-z0-9_.-] with no empty part
 * between dots, else SK_EINVAL. A host that does not resolve is SK_EINVAL
 * (no such name) or SK_ESYS (the resolver failed, e.g. no DNS server);
 * a socket that cannot connect is SK_ESYS.
 *
 * sk_statsd_send, the lines, with <step> the step's name with every byte
 * but [A-Za-z0-9_-] made '_' (at most 128 of them, "step" when empty),
 * and "_<index>" added when an earlier step has the same <step>:
 *
 *   <prefix>.submitted, .completed, .failed                     |c
 *   <prefix>.in_flight, .elapsed_seconds, .throughput           |g
 *   <prefix>.latency                                            |ms
 *   <prefix>.<step>.tasks_in, .tasks_out, .tasks_failed, .tasks_skipped,
 *     .batches, .restarts                                       |c
 *   <prefix>.<step>.batch_size.<lo>_<hi> (bin k: 2^k, 2^(k+1)-1) |c
 *   <prefix>.<step>.processes, .queue_depth                     |g
 *   <prefix>.<step>.handle_time, .queue_wait                    |ms
 *
 * Counters are deltas: the increase since what this sender sent before
 * (the first send: the whole count); an increase of 0 sends no line; a
 * count lower than before (another flow) counts as a new start. A delta
 * counts as sent once send() took its datagram: the deltas of a datagram
 * that could not be sent go out with the next call, so none is lost or
 * doubled by a failed send(). Gauges are sent every time; a double gauge
 * that is negative or not finite is left out (StatsD would read a sign as
 * a change). A timer sends one timing: the mean, in milliseconds, of the
 * durations it recorded since the last timing sent (StatsD's own
 * percentiles are then over those means; the run's quantiles are in the
 * Prometheus output), nothing when it recorded none or is NULL.
 *
 * Lines are packed into datagrams of at most 1432 bytes, never cut. UDP
 * waits for no one: a server that is not there is not an error (the
 * ECONNREFUSED its absence brings to the next send() is passed over once)
 * and what it would have received is lost, as anything UDP loses after
 * send(). SK_ESYS only when no datagram of this call could be sent at all
 * (the reason in sk_last_error_message); its counts then go with the next
 * call. SK_ENOMEM when the sender cannot grow for more steps.
 *
 * The sender keeps the sent counts by step position: use one per flow. One
 * thread at a time per sender. sk_statsd_close(NULL) does nothing. */
typedef struct sk_statsd sk_statsd;
int sk_statsd_open(sk_statsd **out, const char *host, int port, const char *prefix);
int sk_statsd_send(sk_statsd *s, const sk_flow_metrics *m);
void sk_statsd_close(sk_statsd *s);

#endif
