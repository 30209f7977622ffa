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

// An output file written atomically (quantize, strip, synth through the GGUF writer; logits):
// ilm_out_open checks PATH and opens a temp file beside the file it will replace; commit
// flushes, fsyncs and renames it into place; abort (also safe after commit, or on a zeroed
// struct) closes and removes the temp file, so a half-written file never appears under PATH.
// The rules: an existing PATH that is not a regular file (a device such as /dev/null, a FIFO,
// a directory, a socket) is refused; a symbolic link is written through: its target is
// replaced and the link kept (a dangling link is refused); an existing file keeps its
// permission bits.
typedef struct {
    void *f;          // FILE*, open for writing (binary)
    char *path;       // the file being replaced (the symlink target when PATH is a link)
    char *tmp;        // the temp file beside it, removed unless committed
} ilm_outfile;
int ilm_out_open(ilm_outfile *o, const char *path, ilm_err *err);
int ilm_out_commit(ilm_outfile *o, ilm_err *err);
void ilm_out_abort(ilm_outfile *o);

// Refuses a path to read that exists but is not a regular file (a FIFO would block open(),
// a directory or device is never a model): "PATH: not a regular file (a FIFO)".
int ilm_check_regular(const char *path, ilm_err *err);

// A command-line integer: the whole of v, in lo..hi; otherwise "OPT: bad value 'V' (expected
// LO..HI)" in err.
int ilm_parse_long(const char *opt, const char *v, long lo, long hi, long *out, ilm_err *err);

// A command-line real number: the whole of v, finite (unless allow_inf: ±inf then pass too,
// NaN never), in lo..hi; otherwise "OPT: bad value 'V' (expected LO..HI)" in err.
int ilm_parse_double(const char *opt, const char *v, double lo, double hi, bool allow_inf, double *out,
                     ilm_err *err);
// A command-line unsigned 64-bit integer (a seed): decimal digits only (no sign), at most
// 2^64-1; otherwise "OPT: bad value 'V' (expected 0..18446744073709551615)".
int ilm_parse_u64(const char *opt, const char *v, uint64_t *out, ilm_err *err);
// The same for a float option (the value rounded to float after the range check).
int ilm_parse_float(const char *opt, const char *v, double lo, double hi, float *out, ilm_err *err);

// Parses "1,2,3" into a malloc'd int array.
int ilm_parse_int_list(const char *s, int32_t **out, int *n, ilm_err *err);

static inline size_t ilm_align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }
