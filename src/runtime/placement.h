// placement.h — where weight memory goes (docs/design.md §Threads and NUMA).
//
// ilm_placed_alloc places a weight buffer per the pool's NUMA policy: pages interleaved over
// the pool's nodes, or one copy per node (REPLICATE) that the node's own threads first-touch.
// The memory policy is set with mbind(2), called through syscall(2) so there is no libnuma
// dependency. Each placement is accounted in the pool's ilm_placement_stats, which the fit
// check and the start-up description read.
//
// Include order in runtime/: topology.h <- threadpool.h <- placement.h (this header
// includes threadpool.h, which brings topology.h).
#pragma once
#include <stddef.h>

#include "base/util.h"
#include "runtime/threadpool.h"

// --- memory policy (raw mbind(2)) --------------------------------------------------------
// Both return 0 or -errno; `nodes` are OS node ids. addr/len must be page-aligned.
int ilm_mbind_interleave(void *addr, size_t len, const int *nodes, int n_nodes);
int ilm_mbind_preferred(void *addr, size_t len, int node);

// --- placed weight buffers -----------------------------------------------------------------
// A weight buffer placed per the pool's NUMA policy: with REPLICATE one copy per node
// (copy[node]), otherwise copy[0] serves all nodes (copy[k] == copy[0]).
typedef struct {
    void *copy[ILM_PLACED_MAX];
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

// --- accounting (ilm_pool_placement(pool), threadpool.h) -----------------------------------
// Bytes `weight_bytes` of weights occupy under the pool's policy (x nodes for replicate).
size_t ilm_pool_placed_cost(const ilm_pool *pool, size_t weight_bytes);
// 0 if `weight_bytes` placed per the policy fits in each node's available memory (as read
// at pool creation, less what this pool placed already); else -1 and a message naming the
// node, the need and what is there. Nodes of unknown size pass.
int ilm_pool_placement_fits(const ilm_pool *pool, size_t weight_bytes, ilm_err *err);
// "numa replicate: 2 copies x 4.1 GiB = 8.2 GiB (node 0: 60 GiB available, node 1: 61 GiB
// available)" — for the start-up log.
void ilm_pool_placement_describe(const ilm_pool *pool, size_t weight_bytes, char *buf,
                                 size_t len);
