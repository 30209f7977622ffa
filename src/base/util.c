// util.c — errors, time, allocation and file helpers.
#define _POSIX_C_SOURCE 200809L
#include "base/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ilm_fail(ilm_err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int ilm_fail_prefix(ilm_err *err, const char *fmt, ...) {
    if (err) {
        char prefix[256], old[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof old);
        snprintf(err->msg, sizeof err->msg, "%.250s: %.250s", prefix, old);
    }
    return -1;
}

double ilm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void *ilm_malloc(size_t n, ilm_err *err) {
    void *p = malloc(n ? n : 1);
    if (!p) ilm_fail(err, "out of memory allocating %zu bytes", n);
    return p;
}

void *ilm_calloc(size_t n, size_t sz, ilm_err *err) {
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) ilm_fail(err, "out of memory allocating %zu x %zu bytes", n, sz);
    return p;
}

void *ilm_aligned_alloc(size_t n, ilm_err *err) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) {
        ilm_fail(err, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    return p;
}

int ilm_read_file(const char *path, char **data, size_t *size, ilm_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ilm_fail(err, "%s: cannot open (%s)", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return ilm_fail(err, "%s: out of memory", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return ilm_fail(err, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return ilm_fail(err, "%s: read error", path);
    }
    buf[n] = 0;
    *data = buf;
    *size = n;
    return 0;
}

int ilm_parse_int_list(const char *s, int32_t **out, int *n, ilm_err *err) {
    int cap = 16, cnt = 0;
    int32_t *v = malloc(sizeof *v * (size_t)cap);
    if (!v) return ilm_fail(err, "out of memory");
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < INT32_MIN || x > INT32_MAX) {
            free(v);
            return ilm_fail(err, "bad integer list near '%.20s'", p);
        }
        if (cnt == cap) {
            cap *= 2;
            int32_t *nv = realloc(v, sizeof *v * (size_t)cap);
            if (!nv) {
                free(v);
                return ilm_fail(err, "out of memory");
            }
            v = nv;
        }
        v[cnt++] = (int32_t)x;
        p = end;
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (*p == ',') p++;
        else if (*p) {
            free(v);
            return ilm_fail(err, "bad integer list near '%.20s'", p);
        }
    }
    *out = v;
    *n = cnt;
    return 0;
}

int ilm_parse_long(const char *opt, const char *v, long lo, long hi, long *out, ilm_err *err) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || end == v || x < lo || x > hi)
        return ilm_fail(err, "%s: bad value '%s' (expected %ld..%ld)", opt, v, lo, hi);
    *out = x;
    return 0;
}
