// test_threadpool.c — the pool (src/runtime/threadpool.c): dispatch, barrier, wake-ups, row split,
// determinism across thread counts, idle CPU use. Each test stays well under 2-3 s (the
// machines running them are small and shared), also under TSan.
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "simd/kernels.h"
#include "runtime/placement.h"
#include "runtime/threadpool.h"

static ilm_pool *make_pool(int n_threads, int numa) {
    ilm_pool_opts o = {.n_threads = n_threads, .numa = numa, .pin = 1};
    ilm_pool *pool = NULL;
    ilm_err err = {{0}};
    if (ilm_pool_create(&pool, &o, &err) != 0) t_fail(__FILE__, __LINE__, "pool: %s", err.msg);
    return pool;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

// ---- row split ------------------------------------------------------------------------------

TEST(pool_split_rows_covers_aligned_slices) {
    int sizes[] = {0, 1, 3, 31, 32, 33, 100, 257, 4096, 262144};
    int aligns[] = {1, 4, 8, 16, 64};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (size_t ai = 0; ai < sizeof aligns / sizeof *aligns; ai++)
            for (int nth = 1; nth <= 9; nth++) {
                int rows = sizes[si], align = aligns[ai], next = 0;
                for (int ith = 0; ith < nth; ith++) {
                    int r0, r1, r0b, r1b;
                    ilm_split_rows(rows, align, ith, nth, &r0, &r1);
                    ilm_split_rows(rows, align, ith, nth, &r0b, &r1b);
                    CHECK(r0 == r0b && r1 == r1b);   // deterministic
                    CHECK_EQ(r0, next);               // contiguous, in thread order
                    CHECK(r1 >= r0);
                    if (r1 > r0) {
                        CHECK_EQ(r0 % align, 0);
                        CHECK(r1 % align == 0 || r1 == rows);
                    }
                    next = r1;
                }
                CHECK_EQ(next, rows);                 // the last slice takes the remainder
            }
    int r0, r1;
    ilm_split_rows(8, 4, 2, 4, &r0, &r1);   // 2 units over 4 threads: some get nothing
    CHECK_EQ(r1 - r0, 0);
    ilm_split_rows(10, 4, 1, 2, &r0, &r1);  // units 4,4,2 -> thread 1 gets [4,10)
    CHECK(r0 == 4 && r1 == 10);
}

// ---- dispatch -------------------------------------------------------------------------------

typedef struct {
    int nth_seen[16];
    int calls[16];
} who_ran;

static void record_thread(void *ctx, int ith, int nth) {
    who_ran *w = ctx;
    w->calls[ith]++;
    w->nth_seen[ith] = nth;
}

TEST(pool_runs_every_thread_once) {
    for (int n = 1; n <= 8; n++) {
        ilm_pool *pool = make_pool(n, ILM_NUMA_OFF);
        if (!pool) return;
        CHECK_EQ(ilm_pool_size(pool), n);
        for (int rep = 0; rep < 3; rep++) {
            who_ran w = {{0}, {0}};
            ilm_pool_run(pool, record_thread, &w);
            for (int i = 0; i < n; i++) CHECK(w.calls[i] == 1 && w.nth_seen[i] == n);
            for (int i = n; i < 16; i++) CHECK_EQ(w.calls[i], 0);
        }
        ilm_pool_destroy(pool);
    }
}

TEST(pool_default_is_physical_cores) {
    ilm_pool *pool = make_pool(0, ILM_NUMA_OFF);
    if (!pool) return;
    CHECK_EQ(ilm_pool_size(pool), ilm_pool_topology(pool)->n_cores);
    CHECK(ilm_pool_size(pool) >= 1);
    CHECK(strstr(ilm_pool_describe(pool), "numa off") != NULL);
    ilm_pool_destroy(pool);
}

typedef struct {
    _Alignas(64) long count[16][8];   // one cache line per thread
} counters;

static void count_call(void *ctx, int ith, int nth) {
    (void)nth;
    ((counters *)ctx)->count[ith][0]++;
}

static void many_tiny_jobs(int n_threads, int jobs) {
    ilm_pool *pool = make_pool(n_threads, ILM_NUMA_OFF);
    if (!pool) return;
    counters *c = calloc(1, sizeof *c);
    // Bounded in time too (sanitizers, busy machines); the count check is what matters.
    double t0 = ilm_now(), dt = 0;
    int done = 0;
    while (done < jobs && (done % 1024 || (dt = ilm_now() - t0) < 1.0)) {
        ilm_pool_run(pool, count_call, c);
        done++;
    }
    dt = ilm_now() - t0;
    for (int i = 0; i < n_threads; i++) CHECK_EQ(c->count[i][0], done);
    printf("  %d dispatches on %d threads: %.2f us each\n", done, n_threads, 1e6 * dt / done);
    free(c);
    ilm_pool_destroy(pool);
}

TEST(pool_many_tiny_jobs) {
    // 100k dispatches when every thread has a CPU; oversubscribed pools sleep on the futex
    // at every dispatch, so fewer of those.
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    many_tiny_jobs(2, cpus >= 2 ? 100000 : 5000);
    many_tiny_jobs(4, cpus >= 4 ? 100000 : 3000);
}

typedef struct {
    const float *x;
    size_t n;
    double partial[16];
} huge_sum;

static void sum_slice(void *ctx, int ith, int nth) {
    huge_sum *h = ctx;
    int r0, r1;   // rows of 1024 elements
    ilm_split_rows((int)(h->n / 1024), 1, ith, nth, &r0, &r1);
    double s = 0;
    for (size_t i = (size_t)r0 * 1024; i < (size_t)r1 * 1024; i++) s += h->x[i];
    h->partial[ith] = s;
}

TEST(pool_few_huge_jobs) {
    size_t n = (size_t)2 << 20;   // 8 MiB of floats, bigger than most L2s
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 1000);
    double expect = 0;
    for (size_t i = 0; i < n; i++) expect += x[i];
    for (int nth = 1; nth <= 4; nth *= 2) {
        ilm_pool *pool = make_pool(nth, ILM_NUMA_OFF);
        if (!pool) break;
        for (int rep = 0; rep < 3; rep++) {
            huge_sum h = {x, n, {0}};
            ilm_pool_run(pool, sum_slice, &h);
            double s = 0;
            for (int i = 0; i < nth; i++) s += h.partial[i];
            CHECK(s == expect);   // integers below 2^53: exact in any order
        }
        ilm_pool_destroy(pool);
    }
    free(x);
}

