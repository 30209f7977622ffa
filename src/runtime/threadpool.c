// threadpool.c — the persistent pool of pinned worker threads (threadpool.h).
//
// Dispatch is lock-free: the caller stores (fn, ctx), bumps the `start` generation and
// runs its own share as thread 0; each worker runs its share and decrements `pending`; the
// last one bumps `done`. Every wait polls a word for a bounded time with a pause
// instruction, then sleeps on a futex on that word, so an idle pool costs no CPU. Threads
// are placed on the CPUs/nodes of a topology (topology.c); the per-thread and per-node
// answers (node of a thread, rank in its node, nodes spanned) are computed here at creation.
//
// One thread (the one that created the pool) calls ilm_pool_run, never from inside a task.
// That thread is pinned as thread 0 and gets its affinity back in ilm_pool_destroy, so
// pools that live at the same time are destroyed in the reverse order of their creation.
#include "runtime/threadpool.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// ---- waiting: poll, then futex ------------------------------------------------------------

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// A 32-bit word threads wait on for a change, and how many of them sleep on it (so the
// waker makes the futex syscall only when someone actually sleeps).
typedef struct {
    _Alignas(64) atomic_uint word;
    atomic_int sleepers;
} wait_word;

_Static_assert(sizeof(atomic_uint) == sizeof(unsigned), "futex needs a plain 32-bit word");

