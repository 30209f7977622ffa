// gguf_write.c — the streaming GGUF v3 writer (see gguf_write.h): metadata serialized in
// memory, the tensor table laid out at add time, tensor data streamed to a temp file beside
// the output (ilm_out_open in base/util.h: special files refused, symlinks written through,
// the mode kept) and renamed into place by ilm_gguf_writer_finish.
#include "format/gguf_write.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *name;
    int type, n_dims;
    int64_t ne[4];
    size_t bytes;
    uint64_t offset;
} wtensor;

struct ilm_gguf_writer {
    uint8_t *meta;          // serialized kv section
    size_t meta_len, meta_cap;
    uint64_t n_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    size_t alignment;
    FILE *f;                // out.f once begun
    ilm_outfile out;
    const char *path;       // out.path (or the name given to ilm_gguf_writer_begin_fd)
    size_t cur_tensor, cur_written;  // streaming position
    uint64_t data_start;
    bool to_fd;             // ilm_gguf_writer_begin_fd: no temp file, no rename
    char *fd_name;
};

ilm_gguf_writer *ilm_gguf_writer_new(ilm_err *err) {
    ilm_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) ilm_fail(err, "out of memory");
    else w->alignment = 32;
    return w;
}

void ilm_gguf_writer_free(ilm_gguf_writer *w) {
    if (!w) return;
    if (w->to_fd && w->f) fclose(w->f);
    free(w->fd_name);
    ilm_out_abort(&w->out);
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    free(w->meta);
    free(w);
}

void ilm_gguf_writer_set_alignment(ilm_gguf_writer *w, size_t a) { w->alignment = a ? a : 32; }

static int put(ilm_gguf_writer *w, const void *data, size_t n, ilm_err *err) {
    if (w->meta_len + n > w->meta_cap) {
        size_t cap = w->meta_cap ? w->meta_cap : 4096;
        while (cap < w->meta_len + n) cap *= 2;
        uint8_t *m = realloc(w->meta, cap);
        if (!m) return ilm_fail(err, "out of memory");
        w->meta = m;
        w->meta_cap = cap;
    }
    memcpy(w->meta + w->meta_len, data, n);
    w->meta_len += n;
    return 0;
}

static int put_u32(ilm_gguf_writer *w, uint32_t v, ilm_err *err) { return put(w, &v, 4, err); }
static int put_u64(ilm_gguf_writer *w, uint64_t v, ilm_err *err) { return put(w, &v, 8, err); }
static int put_str(ilm_gguf_writer *w, const char *s, size_t len, ilm_err *err) {
    return put_u64(w, len, err) || put(w, s, len, err) ? -1 : 0;
}
static int put_key(ilm_gguf_writer *w, const char *key, uint32_t type, ilm_err *err) {
    w->n_kv++;
    return put_str(w, key, strlen(key), err) || put_u32(w, type, err) ? -1 : 0;
}

int ilm_gguf_writer_copy_kv(ilm_gguf_writer *w, const ilm_gguf_kv *kv, ilm_err *err) {
    if (!strcmp(kv->key, "general.alignment")) w->alignment = (size_t)kv->val.u64;
    w->n_kv++;
    return put_str(w, kv->key, strlen(kv->key), err) || put(w, kv->raw, kv->raw_len, err) ? -1 : 0;
}

