// bench_kernels.c — the measurements of `ironlm bench --kernels` (see bench_kernels.h): how
// close each matrix kernel gets to the memory limit. The options and the table are
// src/cli/cmd_bench_kernels.c.
//
// For every kernel set this CPU runs, every weight type / activation kind and every batch
// width, the weights (one random rows x K matrix, packed for the set and copied until the
// copies together are >= 4x the last-level cache) are streamed through mm_q8 / mm_f32 on
// the thread pool; the best pass gives GB/s of weight bytes and GFLOP/s. A STREAM-like read
// probe (ilm_measure_read_bw) measured with the same thread count heads the table, so each
// kernel's share of the machine's read bandwidth shows.
#include "tools/bench_kernels.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simd/half.h"
#include "simd/kernels.h"
#include "runtime/threadpool.h"
#include "base/util.h"

// ---- the machine ----------------------------------------------------------------------

// "32768K", "8M", "512" (bytes) as in sysfs cache/index*/size.
static size_t parse_size(const char *t) {
    char *end;
    unsigned long long v = strtoull(t, &end, 10);
    if (*end == 'K') v <<= 10;
    else if (*end == 'M') v <<= 20;
    else if (*end == 'G') v <<= 30;
    return (size_t)v;
}

static int read_line(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    const int ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    return ok ? 0 : -1;
}

size_t ilm_kbench_llc_bytes(void) {
    // sysfs: the highest-level data/unified cache of cpu0
    size_t best = 0;
    int best_level = 0;
    for (int i = 0; i < 16; i++) {
        char path[96], level[16], type[32], size[32];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        if (read_line(path, level, sizeof level)) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if (read_line(path, type, sizeof type) || strncmp(type, "Instruction", 11) == 0) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (read_line(path, size, sizeof size)) continue;
        const int lv = atoi(level);
        if (lv >= best_level) best_level = lv, best = parse_size(size);
    }
    if (best) return best;
    long v = sysconf(_SC_LEVEL3_CACHE_SIZE);  // CPUID, what glibc reports without sysfs
    if (v <= 0) v = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return v > 0 ? (size_t)v : (size_t)32 << 20;
}

size_t ilm_kbench_stream_bytes(void) {
    size_t b = 4 * ilm_kbench_llc_bytes();
    if (b < ((size_t)256 << 20)) b = (size_t)256 << 20;
    if (b > ((size_t)2 << 30)) b = (size_t)2 << 30;
    return b;
}

// MemAvailable of /proc/meminfo in bytes, 0 if unknown.
static size_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[128];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb << 10;
}

size_t ilm_probe_buffer_bytes(void) {
    size_t b = 8 * ilm_kbench_llc_bytes();
    if (b < ((size_t)1 << 30)) b = (size_t)1 << 30;
    if (b > ((size_t)4 << 30)) b = (size_t)4 << 30;
    const size_t avail = mem_available();
    if (avail && b > avail / 2) b = avail / 2;
    if (b < ((size_t)64 << 20)) b = (size_t)64 << 20;
    return b / 4096 * 4096;
}

// ---- read-bandwidth probe -------------------------------------------------------------------

typedef struct {
    const char *p;
    size_t bytes;    // multiple of 256
    int cpu;         // CPU to pin to, or -1
    const ilm_kernels *set;  // its read_sum, or NULL: the portable loop
    size_t prefetch;
    uint64_t sum;    // written so the loads cannot be dropped
} read_slice;

// The portable method: 16-byte vectors (SSE2 / NEON, the baseline of both architectures), 8
// independent sums, software prefetch ahead.
typedef uint64_t u64x2 __attribute__((vector_size(16)));

