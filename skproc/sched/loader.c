/* SPDX-License-Identifier: MIT */
/*
 * sk_sched_load: the seed's PyLoader(path, glob="**" "/tasks.py") for shared
 * objects. Three steps: walk the folder and keep the regular files whose
 * relative path matches the pattern, sort them, then dlopen each and call
 * its skproc_sched_register. A library that fails is noted and the others
 * are loaded all the same; the notes become sk_last_error_message.
 *
 * The walk does not follow symbolic links to folders (no loops, no leaving
 * the tree); a link to a regular file is a file. It does not enter folders
 * no match can lie under ("jobs/" then "*.so" looks into jobs only).
 */
#include "sched/loader.h"

#include "core/error.h"
#include "sched/session.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Folders deeper than this under dir are not entered (one open descriptor
 * per level while walking). */
#define LOAD_MAX_DEPTH 64

/* ------------------------------------------------------------ patterns */

/* A path or pattern cut into its segments ("a/b" -> "a", "b"), in one
 * buffer. */
struct segments {
    char *buf;
    const char **seg;
    size_t n;
};

static void segments_free(struct segments *g)
{
    free(g->buf);
    free(g->seg);
    g->buf = NULL;
    g->seg = NULL;
    g->n = 0;
}

/* Cuts text at each '/'; false when out of memory. Empty segments stay
 * (the pattern check refuses them; paths have none). */
static bool segments_cut(const char *text, struct segments *g)
{
    size_t n = 1;
    for (const char *c = text; *c; c++)
        n += *c == '/';
    g->buf = strdup(text);
    g->seg = malloc(n * sizeof *g->seg);
    g->n = 0;
    if (g->buf == NULL || g->seg == NULL) {
        segments_free(g);
        return false;
    }
    char *start = g->buf;
    for (char *c = g->buf;; c++) {
        if (*c == '/' || *c == '\0') {
            bool end = *c == '\0';
            *c = '\0';
            g->seg[g->n++] = start;
            if (end)
                break;
            start = c + 1;
        }
    }
    return true;
}

static bool is_globstar(const char *seg)
{
    return strcmp(seg, "**") == 0;
}

/*
 * Whether path segments s[j..] match pattern segments p[i..]. For a file
 * (dir false) every segment must be matched. For a folder (dir true) the
 * question is whether a file under it can match: its segments all matched
 * with pattern left over. A "**" matches none, or one segment and is tried
 * again; last in the pattern, it matches all that is left (at least one
 * segment). "**" never matches a segment that starts with '.', as '*' does
 * not under FNM_PERIOD. Consecutive "**" are one, so the search stays
 * polynomial.
 */
static bool match_at(const struct segments *p, size_t i, const struct segments *s, size_t j,
                     bool dir)
{
    while (i < p->n) {
        if (is_globstar(p->seg[i])) {
            while (i + 1 < p->n && is_globstar(p->seg[i + 1]))
                i++;
            if (i + 1 == p->n) { /* a final "**": the rest, whatever it is */
                for (size_t k = j; k < s->n; k++)
                    if (s->seg[k][0] == '.')
                        return false;
                return dir || j < s->n;
            }
            for (size_t k = j;; k++) {
                if (match_at(p, i + 1, s, k, dir))
                    return true;
                if (k == s->n || s->seg[k][0] == '.')
                    return false;
            }
        }
        if (j == s->n)
            return dir;
        if (fnmatch(p->seg[i], s->seg[j], FNM_PATHNAME | FNM_PERIOD) != 0)
            return false;
        i++;
        j++;
    }
    return !dir && j == s->n;
}

/* match_at for path as text; false when out of memory (the walk checks
 * memory itself before it asks). */
static bool path_matches(const struct segments *pattern, const char *path, bool dir)
{
    struct segments s;
    if (!segments_cut(path, &s))
        return false;
    bool m = match_at(pattern, 0, &s, 0, dir);
    segments_free(&s);
    return m;
}

bool sk_sched_path_match(const char *pattern, const char *path)
{
    struct segments p;
    if (pattern == NULL || path == NULL || !segments_cut(pattern, &p))
        return false;
    bool m = path_matches(&p, path, false);
    segments_free(&p);
    return m;
}

/* NULL when pattern is one sk_sched_load takes, else why not. */
static const char *pattern_problem(const char *pattern)
{
    if (*pattern == '\0')
        return "is empty";
    if (*pattern == '/')
        return "is absolute: it is matched against paths relative to dir";
    if (strlen(pattern) >= PATH_MAX)
        return "is longer than PATH_MAX";
    for (const char *c = pattern; *c; c++)
        if (*c == '/' && (c[1] == '/' || c[1] == '\0'))
            return "has an empty segment ('//' or a trailing '/')";
    return NULL;
}

/* ------------------------------------------------------------ failures */

/* What went wrong, one "path: why" per failure, joined by "; ". */
struct failures {
    char text[768];
    size_t len;
    size_t count;
    bool truncated;
};

