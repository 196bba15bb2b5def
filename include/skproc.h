/* SPDX-License-Identifier: MIT */
/*
 * skproc: object-oriented multi-process programming for C.
 *
 * A process is a struct of yours that embeds an sk_process and a class table
 * of lifecycle hooks. sk_start() forks a child that loops the hooks:
 *
 *     while (not stopped, runs not reached, join_in not elapsed) {
 *         prerun(); run(); postrun(); current_run += 1;
 *     }
 *     onfinish();
 *     result();            -- or error(), after a failure
 *
 * The parent controls the child with sk_wait/sk_stop/sk_kill, exchanges typed
 * messages with sk_tell/sk_listen, and collects a typed result (sk_result) or
 * a typed error (sk_error_of). Values travel as tpl images: every format
 * argument below is a tpl format string ("i", "I", "s", "S(if)", ...).
 *
 * Return codes: every int-returning call returns SK_OK (0) on success and a
 * negative SK_E* code on failure; sk_strerror() names it.
 *
 * Threads: one handle is used from one thread at a time; different handles
 * may be used from different threads at once.
 */
#ifndef SKPROC_H
#define SKPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; everything declared here is
 * its exported interface. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define SKPROC_VERSION_MAJOR 0
#define SKPROC_VERSION_MINOR 1
#define SKPROC_VERSION_PATCH 0
/* The same as one number, MAJOR * 10000 + MINOR * 100 + PATCH, for #if. */
#define SKPROC_VERSION_NUMBER                                                                      \
    (SKPROC_VERSION_MAJOR * 10000 + SKPROC_VERSION_MINOR * 100 + SKPROC_VERSION_PATCH)

/* The version of the library the program runs with, which may be newer than
 * the header it was compiled with: "MAJOR.MINOR.PATCH", e.g. "0.1.0" (static
 * storage), and MAJOR * 10000 + MINOR * 100 + PATCH. */
const char *sk_version(void);
int sk_version_number(void);

/* ---------------------------------------------------------------- codes */

enum {
    SK_OK = 0,
    SK_EINVAL = -1,    /* a bad argument: NULL, a malformed format, no run hook */
    SK_ESTATE = -2,    /* the call does not fit the handle's state (not started, already started) */
    SK_ETIMEDOUT = -3, /* a wait or listen ran out of time */
    SK_EPROCESS = -4,  /* the process failed: sk_error_of() says how */
    SK_EKILLED = -5,   /* the process was killed with sk_kill() */
    SK_EFORMAT = -6,   /* a tpl format does not match the data */
    SK_ECLOSED = -7,   /* the peer is gone and nothing is left to read */
    SK_EFULL = -8,     /* the channel's capacity is exhausted; nothing was queued */
    SK_ENOMEM = -9,    /* out of memory */
    SK_ESYS = -10,     /* a system call failed; errno is kept */
    SK_ECORRUPT = -11, /* a corrupt message was received and discarded; the channel goes on */
    SK_ENORESULT = -12, /* sk_result asked for values and the process published none */
    SK_ECANCELED = -13, /* a pool item was cancelled before it ran (sk_pool_cancel) */
    SK_ECRASHED = -14   /* sk_error.reason only: the process was ended by a signal or an exit
                         * skproc did not make */
};

/* A static, human-readable name for a return code ("timed out", ...). */
const char *sk_strerror(int code);

/* Why the last call made by this thread that refused its arguments or its
 * state said so, e.g. "config.timeouts.run is not a finite number" after
 * SK_EINVAL from sk_start; "" when no call has said why. Kept until the next
 * such call in the same thread; never freed. */
const char *sk_last_error_message(void);

/* ------------------------------------------------------- class and config */

typedef struct sk_process sk_process;

/* A lifecycle hook. Return 0 on success; any other value is an error (see
 * sk_fail to attach a message). */
typedef int (*sk_hook)(sk_process *self);

/* The class table. Only run is required. Use designated initializers: the
 * struct may grow in later versions. */