// Returns the value of w->word once it differs from `seen`.
static unsigned wait_change(wait_word *w, unsigned seen, int64_t spin_ns) {
    unsigned v = atomic_load_explicit(&w->word, memory_order_acquire);
    if (v != seen) return v;
    if (spin_ns > 0) {
        int64_t deadline = now_ns() + spin_ns;
        for (unsigned i = 1;; i++) {
            cpu_relax();
            v = atomic_load_explicit(&w->word, memory_order_acquire);
            if (v != seen) return v;
            if ((i & 63) == 0 && now_ns() >= deadline) break;
        }
    }
    for (;;) {
        // Sequentially consistent increment-then-load pairs with publish()'s store-then-load:
        // either we see the new word, or the publisher sees us sleeping and wakes us.
        atomic_fetch_add(&w->sleepers, 1);
        v = atomic_load(&w->word);
        if (v == seen)
            syscall(SYS_futex, (unsigned *)&w->word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
        atomic_fetch_sub(&w->sleepers, 1);
        v = atomic_load_explicit(&w->word, memory_order_acquire);
        if (v != seen) return v;
    }
}

static void publish(wait_word *w, unsigned v) {
    atomic_store(&w->word, v);
    if (atomic_load(&w->sleepers) > 0)
        syscall(SYS_futex, (unsigned *)&w->word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

// ---- the pool -------------------------------------------------------------------------------

typedef struct {
    ilm_pool *pool;
    int ith;
    pthread_t thread;
    int started;
} worker;

struct ilm_pool {
    // hot dispatch state, each word on its own cache line
    wait_word start;          // generation of the current run
    wait_word done;           // generation of the last finished run
    wait_word barrier_phase;
    _Alignas(64) atomic_int pending;   // workers still running the current task
    atomic_int barrier_count;
    _Alignas(64) atomic_int spin_us;
    atomic_int stop;
    atomic_int pin_failures;
    ilm_task_fn task_fn;      // written before `start` is published, read after
    void *task_ctx;
    unsigned generation;      // caller-side copy of start.word

    int n_threads, policy, pin;
    worker *workers;          // [n_threads]; workers[0] is the caller
    int *thread_cpu;          // topology cpu index of each thread
    int *pin_cpu;             // OS CPU each thread pins to (-1: not pinned)
    int *thread_node;         // pool node of each thread
    int *rank_in_node;
    int n_nodes;
    int node_topo[ILM_MAX_NODES];   // pool node -> topology node
    int node_threads[ILM_MAX_NODES];
    ilm_topology topo;
    cpu_set_t caller_mask;    // the caller's affinity before create, restored by destroy
    int caller_pinned;
    ilm_placement_stats placement;
    char desc[256];
};

const char *ilm_numa_policy_name(int p) {
    switch (p) {
    case ILM_NUMA_OFF: return "off";
    case ILM_NUMA_DISTRIBUTE: return "distribute";
    case ILM_NUMA_INTERLEAVE: return "interleave";
    case ILM_NUMA_REPLICATE: return "replicate";
    }
    return "?";
}

static int pin_self(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -1;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    ilm_pool *pool = w->pool;
    int ith = w->ith, nth = pool->n_threads;
    if (pool->pin_cpu[ith] >= 0 && pin_self(pool->pin_cpu[ith]) != 0)
        atomic_fetch_add(&pool->pin_failures, 1);
    unsigned seen = 0;
    for (;;) {
        int64_t spin = (int64_t)atomic_load_explicit(&pool->spin_us, memory_order_relaxed) * 1000;
        seen = wait_change(&pool->start, seen, spin);
        if (atomic_load_explicit(&pool->stop, memory_order_acquire)) break;
        pool->task_fn(pool->task_ctx, ith, nth);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1)
            publish(&pool->done, seen);
    }
    return NULL;
}

void ilm_pool_run(ilm_pool *pool, ilm_task_fn fn, void *ctx) {
    int nth = pool->n_threads;
    if (nth == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->task_fn = fn;
    pool->task_ctx = ctx;
    atomic_store_explicit(&pool->pending, nth - 1, memory_order_relaxed);
    unsigned gen = ++pool->generation;
    publish(&pool->start, gen);
    fn(ctx, 0, nth);
    int64_t spin = (int64_t)atomic_load_explicit(&pool->spin_us, memory_order_relaxed) * 1000;
    while (wait_change(&pool->done, gen - 1, spin) != gen) {
    }
}

// Sense-reversing barrier: the phase word flips when the last thread arrives.
void ilm_pool_barrier(ilm_pool *pool, int ith) {
    (void)ith;
    int nth = pool->n_threads;
    if (nth == 1) return;
    unsigned phase = atomic_load_explicit(&pool->barrier_phase.word, memory_order_acquire);
    if (atomic_fetch_add_explicit(&pool->barrier_count, 1, memory_order_acq_rel) == nth - 1) {
        atomic_store_explicit(&pool->barrier_count, 0, memory_order_relaxed);
        publish(&pool->barrier_phase, phase + 1);
    } else {
        int64_t spin = (int64_t)atomic_load_explicit(&pool->spin_us, memory_order_relaxed) * 1000;
        wait_change(&pool->barrier_phase, phase, spin);
    }
}

// ---- placing threads on the topology ----------------------------------------------------------

// The order in which threads take CPUs: first one hardware thread of every physical core,
// then the SMT siblings. OFF fills node after node; the NUMA policies go round-robin over
// the nodes so that any thread count spreads evenly.
static int *thread_order(const ilm_topology *t, int policy, int *n_out) {
    int *order = malloc((size_t)t->n_cpus * sizeof *order);
    int *cursor = malloc((size_t)(t->n_nodes + 1) * sizeof *cursor);
    int *node_end = malloc((size_t)(t->n_nodes + 1) * sizeof *node_end);
    if (!order || !cursor || !node_end) {
        free(order), free(cursor), free(node_end);
        return NULL;
    }
    int max_smt = 0;
    for (int i = 0; i < t->n_cpus; i++)
        if (t->cpus[i].smt > max_smt) max_smt = t->cpus[i].smt;
    int n = 0;
    for (int s = 0; s <= max_smt; s++) {
        if (policy == ILM_NUMA_OFF) {
            for (int i = 0; i < t->n_cpus; i++)
                if (t->cpus[i].smt == s) order[n++] = i;
            continue;
        }
        // cpus are sorted by node, so each node is one contiguous range
        for (int k = 0, i = 0; k < t->n_nodes; k++) {
            cursor[k] = i;
            while (i < t->n_cpus && t->cpus[i].node == k) i++;
            node_end[k] = i;
        }
        for (int progress = 1; progress;) {
            progress = 0;
            for (int k = 0; k < t->n_nodes; k++) {
                while (cursor[k] < node_end[k] && t->cpus[cursor[k]].smt != s) cursor[k]++;
                if (cursor[k] < node_end[k]) {
                    order[n++] = cursor[k]++;
                    progress = 1;
                }
            }
        }
    }
    free(cursor), free(node_end);
    *n_out = n;
    return order;
}

static void noop_task(void *ctx, int ith, int nth) { (void)ctx, (void)ith, (void)nth; }

// Creates the pool on *topo, which it takes over (freed on failure too).
static int pool_create(ilm_pool **out, const ilm_pool_opts *opts, ilm_topology *topo,
                       ilm_err *err) {
    *out = NULL;
    ilm_pool_opts o = opts ? *opts : (ilm_pool_opts){.n_threads = 0, .numa = ILM_NUMA_OFF, .pin = 1};
    if (o.numa < ILM_NUMA_OFF || o.numa > ILM_NUMA_REPLICATE) {
        ilm_topology_free(topo);
        return ilm_fail(err, "unknown NUMA policy %d", o.numa);
    }
    if (topo->n_cpus <= 0 || topo->n_cores <= 0) {
        ilm_topology_free(topo);
        return ilm_fail(err, "the CPU topology (%s) has no usable CPU", topo->source);
    }
    int nth = o.n_threads > 0 ? o.n_threads : topo->n_cores;

    ilm_pool *pool = aligned_alloc(64, ilm_align_up(sizeof *pool, 64));
    if (!pool) {
        ilm_topology_free(topo);
        return ilm_fail(err, "out of memory creating the thread pool");
    }
    memset(pool, 0, sizeof *pool);
    pool->topo = *topo;
    pool->n_threads = nth;
    pool->policy = o.numa;
    pool->pin = o.pin != 0;
    pool->workers = calloc((size_t)nth, sizeof *pool->workers);
    pool->thread_cpu = calloc((size_t)nth, sizeof(int));
    pool->pin_cpu = calloc((size_t)nth, sizeof(int));
    pool->thread_node = calloc((size_t)nth, sizeof(int));
    pool->rank_in_node = calloc((size_t)nth, sizeof(int));
    int n_order = 0;
    int *order = thread_order(&pool->topo, pool->policy, &n_order);
    if (!pool->workers || !pool->thread_cpu || !pool->pin_cpu || !pool->thread_node ||
        !pool->rank_in_node || !order || n_order == 0) {
        free(order);
        ilm_pool_destroy(pool);
        return ilm_fail(err, "out of memory creating the thread pool");
    }

    // CPUs this process may run on: fake CPU ids map onto them modulo their count.
    sched_getaffinity(0, sizeof pool->caller_mask, &pool->caller_mask);
    int real_cpus[CPU_SETSIZE], n_real = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &pool->caller_mask)) real_cpus[n_real++] = c;

    int topo_to_pool[ILM_MAX_NODES];
    for (int k = 0; k < ILM_MAX_NODES; k++) topo_to_pool[k] = -1;
    for (int ith = 0; ith < nth; ith++) {   // oversubscription wraps around the CPU order
        int ci = order[ith % n_order];
        pool->thread_cpu[ith] = ci;
        int os_cpu = pool->topo.cpus[ci].cpu;
        if (!pool->pin)
            pool->pin_cpu[ith] = -1;
        else if (pool->topo.fake)
            pool->pin_cpu[ith] = n_real ? real_cpus[os_cpu % n_real] : -1;
        else
            pool->pin_cpu[ith] = os_cpu;
    }
    free(order);
    // Pool nodes: the topology nodes that got threads, in topology order.
    for (int k = 0; k < pool->topo.n_nodes && k < ILM_MAX_NODES; k++)
        for (int ith = 0; ith < nth; ith++)
            if (pool->topo.cpus[pool->thread_cpu[ith]].node == k) {
                topo_to_pool[k] = pool->n_nodes;
                pool->node_topo[pool->n_nodes++] = k;
                break;
            }
    for (int ith = 0; ith < nth; ith++) {
        int node = topo_to_pool[pool->topo.cpus[pool->thread_cpu[ith]].node];
        pool->thread_node[ith] = node;
        pool->rank_in_node[ith] = pool->node_threads[node]++;
    }
    if (pool->policy == ILM_NUMA_REPLICATE && pool->n_nodes > ILM_PLACED_MAX) {
        int n = pool->n_nodes;
        ilm_pool_destroy(pool);
        return ilm_fail(err, "--numa replicate supports at most %d nodes (this pool spans %d)",
                        ILM_PLACED_MAX, n);
    }

    // Polling only pays when every thread has a CPU of its own.
    atomic_init(&pool->spin_us, nth > n_real ? 0 : 100);
    if (pool->pin_cpu[0] >= 0) {
        if (pin_self(pool->pin_cpu[0]) == 0)
            pool->caller_pinned = 1;
        else
            atomic_fetch_add(&pool->pin_failures, 1);
    }
    for (int ith = 1; ith < nth; ith++) {
        worker *w = &pool->workers[ith];
        w->pool = pool;
        w->ith = ith;
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            ilm_pool_destroy(pool);
            return ilm_fail(err, "cannot start pool thread %d of %d: %s", ith, nth, strerror(rc));
        }
        w->started = 1;
    }
    // One empty run: every worker has started and pinned itself before create returns,
    // so the description can say whether pinning worked.
    ilm_pool_run(pool, noop_task, NULL);
    int pin_failures = atomic_load(&pool->pin_failures);

    char fake[96] = "";
    if (pool->topo.fake) snprintf(fake, sizeof fake, ", topology %s", pool->topo.source);
    char pinned[64] = "not pinned";
    if (pool->pin && pin_failures)
        snprintf(pinned, sizeof pinned, "pinning failed for %d thread%s", pin_failures,
                 pin_failures == 1 ? "" : "s");
    else if (pool->pin)
        snprintf(pinned, sizeof pinned, "pinned");
    snprintf(pool->desc, sizeof pool->desc, "%d thread%s, %d node%s, numa %s, %s%s", nth,
             nth == 1 ? "" : "s", pool->n_nodes, pool->n_nodes == 1 ? "" : "s",
             ilm_numa_policy_name(pool->policy), pinned, fake);
    *out = pool;
    return 0;
}

