/* SPDX-License-Identifier: MIT */
/*
 * A group's restart intensity, as OTP's: at most `limit` restarts within
 * `period`, a sliding window. The restart that would be one too many is
 * not made; the group gives up instead. Only the last limit + 1 restart
 * times matter (the oldest of them decides), so that is all it keeps.
 */
#include "group/group_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sk_group_intensity_init(struct group_intensity *w, int limit, double period)
{
    memset(w, 0, sizeof *w);
    w->limit = limit;
    w->period_ns = (int64_t)(period * 1e9);
    w->restarts = calloc((size_t)limit + 1, sizeof *w->restarts);
    return w->restarts != NULL ? SK_OK : SK_ENOMEM;
}

void sk_group_intensity_reset(struct group_intensity *w)
{
    w->nrestarts = 0;
    w->nfailures = 0;
}

void sk_group_intensity_free(struct group_intensity *w)
{
    free(w->restarts);
    w->restarts = NULL;
}

void sk_group_intensity_failure(struct group_intensity *w, const char *child, double at,
                                const sk_error *e)
{
    sk_group_failure *f = &w->failures[w->nfailures % SK_GROUP_MAX_FAILURES];
    snprintf(f->child, sizeof f->child, "%s", child);
    f->at = at;
    f->error = *e;
    w->nfailures++;
}

bool sk_group_intensity_admit(struct group_intensity *w, int64_t now)
{
    int slots = w->limit + 1;
    w->restarts[w->nrestarts % slots] = now;
    w->nrestarts++;
    if (w->nrestarts < slots)
        return true;
    /* The oldest of the last limit + 1 restarts, this one included: all of
     * them within the period is one too many. */
    int64_t oldest = w->restarts[w->nrestarts % slots];
    return now - oldest > w->period_ns;
}

void sk_group_intensity_report(const struct group_intensity *w, double now, sk_group_error *err)
{
    double since = now - (double)w->period_ns / 1e9;
    int kept = w->nfailures < SK_GROUP_MAX_FAILURES ? w->nfailures : SK_GROUP_MAX_FAILURES;
    err->nfailures = 0;
    for (int i = w->nfailures - kept; i < w->nfailures; i++) {
        const sk_group_failure *f = &w->failures[i % SK_GROUP_MAX_FAILURES];
        if (f->at < since)
            continue;
        err->failures[err->nfailures++] = *f;
    }
}
