/* SPDX-License-Identifier: MIT */
/*
 * pool_wordcount: items with pointers (strings) travel as tpl records.
 *
 * A plain item is copied to the workers as bytes; a string is a pointer,
 * which means nothing in another process. So the job describes the item
 * with a tpl format and the pool packs what the pointer points at:
 *
 *   1. item_format "s": each item is a char *; the function gets a pointer
 *      to it (a char **) in the worker, and returns the number of words as
 *      a plain int.
 *   2. item_format "S(si)" with a star function: each item is a struct of a
 *      string and an int (laid out as tpl's S(...) expects: a C struct with
 *      those members in that order), and the function gets one pointer per
 *      member, as if it took two arguments: count the words of at least
 *      `min` letters.
 *
 * Build: gcc -std=c11 pool_wordcount.c $(pkg-config --cflags --libs skproc)
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <skproc.h>

static const char *texts[] = {
    "the quick brown fox jumps over the lazy dog",
    "a process is a struct of yours that embeds an sk_process",
    "",
    "   leading and trailing spaces   ",
    "one",
    "items with pointers travel as tpl images, plain items as bytes",
};
#define NTEXTS (sizeof texts / sizeof texts[0])

/* Words of at least min letters in s. */
static int count_words(const char *s, int min)
{
    int words = 0;
    while (*s) {
        while (*s && isspace((unsigned char)*s))
            s++;
        int len = 0;
        while (*s && !isspace((unsigned char)*s)) {
            s++;
            len++;
        }
        if (len > 0 && len >= min)
            words++;
    }
    return words;
}

/* 1. The item is a char *: item points at it. */
static int word_count(const void *item, void *result, const void *arg)
{
    (void)arg;
    const char *text = *(char *const *)item;
    int n = count_words(text, 1);
    memcpy(result, &n, sizeof n);
    return 0;
}

/* 2. The item is a record S(si): fields[0] points at its char *, fields[1]
 * at its int. */
typedef struct {
    char *text;
    int min;
} query;

static int long_words(void *const *fields, void *result, const void *arg)
{
    (void)arg;
    const char *text = *(char *const *)fields[0];
    int min = *(const int *)fields[1];
    int n = count_words(text, min);
    memcpy(result, &n, sizeof n);
    return 0;
}

int main(void)
{
    sk_pool_config cfg = {.workers = 2};
    sk_pool *pool;
    int rc = sk_pool_create(&pool, &cfg);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_create: %s\n", sk_strerror(rc));
        return 1;
    }

    /* 1. One string per item. */
    sk_pool_job job = {
        .fn = word_count,
        .item_size = sizeof(char *),
        .item_format = "s",
        .result_size = sizeof(int),
    };
    int counts[NTEXTS];
    rc = sk_pool_map(pool, &job, texts, NTEXTS, counts, NULL);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_map: %s\n", sk_strerror(rc));
        sk_pool_release(pool);
        return 1;
    }
    int ok = 1;
    printf("words per text:\n");
    for (size_t i = 0; i < NTEXTS; i++) {
        printf("  %2d  \"%s\"\n", counts[i], texts[i]);
        ok &= counts[i] == count_words(texts[i], 1);
    }

    /* 2. A record of several fields per item, read one by one (star). */
    query queries[NTEXTS];
    for (size_t i = 0; i < NTEXTS; i++)
        queries[i] = (query){.text = (char *)texts[i], .min = 5};
    sk_pool_job star_job = {
        .star = long_words,
        .item_size = sizeof(query),
        .item_format = "S(si)",
        .result_size = sizeof(int),
    };
    rc = sk_pool_map(pool, &star_job, queries, NTEXTS, counts, NULL);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_map (star): %s\n", sk_strerror(rc));
        sk_pool_release(pool);
        return 1;
    }
    printf("words of 5 letters or more:");
    for (size_t i = 0; i < NTEXTS; i++) {
        printf(" %d", counts[i]);
        ok &= counts[i] == count_words(texts[i], 5);
    }
    printf("\n");

    sk_pool_release(pool);
    return ok ? 0 : 1;
}
