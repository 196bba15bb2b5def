/* SPDX-License-Identifier: MIT */
/*
 * Spawned programs: an skproc process that runs an external program.
 *
 *     const char *argv[] = {"grep", "-c", "x", NULL};
 *     sk_spawn_config cfg = {.argv = argv,
 *                            .stdio = {{.mode = SK_STDIO_PIPE}, {.mode = SK_STDIO_PIPE}}};
 *     sk_process p;
 *     sk_spawn_init(&p, &cfg);      // instead of sk_init
 *     sk_start(&p);
 *     sk_spawn_write(&p, "x\n", 2, -1);
 *     sk_spawn_close_stdin(&p);
 *     char line[64];
 *     sk_spawn_read_line(&p, 1, line, sizeof line, -1);
 *     sk_wait(&p, -1);              // sk_error_of(&p): NULL when it exited 0
 *     sk_release(&p);
 *
 * The program is driven by the ordinary calls: sk_start runs it, sk_wait
 * waits for it, sk_stop sends it SIGTERM, sk_kill ends it and its process
 * group (its whole tree, daemons included, with a supervisor: see
 * docs/spawn.md), sk_release frees everything. p->config.lives restarts it
 * after a non-zero exit or a signal, p->config.timeouts.run bounds each run
 * of it, and sk_timer_of(p, SK_RUN) times it. With ready_fd, sk_wait_ready
 * waits for the line the program writes there when it is ready.
 *
 * Errors (sk_error_of after sk_wait):
 *   exit status 0                    no error
 *   exit status n != 0               SK_CRASH_ERROR, .exit_status = n
 *   ended by a signal                SK_CRASH_ERROR, .signal = the signal (none after sk_stop's
 *                                    SIGTERM: a stop is not a failure)
 *   could not be run (execve failed, SK_PROCESS_ERROR, .reason = SK_ESYS, .code = errno; the
 *   or a setting could not be made)  message names the program and the errno
 *   ran past timeouts.run            SK_TIMEOUT_ERROR
 */
#ifndef SKPROC_SPAWN_H
#define SKPROC_SPAWN_H

/* Included from skproc.h, inside its extern "C" and visibility block. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/* What one of the program's standard streams is connected to. */
typedef enum sk_stdio_mode {
    SK_STDIO_INHERIT = 0, /* the parent's own fd 0, 1 or 2 (the default) */
    SK_STDIO_DEVNULL,     /* /dev/null */
    SK_STDIO_FILE,        /* path, opened with flags and mode (before the fork: errors come
                           * from sk_start) */
    SK_STDIO_PIPE,        /* a pipe to the parent: sk_spawn_read / sk_spawn_write */
    SK_STDIO_STDOUT,      /* stderr only: the same as the program's stdout (2>&1) */
    SK_STDIO_FD           /* fd, an open descriptor of the caller's, dup'ed at each start: a
                           * pipe between two programs, held by the caller so that it
                           * outlives a restart of either (see docs/spawn.md) */
} sk_stdio_mode;

typedef struct sk_stdio {
    sk_stdio_mode mode;
    int fd;           /* SK_STDIO_FD: the caller keeps it open while the program may start */
    const char *path; /* SK_STDIO_FILE */
    int flags;        /* SK_STDIO_FILE: open(2) flags; 0 means O_RDONLY for stdin and
                       * O_WRONLY | O_CREAT | O_TRUNC for stdout and stderr */
    mode_t mode_bits; /* SK_STDIO_FILE with O_CREAT; 0 means 0644 */
} sk_stdio;

/* How the program's environment is made. */
typedef enum sk_env_mode {
    SK_ENV_INHERIT = 0, /* the parent's environ at sk_start, plus env[] (NAME=value entries
                         * replace the parent's NAME) */
    SK_ENV_REPLACE      /* env[] alone */
} sk_env_mode;

#define SK_SPAWN_MAX_RLIMITS 8

typedef struct sk_spawn_rlimit {
    int resource; /* RLIMIT_NOFILE, RLIMIT_CORE, ... */
    struct rlimit limit;
} sk_spawn_rlimit;

/* Everything is copied by sk_spawn_init: the caller's strings may go away
 * afterwards. Zero is the default for every field. */
