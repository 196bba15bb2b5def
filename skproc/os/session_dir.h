/* SPDX-License-Identifier: MIT */
/*
 * A flow run's session directory: one private directory (mode 0700, made
 * by mkdtemp) that every step process of the run may use, and that goes
 * away however the run ends.
 *
 * The normal end is sk_session_dir_remove: it removes the tree at once, in
 * the caller, then kills and reaps the janitor; it never waits on anyone.
 * Every other end is the janitor's: a child forked at create that holds the
 * read end of a pipe and blocks on it. The write end (close-on-exec) stays
 * in the parent, and every process forked from it later (the flow's steps)
 * inherits it, so the pipe reaches end of file, and the janitor removes the
 * tree, only once the parent AND all such children are gone: by exit,
 * _exit, SIGKILL or exec (close-on-exec). A step still writing into the
 * directory keeps it until it ends. In a multi-threaded parent this holds
 * for a child forked by any thread while the directory exists.
 *
 * The janitor leaves the caller's session and process group (setsid) and
 * ignores SIGINT, SIGHUP, SIGTERM, SIGQUIT and SIGPIPE: a Ctrl-C, or a
 * kill of the whole group, reaches the parent and its steps, not it, and
 * the directory is removed once they are gone. It does not use
 * PR_SET_PDEATHSIG: end of file on the pipe is the only signal it obeys
 * (only SIGKILL sent to its own pid ends it early, and then the directory
 * stays).
 *
 * The parent reaps the janitor in sk_session_dir_remove. A parent that
 * reaps children it did not fork itself (waitpid(-1), a SIGCHLD handler
 * that does, SIGCHLD set to SIG_IGN) may take its exit status first; remove
 * still works, the janitor is only not reaped twice.
 *
 * Removal does not follow symbolic links (a link is removed, not what it
 * points to), does not cross into another file system mounted inside, makes
 * read-only directories writable to empty them, and stops 64 directories
 * deep (what is deeper stays).
 */
#ifndef SKPROC_OS_SESSION_DIR_H
#define SKPROC_OS_SESSION_DIR_H

#include <sys/types.h>

/* The codes of skproc.h this module returns (the os layer does not include
 * the public header; tests check that they agree). */
#define SK_SESSION_DIR_EINVAL (-1)
#define SK_SESSION_DIR_ESYS (-10)

/* The longest prefix: the name, with "-XXXXXX", must be one path component. */
#define SK_SESSION_DIR_PREFIX_MAX 200

struct sk_session_dir {
    char path[4096];   /* "" when none */
    pid_t janitor;     /* the cleanup process, or -1 */
    int janitor_pidfd; /* or -1 */
    int keepalive_fd;  /* write end of the pipe the janitor watches, or -1 */
};

/*
 * Creates <base>/<prefix>-XXXXXX (mode 0700) and forks its janitor. base is
 * $TMPDIR when it is set and not empty, otherwise /tmp. A $TMPDIR that is
 * not absolute, or where mkdtemp fails (missing: ENOENT, not a directory:
 * ENOTDIR, not writable: EACCES), is refused, never replaced by /tmp.
 *
 * 0 (d filled in); SK_SESSION_DIR_EINVAL (SK_EINVAL) for d or prefix NULL,
 * a prefix that is empty, holds a '/' or is longer than
 * SK_SESSION_DIR_PREFIX_MAX; SK_SESSION_DIR_ESYS (SK_ESYS) with errno kept
 * when a system call fails (EINVAL for a relative $TMPDIR, ENAMETOOLONG for
 * a path longer than d->path). On failure d is empty (when not NULL) and
 * nothing is left behind.
 */
int sk_session_dir_create(struct sk_session_dir *d, const char *prefix);

/* Removes the directory now (recursively), kills (SIGKILL) and reaps the
 * janitor and closes the keepalive; d becomes empty. Idempotent; harmless
 * on a zeroed or empty struct, and on NULL. errno is kept. Called by the
 * process that created d, once its steps have stopped writing into the
 * directory (what a step still writes may outlive the removal); a forked
 * step leaves its copy of d alone, its keepalive goes when it ends. */
void sk_session_dir_remove(struct sk_session_dir *d);

#endif
