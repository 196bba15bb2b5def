/* SPDX-License-Identifier: MIT */
/*
 * A task library for test_sched_load without skproc_sched_register: a
 * shared object that loads but has nothing to register.
 */
int skproc_sched_registered(void);

int skproc_sched_registered(void)
{
    return 0;
}
