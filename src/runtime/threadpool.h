// threadpool.h — one persistent pool of pinned worker threads (docs/design.md §Threads).
//
// ilm_pool_run(pool, fn, ctx) runs fn(ctx, ith, nth) on every thread (the caller is
// thread 0) and returns when all are done. Workers spin briefly, then sleep on a futex,
// so an idle pool uses no CPU. Work is split by output rows with ilm_split_rows, which
// gives each thread the same slice on every call (its weights stay in its caches / node).
#pragma once
#include <stddef.h>
#include "base/util.h"

typedef struct ilm_pool ilm_pool;
typedef void (*ilm_task_fn)(void *ctx, int ith, int nth);

enum ilm_numa_policy {
    ILM_NUMA_OFF = 0,     // no placement; threads pinned in core order
    ILM_NUMA_DISTRIBUTE,  // threads spread over the nodes round-robin
    ILM_NUMA_INTERLEAVE,  // weight pages interleaved over nodes (mbind MPOL_INTERLEAVE)
    ILM_NUMA_REPLICATE,   // one copy of each weight per node; threads read their node's copy
};

typedef struct {
    int n_threads;        // <= 0: number of physical cores of the nodes in use
    int numa;             // enum ilm_numa_policy
    int pin;              // pin threads to CPUs (default 1)
} ilm_pool_opts;

int ilm_pool_create(ilm_pool **out, const ilm_pool_opts *opts, ilm_err *err);
void ilm_pool_destroy(ilm_pool *pool);
int ilm_pool_size(const ilm_pool *pool);
// Runs fn(ctx, ith, nth) for ith in [0, nth) and waits for all of them.
void ilm_pool_run(ilm_pool *pool, ilm_task_fn fn, void *ctx);
// Barrier among the threads of the current ilm_pool_run (call from inside fn, all threads).
void ilm_pool_barrier(ilm_pool *pool, int ith);
// NUMA node (index into the pool's node list) thread ith runs on, and the node count.
int ilm_pool_node_of(const ilm_pool *pool, int ith);
int ilm_pool_n_nodes(const ilm_pool *pool);
int ilm_pool_numa_policy(const ilm_pool *pool);
// One-line description for the run log, e.g. "2 threads, 1 node, numa off".
const char *ilm_pool_describe(const ilm_pool *pool);

// Deterministic split of `rows` rows into nth slices aligned to `align` rows; thread ith
// gets [*r0, *r1). Depends only on its arguments.
void ilm_split_rows(int rows, int align, int ith, int nth, int *r0, int *r1);

// --- weight placement ---------------------------------------------------------------------
// A weight buffer placed per the pool's NUMA policy: with REPLICATE one copy per node
// (copy[node]), otherwise copy[0] serves all nodes (copy[k] == copy[0]).
typedef struct {
    void *copy[8];
    size_t bytes;
    int n_copies;
} ilm_placed;

// Allocates a placed buffer of `bytes` and fills it by calling
//   fill(ctx, dst, ith, nth)
// on the pool threads (each thread writes its own slice, so pages are first-touched by the
// thread that will read them); for REPLICATE, the threads of each node fill their node's copy.
// mbind failures are reported once on stderr and are not fatal.
typedef void (*ilm_fill_fn)(void *ctx, void *dst, int ith, int nth);
int ilm_placed_alloc(ilm_pool *pool, ilm_placed *out, size_t bytes, ilm_fill_fn fill, void *ctx,
                     ilm_err *err);
void ilm_placed_free(ilm_placed *p);
// The copy thread ith should read.
static inline const void *ilm_placed_for(const ilm_placed *p, const ilm_pool *pool, int ith) {
    return p->n_copies > 1 ? p->copy[ilm_pool_node_of(pool, ith)] : p->copy[0];
}