static void pin_to(int cpu) {
    if (cpu < 0) return;  // the caller may be pinned (thread pool); spread the readers instead
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *read_slice_run(void *arg) {
    read_slice *s = arg;
    pin_to(s->cpu);
    if (s->set) {
        s->sum = s->set->read_sum(s->p, s->bytes, s->prefetch);
        return NULL;
    }
    u64x2 a[8] = {{0}};
    for (size_t i = 0; i < s->bytes; i += 128) {
        __builtin_prefetch(s->p + i + s->prefetch);
        __builtin_prefetch(s->p + i + s->prefetch + 64);
        for (int k = 0; k < 8; k++) {
            u64x2 v;
            memcpy(&v, s->p + i + 16 * k, 16);
            a[k] += v;
        }
    }
    u64x2 t = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    s->sum = t[0] + t[1];
    return NULL;
}

// Seconds for n_threads readers to read buf once with one method (each its slice).
static double read_pass(const char *buf, size_t bytes, int n_threads, const ilm_kernels *set, size_t prefetch,
                        uint64_t *sink) {
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    read_slice sl[256];
    pthread_t th[256];
    int started[256];
    const double t0 = ilm_now();
    for (int t = 0; t < n_threads; t++) {
        const size_t b0 = bytes / 256 * t / n_threads * 256, b1 = bytes / 256 * (t + 1) / n_threads * 256;
        sl[t] = (read_slice){buf + b0, b1 - b0, ncpu > 1 ? (int)(t % ncpu) : -1, set, prefetch, 0};
        started[t] = pthread_create(&th[t], NULL, read_slice_run, &sl[t]) == 0;
        if (!started[t]) read_slice_run(&sl[t]);
    }
    for (int t = 0; t < n_threads; t++)
        if (started[t]) pthread_join(th[t], NULL);
    const double dt = ilm_now() - t0;
    for (int t = 0; t < n_threads; t++) *sink += sl[t].sum;
    return dt;
}

ilm_bw_probe ilm_probe_read_bw(int n_threads) {
    ilm_bw_probe r = {0};
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) n_threads = 256;
    const size_t bytes = ilm_probe_buffer_bytes();
    // the prefetch distance runs past the end: pad so those lines exist (prefetches of
    // unmapped addresses are harmless, but stay inside the allocation anyway)
    char *buf = aligned_alloc(4096, bytes + 8192);
    if (!buf) return r;
    for (size_t i = 0; i < bytes + 8192; i += 8) memcpy(buf + i, &i, 8);  // touch every page
    const ilm_kernels *wide = ilm_k->read_sum ? ilm_k : NULL;
    static const size_t prefetches[] = {0, 512, 1024, 2048, 4096};
    uint64_t sink = 0;
    double best = 1e30;
    const int thread_counts[2] = {n_threads, 1};
    for (int ti = 0; ti < (n_threads > 1 ? 2 : 1); ti++) {
        const int nt = thread_counts[ti];
        for (int m = -1; m < (wide ? 5 : 0); m++) {  // m = -1: portable 16-byte loop, prefetch 2 KiB
            const ilm_kernels *set = m < 0 ? NULL : wide;
            const size_t pf = m < 0 ? 2048 : prefetches[m];
            for (int pass = 0; pass < 2; pass++) {
                const double dt = read_pass(buf, bytes, nt, set, pf, &sink);
                if (dt < best) {
                    best = dt;
                    snprintf(r.method, sizeof r.method, "%s loads, prefetch %zu B, %d thread%s",
                             set ? set->name : "16-byte", pf, nt, nt > 1 ? "s" : "");
                }
            }
        }
    }
    free(buf);
    if (sink == 42) fputs("", stderr);  // keep the sums alive
    r.gb_s = (double)bytes / best / 1e9;
    r.bytes = bytes;
    r.llc = ilm_kbench_llc_bytes();
    return r;
}

double ilm_measure_read_bw(int n_threads) { return ilm_probe_read_bw(n_threads).gb_s; }

// ---- int8 dot-product peak --------------------------------------------------------------

typedef struct {
    const ilm_kernels *set;
    long iters;
    int cpu;
    double macs, secs;
} dot_slice;

static void *dot_slice_run(void *arg) {
    dot_slice *s = arg;
    pin_to(s->cpu);
    const double t0 = ilm_now();
    s->macs = s->set->int8_dot_loop(s->iters);
    s->secs = ilm_now() - t0;
    return NULL;
}

double ilm_measure_int8_peak(int n_threads) {
    const ilm_kernels *set = ilm_k;
    if (!set->int8_dot_loop) return 0;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) n_threads = 256;
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    // calibrate: ~50 ms per thread per pass
    long iters = 1 << 16;
    for (;;) {
        const double t0 = ilm_now();
        set->int8_dot_loop(iters);
        const double dt = ilm_now() - t0;
        if (dt > 0.01 || iters > (1L << 30)) {
            iters = (long)(iters * (0.05 / (dt > 1e-6 ? dt : 1e-6)));
            break;
        }
        iters *= 4;
    }
    if (iters < 1) iters = 1;
    double best = 0;
    for (int pass = 0; pass < 3; pass++) {
        dot_slice sl[256];
        pthread_t th[256];
        int started[256];
        for (int t = 0; t < n_threads; t++) {
            sl[t] = (dot_slice){set, iters, ncpu > 1 ? (int)(t % ncpu) : -1, 0, 0};
            started[t] = pthread_create(&th[t], NULL, dot_slice_run, &sl[t]) == 0;
            if (!started[t]) dot_slice_run(&sl[t]);
        }
        double gops = 0;
        for (int t = 0; t < n_threads; t++) {
            if (started[t]) pthread_join(th[t], NULL);
            if (sl[t].secs > 0) gops += 2 * sl[t].macs / sl[t].secs / 1e9;  // each thread at its own pace
        }
        if (gops > best) best = gops;
    }
    return best;
}

