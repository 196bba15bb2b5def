/* SPDX-License-Identifier: MIT */
/*
 * The entry of a worker: what every freshly forked worker does before the
 * engine runs, whoever forked it (the supervisor, or the parent of a
 * process that needs no supervisor).
 */
#include "core/channel.h"
#include "core/events.h"
#include "core/spawn.h"
#include "core/worker.h"
#include "os/proc.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Runs in a freshly forked worker, before the engine: it dies with the
 * process that forked it (the supervisor, or the parent of an unsupervised
 * process) and gets the parent's signal mask and SIGCHLD disposition. */
_Noreturn void sk_worker_main(sk_process *p, pid_t forked_by, enum sk_engine_mode mode)
{
    struct sk_runtime *rt = p->rt;
    rt->role = SK_ROLE_WORKER;
    sk_channel_become_worker(rt);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != forked_by)
        sk_child_exit(127);
    atomic_store(&rt->sh->worker_pid, getpid()); /* before any hook can speak */
    if (rt->supervised) /* the parent makes START itself for a worker it forks */
        sk_event_log(rt, atomic_load(&rt->sh->spawns) > 1 ? SK_EVENT_RESTART : SK_EVENT_START,
                     SK_NO_SECTION, atomic_load(&rt->sh->current_run), getpid(), NULL);
    if (rt->spawn != NULL) /* a program instead of hooks: it never returns */
        sk_spawn_worker_exec(rt);
    sigaction(SIGCHLD, &rt->user_sigchld, NULL);
    sigprocmask(SIG_SETMASK, &rt->user_sigmask, NULL);
    sk_engine_main(p, mode);
}
