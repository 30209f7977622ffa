// numa.h — the machine's CPU/NUMA topology, and where weight memory goes (docs/design.md
// §Threads and NUMA).
//
// ilm_topology_load() reads the topology from IRONLM_TOPOLOGY (a fake machine for tests),
// hwloc (builds with HWLOC=1) or sysfs. The pool (threadpool.c) places its threads on it;
// ilm_placed_alloc (numa.c) places weight buffers per the pool's policy with mbind(2),
// called through syscall(2) so there is no libnuma dependency.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "runtime/threadpool.h"
#include "base/util.h"

#define ILM_MAX_NODES 64      // topology nodes we keep track of (mbind masks are one word)
#define ILM_PLACED_MAX 8      // copies an ilm_placed can hold (threadpool.h: copy[8])

typedef struct {
    int cpu;       // OS CPU number (synthetic for a fake topology)
    int node;      // index into ilm_topology.nodes
    int core;      // physical core, numbered 0.. over the whole machine
    int smt;       // 0 for the first hardware thread of its core, 1.. for its SMT siblings
} ilm_cpu;

typedef struct {
    int os_id;             // N of /sys/devices/system/node/nodeN (mbind node number)
    int n_cpus, n_cores;   // online hardware threads and physical cores on this node
    uint64_t mem_total;    // bytes; 0 = unknown
    uint64_t mem_avail;    // bytes free + reclaimable page cache at load time; 0 = unknown
} ilm_numa_node;

typedef struct {
    int n_nodes;
    ilm_numa_node *nodes;  // ascending os_id
    int n_cpus;
    ilm_cpu *cpus;         // sorted by (node, core, smt)
    int n_cores;
    int fake;              // 1: synthetic CPU ids (IRONLM_TOPOLOGY); they may not exist here
    char source[64];       // "sysfs", "sysfs:<root>", "hwloc", "IRONLM_TOPOLOGY=2x4"
} ilm_topology;

// IRONLM_TOPOLOGY if set, else hwloc (HWLOC=1 builds), else sysfs at /sys/devices/system.
int ilm_topology_load(ilm_topology *t, ilm_err *err);
// Parses a sysfs tree: root holds node/ and cpu/ as /sys/devices/system does
// (tests point it at tests/data/sysfs/<case>). Only online CPUs are kept.
int ilm_topology_from_sysfs(ilm_topology *t, const char *root, ilm_err *err);
// A fake machine: "NxC" or "NxCxS" (nodes x cores per node x SMT threads per core), with an
// optional "@SIZE" memory per node ("2x4@1G", "4x2x2@512M"; default: this machine's memory
// split evenly). CPU numbers follow Linux's usual order: core c of node n, thread s is
// cpu (n*C + c) + s*N*C, so SMT siblings are N*C apart.
int ilm_topology_from_spec(ilm_topology *t, const char *spec, ilm_err *err);
#if defined(ILM_HWLOC) && ILM_HWLOC
int ilm_topology_from_hwloc(ilm_topology *t, ilm_err *err);
#endif
void ilm_topology_free(ilm_topology *t);
// Keeps only the CPUs in `allowed` (a cpu_set_t*, e.g. the process affinity mask) and drops
// nodes left without CPUs. Returns -1 (with a message) if nothing is left.
int ilm_topology_restrict(ilm_topology *t, const void *allowed_cpu_set, ilm_err *err);

// Parses a Linux CPU/node list ("0-3,8-11", "5", "") into a malloc'd ascending array.
int ilm_parse_cpulist(const char *s, int **out, int *n, ilm_err *err);

// --- memory policy (raw mbind(2)) --------------------------------------------------------
// Both return 0 or -errno; `nodes` are OS node ids. addr/len must be page-aligned.
int ilm_mbind_interleave(void *addr, size_t len, const int *nodes, int n_nodes);
int ilm_mbind_preferred(void *addr, size_t len, int node);

// --- the pool as the placement code sees it ----------------------------------------------
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

// --- placement accounting ----------------------------------------------------------------
typedef struct {
    size_t logical_bytes;              // Σ bytes asked of ilm_placed_alloc
    size_t resident_bytes;             // Σ bytes allocated (bytes x copies)
    size_t node_bytes[ILM_MAX_NODES];  // intended bytes per pool node (interleave: pages
                                       // round-robin; replicate: a full copy; off/distribute:
                                       // unknown, first touch decides -> counted on node 0)
    int mbind_failures;                // mbind calls that failed (warned about once)
    int mbind_last_errno;
} ilm_placement_stats;

// Live bookkeeping of this pool's placements (written by ilm_placed_alloc only).
ilm_placement_stats *ilm_pool_placement(ilm_pool *pool);
// Bytes `weight_bytes` of weights occupy under the pool's policy (x nodes for replicate).
size_t ilm_pool_placed_cost(const ilm_pool *pool, size_t weight_bytes);
// 0 if `weight_bytes` placed per the policy fits in each node's available memory (as read
// at pool creation, less what this pool placed already); else -1 and a message naming the
// node, the need and what is there. Nodes of unknown size pass.
int ilm_pool_placement_fits(const ilm_pool *pool, size_t weight_bytes, ilm_err *err);
// "replicate: 2 copies x 4.1 GiB = 8.2 GiB (node 0: 60 GiB free, node 1: 61 GiB free)" —
// for the start-up log.
void ilm_pool_placement_describe(const ilm_pool *pool, size_t weight_bytes, char *buf,
                                 size_t len);
