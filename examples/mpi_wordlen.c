/* SPDX-License-Identifier: MIT */
/*
 * One program, run on one machine and then on many, unchanged but for the
 * start and the stop of its pool:
 *
 *     build/default/examples/mpi_wordlen              a local pool
 *     mpiexec -n 3 build/default/examples/mpi_wordlen  2 server ranks
 *
 * (as root on a small machine, Open MPI wants `mpiexec --allow-run-as-root
 * --oversubscribe -n 3 ...`; docs/mpi.md). The work itself, words() below,
 * knows nothing of MPI: it takes an sk_pool and calls sk_pool_map and
 * sk_pool_imap, records with strings in and out.
 */
#include <skproc.h>
#include <skproc/mpi.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t line;
    char *text;
} sentence;

typedef struct {
    int32_t words;
    char *longest;
} summary;

/* Counts the words of a sentence and finds its longest one. Runs in a
 * worker process: on this machine, or on a server rank's host. */
static int summarize(const void *item, void *result, const void *arg)
{
    (void)arg;
    const sentence *s = item;
    summary *out = result;
    const char *best = "", *p = s->text;
    size_t best_len = 0;
    while (*p) {
        while (*p && !isalpha((unsigned char)*p))
            p++;
        const char *start = p;
        while (*p && isalpha((unsigned char)*p))
            p++;
        if (p > start) {
            out->words++;
            if ((size_t)(p - start) > best_len) {
                best = start;
                best_len = (size_t)(p - start);
            }
        }
    }
    out->longest = malloc(best_len + 1); /* the caller frees it */
    if (out->longest == NULL)
        return 1;
    memcpy(out->longest, best, best_len);
    out->longest[best_len] = '\0';
    return 0;
}

static const sk_pool_job summarize_job = {.fn = summarize,
                                          .item_size = sizeof(sentence),
                                          .item_format = "S(is)",
                                          .result_size = sizeof(summary),
                                          .result_format = "S(is)"};

/* The program's work: the same whatever the pool's workers are. */
static int words(sk_pool *pool)
{
    static const char *texts[] = {
        "The pool's workers were processes on one machine.",
        "Then the map no longer fitted, and the workers became ranks.",
        "Nothing in this function had to change.",
        "Items travel as tpl images, strings included.",
    };
    enum { N = sizeof texts / sizeof texts[0] };
    sentence items[N];
    summary results[N];
    for (int i = 0; i < N; i++)
        items[i] = (sentence){.line = i, .text = (char *)texts[i]};
    int rc = sk_pool_map(pool, &summarize_job, items, N, results, NULL);
    if (rc != SK_OK) {
        fprintf(stderr, "map: %s\n", sk_last_error_message());
        return rc;
    }
    for (int i = 0; i < N; i++) {
        printf("line %d: %d words, longest \"%s\"\n", i, (int)results[i].words, results[i].longest);
        free(results[i].longest);
    }
    /* Ordered results one at a time, as they come. */
    sk_pool_call *call;
    if ((rc = sk_pool_imap(pool, &summarize_job, items, N, &call)) != SK_OK)
        return rc;
    size_t index;
    summary s;
    int total = 0;
    while (sk_pool_next(call, -1, &index, &s) == SK_OK) {
        total += s.words;
        free(s.longest);
    }
    sk_pool_call_free(call);
    printf("%d words in all\n", total);
    return SK_OK;
}

/* Under a launcher (mpiexec, srun), the pool's workers are the server
 * ranks' workers; alone, a local pool. Only this differs. */
static bool launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("SLURM_NTASKS");
}

int main(int argc, char **argv)
{
    sk_pool *pool;
    if (!launched_by_mpi()) {
        if (sk_pool_create(&pool, NULL) != SK_OK)
            return 1;
        int rc = words(pool);
        sk_pool_release(pool);
        return rc == SK_OK ? 0 : 1;
    }
    sk_mpi_register_job("summarize", &summarize_job); /* on every rank */
    if (sk_mpi_start(&pool, NULL, &argc, &argv) != SK_OK) {
        fprintf(stderr, "sk_mpi_start: %s\n", sk_last_error_message());
        return 1;
    }
    if (pool == NULL)
        return 0; /* a server rank: it has served */
    int rc = words(pool);
    return sk_mpi_stop(pool) == SK_OK && rc == SK_OK ? 0 : 1;
}