int ilm_gguf_writer_add_u32(ilm_gguf_writer *w, const char *key, uint32_t v, ilm_err *err) {
    if (!strcmp(key, "general.alignment")) w->alignment = v;
    return put_key(w, key, GGUF_U32, err) || put_u32(w, v, err) ? -1 : 0;
}
int ilm_gguf_writer_add_i32(ilm_gguf_writer *w, const char *key, int32_t v, ilm_err *err) {
    return put_key(w, key, GGUF_I32, err) || put(w, &v, 4, err) ? -1 : 0;
}
int ilm_gguf_writer_add_f32(ilm_gguf_writer *w, const char *key, float v, ilm_err *err) {
    return put_key(w, key, GGUF_F32, err) || put(w, &v, 4, err) ? -1 : 0;
}
int ilm_gguf_writer_add_bool(ilm_gguf_writer *w, const char *key, bool v, ilm_err *err) {
    uint8_t b = v;
    return put_key(w, key, GGUF_BOOL, err) || put(w, &b, 1, err) ? -1 : 0;
}
int ilm_gguf_writer_add_str(ilm_gguf_writer *w, const char *key, const char *v, ilm_err *err) {
    return put_key(w, key, GGUF_STRING, err) || put_str(w, v, strlen(v), err) ? -1 : 0;
}
int ilm_gguf_writer_add_arr(ilm_gguf_writer *w, const char *key, int et, const void *data, uint64_t count,
                            ilm_err *err) {
    size_t es = ilm_gguf_vtype_size(et), bytes;
    if (!es) return ilm_fail(err, "array key %s: element type %s needs its own writer", key, ilm_gguf_vtype_name(et));
    if (!ilm_mul_ok(count, es, &bytes)) return ilm_fail(err, "array key %s: too large", key);
    return put_key(w, key, GGUF_ARRAY, err) || put_u32(w, (uint32_t)et, err) || put_u64(w, count, err) ||
                   put(w, data, bytes, err)
               ? -1
               : 0;
}
int ilm_gguf_writer_add_str_arr(ilm_gguf_writer *w, const char *key, const char *const *strs, uint64_t count,
                                ilm_err *err) {
    if (put_key(w, key, GGUF_ARRAY, err) || put_u32(w, GGUF_STRING, err) || put_u64(w, count, err)) return -1;
    for (uint64_t i = 0; i < count; i++)
        if (put_str(w, strs[i], strlen(strs[i]), err)) return -1;
    return 0;
}

int ilm_gguf_writer_add_tensor(ilm_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                               ilm_err *err) {
    size_t bytes;
    if (!ilm_ggml_tensor_bytes(type, n_dims, ne, &bytes))
        return ilm_fail(err, "tensor %s: bad shape or type %s", name, ilm_ggml_type_name(type));
    for (size_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name)) return ilm_fail(err, "duplicate tensor name (%s)", name);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        wtensor *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) return ilm_fail(err, "out of memory");
        w->tensors = t;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return ilm_fail(err, "out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->bytes = bytes;
    uint64_t off = 0;
    if (w->n_tensors) {
        wtensor *p = &w->tensors[w->n_tensors - 1];
        off = ilm_align_up(p->offset + p->bytes, w->alignment);
    }
    t->offset = off;
    w->n_tensors++;
    return 0;
}

static uint64_t header_bytes(const ilm_gguf_writer *w) {
    uint64_t n = 4 + 4 + 8 + 8 + w->meta_len;
    for (size_t i = 0; i < w->n_tensors; i++) n += 8 + strlen(w->tensors[i].name) + 4 + 8u * (uint64_t)w->tensors[i].n_dims + 4 + 8;
    return n;
}

uint64_t ilm_gguf_writer_file_size(const ilm_gguf_writer *w) {
    uint64_t start = ilm_align_up(header_bytes(w), w->alignment);
    if (!w->n_tensors) return header_bytes(w);
    const wtensor *t = &w->tensors[w->n_tensors - 1];
    return start + t->offset + t->bytes;
}

static int wr(ilm_gguf_writer *w, const void *p, size_t n, ilm_err *err) {
    if (n && fwrite(p, 1, n, w->f) != n) return ilm_fail(err, "cannot write %s: %s", w->path, strerror(errno));
    return 0;
}

static int wr_zeros(ilm_gguf_writer *w, size_t n, ilm_err *err) {
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        if (wr(w, zeros, k, err)) return -1;
        n -= k;
    }
    return 0;
}

static int write_header(ilm_gguf_writer *w, ilm_err *err);

