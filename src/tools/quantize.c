// quantize.c — ggml-exact Q8_0 / Q4_0 row quantizers and ilm_quantize_file (the `ironlm
// quantize` command is src/cli/cmd_quantize.c).
//
// Rows are quantized straight from the mmap'd input in chunks of a few MiB, spread over
// worker threads, and streamed to the GGUF writer, so memory use does not grow with the model.
#define _POSIX_C_SOURCE 200809L
#include "tools/quantize.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/gguf.h"
#include "format/gguf_write.h"
#include "simd/half.h"

// ---- rows (docs/gemma4.md §5.2, §5.3) --------------------------------------------------

void ilm_quantize_row_q8_0(const float *x, ilm_block_q8_0 *y, int K) {
    for (int b = 0; b < K / ILM_QK; b++, x += ILM_QK) {
        float amax = 0.0f;
        for (int j = 0; j < ILM_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ilm_f32_to_f16(d);
        // roundf(x*id), not roundf(x/d): the multiply by the unrounded inverse is what ggml does
        for (int j = 0; j < ILM_QK; j++) y[b].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

// (int8_t)(v) of ggml for v = x*id + 8.5, which lies in [0.5, 16.5] for finite input; the
// guards only keep NaN/Inf (rejected earlier by the file path) from being undefined behaviour.
static inline uint8_t q4_nibble(float v) {
    if (!(v < 16.0f)) return 15;
    if (!(v >= 0.0f)) return 0;
    return (uint8_t)(int)v;
}

void ilm_quantize_row_q4_0(const float *x, ilm_block_q4_0 *y, int K) {
    for (int b = 0; b < K / ILM_QK; b++, x += ILM_QK) {
        // the element of largest magnitude, with its sign; the first one on ties
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < ILM_QK; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ilm_f32_to_f16(d);
        // fmaf explicitly: ggml's files come from a build that contracts x*id + 8.5 into one
        // FMA, and -std=c11 turns contraction off (gemma4.md §5.2 bit-exactness note)
        for (int j = 0; j < ILM_QK / 2; j++) {
            uint8_t lo = q4_nibble(fmaf(x[j], id, 8.5f));
            uint8_t hi = q4_nibble(fmaf(x[j + ILM_QK / 2], id, 8.5f));
            y[b].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

size_t ilm_quantize_row(int type, const float *x, void *dst, int K) {
    switch (type) {
    case ILM_TYPE_Q8_0:
        ilm_quantize_row_q8_0(x, dst, K);
        return (size_t)K / ILM_QK * sizeof(ilm_block_q8_0);
    case ILM_TYPE_Q4_0:
        ilm_quantize_row_q4_0(x, dst, K);
        return (size_t)K / ILM_QK * sizeof(ilm_block_q4_0);
    case ILM_TYPE_F32:
        memcpy(dst, x, (size_t)K * 4);
        return (size_t)K * 4;
    case ILM_TYPE_F16:
        for (int k = 0; k < K; k++) ((uint16_t *)dst)[k] = ilm_f32_to_f16(x[k]);
        return (size_t)K * 2;
    case ILM_TYPE_BF16:
        for (int k = 0; k < K; k++) ((uint16_t *)dst)[k] = ilm_f32_to_bf16(x[k]);
        return (size_t)K * 2;
    default:
        return 0;
    }
}

int ilm_row_to_f32(int src_type, const void *src, float *dst, int K) {
    const uint16_t *h = src;
    switch (src_type) {
    case ILM_TYPE_F32: memcpy(dst, src, (size_t)K * 4); return 0;
    case ILM_TYPE_F16: for (int k = 0; k < K; k++) dst[k] = ilm_f16_to_f32(h[k]); return 0;
    case ILM_TYPE_BF16: for (int k = 0; k < K; k++) dst[k] = ilm_bf16_to_f32(h[k]); return 0;
    default: return -1;
    }
}

int ilm_ftype_of(int type) {
    switch (type) {
    case ILM_TYPE_F32: return 0;
    case ILM_TYPE_F16: return 1;
    case ILM_TYPE_Q4_0: return 2;
    case ILM_TYPE_Q8_0: return 7;
    case ILM_TYPE_BF16: return 32;
    default: return -1;
    }
}

// ---- type rules ------------------------------------------------------------------------

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int ilm_quant_tensor_type(const char *name, int n_dims, int keep_type, int target, bool pure,
                          bool has_output) {
    if (n_dims < 2 || ends_with(name, "ffn_gate_inp.weight")) return keep_type;
    if (!pure && target == ILM_TYPE_Q4_0) {
        bool lm_head = !strcmp(name, "output.weight") || (!has_output && !strcmp(name, "token_embd.weight"));
        if (lm_head) return ILM_TYPE_Q8_0;
    }
    return target;
}

// ---- parallel chunk quantization -------------------------------------------------------

typedef struct {
    const ilm_gguf_tensor *t;
    int dst_type, K;
    size_t src_row_bytes, dst_row_bytes;
    int64_t row0, row1;        // rows of this chunk, [row0, row1)
    uint8_t *dst;              // output of the chunk
    int ith, nth;
    float *scratch;            // K floats, this worker's
    int64_t bad_row;           // first row with a NaN/Inf, or -1
} quant_job;

static void *quant_worker(void *arg) {
    quant_job *j = arg;
    int64_t n = j->row1 - j->row0;
    int64_t a = j->row0 + n * j->ith / j->nth, b = j->row0 + n * (j->ith + 1) / j->nth;
    j->bad_row = -1;
    for (int64_t r = a; r < b; r++) {
        const uint8_t *src = (const uint8_t *)j->t->data + (size_t)r * j->src_row_bytes;
        ilm_row_to_f32(j->t->type, src, j->scratch, j->K);
        for (int k = 0; k < j->K; k++)
            if (!isfinite(j->scratch[k])) {
                j->bad_row = r;
                return NULL;
            }
        ilm_quantize_row(j->dst_type, j->scratch, j->dst + (size_t)(r - j->row0) * j->dst_row_bytes, j->K);
    }
    return NULL;
}

// Quantizes rows [row0, row1) of t into dst with nth threads (the caller is thread 0).
static int quantize_chunk(const ilm_gguf_tensor *t, int dst_type, int64_t row0, int64_t row1, uint8_t *dst,
                          float *scratch, int nth, ilm_err *err) {
    quant_job jobs[64];
    pthread_t tids[64];
    int K = (int)t->ne[0];
    if (nth > 64) nth = 64;
    if (row1 - row0 < nth) nth = (int)(row1 - row0);
    if (nth < 1) nth = 1;
    for (int i = 0; i < nth; i++)
        jobs[i] = (quant_job){t, dst_type, K, ilm_row_bytes(t->type, K), ilm_row_bytes(dst_type, K),
                              row0, row1, dst, i, nth, scratch + (size_t)i * K, -1};
    int started = 1;
    for (int i = 1; i < nth; i++, started++)
        if (pthread_create(&tids[i], NULL, quant_worker, &jobs[i]) != 0) break;
    quant_worker(&jobs[0]);
    for (int i = started; i < nth; i++) quant_worker(&jobs[i]);  // threads we could not start
    for (int i = 1; i < started; i++) pthread_join(tids[i], NULL);
    for (int i = 0; i < nth; i++)
        if (jobs[i].bad_row >= 0)
            return ilm_fail(err, "tensor %s: row %lld holds NaN or Inf; refusing to quantize it", t->name,
                            (long long)jobs[i].bad_row);
    return 0;
}

// ---- progress --------------------------------------------------------------------------

void ilm_progress_init(ilm_progress *p, const char *what, uint64_t total, bool on) {
    *p = (ilm_progress){.what = what, .total = total ? total : 1, .t0 = ilm_now(), .on = on,
                        .tty = isatty(2) == 1};
}

static void progress_draw(ilm_progress *p, const char *item) {
    double pct = 100.0 * (double)p->done / (double)p->total, dt = ilm_now() - p->t0;
    double mbs = dt > 0 ? (double)p->done / dt / 1e6 : 0.0;
    if (p->tty) {
        char bar[31];
        int fill = (int)(pct * 30 / 100);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r%s [%s] %5.1f%% %7.1f MB/s %-40.40s", p->what, bar, pct, mbs, item ? item : "");
    } else {
        fprintf(stderr, "%s: %3.0f%% (%.1f MB/s) %s\n", p->what, pct, mbs, item ? item : "");
    }
    fflush(stderr);
}

void ilm_progress_add(ilm_progress *p, uint64_t n, const char *item) {
    p->done += n;
    if (!p->on) return;
    double now = ilm_now();
    int decile = (int)(10 * p->done / p->total);
    if (p->tty ? now - p->last >= 0.1 : decile > p->last_decile) {
        p->last = now;
        p->last_decile = decile;
        progress_draw(p, item);
    }
}

void ilm_progress_done(ilm_progress *p) {
    if (!p->on) return;
    if (p->tty) {
        p->done = p->total;
        progress_draw(p, "done");
        fputc('\n', stderr);
    }
}

// ---- files -----------------------------------------------------------------------------

static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (!strcmp(a, b)) return true;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static bool is_float_type(int type) {
    return type == ILM_TYPE_F32 || type == ILM_TYPE_F16 || type == ILM_TYPE_BF16;
}

// Copies the metadata, with general.file_type (in place, or appended as llama.cpp does) set
// and the imatrix keys — host paths of the quantizing machine — left out.
static int copy_metadata(ilm_gguf_writer *w, const ilm_gguf *g, int type, ilm_err *err) {
    bool has_ftype = false, has_qver = false;
    for (int64_t i = 0; i < g->n_kv; i++) {
        const ilm_gguf_kv *kv = &g->kv[i];
        if (!strncmp(kv->key, "quantize.imatrix.", 17)) continue;
        int rc;
        if (!strcmp(kv->key, "general.file_type")) {
            rc = ilm_gguf_writer_add_u32(w, kv->key, (uint32_t)ilm_ftype_of(type), err);
            has_ftype = true;
        } else if (!strcmp(kv->key, "general.quantization_version")) {
            rc = ilm_gguf_writer_add_u32(w, kv->key, 2, err);  // GGML_QNT_VERSION
            has_qver = true;
        } else {
            rc = ilm_gguf_writer_copy_kv(w, kv, err);
        }
        if (rc) return -1;
    }
    if (!has_qver && ilm_gguf_writer_add_u32(w, "general.quantization_version", 2, err)) return -1;
    if (!has_ftype && ilm_gguf_writer_add_u32(w, "general.file_type", (uint32_t)ilm_ftype_of(type), err)) return -1;
    return 0;
}

// Decides every tensor's output type; errors name the tensor that cannot be made.
static int plan_types(const ilm_gguf *g, const ilm_quantize_opts *o, int *types, ilm_err *err) {
    bool has_output = ilm_gguf_find_tensor(g, "output.weight") != NULL;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const ilm_gguf_tensor *t = &g->tensors[i];
        int want = ilm_quant_tensor_type(t->name, t->n_dims, t->type, o->type, o->pure, has_output);
        types[i] = want;
        if (want == t->type) continue;
        if (!is_float_type(t->type))
            return ilm_fail(err, "%s: tensor %s is %s; quantize needs F32/F16/BF16 weights (requantizing to %s "
                            "would compound rounding error: start from the F32/F16/BF16 file)",
                            g->path, t->name, ilm_ggml_type_name(t->type), ilm_ggml_type_name(want));
        if (t->ne[0] % ILM_QK != 0) {
            // cannot be blocked along ne0: stays as it is (never happens with Gemma 4 dims)
            fprintf(stderr, "quantize: %s: ne0 = %lld is not a multiple of %d, kept as %s\n", t->name,
                    (long long)t->ne[0], ILM_QK, ilm_ggml_type_name(t->type));
            types[i] = t->type;
        }
    }
    return 0;
}

int ilm_quantize_file(const ilm_quantize_opts *o, ilm_err *err) {
    if (o->type != ILM_TYPE_Q8_0 && o->type != ILM_TYPE_Q4_0)
        return ilm_fail(err, "quantize: type %s is not supported (q4_0 or q8_0)", ilm_ggml_type_name(o->type));
    if (same_file(o->in, o->out)) return ilm_fail(err, "%s: refusing to overwrite the input file", o->out);
    ilm_gguf *g;
    if (ilm_gguf_open(&g, o->in, err)) return -1;
    int rc = -1, nth = o->n_threads > 0 ? o->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nth < 1) nth = 1;
    if (nth > 64) nth = 64;
    int *types = calloc((size_t)g->n_tensors + 1, sizeof *types);
    ilm_gguf_writer *w = ilm_gguf_writer_new(err);
    uint8_t *buf = NULL;
    float *scratch = NULL;
    if (!types || !w) goto done;
    if (plan_types(g, o, types, err)) goto done;

    ilm_gguf_writer_set_alignment(w, g->alignment);
    if (copy_metadata(w, g, o->type, err)) goto done;
    int64_t max_K = 1;
    uint64_t work = 0;  // input bytes that get quantized (the progress bar's 100%)
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const ilm_gguf_tensor *t = &g->tensors[i];
        if (ilm_gguf_writer_add_tensor(w, t->name, types[i], t->n_dims, t->ne, err)) goto done;
        if (types[i] != t->type) {
            if (t->ne[0] > max_K) max_K = t->ne[0];
            work += t->bytes;
        }
    }
    // chunks of about 16 MiB of output, whole rows
    const size_t chunk_target = (size_t)16 << 20;
    size_t buf_bytes = chunk_target + ilm_row_bytes(ILM_TYPE_F32, (int)max_K);
    if (!(buf = ilm_malloc(buf_bytes, err)) || !(scratch = ilm_malloc((size_t)nth * (size_t)max_K * 4, err)))
        goto done;

    if (ilm_gguf_writer_begin(w, o->out, err)) goto done;
    ilm_progress pr;
    ilm_progress_init(&pr, "quantize", work, o->progress);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const ilm_gguf_tensor *t = &g->tensors[i];
        if (types[i] == t->type) {
            if (ilm_gguf_writer_data(w, t->data, t->bytes, err)) goto done;
            continue;
        }
        int K = (int)t->ne[0];
        size_t src_rb = ilm_row_bytes(t->type, K), dst_rb = ilm_row_bytes(types[i], K);
        int64_t rows = (int64_t)(t->bytes / src_rb);
        int64_t chunk_rows = (int64_t)(chunk_target / dst_rb);
        if (chunk_rows < 1) chunk_rows = 1;
        for (int64_t r = 0; r < rows; r += chunk_rows) {
            int64_t r1 = r + chunk_rows < rows ? r + chunk_rows : rows;
            if (quantize_chunk(t, types[i], r, r1, buf, scratch, nth, err)) goto done;
            if (ilm_gguf_writer_data(w, buf, (size_t)(r1 - r) * dst_rb, err)) goto done;
            ilm_progress_add(&pr, (uint64_t)(r1 - r) * src_rb, t->name);
        }
    }
    if (ilm_gguf_writer_finish(w, err)) goto done;
    ilm_progress_done(&pr);
    rc = 0;
done:
    ilm_gguf_writer_free(w);  // removes the temp file if we did not finish
    free(buf);
    free(scratch);
    free(types);
    ilm_gguf_close(g);
    return rc;
}
