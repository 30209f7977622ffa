// synth_write.c — the weights of a synth file and the file itself: the planned tensors
// (synth_plan.c) after their metadata (synth_meta.c) are streamed to the GGUF writer a chunk
// of rows at a time, generated in parallel, so memory use is a few MiB whatever the model size.
//
// Weights. Every row has its own PRNG stream (splitmix64 seeded from seed, tensor, row), so
// the bytes do not depend on the thread count. Q4_0/Q8_0 blocks are generated directly rather
// than by quantizing floats (quantizing costs an fmaf per weight; a 12B Q4_0 file is 7 GB):
// random small-integer codes with a bell-ish distribution plus one extreme code per block,
// and a random fp16 scale. Such a block is exactly what ilm_quantize_row_* makes of its own
// dequantized values (Q4_0: one nibble 0 = the max-|x| element, m = -8d; Q8_0: one |q| = 127,
// d = amax/127 > 0), which tests/test_synth.c checks. Scales make every matrix ~N(0, 1/K)
// (std 1/sqrt(K), K = input width) so each projection keeps the RMS of its input; norm
// weights ~1 (post-norms 0.5, q-norm 0.25 to keep attention soft), layer scalars 0.8–1.0:
// activations stay O(1)–O(10) through every layer.
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "simd/half.h"
#include "simd/kernels.h"
#include "tools/quantize.h"
#include "tools/synth_plan.h"

// ---- weights -----------------------------------------------------------------------------

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline uint64_t next64(uint64_t *s) { return mix64(*s += 0x9e3779b97f4a7c15ull); }
static inline float unit(uint64_t r) { return (float)(r >> 40) * (1.0f / 16777216.0f); }  // [0, 1)

// Each row's stream depends only on (seed, tensor index, row).
static uint64_t row_seed(uint64_t seed, int tensor, int64_t row) {
    return mix64(seed ^ mix64(((uint64_t)(uint32_t)tensor << 40) ^ (uint64_t)row ^ 0x5851f42d4c957f2dull));
}

// Standard deviations of the integer codes below, to turn a weight std into a block scale.
#define Q4_CODE_STD 3.2f    // trunc((a - b) / 2), a, b uniform 0..15
#define Q8_CODE_STD 52.0f   // trunc((a + b) / 2), a, b uniform int8
#define F_CODE_STD 104.5f   // a + b, a, b uniform int8

// One Q4_0 block's codes (0..15, value (code - 8) * d), one of them 0: the max-|x| element.
// Returns the random word the block scale is drawn from.
static uint64_t gen_q4_codes(uint64_t *s, uint8_t code[32]) {
    for (int w = 0; w < 4; w++) {
        uint64_t r = next64(s);
        for (int j = 0; j < 8; j++, r >>= 8) code[w * 8 + j] = (uint8_t)(8 + ((int)(r & 15) - (int)((r >> 4) & 15)) / 2);
    }
    uint64_t r = next64(s);
    code[r & 31] = 0;  // the max-|x| element: value -8d
    return r;
}

static void gen_q4_0_row(uint64_t *s, float std, ilm_block_q4_0 *y, int nb) {
    for (int b = 0; b < nb; b++) {
        uint8_t code[32];
        uint64_t r = gen_q4_codes(s, code);
        float d = std / Q4_CODE_STD * (0.75f + 0.5f * unit(r));
        y[b].d = ilm_f32_to_f16((r >> 5) & 1 ? -d : d);
        for (int j = 0; j < 16; j++) y[b].qs[j] = (uint8_t)(code[j] | (code[j + 16] << 4));
    }
}

// compressed-tensors pack-quantized words (docs/gemma4.md §5.6): element k of a row is the
// code q + 8 at bits 4 (k % 8) of word k / 8; n_words is a multiple of 4 (32-element groups).
static void gen_packed_row(uint64_t *s, uint32_t *words, int n_words) {
    for (int g = 0; g < n_words / 4; g++) {
        uint8_t code[32];
        gen_q4_codes(s, code);
        for (int w = 0; w < 4; w++) {
            uint32_t v = 0;
            for (int j = 0; j < 8; j++) v |= (uint32_t)code[w * 8 + j] << (4 * j);
            words[g * 4 + w] = v;
        }
    }
}