typedef struct sk_class {
    const char *name; /* shown in errors and logs */
    sk_hook prerun, run, postrun, onfinish, result, error;
    /* For pools (skproc/pool.h) only: the size of the struct that embeds
     * sk_process, and the hook that fills a fresh one from an item. */
    size_t size;
    int (*init)(sk_process *self, const void *item);
    /* Room for later hooks without an ABI break: zero it (designated
     * initializers or a static table do; so does memset). */
    void *reserved[8];
} sk_class;

/* Per-section timeouts in seconds; zero or lower means none. */
typedef struct sk_timeouts {
    double prerun, run, postrun, onfinish, result, error;
} sk_timeouts;

/* The callback config.on_event names (the events are described under
 * "events" below). */
typedef struct sk_event sk_event;
typedef void (*sk_event_fn)(const sk_event *ev, void *ctx);

/* When a process counts as ready (sk_wait_ready, SK_EVENT_READY): what a
 * parent that starts processes in order, or routes work to them, waits for.
 * Readiness is kept for the run of the handle, from sk_start to the end: a
 * worker restarted after a fault (lives) does not make it unready again. */
typedef enum sk_ready_mode {
    SK_READY_ON_START = 0, /* ready as soon as sk_start returned SK_OK (the default) */
    SK_READY_ON_NOTIFY     /* ready when a hook calls sk_ready(self), e.g. at the end of
                            * prerun once a model or a socket is loaded; a spawned program
                            * with a ready_fd when it writes a newline to it */
} sk_ready_mode;

/* Configuration, set after sk_init and frozen by sk_start. For every field,
 * zero or lower means the default. */
typedef struct sk_config {
    long runs;      /* iterations to run; default: unlimited */
    double join_in; /* seconds from the first start after which the loop ends; default: none */
    int lives;      /* total attempts; lives = 3 is one try and two retries; default: 1 */
    sk_timeouts timeouts;
    size_t capacity;    /* bytes in flight per direction before tell says SK_EFULL; 1 MiB
                         * (at most 4 GiB) */
    size_t max_message; /* the largest message image in bytes; 64 MiB (at most 1 GiB) */
    bool supervise;     /* always give the process a supervisor, also when nothing above needs
                         * one: then what its hooks start ends even when the parent is
                         * SIGKILLed (see docs/supervision.md); default: only when needed */
    /* Called in the parent for what happens to the process (start, restart,
     * timeout, crash, failure, kill, finish): see sk_event below. NULL: none. */
    sk_event_fn on_event;
    void *event_ctx; /* handed to on_event */
    double spin;     /* seconds a waiting sk_listen spins on the channel before it sleeps, so
                      * that a reply coming within microseconds is caught without a wake-up;
                      * default: SK_DEFAULT_SPIN with two or more CPUs online, none with one;
                      * at most SK_MAX_SPIN. An idle wait costs this much CPU, once.
                      * With spinning on, a supervisor also wakes 0.2 ms before a
                      * deadline (a timeout, join_in) and spins to it, so that it ends
                      * the hook on time rather than a CPU's wake-up later */
    bool no_spin;    /* never spin: every wait sleeps at once (and deadlines too) */
    /* When the process is ready: SK_READY_ON_START (the default) or
     * SK_READY_ON_NOTIFY; any other value is SK_EINVAL from sk_start. */
    sk_ready_mode ready;
    int reserved0; /* zero */
    /* Room for later settings without an ABI break: sk_init zeroes the whole
     * config; leave these zero. */
    uint64_t reserved[3];
} sk_config;

#define SK_DEFAULT_CAPACITY ((size_t)1 << 20)
#define SK_DEFAULT_MAX_MESSAGE ((size_t)64 << 20)
#define SK_MAX_CAPACITY ((size_t)1 << 32)
#define SK_DEFAULT_SPIN 50e-6 /* seconds */
#define SK_MAX_SPIN 10e-3     /* seconds: a longer config.spin is cut to this */
#define SK_MAX_MAX_MESSAGE ((size_t)1 << 30)

struct sk_runtime; /* private */

/* The base struct every process embeds. */
struct sk_process {
    const sk_class *cls;
    sk_config config; /* set after sk_init, frozen by sk_start */
    /* private fields after this line */
    struct sk_runtime *rt;
    uintptr_t seal;    /* set by sk_init, cleared by sk_release: calls refuse other handles */
    void *reserved[3]; /* room for private state without an ABI break */
};

