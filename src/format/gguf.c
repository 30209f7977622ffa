// gguf.c — GGUF v2/v3 reader: mmap + full validation (the writer is gguf_write.c).
//
// The reader checks every count, length, type, offset and extent against the file size
// before anything is used, so a corrupt or hostile file yields one error line, never a
// crash. Errors read "PATH: what (value)".
#include "format/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "simd/kernels.h"

#define GGUF_MAX_DEPTH 4        // nested arrays deeper than this are refused
#define GGUF_MAX_NAME 65535     // key / tensor name length limit

// --- types ---------------------------------------------------------------------------------

const char *ilm_gguf_vtype_name(int t) {
    static const char *names[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return t >= 0 && t <= 12 ? names[t] : "?";
}

// Also used by the writer (gguf_write.c) to size array elements.
size_t ilm_gguf_vtype_size(int t) {
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}

bool ilm_ggml_tensor_bytes(int type, int n_dims, const int64_t *ne, size_t *out) {
    const size_t ts = ilm_type(type)->block_bytes;
    const int be = ilm_type(type)->block;
    if (!ts || n_dims < 0 || n_dims > 4) return false;
    size_t total = 1;
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] <= 0) return false;
        if (!ilm_mul_ok(total, (size_t)ne[i], &total)) return false;
    }
    if ((n_dims > 0 && ne[0] % be) || (n_dims == 0 && be > 1)) return false;
    size_t blocks = total / (size_t)be;
    return ilm_mul_ok(blocks, ts, out);
}

// --- reader --------------------------------------------------------------------------------

typedef struct {
    const uint8_t *p, *end, *base;
    const char *name;
    ilm_err *err;
    ilm_gguf *g;  // for allocation bookkeeping of nested value arrays
} cursor;

static int need(cursor *c, size_t n, const char *what) {
    if ((size_t)(c->end - c->p) < n)
        return ilm_fail(c->err, "%s: truncated file reading %s (at byte %zu)", c->name, what,
                        (size_t)(c->p - c->base));
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return -1;
    memcpy(v, c->p, 4);
    c->p += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return -1;
    memcpy(v, c->p, 8);
    c->p += 8;
    return 0;
}

static int rd_str(cursor *c, ilm_gguf_str *s, const char *what) {
    uint64_t len;
    if (rd_u64(c, &len, what)) return -1;
    if (len > (uint64_t)(c->end - c->p))
        return ilm_fail(c->err, "%s: %s length exceeds file size (%" PRIu64 ")", c->name, what, len);
    s->ptr = (const char *)c->p;
    s->len = len;
    c->p += len;
    return 0;
}

