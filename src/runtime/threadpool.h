// threadpool.h — one persistent pool of pinned worker threads (docs/design.md §Threads and
// NUMA).
//
// ilm_pool_run(pool, fn, ctx) runs fn(ctx, ith, nth) on every thread (the caller is
// thread 0) and returns when all are done. Workers spin briefly, then sleep on a futex,
// so an idle pool uses no CPU. Work is split by output rows with ilm_split_rows, which
// gives each thread the same slice on every call (its weights stay in its caches / node).
// The pool places its threads on a topology (topology.h) and answers which node each
// thread is on; placement.h builds weight buffers on those answers.
//
// Include order in runtime/: topology.h <- threadpool.h <- placement.h (this header
// includes topology.h and base/ only).
#pragma once
#include <stddef.h>
#include "base/util.h"
#include "runtime/topology.h"

typedef struct ilm_pool ilm_pool;
typedef void (*ilm_task_fn)(void *ctx, int ith, int nth);

enum ilm_numa_policy {
    ILM_NUMA_OFF = 0,     // no placement; threads pinned in core order
    ILM_NUMA_DISTRIBUTE,  // threads spread over the nodes round-robin
    ILM_NUMA_INTERLEAVE,  // weight pages interleaved over nodes (mbind MPOL_INTERLEAVE)
    ILM_NUMA_REPLICATE,   // one copy of each weight per node; threads read their node's copy
};

// Most nodes a REPLICATE pool may span: the copies one placed weight buffer holds
// (ilm_placed.copy, placement.h). The pool refuses to create a larger REPLICATE pool.
#define ILM_PLACED_MAX 8

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
// "off", "distribute", "interleave", "replicate" ("?" for anything else).
const char *ilm_numa_policy_name(int policy);
// One-line description for the run log, e.g. "2 threads, 1 node, numa off".
const char *ilm_pool_describe(const ilm_pool *pool);

// Deterministic split of `rows` rows into nth slices aligned to `align` rows; thread ith
// gets [*r0, *r1). Depends only on its arguments.
void ilm_split_rows(int rows, int align, int ith, int nth, int *r0, int *r1);

// --- the pool on its topology ------------------------------------------------------------
// Creates a pool on a given topology instead of ilm_topology_load()'s (tests use the sysfs
// fixtures this way). The topology is copied; the process affinity mask is not applied
// to it when it is fake or comes from a fixture.
int ilm_pool_create_on(ilm_pool **out, const ilm_pool_opts *opts, const ilm_topology *topo,
                       ilm_err *err);
const ilm_topology *ilm_pool_topology(const ilm_pool *pool);
// Topology node (index into ilm_pool_topology()->nodes) of pool node `node`.
int ilm_pool_node_topo(const ilm_pool *pool, int node);
// CPU thread ith was placed on (topology CPU number; -1 if not pinned). A fake topology's
// CPU c is pinned to real CPU c mod (CPUs this process may use); a failed pin is not an
// error, ilm_pool_describe says "pinning failed for N threads".
int ilm_pool_cpu_of(const ilm_pool *pool, int ith);
// Rank of thread ith among the threads of its node, and the node's thread count.
int ilm_pool_rank_in_node(const ilm_pool *pool, int ith);
int ilm_pool_threads_on_node(const ilm_pool *pool, int node);
// How long a waiting thread polls before it sleeps on its futex (microseconds; default
// 100, 0 when the pool has more threads than usable CPUs). Safe between runs.
void ilm_pool_set_spin_us(ilm_pool *pool, int us);
// CPU time (seconds) the worker threads (not the caller) have used so far.
double ilm_pool_worker_cpu_seconds(const ilm_pool *pool);

// --- placement bookkeeping the pool carries -----------------------------------------------
// What has been placed on this pool's nodes so far. The pool only stores it (zeroed at
// creation); ilm_placed_alloc (placement.c) writes it, the fit checks read it.
typedef struct {
    size_t logical_bytes;              // Σ bytes asked of ilm_placed_alloc
    size_t resident_bytes;             // Σ bytes allocated (bytes x copies)
    size_t node_bytes[ILM_MAX_NODES];  // intended bytes per pool node (interleave: pages
                                       // round-robin; replicate: a full copy; off/distribute:
                                       // unknown, first touch decides -> counted on node 0)
    int mbind_failures;                // mbind calls that failed (warned about once)
    int mbind_last_errno;
} ilm_placement_stats;

ilm_placement_stats *ilm_pool_placement(ilm_pool *pool);