int ilm_pool_create(ilm_pool **out, const ilm_pool_opts *opts, ilm_err *err) {
    ilm_topology topo;
    if (ilm_topology_load(&topo, err) != 0) return -1;
    if (ilm_topology_restrict_to_affinity(&topo, err) != 0) {
        ilm_topology_free(&topo);
        return -1;
    }
    return pool_create(out, opts, &topo, err);
}

int ilm_pool_create_on(ilm_pool **out, const ilm_pool_opts *opts, const ilm_topology *topo,
                       ilm_err *err) {
    ilm_topology copy;
    if (ilm_topology_copy(&copy, topo, err) != 0) return -1;
    return pool_create(out, opts, &copy, err);
}

void ilm_pool_destroy(ilm_pool *pool) {
    if (!pool) return;
    if (pool->workers) {
        atomic_store_explicit(&pool->stop, 1, memory_order_release);
        publish(&pool->start, ++pool->generation);
        for (int ith = 1; ith < pool->n_threads; ith++)
            if (pool->workers[ith].started) pthread_join(pool->workers[ith].thread, NULL);
    }
    if (pool->caller_pinned) sched_setaffinity(0, sizeof pool->caller_mask, &pool->caller_mask);
    free(pool->workers);
    free(pool->thread_cpu);
    free(pool->pin_cpu);
    free(pool->thread_node);
    free(pool->rank_in_node);
    ilm_topology_free(&pool->topo);
    free(pool);
}