// ---- one kernel measurement -----------------------------------------------------------------

typedef struct {
    const ilm_kernels *set;
    const ilm_matrix *mats;
    int n_mats, use_q8, n;
    const float *x;
    const ilm_q8a *xq;
    const void *xa;        // mm_fa: x or its bf16 rows
    float *y;              // per thread: rows x n each, so threads never share a cache line
    size_t y_stride;
} mm_job;

static void mm_job_run(void *ctx, int ith, int nth) {
    const mm_job *j = ctx;
    int r0, r1;
    ilm_split_rows(j->mats[0].rows, j->set->interleave, ith, nth, &r0, &r1);
    if (r0 >= r1) return;
    float *y = j->y + (size_t)ith * j->y_stride;
    const int ldy = j->mats[0].rows;
    for (int m = 0; m < j->n_mats; m++) {
        if (j->use_q8 == 1) j->set->mm_q8(&j->mats[m], r0, r1, j->xq, j->n, y, ldy);
        else if (j->use_q8 == 2) j->set->mm_fa(&j->mats[m], r0, r1, j->xa, j->n, y, ldy);
        else j->set->mm_f32(&j->mats[m], r0, r1, j->x, j->n, y, ldy);
    }
}

typedef struct {
    const char *label;
    int type, use_q8;   // 1: mm_q8, 2: mm_fa (--act bf16), 0: mm_f32
} kernel_kind;

static const kernel_kind kinds[] = {
    {"q4_0 x q8", ILM_TYPE_Q4_0, 1},   {"q8_0 x q8", ILM_TYPE_Q8_0, 1},
    {"q4_0 x f32", ILM_TYPE_Q4_0, 0},  {"q8_0 x f32", ILM_TYPE_Q8_0, 0},
    {"f16 x f32", ILM_TYPE_F16, 0},    {"bf16 x f32", ILM_TYPE_BF16, 0},
    {"f32 x f32", ILM_TYPE_F32, 0},    {"q4_0 x fa", ILM_TYPE_Q4_0, 2},
    {"q8_0 x fa", ILM_TYPE_Q8_0, 2},
};
static const char *const kind_names[] = {"q4_0", "q8_0", "q4_0f", "q8_0f", "f16", "bf16", "f32", "q4_0a", "q8_0a"};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

static void *random_gguf(int type, int rows, int K) {
    const size_t rb = ilm_row_bytes(type, K);
    size_t total;
    if (!ilm_mul_ok(rb, (size_t)rows, &total)) return NULL;
    unsigned char *m = malloc(total);
    if (!m) return NULL;
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < rb * rows; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        m[i] = (unsigned char)(s >> 56);
    }
    // sane scales / floats: overwrite with finite values where the type has them
    for (int r = 0; r < rows; r++) {
        unsigned char *row = m + rb * r;
        if (type == ILM_TYPE_Q4_0 || type == ILM_TYPE_Q8_0) {
            const size_t bs = type == ILM_TYPE_Q4_0 ? sizeof(ilm_block_q4_0) : sizeof(ilm_block_q8_0);
            for (int b = 0; b < K / ILM_QK; b++) {
                const uint16_t d = ilm_f32_to_f16(0.01f);
                memcpy(row + b * bs, &d, 2);
            }
        } else if (type == ILM_TYPE_F16 || type == ILM_TYPE_BF16) {
            // normal values in [-1, 1): random bits would include subnormals (slow fma assists)
            for (int k = 0; k < K; k++) {
                const float v = (float)((int)(((uint16_t *)row)[k] % 2000) - 1000) * 1e-3f + 1e-4f;
                ((uint16_t *)row)[k] = type == ILM_TYPE_F16 ? ilm_f32_to_f16(v) : ilm_f32_to_bf16(v);
            }
        } else {
            for (int k = 0; k < K; k++) ((float *)row)[k] = (float)(k % 7) * 0.1f;
        }
    }
    return m;
}

static int list_has(const char *list, const char *name) {
    size_t len = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == len && strncmp(p, name, len) == 0) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}


