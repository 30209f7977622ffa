// util.h — errors, time, checked arithmetic and small file helpers shared by every module.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

// Every function that can fail takes an ilm_err* and returns non-zero (or NULL) after
// filling it with one human-readable line; main.c prints it as "ironlm: error: <msg>".
typedef struct {
    char msg[512];
} ilm_err;

// Formats the message into err (if err is non-NULL) and returns -1, so callers can
// write `return ilm_fail(err, "...")`.
int ilm_fail(ilm_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Prefixes an existing message: "prefix: old message".
int ilm_fail_prefix(ilm_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

double ilm_now(void);  // monotonic seconds

// Overflow-checked size arithmetic: return false on overflow.
static inline bool ilm_mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool ilm_add_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

void *ilm_malloc(size_t n, ilm_err *err);   // malloc that reports failure
void *ilm_calloc(size_t n, size_t sz, ilm_err *err);
// Aligned (64 bytes) allocation, freed with free().
void *ilm_aligned_alloc(size_t n, ilm_err *err);

// Reads a whole file into a malloc'd buffer (NUL-terminated for convenience).
int ilm_read_file(const char *path, char **data, size_t *size, ilm_err *err);

// A command-line integer: the whole of v, in lo..hi; otherwise "OPT: bad value 'V' (expected
// LO..HI)" in err.
int ilm_parse_long(const char *opt, const char *v, long lo, long hi, long *out, ilm_err *err);

// Parses "1,2,3" into a malloc'd int array.
int ilm_parse_int_list(const char *s, int32_t **out, int *n, ilm_err *err);

static inline size_t ilm_align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }
