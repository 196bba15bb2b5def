/* SPDX-License-Identifier: MIT */
/*
 * The lists skproc names in several places, written once as X-macros: the
 * return codes and their texts, the hook sections (each with its sk_class
 * member, its sk_timeouts member and the error kind of a failure there),
 * and the error kinds and their names. A new hook or code is one line here
 * (plus its public enum value); every switch and table follows.
 */
#ifndef SKPROC_CORE_TABLES_H
#define SKPROC_CORE_TABLES_H

#include "skproc.h"

/* X(code, text) */
#define SK_CODE_LIST(X)                                                                            \
    X(SK_OK, "success")                                                                            \
    X(SK_EINVAL, "invalid argument")                                                               \
    X(SK_ESTATE, "call does not fit the process state")                                            \
    X(SK_ETIMEDOUT, "timed out")                                                                   \
    X(SK_EPROCESS, "the process failed")                                                           \
    X(SK_EKILLED, "the process was killed")                                                        \
    X(SK_EFORMAT, "format does not match the data")                                                \
    X(SK_ECLOSED, "the peer is gone")                                                              \
    X(SK_EFULL, "channel full")                                                                    \
    X(SK_ENOMEM, "out of memory")                                                                  \
    X(SK_ESYS, "system call failed")                                                               \
    X(SK_ECORRUPT, "corrupt message discarded")                                                    \
    X(SK_ENORESULT, "no result was published")                                                     \
    X(SK_ECANCELED, "cancelled")                                                                   \
    X(SK_ECRASHED, "the process crashed")

/* X(section, member, error kind): the sections that run a hook, in order;
 * `member` names both the sk_class hook and the sk_timeouts field. */
#define SK_HOOK_LIST(X)                                                                            \
    X(SK_PRERUN, prerun, SK_PRERUN_ERROR)                                                          \
    X(SK_RUN, run, SK_RUN_ERROR)                                                                   \
    X(SK_POSTRUN, postrun, SK_POSTRUN_ERROR)                                                       \
    X(SK_ONFINISH, onfinish, SK_ONFINISH_ERROR)                                                    \
    X(SK_RESULT, result, SK_RESULT_ERROR)                                                          \
    X(SK_ERROR, error, SK_ERROR_HANDLER_ERROR)

/* X(kind, name) */
#define SK_ERROR_KIND_LIST(X)                                                                      \
    X(SK_PROCESS_ERROR, "ProcessError")                                                            \
    X(SK_PRERUN_ERROR, "PreRunError")                                                              \
    X(SK_RUN_ERROR, "RunError")                                                                    \
    X(SK_POSTRUN_ERROR, "PostRunError")                                                            \
    X(SK_ONFINISH_ERROR, "OnFinishError")                                                          \
    X(SK_RESULT_ERROR, "ResultError")                                                              \
    X(SK_ERROR_HANDLER_ERROR, "ErrorHandlerError")                                                 \
    X(SK_TIMEOUT_ERROR, "ProcessTimeoutError")                                                     \
    X(SK_CRASH_ERROR, "ProcessCrashError")

/* Sections with a timer: every hook, plus SK_FULL_RUN. */
#define SK_SECTION_COUNT (SK_FULL_RUN + 1)

#endif