// ---- wake-ups -------------------------------------------------------------------------------

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int finished;
    double limit_s;
    const char *what;
} watchdog;

// Fails the whole run (instead of hanging it) when the test body does not finish in time.
static void *watchdog_main(void *arg) {
    watchdog *w = arg;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)w->limit_s;
    pthread_mutex_lock(&w->lock);
    while (!w->finished)
        if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) != 0 && !w->finished) {
            printf("  FAIL %s: watchdog: no progress after %.0f s (lost wake-up?)\n", w->what,
                   w->limit_s);
            fflush(stdout);
            _exit(1);
        }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void watchdog_start(watchdog *w, pthread_t *t, double limit_s, const char *what) {
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->finished = 0, w->limit_s = limit_s, w->what = what;
    pthread_create(t, NULL, watchdog_main, w);
}

static void watchdog_stop(watchdog *w, pthread_t t) {
    pthread_mutex_lock(&w->lock);
    w->finished = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(t, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}

typedef struct {
    _Alignas(64) long count[16][8];
    int delay_us[16];   // per-thread work before finishing, to vary who arrives last
} stress_ctx;

static void stress_task(void *ctx, int ith, int nth) {
    (void)nth;
    stress_ctx *s = ctx;
    s->count[ith][0]++;
    if (s->delay_us[ith]) sleep_us(s->delay_us[ith]);
}

TEST(pool_no_lost_wakeups) {
    watchdog w;
    pthread_t wt;
    watchdog_start(&w, &wt, 20, "pool_no_lost_wakeups");
    uint64_t rng = 42;
    int spins[] = {0, 3, 20, 100};   // futex only, and polling windows around the gaps below
    for (int n = 2; n <= 4; n++)
        for (size_t si = 0; si < sizeof spins / sizeof *spins; si++) {
            ilm_pool *pool = make_pool(n, ILM_NUMA_OFF);
            if (!pool) break;
            ilm_pool_set_spin_us(pool, spins[si]);
            stress_ctx *s = calloc(1, sizeof *s);
            long runs = 0;
            double end = ilm_now() + 0.08;
            while (ilm_now() < end || runs < 200) {
                // Gaps and delays straddle the polling window, so workers are caught both
                // polling and falling asleep just as the next dispatch arrives.
                for (int i = 0; i < n; i++)
                    s->delay_us[i] = (t_rand_u64(&rng) % 8 == 0) ? (int)(t_rand_u64(&rng) % 40) : 0;
                ilm_pool_run(pool, stress_task, s);
                runs++;
                uint64_t gap = t_rand_u64(&rng) % 4;
                if (gap == 1) sleep_us((long)(t_rand_u64(&rng) % 150));
                else if (gap == 2) sched_yield();
            }
            for (int i = 0; i < n; i++) CHECK_EQ(s->count[i][0], runs);
            free(s);
            ilm_pool_destroy(pool);
        }
    watchdog_stop(&w, wt);
}

// ---- barrier --------------------------------------------------------------------------------

typedef struct {
    ilm_pool *pool;
    int phases;
    _Atomic int slot[16];
    _Atomic int errors;
} barrier_ctx;

static void barrier_task(void *ctx, int ith, int nth) {
    barrier_ctx *b = ctx;
    for (int p = 1; p <= b->phases; p++) {
        atomic_store_explicit(&b->slot[ith], p, memory_order_relaxed);
        ilm_pool_barrier(b->pool, ith);
        // everyone has written phase p, nobody has written p+1 yet
        for (int j = 0; j < nth; j++)
            if (atomic_load_explicit(&b->slot[j], memory_order_relaxed) != p)
                atomic_fetch_add(&b->errors, 1);
        ilm_pool_barrier(b->pool, ith);
    }
}

TEST(pool_barrier_separates_phases) {
    for (int n = 1; n <= 8; n++) {
        ilm_pool *pool = make_pool(n, ILM_NUMA_OFF);
        if (!pool) return;
        barrier_ctx *b = calloc(1, sizeof *b);
        b->pool = pool;
        b->phases = n <= 2 ? 2000 : 300;
        for (int rep = 0; rep < 2; rep++) ilm_pool_run(pool, barrier_task, b);
        CHECK_EQ(atomic_load(&b->errors), 0);
        free(b);
        ilm_pool_destroy(pool);
    }
}

// ---- determinism ----------------------------------------------------------------------------

typedef struct {
    const float *w, *x;
    float *y;
    int rows, cols;
} matvec;

static void matvec_rows(void *ctx, int ith, int nth) {
    matvec *m = ctx;
    int r0, r1;
    ilm_split_rows(m->rows, 4, ith, nth, &r0, &r1);
    for (int r = r0; r < r1; r++) {
        float acc = 0;
        for (int k = 0; k < m->cols; k++) acc += m->w[(size_t)r * m->cols + k] * m->x[k];
        m->y[r] = acc;
    }
}

TEST(pool_reduction_by_rows_is_bit_identical) {
    int rows = 1027, cols = 333;
    float *w = malloc((size_t)rows * cols * sizeof *w), *x = malloc(cols * sizeof *x);
    float *ref = malloc(rows * sizeof *ref), *y = malloc(rows * sizeof *y);
    uint64_t rng = 7;
    for (size_t i = 0; i < (size_t)rows * cols; i++) w[i] = t_rand_f32(&rng);
    for (int i = 0; i < cols; i++) x[i] = t_rand_f32(&rng);
    float ref_total = 0;
    for (int n = 1; n <= 8; n++) {
        ilm_pool *pool = make_pool(n, ILM_NUMA_OFF);
        if (!pool) break;
        memset(y, 0xff, rows * sizeof *y);
        matvec m = {w, x, n == 1 ? ref : y, rows, cols};
        ilm_pool_run(pool, matvec_rows, &m);
        float total = 0;   // the reduction over rows runs in row order, whatever the split
        for (int r = 0; r < rows; r++) total += m.y[r];
        if (n == 1) ref_total = total;
        else {
            CHECK_MSG(memcmp(y, ref, rows * sizeof *y) == 0, "rows differ with %d threads", n);
            CHECK_MSG(memcmp(&total, &ref_total, sizeof total) == 0, "sum differs with %d threads", n);
        }
        ilm_pool_destroy(pool);
    }
    free(w), free(x), free(ref), free(y);
}

// ---- pinning and placement of threads --------------------------------------------------------

typedef struct {
    const ilm_pool *pool;
    int cpu_seen[16];
} where_ctx;

static void where_task(void *ctx, int ith, int nth) {
    (void)nth;
    where_ctx *c = ctx;
    c->cpu_seen[ith] = sched_getcpu();
}

TEST(pool_threads_run_on_their_cpus) {
    cpu_set_t mask;
    sched_getaffinity(0, sizeof mask, &mask);
    int n = CPU_COUNT(&mask) < 4 ? CPU_COUNT(&mask) : 4;
    ilm_pool *pool = make_pool(n, ILM_NUMA_OFF);
    if (!pool) return;
    where_ctx c = {pool, {0}};
    ilm_pool_run(pool, where_task, &c);
    for (int i = 0; i < n; i++) CHECK_EQ(c.cpu_seen[i], ilm_pool_cpu_of(pool, i));
    for (int i = 1; i < n; i++) CHECK(ilm_pool_cpu_of(pool, i) != ilm_pool_cpu_of(pool, 0));
    ilm_pool_destroy(pool);
    // the caller gets its affinity back
    cpu_set_t after;
    sched_getaffinity(0, sizeof after, &after);
    CHECK(CPU_EQUAL(&mask, &after));
}

TEST(pool_fake_topology_spreads_threads) {
    setenv("IRONLM_TOPOLOGY", "2x4", 1);
    ilm_pool *dist = make_pool(0, ILM_NUMA_DISTRIBUTE);
    ilm_pool *off3 = make_pool(3, ILM_NUMA_OFF);
    ilm_pool *off6 = make_pool(6, ILM_NUMA_OFF);
    unsetenv("IRONLM_TOPOLOGY");
    if (!dist || !off3 || !off6) goto done;
    CHECK_EQ(ilm_pool_size(dist), 8);   // 2 nodes x 4 physical cores
    CHECK_EQ(ilm_pool_n_nodes(dist), 2);
    for (int i = 0; i < 8; i++) CHECK_EQ(ilm_pool_node_of(dist, i), i % 2);   // round-robin
    CHECK_EQ(ilm_pool_n_nodes(off3), 1);   // off fills node 0 first
    CHECK_EQ(ilm_pool_n_nodes(off6), 2);
    for (int i = 0; i < 6; i++) CHECK_EQ(ilm_pool_node_of(off6, i), i / 4);
    // fake CPU numbers need not exist here: the pool still runs everything
    who_ran w = {{0}, {0}};
    ilm_pool_run(dist, record_thread, &w);
    for (int i = 0; i < 8; i++) CHECK_EQ(w.calls[i], 1);
    CHECK(strstr(ilm_pool_describe(dist), "2 nodes") != NULL);
done:   // last created, first destroyed: each restores the caller's affinity it found
    ilm_pool_destroy(off6), ilm_pool_destroy(off3), ilm_pool_destroy(dist);
}

TEST(pool_smt_siblings_come_last) {
    setenv("IRONLM_TOPOLOGY", "1x2x2", 1);
    ilm_pool *dflt = make_pool(0, ILM_NUMA_OFF);
    ilm_pool *all = make_pool(4, ILM_NUMA_OFF);
    unsetenv("IRONLM_TOPOLOGY");
    if (dflt && all) {
        CHECK_EQ(ilm_pool_size(dflt), 2);   // physical cores, not hardware threads
        const ilm_topology *t = ilm_pool_topology(all);
        CHECK_EQ(t->cpus[0].smt, 0);
        int cpus[4];
        for (int i = 0; i < 4; i++) cpus[i] = ilm_pool_cpu_of(all, i);
        CHECK(cpus[0] == 0 && cpus[1] == 1 && cpus[2] == 2 && cpus[3] == 3);   // 2,3 = siblings
    }
    ilm_pool_destroy(all), ilm_pool_destroy(dflt);
}

// ---- idle cost ------------------------------------------------------------------------------

// utime + stime of the whole process, from /proc/self/stat (fields 14 and 15).
static double process_cpu_seconds(void) {
    char *stat = t_read("/proc/self/stat", NULL);
    double s = 0;
    const char *p = stat ? strrchr(stat, ')') : NULL;   // the command name may hold spaces
    unsigned long long utime = 0, stime = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                    &stime) == 2)
        s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    free(stat);
    return s;
}

// Resource check, not a speed test: an idle pool must sleep, not poll.
TEST(pool_idle_uses_no_cpu) {
    ilm_pool *pool = make_pool(0, ILM_NUMA_OFF);
    if (!pool) return;
    who_ran w = {{0}, {0}};
    ilm_pool_run(pool, record_thread, &w);
    sleep_us(50000);   // past the polling window
    double before = ilm_pool_worker_cpu_seconds(pool), proc_before = process_cpu_seconds();
    double t0 = ilm_now();
    sleep_us(1200000);
    double used = ilm_pool_worker_cpu_seconds(pool) - before, wall = ilm_now() - t0;
    double proc = process_cpu_seconds() - proc_before;
    printf("  idle %d-thread pool: workers %.3f ms, whole process %.3f ms of CPU in %.2f s\n",
           ilm_pool_size(pool), 1e3 * used, 1e3 * proc, wall);
    CHECK_MSG(used < 0.01 * wall, "idle workers used %.4f s of CPU in %.2f s", used, wall);
    // The whole process (what `top` shows) stays under 1% too. Clock-tick resolution
    // (10 ms) makes this check coarse; the per-thread clocks above are exact.
    CHECK_MSG(proc < 0.01 * wall, "idle process used %.4f s of CPU in %.2f s", proc, wall);
    ilm_pool_destroy(pool);
}