// Large descriptor arrays (262k tokens, 515k merges) on 2 MB pages: on VMs every 4 KB page
// fault costs microseconds, and a vocabulary load would spend ~30 ms faulting them in.
static void *big_alloc(size_t bytes) {
    if (bytes < (4u << 20)) return malloc(bytes ? bytes : 1);
    void *p = NULL;
    if (posix_memalign(&p, 2u << 20, bytes) != 0) return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

static void free_value(ilm_gguf_value *v) {
    if (v->type != GGUF_ARRAY) return;
    free(v->arr.strs);
    if (v->arr.vals) {
        for (uint64_t i = 0; i < v->arr.count; i++) free_value(&v->arr.vals[i]);
        free(v->arr.vals);
    }
}

static int rd_value(cursor *c, int type, ilm_gguf_value *v, int depth, const char *key) {
    memset(v, 0, sizeof *v);
    v->type = type;
    size_t sz = ilm_gguf_vtype_size(type);
    if (sz) {
        if (need(c, sz, key)) return -1;
        uint64_t u = 0;
        memcpy(&u, c->p, sz);  // little-endian host assumed (x86-64, aarch64)
        c->p += sz;
        switch (type) {
        case GGUF_I8: v->i64 = (int8_t)u; break;
        case GGUF_I16: v->i64 = (int16_t)u; break;
        case GGUF_I32: v->i64 = (int32_t)u; break;
        case GGUF_I64: v->i64 = (int64_t)u; break;
        case GGUF_F32: { float f; memcpy(&f, &u, 4); v->f64 = f; break; }
        case GGUF_F64: { double d; memcpy(&d, &u, 8); v->f64 = d; break; }
        case GGUF_BOOL:
            if (u > 1) return ilm_fail(c->err, "%s: key %s: bad bool value (%" PRIu64 ")", c->name, key, u);
            v->u64 = u;
            break;
        default: v->u64 = u; break;
        }
        return 0;
    }
    if (type == GGUF_STRING) return rd_str(c, &v->str, key);
    if (type != GGUF_ARRAY) return ilm_fail(c->err, "%s: key %s: bad value type (%d)", c->name, key, type);
    if (depth >= GGUF_MAX_DEPTH)
        return ilm_fail(c->err, "%s: key %s: arrays nested too deeply (%d)", c->name, key, depth);
    uint32_t et;
    uint64_t count;
    if (rd_u32(c, &et, key) || rd_u64(c, &count, key)) return -1;
    if (et > GGUF_F64) return ilm_fail(c->err, "%s: key %s: bad array element type (%u)", c->name, key, et);
    v->arr.elem_type = (int)et;
    v->arr.count = count;
    size_t avail = (size_t)(c->end - c->p);
    size_t esz = ilm_gguf_vtype_size((int)et);
    if (esz) {
        size_t bytes;
        if (!ilm_mul_ok(count, esz, &bytes) || bytes > avail)
            return ilm_fail(c->err, "%s: key %s: array count exceeds file size (%" PRIu64 ")", c->name, key, count);
        v->arr.data = c->p;
        if (et == GGUF_BOOL)
            for (uint64_t i = 0; i < count; i++)
                if (c->p[i] > 1) return ilm_fail(c->err, "%s: key %s: bad bool value (%u)", c->name, key, c->p[i]);
        c->p += bytes;
        return 0;
    }
    // Strings need >= 8 bytes each, arrays >= 12: bound the count before allocating.
    size_t min_elem = et == GGUF_STRING ? 8 : 12;
    if (count > avail / min_elem)
        return ilm_fail(c->err, "%s: key %s: array count exceeds file size (%" PRIu64 ")", c->name, key, count);
    v->arr.data = c->p;
    if (et == GGUF_STRING) {
        v->arr.strs = big_alloc(sizeof *v->arr.strs * count);
        if (!v->arr.strs) return ilm_fail(c->err, "%s: out of memory", c->name);
        for (uint64_t i = 0; i < count; i++)
            if (rd_str(c, &v->arr.strs[i], key)) return -1;
        return 0;
    }
    v->arr.vals = calloc(count ? count : 1, sizeof *v->arr.vals);
    if (!v->arr.vals) return ilm_fail(c->err, "%s: out of memory", c->name);
    for (uint64_t i = 0; i < count; i++) {
        v->arr.vals[i].type = GGUF_ARRAY;  // so free_value walks partially read arrays
        if (rd_value(c, GGUF_ARRAY, &v->arr.vals[i], depth + 1, key)) return -1;
    }
    return 0;
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static char *dup_name(const ilm_gguf_str *s, cursor *c, const char *what) {
    if (s->len == 0 || s->len > GGUF_MAX_NAME) {
        ilm_fail(c->err, "%s: bad %s length (%" PRIu64 ")", c->name, what, s->len);
        return NULL;
    }
    if (memchr(s->ptr, 0, s->len)) {
        ilm_fail(c->err, "%s: %s contains a NUL byte", c->name, what);
        return NULL;
    }
    char *n = malloc(s->len + 1);
    if (!n) {
        ilm_fail(c->err, "%s: out of memory", c->name);
        return NULL;
    }
    memcpy(n, s->ptr, s->len);
    n[s->len] = 0;
    return n;
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const ilm_gguf_tensor *x = *(const ilm_gguf_tensor *const *)a, *y = *(const ilm_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

void ilm_gguf_close(ilm_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free_value(&g->kv[i].val);
    }
    for (int64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    free(g->index);
    if (g->map && g->owns_map) munmap((void *)g->map, g->size);
    free(g->path);
    free(g);
}

static int parse(ilm_gguf *g, const char *name, ilm_err *err) {
    cursor c = {g->map, g->map + g->size, g->map, name, err, g};
    uint32_t magic, version;
    uint64_t n_tensors, n_kv;
    if (rd_u32(&c, &magic, "magic")) return -1;
    if (magic != GGUF_MAGIC) return ilm_fail(err, "%s: not a GGUF file: bad magic (0x%08x)", name, magic);
    if (rd_u32(&c, &version, "version")) return -1;
    if (version == 0x03000000u || version == 0x02000000u)
        return ilm_fail(err, "%s: big-endian GGUF is not supported (version 0x%08x)", name, version);
    if (version != 2 && version != 3) return ilm_fail(err, "%s: unsupported GGUF version (%u)", name, version);
    g->version = version;
    if (rd_u64(&c, &n_tensors, "tensor count") || rd_u64(&c, &n_kv, "metadata count")) return -1;
    // Each kv needs >= 8+1+4 bytes and each tensor info >= 8+1+4+4+8 bytes.
    size_t rest = (size_t)(c.end - c.p);
    if (n_kv > rest / 13) return ilm_fail(err, "%s: metadata count exceeds file size (%" PRIu64 ")", name, n_kv);
    if (n_tensors > rest / 25) return ilm_fail(err, "%s: tensor count exceeds file size (%" PRIu64 ")", name, n_tensors);
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return ilm_fail(err, "%s: out of memory", name);

    g->alignment = 32;
    for (uint64_t i = 0; i < n_kv; i++) {
        ilm_gguf_kv *kv = &g->kv[i];
        ilm_gguf_str key;
        if (rd_str(&c, &key, "metadata key")) return -1;
        if (!(kv->key = dup_name(&key, &c, "metadata key"))) return -1;
        g->n_kv = (int64_t)i + 1;
        kv->raw = c.p;
        uint32_t type;
        if (rd_u32(&c, &type, kv->key)) return -1;
        if (type > GGUF_F64) return ilm_fail(err, "%s: key %s: bad value type (%u)", name, kv->key, type);
        if (rd_value(&c, (int)type, &kv->val, 0, kv->key)) return -1;
        kv->raw_len = (size_t)(c.p - kv->raw);
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(g->kv[j].key, kv->key)) return ilm_fail(err, "%s: duplicate metadata key (%s)", name, kv->key);
        if (!strcmp(kv->key, "general.alignment")) {
            if (type != GGUF_U32) return ilm_fail(err, "%s: general.alignment must be u32 (%s)", name, ilm_gguf_vtype_name((int)type));
            uint64_t a = kv->val.u64;
            if (a == 0 || (a & (a - 1)) || a > (1u << 20))
                return ilm_fail(err, "%s: bad general.alignment (%" PRIu64 ")", name, a);
            g->alignment = (size_t)a;
        }
    }

    for (uint64_t i = 0; i < n_tensors; i++) {
        ilm_gguf_tensor *t = &g->tensors[i];
        ilm_gguf_str tn;
        if (rd_str(&c, &tn, "tensor name")) return -1;
        if (!(t->name = dup_name(&tn, &c, "tensor name"))) return -1;
        g->n_tensors = (int64_t)i + 1;
        uint32_t nd, type;
        if (rd_u32(&c, &nd, t->name)) return -1;
        if (nd > 4) return ilm_fail(err, "%s: tensor %s: too many dimensions (%u)", name, t->name, nd);
        t->n_dims = (int)nd;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t ne;
            if (rd_u64(&c, &ne, t->name)) return -1;
            if (ne == 0 || ne > (uint64_t)INT64_MAX)
                return ilm_fail(err, "%s: tensor %s: bad dimension %u (%" PRIu64 ")", name, t->name, d, ne);
            t->ne[d] = (int64_t)ne;
        }
        if (rd_u32(&c, &type, t->name)) return -1;
        t->type = (int)type;
        if (!ilm_type(t->type)->block_bytes)
            return ilm_fail(err, "%s: tensor %s: unsupported tensor type %s (%u)", name, t->name,
                            ilm_ggml_type_name(t->type), type);
        if (rd_u64(&c, &t->offset, t->name)) return -1;
        if (t->n_dims > 0 && t->ne[0] % ilm_type(t->type)->block)
            return ilm_fail(err, "%s: tensor %s: row length not a multiple of the %s block (%" PRId64 ")", name,
                            t->name, ilm_ggml_type_name(t->type), t->ne[0]);
        if (!ilm_ggml_tensor_bytes(t->type, t->n_dims, t->ne, &t->bytes))
            return ilm_fail(err, "%s: tensor %s: size overflows (%" PRId64 "x%" PRId64 "x%" PRId64 "x%" PRId64 ")",
                            name, t->name, t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
        if (t->offset % g->alignment)
            return ilm_fail(err, "%s: tensor %s: offset not aligned to %zu (%" PRIu64 ")", name, t->name,
                            g->alignment, t->offset);
    }

    size_t header_end = (size_t)(c.p - g->map);
    g->data_offset = ilm_align_up(header_end, g->alignment);
    if (n_tensors > 0 && g->data_offset > g->size)
        return ilm_fail(err, "%s: truncated file: data section starts past the end (%zu)", name, g->data_offset);

    // Name index (open addressing) also detects duplicates.
    g->index_cap = 16;
    while (g->index_cap < (size_t)n_tensors * 2) g->index_cap *= 2;
    g->index = malloc(sizeof *g->index * g->index_cap);
    if (!g->index) return ilm_fail(err, "%s: out of memory", name);
    for (size_t i = 0; i < g->index_cap; i++) g->index[i] = -1;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        ilm_gguf_tensor *t = &g->tensors[i];
        size_t h = (size_t)hash_name(t->name) & (g->index_cap - 1);
        while (g->index[h] >= 0) {
            if (!strcmp(g->tensors[g->index[h]].name, t->name))
                return ilm_fail(err, "%s: duplicate tensor name (%s)", name, t->name);
            h = (h + 1) & (g->index_cap - 1);
        }
        g->index[h] = (int32_t)i;
        size_t start, end;
        if (!ilm_add_ok(g->data_offset, (size_t)t->offset, &start) || !ilm_add_ok(start, t->bytes, &end) ||
            end > g->size)
            return ilm_fail(err, "%s: tensor %s: data extends past the end of the file (offset %" PRIu64 ", %zu bytes)",
                            name, t->name, t->offset, t->bytes);
        t->data = g->map + start;
    }
    // Overlap check over tensors sorted by offset.
    if (n_tensors > 1) {
        ilm_gguf_tensor **sorted = malloc(sizeof *sorted * (size_t)n_tensors);
        if (!sorted) return ilm_fail(err, "%s: out of memory", name);
        for (int64_t i = 0; i < g->n_tensors; i++) sorted[i] = &g->tensors[i];
        qsort(sorted, (size_t)n_tensors, sizeof *sorted, cmp_tensor_offset);
        for (int64_t i = 1; i < g->n_tensors; i++)
            if (sorted[i - 1]->offset + sorted[i - 1]->bytes > sorted[i]->offset) {
                int rc = ilm_fail(err, "%s: tensors %s and %s overlap (offset %" PRIu64 ")", name, sorted[i - 1]->name,
                                  sorted[i]->name, sorted[i]->offset);
                free(sorted);
                return rc;
            }
        free(sorted);
    }
    return 0;
}

int ilm_gguf_open_mem(ilm_gguf **out, const void *data, size_t size, const char *name, ilm_err *err) {
    ilm_gguf *g = calloc(1, sizeof *g);
    if (!g) return ilm_fail(err, "%s: out of memory", name);
    g->map = data;
    g->size = size;
    g->path = strdup(name);
    if (parse(g, name, err)) {
        ilm_gguf_close(g);
        return -1;
    }
    *out = g;
    return 0;
}

int ilm_gguf_open(ilm_gguf **out, const char *path, ilm_err *err) {
    // stat() before open(): opening a FIFO for reading blocks until a writer comes, and a
    // directory or device is never a model. O_NONBLOCK covers a file swapped in between.
    if (ilm_check_regular(path, err)) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return ilm_fail(err, "%s: cannot open (%s)", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return ilm_fail(err, "%s: cannot stat (%s)", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ilm_fail(err, "%s: not a regular file", path);   // swapped after the stat
    }
    size_t size = (size_t)st.st_size;
    if (size < 24) {
        close(fd);
        return ilm_fail(err, "%s: truncated file: too small for a GGUF header (%zu bytes)", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return ilm_fail(err, "%s: mmap failed (%s)", path, strerror(errno));
    ilm_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        munmap(map, size);
        return ilm_fail(err, "%s: out of memory", path);
    }
    g->map = map;
    g->size = size;
    g->owns_map = true;
    if (parse(g, path, err)) {
        ilm_gguf_close(g);
        return -1;
    }
    *out = g;
    return 0;
}

const ilm_gguf_kv *ilm_gguf_find_kv(const ilm_gguf *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const ilm_gguf_tensor *ilm_gguf_find_tensor(const ilm_gguf *g, const char *name) {
    if (!g->index) return NULL;
    size_t h = (size_t)hash_name(name) & (g->index_cap - 1);
    while (g->index[h] >= 0) {
        if (!strcmp(g->tensors[g->index[h]].name, name)) return &g->tensors[g->index[h]];
        h = (h + 1) & (g->index_cap - 1);
    }
    return NULL;
}

static const char *gname(const ilm_gguf *g) { return g->path ? g->path : "gguf"; }

static bool is_int_type(int t) {
    return t == GGUF_U8 || t == GGUF_I8 || t == GGUF_U16 || t == GGUF_I16 || t == GGUF_U32 || t == GGUF_I32 ||
           t == GGUF_U64 || t == GGUF_I64 || t == GGUF_BOOL;
}
static bool is_signed_type(int t) { return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64; }

int ilm_gguf_get_u32(const ilm_gguf *g, const char *key, uint32_t *out, ilm_err *err) {
    const ilm_gguf_kv *kv = ilm_gguf_find_kv(g, key);
    if (!kv) return ilm_fail(err, "%s: missing metadata key %s", gname(g), key);
    int t = kv->val.type;
    if (!is_int_type(t) || t == GGUF_BOOL)
        return ilm_fail(err, "%s: key %s: expected an integer (%s)", gname(g), key, ilm_gguf_vtype_name(t));
    if (is_signed_type(t) ? (kv->val.i64 < 0 || kv->val.i64 > (int64_t)UINT32_MAX) : kv->val.u64 > UINT32_MAX)
        return ilm_fail(err, "%s: key %s: value out of range (%" PRId64 ")", gname(g), key, kv->val.i64);
    *out = (uint32_t)(is_signed_type(t) ? (uint64_t)kv->val.i64 : kv->val.u64);
    return 0;
}

int ilm_gguf_get_f32(const ilm_gguf *g, const char *key, float *out, ilm_err *err) {
    const ilm_gguf_kv *kv = ilm_gguf_find_kv(g, key);
    if (!kv) return ilm_fail(err, "%s: missing metadata key %s", gname(g), key);
    if (kv->val.type != GGUF_F32 && kv->val.type != GGUF_F64)
        return ilm_fail(err, "%s: key %s: expected a float (%s)", gname(g), key, ilm_gguf_vtype_name(kv->val.type));
    *out = (float)kv->val.f64;
    return 0;
}

int ilm_gguf_get_bool(const ilm_gguf *g, const char *key, bool *out, ilm_err *err) {
    const ilm_gguf_kv *kv = ilm_gguf_find_kv(g, key);
    if (!kv) return ilm_fail(err, "%s: missing metadata key %s", gname(g), key);
    if (kv->val.type != GGUF_BOOL)
        return ilm_fail(err, "%s: key %s: expected a bool (%s)", gname(g), key, ilm_gguf_vtype_name(kv->val.type));
    *out = kv->val.u64 != 0;
    return 0;
}

int ilm_gguf_get_str(const ilm_gguf *g, const char *key, char **out, ilm_err *err) {
    const ilm_gguf_kv *kv = ilm_gguf_find_kv(g, key);
    if (!kv) return ilm_fail(err, "%s: missing metadata key %s", gname(g), key);
    if (kv->val.type != GGUF_STRING)
        return ilm_fail(err, "%s: key %s: expected a string (%s)", gname(g), key, ilm_gguf_vtype_name(kv->val.type));
    char *s = malloc(kv->val.str.len + 1);
    if (!s) return ilm_fail(err, "out of memory");
    memcpy(s, kv->val.str.ptr, kv->val.str.len);
    s[kv->val.str.len] = 0;
    *out = s;
    return 0;
}

int ilm_gguf_get_u32_or(const ilm_gguf *g, const char *key, uint32_t def, uint32_t *out, ilm_err *err) {
    if (ilm_gguf_find_kv(g, key)) return ilm_gguf_get_u32(g, key, out, err);
    *out = def;
    return 0;
}

int ilm_gguf_get_f32_or(const ilm_gguf *g, const char *key, float def, float *out, ilm_err *err) {
    if (ilm_gguf_find_kv(g, key)) return ilm_gguf_get_f32(g, key, out, err);
    *out = def;
    return 0;
}

int ilm_gguf_get_bool_or(const ilm_gguf *g, const char *key, bool def, bool *out, ilm_err *err) {
    if (ilm_gguf_find_kv(g, key)) return ilm_gguf_get_bool(g, key, out, err);
    *out = def;
    return 0;
}

int64_t ilm_gguf_arr_int(const ilm_gguf_value *v, uint64_t i) {
    const uint8_t *p = (const uint8_t *)v->arr.data + i * ilm_gguf_vtype_size(v->arr.elem_type);
    switch (v->arr.elem_type) {
    case GGUF_U8: case GGUF_BOOL: return *p;
    case GGUF_I8: return (int8_t)*p;
    case GGUF_U16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case GGUF_I16: { int16_t x; memcpy(&x, p, 2); return x; }
    case GGUF_U32: { uint32_t x; memcpy(&x, p, 4); return x; }
    case GGUF_I32: { int32_t x; memcpy(&x, p, 4); return x; }
    case GGUF_U64: { uint64_t x; memcpy(&x, p, 8); return (int64_t)x; }
    case GGUF_I64: { int64_t x; memcpy(&x, p, 8); return x; }
    case GGUF_F32: { float x; memcpy(&x, p, 4); return (int64_t)x; }
    case GGUF_F64: { double x; memcpy(&x, p, 8); return (int64_t)x; }
    default: return 0;
    }
}

double ilm_gguf_arr_float(const ilm_gguf_value *v, uint64_t i) {
    const uint8_t *p = (const uint8_t *)v->arr.data + i * ilm_gguf_vtype_size(v->arr.elem_type);
    if (v->arr.elem_type == GGUF_F32) { float x; memcpy(&x, p, 4); return x; }
    if (v->arr.elem_type == GGUF_F64) { double x; memcpy(&x, p, 8); return x; }
    return (double)ilm_gguf_arr_int(v, i);
}

int ilm_gguf_get_u32_per_layer(const ilm_gguf *g, const char *key, int n, int32_t *out, ilm_err *err) {
    const ilm_gguf_kv *kv = ilm_gguf_find_kv(g, key);
    if (!kv) return ilm_fail(err, "%s: missing metadata key %s", gname(g), key);
    if (kv->val.type == GGUF_ARRAY) {
        if (!is_int_type(kv->val.arr.elem_type) || kv->val.arr.elem_type == GGUF_BOOL)
            return ilm_fail(err, "%s: key %s: expected integers (%s[])", gname(g), key,
                            ilm_gguf_vtype_name(kv->val.arr.elem_type));
        if (kv->val.arr.count != (uint64_t)n)
            return ilm_fail(err, "%s: key %s: expected %d values (%" PRIu64 ")", gname(g), key, n, kv->val.arr.count);
        for (int i = 0; i < n; i++) {
            int64_t x = ilm_gguf_arr_int(&kv->val, (uint64_t)i);
            if (x < 0 || x > INT32_MAX) return ilm_fail(err, "%s: key %s: value out of range (%" PRId64 ")", gname(g), key, x);
            out[i] = (int32_t)x;
        }
        return 0;
    }
    uint32_t v;
    if (ilm_gguf_get_u32(g, key, &v, err)) return -1;
    if (v > INT32_MAX) return ilm_fail(err, "%s: key %s: value out of range (%u)", gname(g), key, v);
    for (int i = 0; i < n; i++) out[i] = (int32_t)v;
    return 0;
}
