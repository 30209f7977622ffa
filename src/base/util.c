// util.c — errors, time, allocation and file helpers.
#define _POSIX_C_SOURCE 200809L
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

// The command-line number parsers: the only strtol/strtod/strtoull of the command line.
int ilm_parse_long(const char *opt, const char *v, long lo, long hi, long *out, ilm_err *err) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (*end || end == v || errno || x < lo || x > hi)
        return ilm_fail(err, "%s: bad value '%s' (expected %ld..%ld)", opt, v, lo, hi);
    *out = x;
    return 0;
}

int ilm_parse_double(const char *opt, const char *v, double lo, double hi, bool allow_inf, double *out,
                     ilm_err *err) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    bool ok = end != v && !*end && !isnan(x) && (allow_inf || isfinite(x)) && x >= lo && x <= hi;
    if (ok && errno == ERANGE && isfinite(x) && x != 0) ok = false;   // overflow to ±HUGE_VAL
    if (!ok) return ilm_fail(err, "%s: bad value '%s' (expected %g..%g)", opt, v, lo, hi);
    *out = x;
    return 0;
}

int ilm_parse_float(const char *opt, const char *v, double lo, double hi, float *out, ilm_err *err) {
    double x;
    if (ilm_parse_double(opt, v, lo, hi, false, &x, err)) return -1;
    *out = (float)x;
    return 0;
}

int ilm_parse_u64(const char *opt, const char *v, uint64_t *out, ilm_err *err) {
    uint64_t x = 0;
    const char *p = v;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - d) / 10) break;
        x = x * 10 + d;
    }
    if (p == v || *p)
        return ilm_fail(err, "%s: bad value '%s' (expected 0..18446744073709551615)", opt, v);
    *out = x;
    return 0;
}

static const char *file_kind(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

int ilm_check_regular(const char *path, ilm_err *err) {
    struct stat st;
    if (stat(path, &st) != 0) return ilm_fail(err, "%s: cannot open (%s)", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return ilm_fail(err, "%s: not a regular file (%s)", path, file_kind(st.st_mode));
    return 0;
}

int ilm_out_open(ilm_outfile *o, const char *path, ilm_err *err) {
    memset(o, 0, sizeof *o);
    if (!*path) return ilm_fail(err, "cannot create '': empty output path");
    struct stat st;
    bool exists = false;
    char *target = NULL;
    if (lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
            target = realpath(path, NULL);   // write through the link: replace its target
            if (!target || stat(target, &st) != 0) {
                free(target);
                return ilm_fail(err, "cannot create %s: a symbolic link to nothing (dangling); refusing to replace it",
                                path);
            }
        }
        if (!S_ISREG(st.st_mode)) {
            free(target);
            return ilm_fail(err, "cannot create %s: it exists and is %s; refusing to replace it", path,
                            file_kind(st.st_mode));
        }
        exists = true;
    } else if (errno != ENOENT) {
        return ilm_fail(err, "cannot create %s: %s", path, strerror(errno));
    }
    o->path = target ? target : strdup(path);
    size_t n = o->path ? strlen(o->path) + 32 : 0;
    o->tmp = n ? malloc(n) : NULL;
    if (!o->path || !o->tmp) {
        ilm_out_abort(o);
        return ilm_fail(err, "out of memory");
    }
    snprintf(o->tmp, n, "%s.tmp.%d", o->path, (int)getpid());
    int fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST && unlink(o->tmp) == 0)   // left by an earlier process of this pid
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        free(o->tmp);
        o->tmp = NULL;
        ilm_out_abort(o);
        return ilm_fail(err, "cannot create %s: %s", path, strerror(e));
    }
    if ((exists && fchmod(fd, st.st_mode & 07777) != 0) || !(o->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        ilm_out_abort(o);
        return ilm_fail(err, "cannot create %s: %s", path, strerror(e));
    }
    return 0;
}

int ilm_out_commit(ilm_outfile *o, ilm_err *err) {
    FILE *f = o->f;
    o->f = NULL;
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) return ilm_fail(err, "cannot write %s: %s", o->path, strerror(e));
    if (rename(o->tmp, o->path) != 0) return ilm_fail(err, "cannot create %s: %s", o->path, strerror(errno));
    free(o->tmp);
    o->tmp = NULL;
    return 0;
}

void ilm_out_abort(ilm_outfile *o) {
    if (o->f) fclose(o->f);
    if (o->tmp) unlink(o->tmp);
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
}