static void gen_q8_0_row(uint64_t *s, float std, ilm_block_q8_0 *y, int nb) {
    for (int b = 0; b < nb; b++) {
        for (int w = 0; w < 4; w++) {
            uint64_t r1 = next64(s), r2 = next64(s);
            for (int j = 0; j < 8; j++, r1 >>= 8, r2 >>= 8) {
                int q = ((int)(int8_t)(r1 & 0xff) + (int)(int8_t)(r2 & 0xff)) / 2;
                y[b].qs[w * 8 + j] = (int8_t)(q < -127 ? -127 : q);
            }
        }
        uint64_t r = next64(s);
        y[b].qs[r & 31] = (r >> 5) & 1 ? -127 : 127;  // the max-|x| element: d = amax / 127
        y[b].d = ilm_f32_to_f16(std / Q8_CODE_STD * (0.75f + 0.5f * unit(r)));
    }
}

static void gen_float_row(uint64_t *s, const synth_tspec *t, int64_t row, float *x, int K) {
    switch (t->init) {
    case INIT_MATRIX:
        for (int k = 0; k < K; k += 8) {
            uint64_t r1 = next64(s), r2 = next64(s);
            for (int j = 0; j < 8 && k + j < K; j++, r1 >>= 8, r2 >>= 8)
                x[k + j] = t->a / F_CODE_STD * (float)((int)(int8_t)(r1 & 0xff) + (int)(int8_t)(r2 & 0xff));
        }
        break;
    case INIT_NORM:
        for (int k = 0; k < K; k++) x[k] = t->a + t->b * (2.0f * unit(next64(s)) - 1.0f);
        break;
    case INIT_SCALE:  // W4A16 group scales (positive) for weights of std a
        for (int k = 0; k < K; k++) x[k] = t->a / Q4_CODE_STD * (0.75f + 0.5f * unit(next64(s)));
        break;
    case INIT_ROPE_FREQS:  // docs/gemma4.md §2.6: 1 for the rotated pairs, 1e30 (identity) after
        for (int k = 0; k < K; k++) x[k] = k < ROPE_ROTATED ? 1.0f : 1e30f;
        break;
    default:
        break;
    }
    (void)row;
}

// One row of tensor `t` (index ti) in its file type; scratch holds K floats.
static void gen_row(const synth_tspec *t, int ti, uint64_t seed, int64_t row, void *dst, float *scratch) {
    const int K = (int)t->ne[0];
    uint64_t s = row_seed(seed, ti, row);
    if (t->init == INIT_PACKED) gen_packed_row(&s, dst, K);
    else if (t->init == INIT_MATRIX && t->type == ILM_TYPE_Q4_0) gen_q4_0_row(&s, t->a, dst, K / ILM_QK);
    else if (t->init == INIT_MATRIX && t->type == ILM_TYPE_Q8_0) gen_q8_0_row(&s, t->a, dst, K / ILM_QK);
    else {
        gen_float_row(&s, t, row, scratch, K);
        ilm_quantize_row(t->type, scratch, dst, K);
    }
}

