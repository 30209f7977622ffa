// safetensors.c — the safetensors reader (see safetensors.h): mmap, header JSON through
// format/json.h, every offset and size checked before use.
#include "format/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/json.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [ILM_ST_F32] = {"F32", 4}, [ILM_ST_F16] = {"F16", 2}, [ILM_ST_BF16] = {"BF16", 2}, [ILM_ST_I64] = {"I64", 8},
    [ILM_ST_I32] = {"I32", 4}, [ILM_ST_I8] = {"I8", 1},   [ILM_ST_U8] = {"U8", 1},
};
#define N_DTYPES (int)(sizeof dtypes / sizeof dtypes[0])

const char *ilm_st_dtype_name(int d) { return d >= 0 && d < N_DTYPES ? dtypes[d].name : "?"; }
size_t ilm_st_dtype_size(int d) { return d >= 0 && d < N_DTYPES ? dtypes[d].size : 0; }

int ilm_open_regular(const char *path, size_t *size, ilm_err *err) {
    struct stat st;
    if (stat(path, &st) != 0) return ilm_fail(err, "%s: cannot open (%s)", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return ilm_fail(err, "%s: not a regular file", path);
    // O_NONBLOCK: should the path be swapped for a FIFO after the stat, open still returns.
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return ilm_fail(err, "%s: cannot open (%s)", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ilm_fail(err, "%s: not a regular file", path);
    }
    *size = (size_t)st.st_size;
    return fd;
}

void ilm_st_close(ilm_st *s) {
    if (!s) return;
    for (int i = 0; i < s->n_shards; i++) {
        if (s->shards[i].owns_map && s->shards[i].map) munmap((void *)s->shards[i].map, s->shards[i].size);
        free(s->shards[i].path);
    }
    for (size_t i = 0; i < s->n_tensors; i++) free(s->tensors[i].name);
    free(s->shards);
    free(s->tensors);
    free(s->by_name);
    free(s);
}

// A JSON number that is a non-negative integer below 2^53 (exact in a double).
static bool json_uint(const ilm_json *j, uint64_t *out) {
    if (!j || j->type != JSON_NUM || !(j->num >= 0) || j->num > 9007199254740992.0 || j->num != (double)(uint64_t)j->num)
        return false;
    *out = (uint64_t)j->num;
    return true;
}

static int cmp_begin(const void *a, const void *b) {
    const ilm_st_tensor *x = *(ilm_st_tensor *const *)a, *y = *(ilm_st_tensor *const *)b;
    uintptr_t px = (uintptr_t)x->data, py = (uintptr_t)y->data;
    if (px != py) return px < py ? -1 : 1;
    return x->bytes < y->bytes ? -1 : x->bytes > y->bytes;
}

static int cmp_name_p(const void *a, const void *b) {
    return strcmp((*(ilm_st_tensor *const *)a)->name, (*(ilm_st_tensor *const *)b)->name);
}

static int cmp_shard_name(const void *a, const void *b) {
    const ilm_st_tensor *x = a, *y = b;
    if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
    return strcmp(x->name, y->name);
}

// Appends the tensors of one mapped shard to s (validated). name: for messages.
static int parse_shard(ilm_st *s, int shard, ilm_err *err) {
    const ilm_st_shard *sh = &s->shards[shard];
    const char *name = sh->path;
    if (sh->size < 8) return ilm_fail(err, "%s: truncated file: %zu bytes, no header length", name, sh->size);
    uint64_t hlen;
    memcpy(&hlen, sh->map, 8);
    if (hlen < 2 || hlen > ILM_ST_MAX_HEADER)
        return ilm_fail(err, "%s: bad header length %llu (expected 2..%u)", name, (unsigned long long)hlen,
                        ILM_ST_MAX_HEADER);
    if (hlen > sh->size - 8)
        return ilm_fail(err, "%s: truncated file: header length %llu exceeds the file (%zu bytes)", name,
                        (unsigned long long)hlen, sh->size);
    const char *htext = (const char *)sh->map + 8;
    if (htext[0] != '{') return ilm_fail(err, "%s: header is not a JSON object", name);
    ilm_err jerr;
    ilm_json *h = ilm_json_parse(htext, (size_t)hlen, &jerr);
    if (!h) return ilm_fail(err, "%s: bad header JSON: %s", name, jerr.msg);
    int rc = -1;
    ilm_st_tensor **order = NULL;
    if (h->type != JSON_OBJ) {
        ilm_fail(err, "%s: header is not a JSON object", name);
        goto done;
    }
    const uint8_t *data = sh->map + 8 + hlen;
    const size_t data_size = sh->size - 8 - (size_t)hlen;
    size_t first = s->n_tensors, n_new = 0;
    for (size_t i = 0; i < h->len; i++)
        if (strcmp(h->keys[i], "__metadata__")) n_new++;
    size_t total;
    if (!ilm_add_ok(first, n_new, &total) || total > SIZE_MAX / sizeof(ilm_st_tensor)) {
        ilm_fail(err, "%s: too many tensors", name);
        goto done;
    }
    ilm_st_tensor *nt = realloc(s->tensors, (total ? total : 1) * sizeof *nt);
    if (!nt) {
        ilm_fail(err, "%s: out of memory", name);
        goto done;
    }
    s->tensors = nt;
    for (size_t i = 0; i < h->len; i++) {
        const char *key = h->keys[i];
        const ilm_json *e = &h->items[i];
        if (!strcmp(key, "__metadata__")) {
            if (e->type != JSON_OBJ) {
                ilm_fail(err, "%s: __metadata__ is not an object", name);
                goto done;
            }
            continue;
        }
        if (!*key) {
            ilm_fail(err, "%s: tensor with an empty name", name);
            goto done;
        }
        const ilm_json *dt = ilm_json_get(e, "dtype"), *shp = ilm_json_get(e, "shape"),
                       *offs = ilm_json_get(e, "data_offsets");
        if (e->type != JSON_OBJ || !dt || dt->type != JSON_STR || !shp || shp->type != JSON_ARR || !offs ||
            offs->type != JSON_ARR) {
            ilm_fail(err, "%s: tensor %s: needs dtype, shape and data_offsets", name, key);
            goto done;
        }
        ilm_st_tensor t = {.shard = shard, .dtype = -1};
        for (int d = 0; d < N_DTYPES; d++)
            if (!strcmp(dt->str, dtypes[d].name)) t.dtype = d;
        if (t.dtype < 0) {
            ilm_fail(err, "%s: tensor %s: unknown dtype %.32s (supported: F32 F16 BF16 I64 I32 I8 U8)", name, key,
                     dt->str);
            goto done;
        }
        if (shp->len > ILM_ST_MAX_DIMS) {
            ilm_fail(err, "%s: tensor %s: %zu dimensions (at most %d)", name, key, shp->len, ILM_ST_MAX_DIMS);
            goto done;
        }
        t.n_dims = (int)shp->len;
        size_t n = 1;
        for (int d = 0; d < t.n_dims; d++) {
            uint64_t v;
            if (!json_uint(&shp->items[d], &v) || v > (uint64_t)INT64_MAX) {
                ilm_fail(err, "%s: tensor %s: bad shape (dimension %d)", name, key, d);
                goto done;
            }
            t.shape[d] = (int64_t)v;
            if (v > SIZE_MAX || !ilm_mul_ok(n, (size_t)v, &n)) {
                ilm_fail(err, "%s: tensor %s: shape too large (element count overflows)", name, key);
                goto done;
            }
        }
        uint64_t b0, b1;
        if (offs->len != 2 || !json_uint(&offs->items[0], &b0) || !json_uint(&offs->items[1], &b1) || b1 < b0) {
            ilm_fail(err, "%s: tensor %s: bad data_offsets", name, key);
            goto done;
        }
        if (b1 > data_size) {
            ilm_fail(err, "%s: tensor %s: data_offsets [%llu, %llu] outside the data section (%zu bytes)", name, key,
                     (unsigned long long)b0, (unsigned long long)b1, data_size);
            goto done;
        }
        if (!ilm_mul_ok(n, dtypes[t.dtype].size, &t.bytes) || t.bytes != b1 - b0) {
            ilm_fail(err, "%s: tensor %s: %zu %s elements do not fill its extent of %llu bytes", name, key, n,
                     dtypes[t.dtype].name, (unsigned long long)(b1 - b0));
            goto done;
        }
        t.n_elem = n;
        t.data = data + b0;
        if (!(t.name = strdup(key))) {
            ilm_fail(err, "%s: out of memory", name);
            goto done;
        }
        s->tensors[s->n_tensors++] = t;
    }
    // Extents: sorted by offset they must tile the data section exactly.
    order = malloc((n_new ? n_new : 1) * sizeof *order);
    if (!order) {
        ilm_fail(err, "%s: out of memory", name);
        goto done;
    }
    for (size_t i = 0; i < n_new; i++) order[i] = &s->tensors[first + i];
    qsort(order, n_new, sizeof *order, cmp_begin);
    size_t at = 0;
    for (size_t i = 0; i < n_new; i++) {
        size_t b0 = (size_t)((const uint8_t *)order[i]->data - data);
        if (b0 < at) {
            ilm_fail(err, "%s: tensor %s overlaps the previous tensor's data (offset %zu < %zu)", name, order[i]->name,
                     b0, at);
            goto done;
        }
        if (b0 > at) {
            ilm_fail(err, "%s: gap in the data section before tensor %s (bytes %zu..%zu unused)", name, order[i]->name,
                     at, b0);
            goto done;
        }
        at = b0 + order[i]->bytes;
    }
    if (at != data_size) {
        ilm_fail(err, "%s: data section has %zu bytes, tensors cover %zu", name, data_size, at);
        goto done;
    }
    rc = 0;
done:
    free(order);
    ilm_json_free(h);
    return rc;
}

// Sorts the tensors (shard, name), builds the name index and rejects duplicate names.
static int finish(ilm_st *s, ilm_err *err) {
    qsort(s->tensors, s->n_tensors, sizeof *s->tensors, cmp_shard_name);
    s->by_name = malloc((s->n_tensors ? s->n_tensors : 1) * sizeof *s->by_name);
    if (!s->by_name) return ilm_fail(err, "out of memory");
    for (size_t i = 0; i < s->n_tensors; i++) s->by_name[i] = &s->tensors[i];
    qsort(s->by_name, s->n_tensors, sizeof *s->by_name, cmp_name_p);
    for (size_t i = 1; i < s->n_tensors; i++)
        if (!strcmp(s->by_name[i]->name, s->by_name[i - 1]->name)) {
            const ilm_st_tensor *a = s->by_name[i - 1], *b = s->by_name[i];
            if (a->shard == b->shard) return ilm_fail(err, "%s: duplicate tensor name %s", s->shards[a->shard].path, a->name);
            return ilm_fail(err, "%s, %s: tensor %s in both shards", s->shards[a->shard].path, s->shards[b->shard].path,
                            a->name);
        }
    return 0;
}

const ilm_st_tensor *ilm_st_find(const ilm_st *s, const char *name) {
    size_t lo = 0, hi = s->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->by_name[mid]->name, name);
        if (!c) return s->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static ilm_st *st_new(int n_shards, ilm_err *err) {
    ilm_st *s = calloc(1, sizeof *s);
    if (s && !(s->shards = calloc((size_t)n_shards, sizeof *s->shards))) {
        free(s);
        s = NULL;
    }
    if (!s) ilm_fail(err, "out of memory");
    return s;
}

// Maps shard i of s from path.
static int map_shard(ilm_st *s, int i, const char *path, ilm_err *err) {
    ilm_st_shard *sh = &s->shards[i];
    if (!(sh->path = strdup(path))) return ilm_fail(err, "out of memory");
    size_t size;
    int fd = ilm_open_regular(path, &size, err);
    if (fd < 0) return -1;
    if (size < 8) {
        close(fd);
        return ilm_fail(err, "%s: truncated file: %zu bytes, no header length", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return ilm_fail(err, "%s: mmap failed (%s)", path, strerror(errno));
    sh->map = map;
    sh->size = size;
    sh->owns_map = true;
    return 0;
}

int ilm_st_open_mem(ilm_st **out, const void *data, size_t size, const char *name, ilm_err *err) {
    ilm_st *s = st_new(1, err);
    if (!s) return -1;
    s->n_shards = 1;
    s->shards[0] = (ilm_st_shard){.path = strdup(name), .map = data, .size = size};
    if (!s->shards[0].path) {
        ilm_st_close(s);
        return ilm_fail(err, "out of memory");
    }
    if (parse_shard(s, 0, err) || finish(s, err)) {
        ilm_st_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

int ilm_st_open_file(ilm_st **out, const char *path, ilm_err *err) {
    ilm_st *s = st_new(1, err);
    if (!s) return -1;
    s->n_shards = 1;
    if (map_shard(s, 0, path, err) || parse_shard(s, 0, err) || finish(s, err)) {
        ilm_st_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int open_index(ilm_st **out, const char *dir, const char *ipath, size_t isize, int fd, ilm_err *err) {
    char *text = malloc(isize + 1);
    if (!text) {
        close(fd);
        return ilm_fail(err, "out of memory");
    }
    size_t got = 0;
    while (got < isize) {
        ssize_t r = read(fd, text + got, isize - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != isize) {
        free(text);
        return ilm_fail(err, "%s: read failed", ipath);
    }
    ilm_err jerr;
    ilm_json *j = ilm_json_parse(text, isize, &jerr);
    free(text);
    if (!j) return ilm_fail(err, "%s: bad JSON: %s", ipath, jerr.msg);
    int rc = -1;
    char **files = NULL;
    ilm_st *s = NULL;
    const ilm_json *wm = ilm_json_get(j, "weight_map");
    if (!wm || wm->type != JSON_OBJ || !wm->len) {
        ilm_fail(err, "%s: no weight_map", ipath);
        goto done;
    }
    files = calloc(wm->len, sizeof *files);
    if (!files) {
        ilm_fail(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < wm->len; i++) {
        const ilm_json *f = &wm->items[i];
        if (f->type != JSON_STR || !f->len || strlen(f->str) != f->len || strchr(f->str, '/') || !strcmp(f->str, "..")) {
            ilm_fail(err, "%s: weight_map: tensor %s: bad shard file name", ipath, wm->keys[i]);
            goto done;
        }
        files[i] = f->str;
    }
    qsort(files, wm->len, sizeof *files, cmp_str);
    size_t n_files = 0;
    for (size_t i = 0; i < wm->len; i++)
        if (!n_files || strcmp(files[i], files[n_files - 1])) files[n_files++] = files[i];
    if (n_files > 100000) {
        ilm_fail(err, "%s: too many shards", ipath);
        goto done;
    }
    if (!(s = st_new((int)n_files, err))) goto done;
    for (size_t i = 0; i < n_files; i++) {
        char *p = join(dir, files[i]);
        if (!p) {
            ilm_fail(err, "out of memory");
            goto done;
        }
        s->n_shards = (int)i + 1;
        int r = map_shard(s, (int)i, p, err);
        free(p);
        if (r || parse_shard(s, (int)i, err)) goto done;
    }
    if (finish(s, err)) goto done;
    // The index and the shards must agree.
    for (size_t i = 0; i < wm->len; i++) {
        const ilm_st_tensor *t = ilm_st_find(s, wm->keys[i]);
        if (!t) {
            ilm_fail(err, "%s: tensor %s is not in shard %s", ipath, wm->keys[i], wm->items[i].str);
            goto done;
        }
        const char *base = strrchr(s->shards[t->shard].path, '/');
        if (strcmp(base ? base + 1 : s->shards[t->shard].path, wm->items[i].str)) {
            ilm_fail(err, "%s: tensor %s is in %s, not in %s", ipath, wm->keys[i], s->shards[t->shard].path,
                     wm->items[i].str);
            goto done;
        }
    }
    if (s->n_tensors != wm->len) {
        // more shard tensors than index entries (duplicate index keys were caught above)
        for (size_t i = 0; i < s->n_tensors; i++) {
            bool listed = false;
            for (size_t k = 0; k < wm->len && !listed; k++) listed = !strcmp(wm->keys[k], s->tensors[i].name);
            if (!listed) {
                ilm_fail(err, "%s: tensor %s is not in the index", s->shards[s->tensors[i].shard].path,
                         s->tensors[i].name);
                goto done;
            }
        }
        ilm_fail(err, "%s: weight_map lists a tensor twice", ipath);
        goto done;
    }
    *out = s;
    s = NULL;
    rc = 0;
done:
    ilm_st_close(s);
    free(files);
    ilm_json_free(j);
    return rc;
}

int ilm_st_open_dir(ilm_st **out, const char *dir, ilm_err *err) {
    char *ipath = join(dir, "model.safetensors.index.json");
    if (!ipath) return ilm_fail(err, "out of memory");
    struct stat st;
    int rc;
    if (stat(ipath, &st) == 0) {
        size_t isize;
        int fd = ilm_open_regular(ipath, &isize, err);
        rc = fd < 0 ? -1 : open_index(out, dir, ipath, isize, fd, err);
    } else {
        char *p = join(dir, "model.safetensors");
        rc = p ? ilm_st_open_file(out, p, err) : ilm_fail(err, "out of memory");
        free(p);
    }
    free(ipath);
    return rc;
}