// ---- queries ----------------------------------------------------------------------------------

int ilm_pool_size(const ilm_pool *pool) { return pool->n_threads; }
int ilm_pool_node_of(const ilm_pool *pool, int ith) { return pool->thread_node[ith]; }
int ilm_pool_n_nodes(const ilm_pool *pool) { return pool->n_nodes; }
int ilm_pool_numa_policy(const ilm_pool *pool) { return pool->policy; }
const char *ilm_pool_describe(const ilm_pool *pool) { return pool->desc; }
const ilm_topology *ilm_pool_topology(const ilm_pool *pool) { return &pool->topo; }
int ilm_pool_node_topo(const ilm_pool *pool, int node) { return pool->node_topo[node]; }
int ilm_pool_rank_in_node(const ilm_pool *pool, int ith) { return pool->rank_in_node[ith]; }
int ilm_pool_threads_on_node(const ilm_pool *pool, int node) { return pool->node_threads[node]; }
ilm_placement_stats *ilm_pool_placement(ilm_pool *pool) { return &pool->placement; }

int ilm_pool_cpu_of(const ilm_pool *pool, int ith) {
    return pool->pin ? pool->topo.cpus[pool->thread_cpu[ith]].cpu : -1;
}

void ilm_pool_set_spin_us(ilm_pool *pool, int us) {
    atomic_store_explicit(&pool->spin_us, us < 0 ? 0 : us, memory_order_relaxed);
}

double ilm_pool_worker_cpu_seconds(const ilm_pool *pool) {
    double total = 0;
    for (int ith = 1; ith < pool->n_threads; ith++) {
        clockid_t clock;
        struct timespec ts;
        if (pool->workers[ith].started &&
            pthread_getcpuclockid(pool->workers[ith].thread, &clock) == 0 &&
            clock_gettime(clock, &ts) == 0)
            total += (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    }
    return total;
}

void ilm_split_rows(int rows, int align, int ith, int nth, int *r0, int *r1) {
    if (align < 1) align = 1;
    if (nth < 1) nth = 1;
    if (rows < 0) rows = 0;
    // Units of `align` rows (the last one may be short), shared out as evenly as possible.
    long long units = ((long long)rows + align - 1) / align;
    long long u0 = units * ith / nth, u1 = units * (ith + 1) / nth;
    long long a = u0 * align, b = u1 * align;
    *r0 = (int)(a < rows ? a : rows);
    *r1 = (int)(b < rows ? b : rows);
}