// Token -> centroid bucket of a random token ordering (§3.4: position / (V / centroid_count)).
static int gen_ordering(uint64_t seed, int ti, int V, int32_t **out, ilm_err *err) {
    int32_t *perm = malloc((size_t)V * sizeof *perm), *bucket = malloc((size_t)V * sizeof *bucket);
    if (!perm || !bucket) {
        free(perm);
        free(bucket);
        return ilm_fail(err, "out of memory");
    }
    uint64_t s = row_seed(seed, ti, 0);
    for (int i = 0; i < V; i++) perm[i] = i;
    for (int i = V - 1; i > 0; i--) {
        int j = (int)(next64(&s) % (uint64_t)(i + 1));
        int32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    for (int pos = 0; pos < V; pos++) bucket[perm[pos]] = pos / (V / N_CENTROIDS);
    free(perm);
    *out = bucket;
    return 0;
}

// ---- parallel chunks ---------------------------------------------------------------------

typedef struct {
    const synth_tspec *t;
    int ti;
    uint64_t seed;
    int64_t row0, row1;
    size_t row_bytes;
    uint8_t *dst;
    float *scratch;
    int ith, nth;
} gen_job;

static void *gen_worker(void *arg) {
    gen_job *j = arg;
    int64_t n = j->row1 - j->row0;
    for (int64_t r = j->row0 + n * j->ith / j->nth; r < j->row0 + n * (j->ith + 1) / j->nth; r++)
        gen_row(j->t, j->ti, j->seed, r, j->dst + (size_t)(r - j->row0) * j->row_bytes, j->scratch);
    return NULL;
}

// One chunk of rows generated by nth threads in the background, so the caller can write the
// previous chunk meanwhile (generation and disk writes overlap: two buffers in flight).
typedef struct {
    gen_job jobs[64];
    pthread_t tids[64];
    bool started[64];
    int nth;
} gen_batch;

static void gen_start(gen_batch *g, const synth_tspec *t, int ti, uint64_t seed, int64_t row0, int64_t row1, uint8_t *dst,
                      float *scratch, int K, int nth) {
    if (row1 - row0 < nth) nth = (int)(row1 - row0);
    if (nth < 1) nth = 1;
    g->nth = nth;
    for (int i = 0; i < nth; i++) {
        g->jobs[i] = (gen_job){t, ti, seed, row0, row1, ilm_row_bytes(t->type, K), dst, scratch + (size_t)i * K, i, nth};
        g->started[i] = pthread_create(&g->tids[i], NULL, gen_worker, &g->jobs[i]) == 0;
    }
}

static void gen_join(gen_batch *g) {
    for (int i = 0; i < g->nth; i++) {
        if (g->started[i]) pthread_join(g->tids[i], NULL);
        else gen_worker(&g->jobs[i]);  // a thread we could not start: do its rows here
    }
    g->nth = 0;
}

// ---- file --------------------------------------------------------------------------------

int ilm_synth_check_space(uint64_t need, uint64_t avail, const char *path, ilm_err *err) {
    // margin: 1 % + 64 MiB, so the file system is not left completely full
    uint64_t want = need + need / 100 + (64ull << 20);
    if (want > avail)
        return ilm_fail(err, "%s: not enough disk space: the file needs %.2f GiB, %.2f GiB free", path,
                        (double)need / (1 << 30), (double)avail / (1 << 30));
    return 0;
}

static int free_space(const char *path, uint64_t *avail, ilm_err *err) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    struct statvfs st;
    if (statvfs(dir, &st) != 0) return ilm_fail(err, "%s: cannot query free space of its directory", path);
    *avail = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
    return 0;
}

static const char *type_arg_name(int type) {
    switch (type) {
    case ILM_TYPE_Q4_0: return "q4_0";
    case ILM_TYPE_Q8_0: return "q8_0";
    case ILM_TYPE_F16: return "f16";
    case ILM_TYPE_BF16: return "bf16";
    default: return "?";
    }
}

int synth_threads(const ilm_synth_opts *o) {
    int nth = o->n_threads > 0 ? o->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    return nth < 1 ? 1 : nth > 64 ? 64 : nth;
}

int synth_dir_space(const char *path, uint64_t *avail, ilm_err *err) { return free_space(path, avail, err); }

// A tensor made whole rather than row by row (small): the token ordering, a W4A16 weight_shape.
static int gen_whole(const synth_tspec *t, int ti, uint64_t seed, int V, void **out, size_t *bytes, ilm_err *err) {
    if (t->init == INIT_ORDERING) {
        *bytes = (size_t)V * 4;
        return gen_ordering(seed, ti, V, (int32_t **)out, err);
    }
    if (!(*out = ilm_malloc(sizeof t->val, err))) return -1;
    memcpy(*out, t->val, sizeof t->val);
    *bytes = sizeof t->val;
    return 0;
}

