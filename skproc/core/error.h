/* SPDX-License-Identifier: MIT */
/* Filling sk_error records: what each kind of failure says. */
#ifndef SKPROC_CORE_ERROR_H
#define SKPROC_CORE_ERROR_H

#include "skproc.h"

#include <stdbool.h>

/* Records why a call refuses (sk_last_error_message) and returns code. */
int sk_refuse(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Makes an error record read from memory a child can write safe to use:
 * its texts NUL-terminated, its kind and section in range. */
void sk_error_sanitize(sk_error *e);

/* A failure of the user's code (a hook, an item function) of kind in
 * section on run, with the code it gave and its text; the reason is
 * SK_EPROCESS. */
void sk_error_set(sk_error *e, sk_error_kind kind, sk_section section, long run, int code,
                  const char *cause);
/* A failure of skproc's own (a system call, a corrupt record, a kill), for
 * reason (an SK_E* code); no user code. */
void sk_error_set_internal(sk_error *e, sk_error_kind kind, sk_section section, long run,
                           int reason, const char *cause);
/* A failure outside any hook and run (a group's child that could not
 * start, a scheduler's run it ended) whose message the layer above words
 * itself; no section, run -1, no cause. */
void sk_error_set_text(sk_error *e, sk_error_kind kind, int reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A section (or, with join_in, the loop) that ran past its limit. */
void sk_error_set_timeout(sk_error *e, sk_section section, long run, double limit, bool join_in);
/* A worker that died: by a signal, or by an exit skproc did not make.
 * in_section: inside the hook, or between hooks after it. */
void sk_error_set_crash(sk_error *e, sk_section section, bool in_section, long run, int signal,
                        int exit_status);
/* e failed in the error hook while it handled first: e takes first's run
 * and lives, and its cause names first. */
void sk_error_while_handling(sk_error *e, const sk_error *first);

#endif