int ilm_gguf_writer_begin(ilm_gguf_writer *w, const char *path, ilm_err *err) {
    if (w->f) return ilm_fail(err, "%s: writer already begun", w->path);
    if (ilm_out_open(&w->out, path, err)) return -1;
    w->f = w->out.f;
    w->path = w->out.path;
    return write_header(w, err);
}

int ilm_gguf_writer_begin_fd(ilm_gguf_writer *w, int fd, const char *name, ilm_err *err) {
    if (w->f) return ilm_fail(err, "%s: writer already begun", w->path);
    if (!(w->fd_name = strdup(name))) return ilm_fail(err, "out of memory");
    w->path = w->fd_name;
    int d = dup(fd);
    if (d < 0 || !(w->f = fdopen(d, "wb"))) {
        int e = errno;
        if (d >= 0) close(d);
        return ilm_fail(err, "%s: cannot write (%s)", name, strerror(e));
    }
    w->to_fd = true;
    return write_header(w, err);
}

static int write_header(ilm_gguf_writer *w, ilm_err *err) {
    uint32_t hdr[2] = {GGUF_MAGIC, 3};
    uint64_t counts[2] = {w->n_tensors, w->n_kv};
    if (wr(w, hdr, 8, err) || wr(w, counts, 16, err) || wr(w, w->meta, w->meta_len, err)) return -1;
    for (size_t i = 0; i < w->n_tensors; i++) {
        wtensor *t = &w->tensors[i];
        uint64_t len = strlen(t->name);
        uint32_t nd = (uint32_t)t->n_dims, type = (uint32_t)t->type;
        if (wr(w, &len, 8, err) || wr(w, t->name, len, err) || wr(w, &nd, 4, err)) return -1;
        for (int d = 0; d < t->n_dims; d++)
            if (wr(w, &t->ne[d], 8, err)) return -1;
        if (wr(w, &type, 4, err) || wr(w, &t->offset, 8, err)) return -1;
    }
    uint64_t hb = header_bytes(w);
    w->data_start = ilm_align_up(hb, w->alignment);
    if (w->n_tensors && wr_zeros(w, w->data_start - hb, err)) return -1;
    w->cur_tensor = 0;
    w->cur_written = 0;
    return 0;
}

int ilm_gguf_writer_data(ilm_gguf_writer *w, const void *data, size_t bytes, ilm_err *err) {
    const uint8_t *p = data;
    while (bytes) {
        if (w->cur_tensor >= w->n_tensors) return ilm_fail(err, "%s: more tensor data than declared", w->path);
        wtensor *t = &w->tensors[w->cur_tensor];
        size_t k = t->bytes - w->cur_written;
        if (k > bytes) k = bytes;
        if (wr(w, p, k, err)) return -1;
        p += k;
        bytes -= k;
        w->cur_written += k;
        if (w->cur_written == t->bytes) {
            // pad to the next tensor's offset
            if (w->cur_tensor + 1 < w->n_tensors) {
                wtensor *nt = &w->tensors[w->cur_tensor + 1];
                if (wr_zeros(w, nt->offset - (t->offset + t->bytes), err)) return -1;
            }
            w->cur_tensor++;
            w->cur_written = 0;
        }
    }
    return 0;
}

int ilm_gguf_writer_finish(ilm_gguf_writer *w, ilm_err *err) {
    if (w->cur_tensor != w->n_tensors)
        return ilm_fail(err, "%s: tensor data incomplete (%zu of %zu tensors written)", w->path, w->cur_tensor,
                        w->n_tensors);
    if (!w->f) return ilm_fail(err, "GGUF writer: finish before begin");
    if (w->to_fd) {
        int rc = fclose(w->f);
        w->f = NULL;
        return rc ? ilm_fail(err, "%s: write failed (%s)", w->path, strerror(errno)) : 0;
    }
    w->f = NULL;
    return ilm_out_commit(&w->out, err);
}