/* From a pointer to the embedded sk_process back to the struct embedding it. */
#define SK_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ------------------------------------------------------------- lifecycle */

/* Prepares p for cls with the default config: the automatic super().__init__().
 * SK_EINVAL when p or cls is NULL or cls->run is NULL. */
int sk_init(sk_process *p, const sk_class *cls);

/* Kills and reaps the child if it still runs, then frees everything sk_init
 * and sk_start took. p may be sk_init'ed and started again afterwards. */
void sk_release(sk_process *p);

/* Freezes the config and forks the child. SK_ESTATE if already started. */
int sk_start(sk_process *p);

/* Waits until the process is finished for good (never between retries).
 * timeout < 0 waits forever, 0 polls. SK_OK when finished (whatever the
 * outcome), SK_ETIMEDOUT otherwise. SK_OK at once before sk_start. */
int sk_wait(sk_process *p, double timeout);

/* Asks the loop to end: the section in progress finishes, the rest of that
 * iteration is skipped and not counted, then onfinish and result run. Never
 * blocks. Works from the parent and from inside a hook. */
int sk_stop(sk_process *p);

/* Ends the process at once: no hook runs. Reaps it. sk_result then returns
 * SK_EKILLED. */
int sk_kill(sk_process *p);

/* Waits for the process and reads what its result hook published with
 * sk_return, unpacking it into the pointers that follow fmt (tpl format).
 *   SK_OK        the values are filled in
 *   SK_EPROCESS  the process failed; sk_error_of(p) says how. If the error
 *                hook published a value, the pointers are filled with it.
 *   SK_EKILLED   the process was killed
 *   SK_EFORMAT   fmt does not match what was published
 *   SK_ENORESULT fmt asks for values and the process published none
 * With no result published, a NULL or empty fmt is SK_OK. */
int sk_result(sk_process *p, const char *fmt, ...);

/* True while the child (or its supervisor) still runs. */
bool sk_alive(const sk_process *p);

/* The current run index (0-based), live: readable from the parent while the
 * child runs, and final after sk_wait. */
long sk_current_run(const sk_process *p);

/* The child's process id, or -1 when none runs. It changes after a restart. */
pid_t sk_pid(const sk_process *p);

/* ------------------------------------------------------------ readiness */

/* Waits until the process is ready (config.ready), sleeping: it wakes when
 * readiness comes or the process ends, never polls. timeout < 0 waits
 * forever, 0 polls.
 *   SK_OK        ready: at once with SK_READY_ON_START after a successful
 *                sk_start; also when it became ready and has finished since
 *   SK_ETIMEDOUT not ready within timeout
 *   SK_EPROCESS  it failed before it was ever ready: sk_error_of says how
 *                (the process is reaped and final, as after sk_wait)
 *   SK_EKILLED   it was killed (sk_kill) before it was ever ready
 *   SK_ECLOSED   it finished well without ever declaring readiness
 *   SK_ESTATE    not started
 * Events (config.on_event) are delivered while it waits, as in sk_wait.
 * Messages are not touched: what the process tells meanwhile stays for
 * sk_listen, and sk_fd stays readable for it. */
int sk_wait_ready(sk_process *p, double timeout);

/* In a hook (pass self): declares the process ready for
 * SK_READY_ON_NOTIFY (with SK_READY_ON_START it is ready already). SK_OK,
 * also when it was ready before (idempotent, also in a worker restarted
 * after a fault). In the parent: SK_ESTATE (sk_last_error_message says
 * why); the parent waits with sk_wait_ready. */
int sk_ready(sk_process *self);

/* --------------------------------------------------------- recoveries */

/* The attempts the process used: 1 + the failed attempts that were retried
 * (soft errors and hard faults inside the loop, while lives lasted); at most
 * config.lives. 0 before sk_start. Live while it runs, final after sk_wait. */
int sk_attempts(const sk_process *p);

/* Fresh workers started after hard faults (crashes and timeouts): to retry
 * the loop, or to run the error hook. 0 before sk_start; live while it
 * runs, final after sk_wait. */
int sk_restarts(const sk_process *p);

