// topology.h — the machine's CPU/NUMA topology (docs/design.md §Threads and NUMA).
//
// ilm_topology_load() reads it from IRONLM_TOPOLOGY (a fake machine for tests), hwloc
// (builds with HWLOC=1) or sysfs. The pool (threadpool.h) places its threads on it;
// placement.h uses its node ids and memory sizes for weight buffers.
//
// Include order in runtime/: topology.h <- threadpool.h <- placement.h <- weight.h <- matmul.h
// (each includes only those to its left). This header needs base/ only.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

#define ILM_MAX_NODES 64      // topology nodes we keep track of (mbind masks are one word)

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
// Deep copy (dst gets its own arrays; free both with ilm_topology_free).
int ilm_topology_copy(ilm_topology *dst, const ilm_topology *src, ilm_err *err);
void ilm_topology_free(ilm_topology *t);
// Keeps only the CPUs in `allowed` (a cpu_set_t*, e.g. the process affinity mask) and drops
// nodes left without CPUs. Returns -1 (with a message) if nothing is left.
int ilm_topology_restrict(ilm_topology *t, const void *allowed_cpu_set, ilm_err *err);
// Restricts a real (non-fake) topology to the CPUs this process may run on (its affinity
// mask; e.g. a container limited to some CPUs). Fake topologies are left as they are.
int ilm_topology_restrict_to_affinity(ilm_topology *t, ilm_err *err);

// Parses a Linux CPU/node list ("0-3,8-11", "5", "") into a malloc'd ascending array.
int ilm_parse_cpulist(const char *s, int **out, int *n, ilm_err *err);