typedef struct sk_spawn_config {
    const char *const *argv; /* required, NULL-terminated; argv[0] is the program */
    const char *file;        /* the program to run; default argv[0]. Without a '/' it is looked
                              * up in the PATH of the program's environment (as execvp) */
    sk_env_mode env_mode;
    const char *const *env; /* NULL-terminated "NAME=value" entries, or NULL */
    const char *cwd;        /* the program's working directory; default: the parent's */
    sk_stdio stdio[3];      /* stdin, stdout, stderr */
    bool new_session;       /* setsid(): no controlling terminal, its own session */
    bool set_umask;         /* set the program's umask to umask */
    mode_t umask;
    int nrlimits; /* 0 to SK_SPAWN_MAX_RLIMITS entries of rlimits */
    sk_spawn_rlimit rlimits[SK_SPAWN_MAX_RLIMITS];
    bool set_gid, set_uid; /* drop to gid / uid (and no supplementary groups) before exec */
    gid_t gid;
    uid_t uid;
    bool close_fds;    /* close every fd above 2 in the program, also those the caller opened
                        * without O_CLOEXEC (as Python's close_fds=True); default: those stay,
                        * as with posix_spawn and uv_spawn. skproc's own fds never reach the
                        * program either way: they are all close-on-exec */
    int ready_fd;      /* readiness as s6's notification-fd: 0 is none; 3 or more gives the
                        * program the write end of a pipe at exactly that fd number (also with
                        * close_fds), and the program is ready (sk_wait_ready, SK_EVENT_READY)
                        * when it writes a line ending in '\n' to it. Setting it implies
                        * p->config.ready = SK_READY_ON_NOTIFY. The parent holds the read end
                        * (close-on-exec, non-blocking, never in the program or a supervisor)
                        * and reads it in bounded chunks while it waits on the program: bytes
                        * without a newline, any amount, are thrown away, and so is what
                        * follows the line. SK_EINVAL from sk_spawn_init for 1, 2, a negative
                        * fd, or one at or over the RLIMIT_NOFILE soft limit */
    void *reserved[3]; /* zero */
} sk_spawn_config;

/* sk_init for a spawned program: p runs cfg's program. The config is
 * copied (argv, env, paths); p->config may be set afterwards as for any
 * process (lives, timeouts.run, supervise). SK_EINVAL for a NULL or empty
 * argv, more than SK_SPAWN_MAX_RLIMITS rlimits, a bad stdio mode, a bad
 * ready_fd. */
int sk_spawn_init(sk_process *p, const sk_spawn_config *cfg);

/* The parent's end of the program's stream (0: stdin, for writing; 1:
 * stdout, 2: stderr, for reading), non-blocking and close-on-exec, for
 * poll/epoll loops; SK_EINVAL when that stream is not SK_STDIO_PIPE,
 * SK_ESTATE before sk_start or after it was closed. Owned by p. */
int sk_spawn_fd(const sk_process *p, int stream);

/* Reads up to len bytes of stream 1 or 2; timeout as sk_listen. Returns
 * the count read (> 0), 0 at end of stream (the program and everything
 * that held the stream closed it), SK_ETIMEDOUT, or a negative code. */
long sk_spawn_read(sk_process *p, int stream, void *buf, size_t len, double timeout);

/* Reads one line of stream 1 or 2, the '\n' included, NUL-terminated, into
 * buf (len >= 2). A line longer than len - 1 comes in pieces; the last line
 * may lack its '\n'. Returns its length, 0 at end of stream, SK_ETIMEDOUT
 * (what was read so far is kept for the next call). */
long sk_spawn_read_line(sk_process *p, int stream, char *buf, size_t len, double timeout);

/* Writes all len bytes to the program's stdin; timeout as sk_listen.
 * SK_OK, SK_ETIMEDOUT (some bytes may have been written: *written, when
 * not NULL, says how many in any case), SK_ECLOSED when the program closed
 * its stdin (never SIGPIPE). */
int sk_spawn_write(sk_process *p, const void *buf, size_t len, double timeout, size_t *written);

/* Closes the parent's end of stdin: the program reads end of file. */
int sk_spawn_close_stdin(sk_process *p);

/* Reads stdout and stderr together until both end (or timeout passes),
 * appending what each gives to a malloc'ed buffer (*out, *err; NULL to
 * throw a stream away; free() them), NUL-terminated, lengths in *out_len
 * and *err_len (may be NULL). Whatever the program writes to either, it
 * never blocks on the other. Writes input (may be NULL) to stdin while it
 * reads, then closes stdin (at once without input, as Python's communicate
 * does), so that a program reading to end of file finishes. Does not wait
 * for the exit: call sk_wait.
 * SK_OK, SK_ETIMEDOUT (what came so far is returned), SK_ENOMEM. */
int sk_spawn_communicate(sk_process *p, const void *input, size_t input_len, char **out,
                         size_t *out_len, char **err, size_t *err_len, double timeout);

/* After sk_wait: the program's last exit code (0 to 255) or -signal when
 * a signal ended it; SK_ESTATE before it ended, SK_ESYS when it never ran. */
int sk_spawn_status(const sk_process *p);

#endif /* SKPROC_SPAWN_H */