int synth_stream(const synth_tlist *l, uint64_t seed, int nth, int V, synth_sink put, void *ctx, ilm_progress *pr,
                 ilm_err *err) {
    int64_t max_K = 1;
    for (int i = 0; i < l->n; i++)
        if (l->t[i].ne[0] > max_K) max_K = l->t[i].ne[0];
    const size_t chunk_target = (size_t)16 << 20, buf_bytes = chunk_target + (size_t)max_K * 4;
    uint8_t *buf = ilm_malloc(2 * buf_bytes, err);
    float *scratch = buf ? ilm_malloc(2 * (size_t)nth * (size_t)max_K * 4, err) : NULL;
    gen_batch *batch = scratch ? calloc(2, sizeof *batch) : NULL;  // one per buffer; threads point into them
    if (!batch) {
        if (scratch) ilm_fail(err, "out of memory");
        free(buf);
        free(scratch);
        return -1;
    }
    // pipeline: chunk c is generated into buffer c % 2 while chunk c - 1 is written
    struct { const synth_tspec *t; int ti; size_t bytes; int slot; } pending = {NULL, 0, 0, 0};
    int slot = 0, wrc = 0;
#define FLUSH()                                                                                        \
    do {                                                                                               \
        gen_join(&batch[pending.slot]);                                                                \
        if (!wrc) wrc = put(ctx, pending.ti, buf + (size_t)pending.slot * buf_bytes, pending.bytes, err); \
        if (pr) ilm_progress_add(pr, pending.bytes, pending.t->name);                                  \
        pending.t = NULL;                                                                              \
    } while (0)
    for (int i = 0; i < l->n && !wrc; i++) {
        const synth_tspec *t = &l->t[i];
        if (t->init == INIT_ORDERING || t->init == INIT_SHAPE) {  // small: made whole, after the pending chunk
            void *whole = NULL;
            size_t bytes = 0;
            if (pending.t) FLUSH();
            if (!wrc) wrc = gen_whole(t, i, seed, V, &whole, &bytes, err);
            if (!wrc) wrc = put(ctx, i, whole, bytes, err);
            free(whole);
            continue;
        }
        const int K = (int)t->ne[0];
        const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        const size_t rb = ilm_row_bytes(t->type, K);
        int64_t chunk_rows = (int64_t)(chunk_target / rb);
        if (chunk_rows < 1) chunk_rows = 1;
        for (int64_t r = 0; r < rows && !wrc; r += chunk_rows) {
            int64_t r1 = r + chunk_rows < rows ? r + chunk_rows : rows;
            gen_start(&batch[slot], t, i, seed, r, r1, buf + (size_t)slot * buf_bytes,
                      scratch + (size_t)slot * (size_t)nth * (size_t)max_K, K, nth);
            if (pending.t) FLUSH();
            pending.t = t;
            pending.ti = i;
            pending.bytes = (size_t)(r1 - r) * rb;
            pending.slot = slot;
            slot ^= 1;
        }
    }
    if (pending.t) FLUSH();
#undef FLUSH
    free(batch);
    free(buf);
    free(scratch);
    return wrc;
}

static int gguf_put(void *ctx, int ti, const void *data, size_t bytes, ilm_err *err) {
    (void)ti;
    return ilm_gguf_writer_data(ctx, data, bytes, err);
}

int ilm_synth_file(const ilm_synth_opts *o, uint64_t *bytes_out, ilm_err *err) {
    if (o->hf_dir) return ilm_synth_hf(o, bytes_out, err);
    synth_model p;
    synth_tlist l = {0};
    ilm_gguf_writer *w = NULL;
    int rc = -1;
    if (ilm_synth_plan_file(o, &p, &l, err)) goto done;
    const synth_variant *v = p.v;

    uint64_t params = 0;
    for (int i = 0; i < l.n; i++) params += (uint64_t)(l.t[i].ne[0] * l.t[i].ne[1] * l.t[i].ne[2]);
    if (!(w = ilm_gguf_writer_new(err)) || ilm_synth_write_metadata(w, &p, o, params, err)) goto done;
    for (int i = 0; i < l.n; i++)
        if (ilm_gguf_writer_add_tensor(w, l.t[i].name, l.t[i].type, l.t[i].n_dims, l.t[i].ne, err)) goto done;
    uint64_t size = ilm_gguf_writer_file_size(w);
    if (bytes_out) *bytes_out = size;
    if (o->dry_run) {
        printf("synth: %s%s %s: %d tensors, %.3f B parameters, %" PRIu64 " bytes (%.2f GiB)\n", v->name,
               o->drafter ? " drafter" : "", type_arg_name(o->type), l.n, (double)params / 1e9, size,
               (double)size / (1 << 30));
        rc = 0;
        goto done;
    }
    uint64_t avail = o->free_bytes;
    if (!avail && free_space(o->out, &avail, err)) goto done;
    if (ilm_synth_check_space(size, avail, o->out, err)) goto done;
    if (ilm_gguf_writer_begin(w, o->out, err)) goto done;
    ilm_progress pr;
    ilm_progress_init(&pr, "synth", size, o->progress);
    if (synth_stream(&l, o->seed, synth_threads(o), p.V, gguf_put, w, &pr, err)) goto done;
    if (ilm_gguf_writer_finish(w, err)) goto done;
    ilm_progress_done(&pr);
    rc = 0;
done:
    ilm_gguf_writer_free(w);  // removes the temp file unless finished
    free(l.t);
    return rc;
}