// ---- benchmark: thread scaling of a memory-bound GEMV ---------------------------------------
//
// Opt-in (IRONLM_BENCH=1), see bench/README.md, Threads and NUMA. A Q4_0 matrix much bigger than the
// last-level cache (IRONLM_BENCH_MB, default 256 MiB of weights) times one quantized
// vector with ilm_k->mm_q8, rows split with ilm_split_rows, weights placed and first-touched
// by ilm_placed_alloc. For each thread count (IRONLM_BENCH_THREADS, e.g. "1,2,4,8,16";
// default 1..physical cores) prints weight bandwidth; IRONLM_BENCH_NUMA picks the policy.

typedef struct {
    const ilm_block_q4_0 *src;   // GGUF layout
    int rows, cols;
} pack_job;

static void pack_weights(void *ctx, void *dst, int ith, int nth) {
    pack_job *p = ctx;
    int r0, r1;
    ilm_split_rows(p->rows, ilm_k->interleave, ith, nth, &r0, &r1);
    if (r1 > r0) ilm_k->pack(ILM_TYPE_Q4_0, p->src, p->rows, p->cols, dst, r0, r1);
}

typedef struct {
    ilm_pool *pool;
    ilm_placed w;
    ilm_matrix m;
    const ilm_q8a *x;
    float *y;
} gemv_job;