// ---- the sweep ------------------------------------------------------------------------------

int ilm_kbench_check(const ilm_kbench_opts *o, ilm_err *err) {
    static const char *const known = "scalar,avx2,avx512,avx512vnni,avx512bf16,neon,neondot";  // as simd/dispatch.c
    for (const char *p = o->isa_list; p && *p;) {
        const char *e = strchr(p, ',');
        const int l = e ? (int)(e - p) : (int)strlen(p);
        char name[32];
        snprintf(name, sizeof name, "%.*s", l < 31 ? l : 31, p);
        bool compiled = false;
        for (const char *const *n = ilm_kernels_all(); *n; n++) compiled |= !strcmp(*n, name);
        if (!list_has(known, name) || l > 31)
            return ilm_fail(err, "--isa: unknown kernel set '%.*s' (expected %s)", l, p, known);
        if (!compiled) return ilm_fail(err, "--isa: kernel set '%s' is not compiled into this binary", name);
        if (!ilm_kernels_get(name)) return ilm_fail(err, "--isa: this CPU does not support the '%s' kernel set", name);
        p = e ? e + 1 : NULL;
    }
    if (o->isa_list && !*o->isa_list) return ilm_fail(err, "--isa: empty list");
    for (const char *p = o->type_list; p && *p;) {
        const char *e = strchr(p, ',');
        const int l = e ? (int)(e - p) : (int)strlen(p);
        bool ok = false;
        for (int k = 0; k < N_KINDS; k++) ok |= (int)strlen(kind_names[k]) == l && !strncmp(kind_names[k], p, (size_t)l);
        if (!ok) return ilm_fail(err, "--types: unknown or unsupported type '%.*s' (expected q4_0, q8_0, q4_0f, q8_0f, q4_0a, q8_0a, f16, bf16 or f32)", l, p);
        p = e ? e + 1 : NULL;
    }
    if (o->type_list && !*o->type_list) return ilm_fail(err, "--types: empty list");
    if (o->n_threads < 1 || o->rows < 1 || o->cols < 32 || o->cols % 32 || o->n_ns < 1)
        return ilm_fail(err, "bench --kernels: need -t >= 1, --rows >= 1 and --cols a multiple of 32");
    for (int k = 0; k < o->n_ns; k++)
        if (o->ns[k] < 1 || o->ns[k] > ILM_KBENCH_N_MAX) return ilm_fail(err, "-n: batch width %d out of 1..%d", o->ns[k], ILM_KBENCH_N_MAX);
    return 0;
}