static void failure_add(struct failures *f, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void failure_add(struct failures *f, const char *path, const char *fmt, ...)
{
    f->count++;
    if (f->truncated)
        return;
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    int n = snprintf(f->text + f->len, sizeof f->text - f->len, "%s%s: %s", f->len ? "; " : "",
                     path, why);
    if (n < 0 || (size_t)n >= sizeof f->text - f->len) {
        f->text[f->len] = '\0'; /* keep whole entries only */
        f->truncated = true;
        return;
    }
    f->len += (size_t)n;
}

/* ---------------------------------------------------------------- walk */

struct walk {
    const struct segments *pattern;
    char path[PATH_MAX]; /* relative to dir, of the entry being looked at */
    size_t len;
    char **files;
    size_t count, cap;
    struct failures *fail;
    bool no_memory;
};

/* array (count of *cap elements of elem bytes used) with room for one
 * more: array itself, or a copy twice the size; NULL when out of memory
 * (array stays as it was). */
static void *room_for_one(void *array, size_t elem, size_t count, size_t *cap)
{
    if (count < *cap)
        return array;
    size_t n = *cap ? *cap * 2 : 16;
    void *grown = realloc(array, n * elem);
    if (grown != NULL)
        *cap = n;
    return grown;
}

static bool walk_keep(struct walk *w)
{
    char **files = room_for_one(w->files, sizeof *w->files, w->count, &w->cap);
    if (files == NULL)
        return false;
    w->files = files;
    if ((w->files[w->count] = strdup(w->path)) == NULL)
        return false;
    w->count++;
    return true;
}

/* The entry's type as the walk treats it: a folder (not through a link),
 * a regular file (also through a link), or something to pass by. */
enum entry_kind { ENTRY_OTHER, ENTRY_DIR, ENTRY_FILE };

static enum entry_kind entry_kind(int dfd, const struct dirent *e)
{
    struct stat st;
    if (e->d_type == DT_DIR)
        return ENTRY_DIR;
    if (e->d_type == DT_REG)
        return ENTRY_FILE;
    if (e->d_type != DT_LNK && e->d_type != DT_UNKNOWN)
        return ENTRY_OTHER;
    if (e->d_type == DT_UNKNOWN) {
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            return ENTRY_OTHER;
        if (S_ISDIR(st.st_mode))
            return ENTRY_DIR;
        if (S_ISREG(st.st_mode))
            return ENTRY_FILE;
        if (!S_ISLNK(st.st_mode))
            return ENTRY_OTHER;
    }
    if (fstatat(dfd, e->d_name, &st, 0) != 0) /* a link: what it points to */
        return ENTRY_OTHER;
    return S_ISREG(st.st_mode) ? ENTRY_FILE : ENTRY_OTHER;
}

static void walk_dir(struct walk *w, int dfd, int depth);

/* Enters the folder `name` of the open folder dfd (its path: w->path), at
 * most LOAD_MAX_DEPTH deep, never through a link. */
static void walk_into(struct walk *w, int dfd, const char *name, int depth)
{
    if (depth > LOAD_MAX_DEPTH) {
        failure_add(w->fail, w->path, "more than %d folders deep: not entered", LOAD_MAX_DEPTH);
        return;
    }
    int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
        failure_add(w->fail, w->path, "cannot open the folder: %s", strerror(errno));
        return;
    }
    walk_dir(w, sub, depth);
}

/* Walks the open folder dfd (closed here), whose path is w->path. */
static void walk_dir(struct walk *w, int dfd, int depth)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        failure_add(w->fail, w->path, "cannot read the folder: %s", strerror(errno));
        close(dfd);
        return;
    }
    size_t base = w->len;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno != 0)
                failure_add(w->fail, base ? w->path : ".", "cannot read the folder: %s",
                            strerror(errno));
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int n = snprintf(w->path + base, sizeof w->path - base, "%s%s", base ? "/" : "", e->d_name);
        if (n < 0 || (size_t)n >= sizeof w->path - base) {
            w->path[base] = '\0';
            failure_add(w->fail, base ? w->path : ".", "a path under it is too long");
            continue;
        }
        w->len = base + (size_t)n;
        enum entry_kind kind = entry_kind(dirfd(d), e);
        if (kind == ENTRY_FILE && path_matches(w->pattern, w->path, false)) {
            if (!walk_keep(w))
                w->no_memory = true;
        } else if (kind == ENTRY_DIR && path_matches(w->pattern, w->path, true)) {
            walk_into(w, dirfd(d), e->d_name, depth + 1);
        }
        w->len = base;
        w->path[base] = '\0';
        if (w->no_memory)
            break;
    }
    closedir(d);
}

static int compare_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* -------------------------------------------------------------- loading */

/* dlerror's text without the full path it starts with (the failure names
 * the file already). */