static void gemv_task(void *ctx, int ith, int nth) {
    gemv_job *g = ctx;
    int r0, r1;
    ilm_split_rows(g->m.rows, ilm_k->interleave, ith, nth, &r0, &r1);
    if (r1 <= r0) return;
    ilm_matrix m = g->m;
    m.data = ilm_placed_for(&g->w, g->pool, ith);
    ilm_k->mm_q8(&m, r0, r1, g->x, 1, g->y, g->m.rows);
}

static void empty_task(void *ctx, int ith, int nth) { (void)ctx, (void)ith, (void)nth; }

static int numa_policy_named(const char *s) {
    const char *names[] = {"off", "distribute", "interleave", "replicate"};
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, names[i]) == 0) return i;
    return ILM_NUMA_OFF;
}

TEST(pool_bench_gemv_scaling) {
    if (!getenv("IRONLM_BENCH")) {
        t_skip("set IRONLM_BENCH=1 to run the thread-scaling benchmark");
        return;
    }
    char kerr[256];
    if (ilm_kernels_init(kerr, sizeof kerr) != 0) {
        t_fail(__FILE__, __LINE__, "kernels: %s", kerr);
        return;
    }
    const char *mb_s = getenv("IRONLM_BENCH_MB");
    double mb = mb_s ? atof(mb_s) : 256;
    int cols = 4096;
    int rows = (int)(mb * 1048576 / ((double)cols / ILM_QK * sizeof(ilm_block_q4_0)));
    rows -= rows % 64;
    size_t src_bytes = (size_t)rows * (cols / ILM_QK) * sizeof(ilm_block_q4_0);
    size_t packed = ilm_k->packed_size(ILM_TYPE_Q4_0, rows, cols);
    ilm_block_q4_0 *src = malloc(src_bytes);
    float *xf = malloc(cols * sizeof *xf), *y = malloc(rows * sizeof *y), *ref = malloc(rows * sizeof *ref);
    ilm_q8a *xq = malloc((cols / ILM_QK) * sizeof *xq);
    uint64_t rng = 1;
    for (size_t b = 0; b < src_bytes / sizeof *src; b++) {
        src[b].d = 0x2000 + (uint16_t)(t_rand_u64(&rng) & 0x3ff);   // ~0.008..0.016: no denormals
        for (int j = 0; j < 16; j++) src[b].qs[j] = (uint8_t)t_rand_u64(&rng);
    }
    for (int k = 0; k < cols; k++) xf[k] = t_rand_f32(&rng);
    ilm_k->quantize_q8a(xf, cols, xq);

    int counts[64], n_counts = 0;
    const char *list = getenv("IRONLM_BENCH_THREADS");
    int policy = numa_policy_named(getenv("IRONLM_BENCH_NUMA"));
    if (list) {
        int32_t *v;
        int n;
        ilm_err err;
        if (ilm_parse_int_list(list, &v, &n, &err) == 0) {
            for (int i = 0; i < n && n_counts < 64; i++) counts[n_counts++] = v[i];
            free(v);
        }
    } else {
        ilm_pool *probe = make_pool(0, policy);
        int cores = probe ? ilm_pool_size(probe) : 1;
        ilm_pool_destroy(probe);
        for (int n = 1; n <= cores && n_counts < 64; n++) counts[n_counts++] = n;
    }
    printf("  Q4_0 GEMV %d x %d (%.0f MiB packed), kernels %s\n", rows, cols,
           (double)packed / 1048576, ilm_k->name);
    double gbs[64] = {0}, dispatch_us[64] = {0}, best = 0;
    for (int i = 0; i < n_counts; i++) {
        ilm_pool *pool = make_pool(counts[i], policy);
        if (!pool) break;
        if (i == 0) printf("  pool: %s\n", ilm_pool_describe(pool));
        gemv_job g = {.pool = pool, .m = {ILM_TYPE_Q4_0, rows, cols, NULL}, .x = xq, .y = y};
        pack_job pj = {src, rows, cols};
        ilm_err err = {{0}};
        if (ilm_placed_alloc(pool, &g.w, packed, pack_weights, &pj, &err) != 0) {
            t_fail(__FILE__, __LINE__, "%s", err.msg);
            ilm_pool_destroy(pool);
            break;
        }
        for (int warm = 0; warm < 2; warm++) ilm_pool_run(pool, gemv_task, &g);
        // best of several rounds of >= 0.25 s: the machine may be shared
        double best_dt = 1e30;
        int rounds = getenv("IRONLM_BENCH_ROUNDS") ? atoi(getenv("IRONLM_BENCH_ROUNDS")) : 3;
        for (int round = 0; round < rounds; round++) {
            int reps = 0;
            double t0 = ilm_now(), dt;
            do {
                ilm_pool_run(pool, gemv_task, &g);
                reps++;
            } while ((dt = ilm_now() - t0) < 0.25);
            if (dt / reps < best_dt) best_dt = dt / reps;
        }
        gbs[i] = (double)packed / best_dt / 1e9;
        // pool overhead: an empty dispatch (the forward pass makes ~100-300 per token)
        int n_empty = 0;
        double t0 = ilm_now();
        do {
            ilm_pool_run(pool, empty_task, NULL);
        } while (++n_empty < 20000 && ilm_now() - t0 < 0.2);
        dispatch_us[i] = 1e6 * (ilm_now() - t0) / n_empty;
        if (gbs[i] > best) best = gbs[i];
        if (i == 0) memcpy(ref, y, rows * sizeof *y);
        else CHECK_MSG(memcmp(ref, y, rows * sizeof *y) == 0, "GEMV differs with %d threads", counts[i]);
        ilm_placed_free(&g.w);
        ilm_pool_destroy(pool);
    }
    printf("  | threads | GB/s | speed-up | %% of best | empty dispatch |\n"
           "  |---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n_counts && gbs[i] > 0; i++)
        printf("  | %d | %.1f | %.2fx | %.0f%% | %.2f us |\n", counts[i], gbs[i], gbs[i] / gbs[0],
               100 * gbs[i] / best, dispatch_us[i]);
    free(src), free(xf), free(y), free(ref), free(xq);
}