/* The errors that used up lives and were retried, oldest first: the first
 * SK_MAX_SPENT_ERRORS are kept. The error that ended the process is not one
 * of them (that is sk_error_of). sk_spent_error_count counts the kept ones,
 * sk_spent_errors_dropped those not kept; both 0 before the end. Readable
 * after sk_wait (or sk_kill) until sk_release. */
#define SK_MAX_SPENT_ERRORS 8
int sk_spent_error_count(const sk_process *p);
int sk_spent_errors_dropped(const sk_process *p);

/* The i-th kept spent error (0: the oldest), or NULL when i is out of range
 * or the process has not finished. */
const struct sk_error *sk_spent_error(const sk_process *p, int i);

/* ------------------------------------------------------------- in hooks */

/* In the result or error hook: publish the result (tpl format and values). */
int sk_return(sk_process *self, const char *fmt, ...);

/* In any hook: record why the hook fails. Returns code, or SK_EPROCESS when
 * code is 0, so that `return sk_fail(self, -5, "no route to %s", host);`
 * both records and fails. */
int sk_fail(sk_process *self, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ------------------------------------------------------------- messages */

/* Each process has a two-way channel: messages the parent tells, the child
 * listens to, and the other way round. Messages arrive whole, exactly once
 * and in order. A message is a tpl image; formats with arrays (A(...)) go
 * through sk_tell_image and sk_message_image with a tpl_node of your own. */

/* Sends values to the other side: the parent passes its handle, a hook
 * passes self. Never blocks.
 *   SK_EFULL    the channel holds config.capacity bytes already; nothing queued
 *               (an empty channel always takes one message up to max_message)
 *   SK_EINVAL   bad format, or the image is larger than config.max_message
 *   SK_ECLOSED  (parent) the process has ended
 *   SK_ESTATE   (parent) not started */
int sk_tell(sk_process *p, const char *fmt, ...);

/* sk_tell that waits for room: when the channel is full it sleeps until the
 * other side has read enough, at most timeout seconds (0: as sk_tell,
 * negative: no limit), instead of returning SK_EFULL.
 *   SK_ETIMEDOUT  still no room after timeout; nothing queued
 *   SK_ECLOSED    (parent) the process ended while we waited
 *   otherwise as sk_tell */
int sk_tell_wait(sk_process *p, double timeout, const char *fmt, ...);

/* Receives the next message from the other side into the pointers after fmt.
 * timeout 0 polls, negative waits forever.
 *   SK_ETIMEDOUT  nothing arrived in time
 *   SK_ECLOSED    the other side is gone and everything it sent was read;
 *                 in the child: the parent asked to stop and nothing is queued
 *   SK_EFORMAT    fmt does not match; the message stays at the head
 *   SK_ECORRUPT   the message at the head was corrupt and was discarded */
int sk_listen(sk_process *p, double timeout, const char *fmt, ...);

/* Sends a ready tpl image (from tpl_dump). SK_EFORMAT when it is not a
 * valid tpl image; otherwise as sk_tell. */
int sk_tell_image(sk_process *p, const void *img, size_t len);

/* A received message whose format is known only at run time. */
typedef struct sk_message sk_message;

/* Receives the next message whole, whatever its format; as sk_listen. */
int sk_listen_message(sk_process *p, double timeout, sk_message **msg);
/* The message's tpl format string, e.g. "S(is)". */
const char *sk_message_format(const sk_message *msg);
/* Unpacks it into the pointers after fmt; SK_EFORMAT when fmt differs. */
int sk_message_unpack(const sk_message *msg, const char *fmt, ...);
/* The raw tpl image, for tpl_load with a tpl_node of your own. */
const void *sk_message_image(const sk_message *msg, size_t *len);
void sk_message_free(sk_message *msg);

/* Packs the values after fmt into a new tpl image, as sk_tell would send
 * them (*img malloc'ed: free it; NULL with *len 0 for a NULL or "" fmt),
 * and unpacks one (the empty image, NULL and 0, unpacks with a NULL or ""
 * fmt only). Errors as sk_tell and sk_message_unpack. */
int sk_image_pack(void **img, size_t *len, const char *fmt, ...);
int sk_image_unpack(const void *img, size_t len, const char *fmt, ...);

/* A file descriptor that polls readable while a message is waiting: for
 * poll/epoll/libuv loops. In the parent it is also readable once the
 * process has ended, and once when a process of hooks with
 * SK_READY_ON_NOTIFY becomes ready after sk_fd was first called (then
 * sk_wait_ready(p, 0) says SK_OK, and sk_listen(p, 0, ...) says
 * SK_ETIMEDOUT and quiets it); not for a spawned program's ready_fd (poll
 * sk_wait_ready(p, 0) on a timer). In a hook (pass self) it is readable
 * once the parent has asked the process to stop (sk_listen then says
 * SK_ECLOSED), so a hook can wait for its inbox together with its own
 * sockets and files. Owned by the process; do not close it. Negative SK_E*
 * code on failure. */
int sk_fd(sk_process *p);

/* --------------------------------------------------------------- errors */

typedef enum sk_section {
    SK_NO_SECTION = -1, /* errors: no hook was running (a worker that could not be forked) */
    SK_PRERUN,
    SK_RUN,
    SK_POSTRUN,
    SK_ONFINISH,
    SK_RESULT,
    SK_ERROR,
    SK_FULL_RUN /* timers only: prerun + run + postrun of one iteration */
} sk_section;

/* The error hierarchy: every kind is a SK_PROCESS_ERROR. */
typedef enum sk_error_kind {
    SK_PROCESS_ERROR,       /* "ProcessError": the base, and errors outside any hook */
    SK_PRERUN_ERROR,        /* "PreRunError" */
    SK_RUN_ERROR,           /* "RunError" */
    SK_POSTRUN_ERROR,       /* "PostRunError" */
    SK_ONFINISH_ERROR,      /* "OnFinishError" */
    SK_RESULT_ERROR,        /* "ResultError" */
    SK_ERROR_HANDLER_ERROR, /* "ErrorHandlerError": the error hook itself failed */
    SK_TIMEOUT_ERROR,       /* "ProcessTimeoutError": a section ran past its timeout */
    SK_CRASH_ERROR          /* "ProcessCrashError": a signal or an unexpected exit */
} sk_error_kind;

typedef struct sk_error {
    sk_error_kind kind;
    sk_section section; /* where it happened */
    long run;           /* sk_current_run when it happened */
    double timeout;     /* SK_TIMEOUT_ERROR: the limit that was exceeded, seconds */
    int signal;         /* SK_CRASH_ERROR: the signal that ended the child, or 0 */
    int exit_status;    /* SK_CRASH_ERROR: the exit status when no signal */
    int code;           /* the user's code: what sk_fail was given or the hook returned (or, in a
                         * pool, the item function); 0 when no user code failed */
    int reason;         /* skproc's own reason, an SK_E* code: SK_EPROCESS (a hook or item
                         * function failed), SK_ETIMEDOUT, SK_ECRASHED, SK_EKILLED, SK_ESYS,
                         * SK_ECORRUPT, ...; sk_strerror() names it */
    int lives_spent;    /* attempts used, the one that failed included: 1 up to config.lives */
    long item;          /* in a pool: the index of the item that failed; else -1 */
    char message[256];  /* "Error in the run hook on run 5",
                         * "Timeout in the run hook after 0.05s on run 3" */
    char cause[1024];   /* the original error's text */
} sk_error;

/* The error that ended the process, or NULL when there is none. */
const sk_error *sk_error_of(const sk_process *p);

/* True when e is of kind or of a kind derived from it. False for NULL. */
bool sk_error_is(const sk_error *e, sk_error_kind kind);

/* "RunError", "ProcessTimeoutError", ... */
const char *sk_error_name(sk_error_kind kind);

/* A traceback-like report of e into buf (always NUL-terminated when len > 0).
 * Returns the length the full report needs, like snprintf, or SK_EINVAL. */
int sk_error_format(const sk_error *e, char *buf, size_t len);

/* The name of a section: "prerun", "run", ..., "full_run"; "none" for
 * SK_NO_SECTION. */
const char *sk_section_name(sk_section s);

/* ---------------------------------------------------------------- events */

/* What happened to a process (or to a pool's worker), for logs and metrics.
 * Where a process has a supervisor, START and RESTART are written by the
 * worker when it begins, TIMEOUT and CRASH by the supervisor, FAILURE by the
 * worker when a hook fails (retried or not); READY by the worker when a hook
 * calls sk_ready (by the parent when a program writes its ready line); the
 * parent delivers them. */
typedef enum sk_event_kind {
    SK_EVENT_START,   /* the first worker runs; pid is the worker's */
    SK_EVENT_RESTART, /* a fresh worker replaces one that died (a hard fault with lives left,
                       * or the error hook after one), or a pool worker that left */
    SK_EVENT_TIMEOUT, /* a section ran past its timeout; error says which (pid: the killed one) */
    SK_EVENT_CRASH,   /* the worker died; error says how */
    SK_EVENT_FAILURE, /* a hook failed (returned non-zero), retried or not; error says how */
    SK_EVENT_KILL,    /* sk_kill (or sk_release of a running process) ends it */
    SK_EVENT_FINISH,  /* the process is finished for good; error is sk_error_of, or NULL */
    SK_EVENT_READY    /* a process with SK_READY_ON_NOTIFY became ready, once per run of the
                       * handle (after START; not again after a restart); pid: the worker's */
} sk_event_kind;

/* One event. Everything in it is valid during the callback only. */
struct sk_event {
    sk_event_kind kind;
    pid_t pid;             /* the worker it concerns, or -1 when unknown */
    sk_section section;    /* where (the error's section), or SK_NO_SECTION */
    long run;              /* the run index then */
    const sk_error *error; /* TIMEOUT, CRASH, FAILURE, FINISH after a failure; else NULL */
    long item;             /* in a pool: the item's index when known; else -1 */
    int worker;            /* in a pool: the worker's slot; else -1 */
};

/* How the callback (sk_event_fn, config.on_event and sk_pool_config.on_event)
 * is called: in the parent only, in the thread that calls into the handle.
 * sk_start delivers START; sk_wait, sk_wait_ready, sk_alive, sk_result,
 * sk_kill and sk_release deliver, in order, what happened since the last
 * call (sk_wait and sk_wait_ready also as it happens while they wait; FINISH
 * exactly once, last). Never from a signal handler or another thread. It may
 * log, count, or write to a pipe; it must not call into the same handle (or
 * pool). Events the supervisor or worker record wait in a log of 32 in the
 * status page: when more happen between two calls into the handle, the
 * oldest are lost (but not READY: the parent makes it itself when the log
 * lost it).
 *
 * The name of an event kind: "start", "restart", "timeout", "crash",
 * "failure", "kill", "finish", "ready"; "unknown" for any other value. */
const char *sk_event_name(sk_event_kind kind);

/* --------------------------------------------------------------- timers */

/* Timers exist for every defined hook and for SK_FULL_RUN. They are readable
 * in the parent after sk_wait and in the child from inside hooks. Memory is
 * bounded whatever the run count: the first 4096 samples are kept exactly,
 * later ones in a log histogram whose quantiles are within 1%. */
typedef struct sk_timer sk_timer;

/* NULL when that hook is not defined or the process never started. */
const sk_timer *sk_timer_of(const sk_process *p, sk_section s);

long sk_timer_count(const sk_timer *t);
/* Seconds; NAN when undefined (no samples, or stdev of one sample). */
double sk_timer_total(const sk_timer *t);
double sk_timer_mean(const sk_timer *t);
double sk_timer_median(const sk_timer *t);
double sk_timer_min(const sk_timer *t);
double sk_timer_max(const sk_timer *t);
double sk_timer_stdev(const sk_timer *t);    /* sample standard deviation */
double sk_timer_variance(const sk_timer *t); /* sample variance */
double sk_timer_last(const sk_timer *t);
double sk_timer_percentile(const sk_timer *t, double pct); /* pct in [0, 100] */

#include "skproc/pool.h"
#include "skproc/flow.h"
#include "skproc/typed.h"
#include "skproc/spawn.h"
#include "skproc/group.h"
#include "skproc/sched.h"

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* SKPROC_H */