int ilm_kbench_run(const ilm_kbench_opts *o, const ilm_kbench_report *out, ilm_err *err) {
    if (ilm_kbench_check(o, err)) return -1;
    char errbuf[256];
    if (ilm_kernels_init(errbuf, sizeof errbuf) != 0) return ilm_fail(err, "%s", errbuf);
    ilm_pool *pool = NULL;
    ilm_pool_opts popts = {.n_threads = o->n_threads, .numa = ILM_NUMA_OFF, .pin = 1};
    if (ilm_pool_create(&pool, &popts, err) != 0) return -1;

    const double bw = ilm_measure_read_bw(o->n_threads);
    out->start(out->ctx, bw, ilm_pool_describe(pool));

    int nmax = 1;
    for (int k = 0; k < o->n_ns; k++) nmax = o->ns[k] > nmax ? o->ns[k] : nmax;
    // Sizes are bounded by ilm_kbench_check (rows, cols <= 2^20, n <= 1024, threads <= 256) but
    // the products can still be beyond memory: every allocation is checked.
    size_t nx = 0, ny = 0;
    if (!ilm_mul_ok((size_t)nmax, (size_t)o->cols, &nx) || !ilm_mul_ok((size_t)o->rows * (size_t)nmax, (size_t)o->n_threads, &ny) ||
        !ilm_mul_ok(ny, sizeof(float), &ny) || !ilm_mul_ok(nx, sizeof(float), &nx)) {
        ilm_pool_destroy(pool);
        return ilm_fail(err, "bench --kernels: %d x %d x %d is too large", o->rows, o->cols, nmax);
    }
    float *x = ilm_malloc(nx, err);
    ilm_q8a *xq = x ? ilm_malloc((size_t)nmax * (o->cols / 32) * sizeof(ilm_q8a), err) : NULL;
    ilm_bf16a *xb = xq ? ilm_malloc((size_t)nmax * (o->cols / 32) * sizeof(ilm_bf16a), err) : NULL;
    float *y = xb ? ilm_malloc(ny, err) : NULL;  // a slice per thread
    if (!x || !xq || !xb || !y) {
        free(x), free(xq), free(xb), free(y);
        ilm_pool_destroy(pool);
        return -1;
    }
    uint64_t s = 7;
    for (size_t i = 0; i < (size_t)nmax * o->cols; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((int)(s >> 40) % 2000 - 1000) * 1e-3f;
    }
    int rc = 0;

    for (int ki = 0; ki < N_KINDS && !rc; ki++) {
        if (o->type_list && !list_has(o->type_list, kind_names[ki])) continue;
        const kernel_kind *kk = &kinds[ki];
        void *src = random_gguf(kk->type, o->rows, o->cols);
        if (!src) {
            rc = ilm_fail(err, "out of memory for a %d x %d %s matrix", o->rows, o->cols, kind_names[ki]);
            break;
        }
        for (const char *const *name = ilm_kernels_all(); *name && !rc; name++) {
            const ilm_kernels *set = ilm_kernels_get(*name);
            if (!set || (kk->use_q8 == 2 && !set->mm_fa)) continue;
            if (o->isa_list ? !list_has(o->isa_list, *name) : !strcmp(*name, "scalar")) continue;
            // one packed matrix, copied until the copies outgrow the caches
            size_t psize = set->packed_size(kk->type, o->rows, o->cols);
            const int packed = psize != 0;
            if (!packed) psize = ilm_row_bytes(kk->type, o->cols) * o->rows;
            const size_t want = (o->mem + psize - 1) / psize;
            if (want > (1u << 20)) {
                rc = ilm_fail(err, "--mem: %zu MiB is %zu copies of the matrix (at most %u)", o->mem >> 20, want, 1u << 20);
                break;
            }
            int n_mats = want < 1 ? 1 : (int)want;
            ilm_matrix *mats = ilm_calloc((size_t)n_mats, sizeof *mats, err);
            void **bufs = mats ? ilm_calloc((size_t)n_mats, sizeof *bufs, err) : NULL;
            if (!mats || !bufs) {
                free(mats);
                rc = -1;
                break;
            }
            for (int m = 0; m < n_mats && !rc; m++) {
                bufs[m] = ilm_aligned_alloc(psize, err);
                if (!bufs[m]) { rc = -1; break; }
                if (m == 0) {
                    if (packed) set->pack(kk->type, src, o->rows, o->cols, bufs[0], 0, o->rows);
                    else memcpy(bufs[0], src, psize);
                } else {
                    memcpy(bufs[m], bufs[0], psize);
                }
                mats[m] = (ilm_matrix){kk->type, o->rows, o->cols, bufs[m]};
            }
            double t_n1 = 0;
            for (int ni = 0; ni < o->n_ns && !rc; ni++) {
                const int n = o->ns[ni];
                if (kk->use_q8 == 1)
                    for (int c = 0; c < n; c++) set->quantize_q8a(x + (size_t)c * o->cols, o->cols, xq + (size_t)c * (o->cols / 32));
                if (kk->use_q8 == 2 && set->round_bf16a)
                    for (int c = 0; c < n; c++) set->round_bf16a(x + (size_t)c * o->cols, o->cols, xb + (size_t)c * (o->cols / 32));
                mm_job job = {set, mats, n_mats, kk->use_q8, n, x, xq, set->round_bf16a ? (const void *)xb : (const void *)x,
                              y, (size_t)o->rows * n};
                ilm_pool_run(pool, mm_job_run, &job);  // warm-up (and page faults)
                double best = 1e30, spent = 0;
                for (int pass = 0; pass < 100 && (pass < 2 || spent < o->min_time); pass++) {
                    const double t0 = ilm_now();
                    ilm_pool_run(pool, mm_job_run, &job);
                    const double dt = ilm_now() - t0;
                    spent += dt;
                    if (dt < best) best = dt;
                }
                if (n == 1) t_n1 = best;
                const double bytes = (double)psize * n_mats;
                const double flops = 2.0 * o->rows * o->cols * (double)n * n_mats;
                const ilm_kbench_row r = {set->name, kk->label, n, best, bytes / best / 1e9,
                                          100.0 * bytes / best / 1e9 / bw, flops / best / 1e9, t_n1};
                out->row(out->ctx, &r);
            }
            for (int m = 0; m < n_mats; m++) free(bufs[m]);
            free(bufs), free(mats);
        }
        free(src);
    }
    free(x), free(xq), free(xb), free(y);
    ilm_pool_destroy(pool);
    return rc;
}