static const char *without_path(const char *err, const char *full)
{
    size_t n = strlen(full);
    if (strncmp(err, full, n) == 0 && strncmp(err + n, ": ", 2) == 0)
        return err + n + 2;
    return err;
}

/* Loads one library (rel under dir, full its whole path): true when its
 * register function ran and returned 0. A library whose function failed
 * stays loaded: the tasks it added before failing point into it. */
static bool load_one(struct sched_libs *libs, sk_sched *s, const char *rel, const char *full,
                     struct failures *fail)
{
    dlerror();
    void *h = dlopen(full, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *err = dlerror();
        err = err ? without_path(err, full) : "dlopen failed";
        /* The commonest mistake: a program that does not export skproc. */
        bool ours = strstr(err, "undefined symbol: sk_") != NULL;
        failure_add(fail, rel, "%s%s", err,
                    ours ? " (the program must export skproc's functions: link libskproc.so, "
                           "or libskproc.a whole with -rdynamic)"
                         : "");
        return false;
    }
    union {
        void *object;
        sk_sched_register_fn fn;
    } sym;
    sym.object = dlsym(h, SK_SCHED_REGISTER_SYMBOL);
    if (sym.object == NULL) {
        failure_add(fail, rel, "no %s function", SK_SCHED_REGISTER_SYMBOL);
        dlclose(h);
        return false;
    }
    libs->handles[libs->count++] = h;
    sk_refuse(SK_OK, "%s", ""); /* so that what the function says can be told apart */
    int rc = sym.fn(s);
    if (rc != 0) {
        const char *why = sk_last_error_message();
        failure_add(fail, rel, "%s returned %d (%s)%s%s", SK_SCHED_REGISTER_SYMBOL, rc,
                    sk_strerror(rc), *why ? ": " : "", why);
        return false;
    }
    return true;
}

/* sk_sched_load's work, the handles kept in libs. */
static int libs_load(struct sched_libs *libs, sk_sched *s, const char *dir, const char *pattern)
{
    if (s == NULL || dir == NULL || pattern == NULL)
        return sk_refuse(SK_EINVAL, "sk_sched_load: %s is NULL",
                         s == NULL     ? "the session"
                         : dir == NULL ? "dir"
                                       : "pattern");
    const char *problem = pattern_problem(pattern);
    if (problem != NULL)
        return sk_refuse(SK_EINVAL, "sk_sched_load: the pattern '%.128s' %s", pattern, problem);
    struct segments pat;
    if (!segments_cut(pattern, &pat))
        return sk_refuse(SK_ENOMEM, "sk_sched_load: out of memory");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        segments_free(&pat);
        errno = e;
        return sk_refuse(SK_ESYS, "sk_sched_load: cannot read the folder '%.160s': %s", dir,
                         strerror(e));
    }
    struct failures fail = {.len = 0};
    struct walk w = {.pattern = &pat, .fail = &fail};
    walk_dir(&w, dfd, 0);
    segments_free(&pat);
    int rc = SK_OK;
    if (w.no_memory) {
        rc = sk_refuse(SK_ENOMEM, "sk_sched_load: out of memory");
        goto out;
    }
    if (w.count > 1) /* qsort wants an array, even of none */
        qsort(w.files, w.count, sizeof *w.files, compare_paths);

    size_t dir_len = strlen(dir);
    bool slash = dir_len > 0 && dir[dir_len - 1] == '/';
    int loaded = 0;
    for (size_t i = 0; i < w.count; i++) {
        char full[PATH_MAX];
        int n = snprintf(full, sizeof full, "%s%s%s", dir, slash ? "" : "/", w.files[i]);
        if (n < 0 || (size_t)n >= sizeof full) {
            failure_add(&fail, w.files[i], "the path is too long");
            continue;
        }
        void **handles = room_for_one(libs->handles, sizeof *handles, libs->count, &libs->cap);
        if (handles == NULL) {
            rc = sk_refuse(SK_ENOMEM, "sk_sched_load: out of memory");
            goto out;
        }
        libs->handles = handles;
        if (load_one(libs, s, w.files[i], full, &fail))
            loaded++;
    }
    if (fail.count > 0)
        rc = sk_refuse(SK_EINVAL, "sk_sched_load: %zu failed, %d loaded: %s%s", fail.count, loaded,
                       fail.text, fail.truncated ? "; ..." : "");
    else
        rc = loaded;
out:
    for (size_t i = 0; i < w.count; i++)
        free(w.files[i]);
    free(w.files);
    return rc;
}

int sk_sched_load(sk_sched *s, const char *dir, const char *pattern)
{
    return libs_load(s != NULL ? &s->libs : NULL, s, dir, pattern);
}

void sk_sched_libs_close(struct sched_libs *libs)
{
    if (libs == NULL)
        return;
    while (libs->count > 0) {
        void *h = libs->handles[--libs->count];
        if (!libs->keep_loaded)
            dlclose(h);
    }
    free(libs->handles);
    libs->handles = NULL;
    libs->cap = 0;
}
