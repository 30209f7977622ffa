// placement.c — weight buffers per the pool's NUMA policy, and their accounting
// (placement.h).
//
// Buffers are mmap'd and get their memory policy from raw mbind(2) (no libnuma) before the
// first touch: interleaved over the pool's nodes, or one copy per node preferred on that
// node and filled by its threads. An mbind that fails (no NUMA, seccomp, a fake topology)
// is reported once and the buffer simply stays where first touch puts it.
#include "runtime/placement.h"

#include <errno.h>
#include <linux/mempolicy.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

// ---- mbind ------------------------------------------------------------------------------------

// A node mask of 1024 bits; mbind's maxnode counts one more than the bits it reads.
#define MASK_WORDS 16
#define MASK_BITS (MASK_WORDS * 64)

static int mbind_raw(void *addr, size_t len, int mode, const unsigned long *mask) {
    long rc = syscall(SYS_mbind, addr, len, mode, mask, (unsigned long)MASK_BITS + 1, 0u);
    return rc == 0 ? 0 : -errno;
}

int ilm_mbind_interleave(void *addr, size_t len, const int *nodes, int n_nodes) {
    unsigned long mask[MASK_WORDS] = {0};
    for (int i = 0; i < n_nodes; i++) {
        if (nodes[i] < 0 || nodes[i] >= MASK_BITS) return -EINVAL;
        mask[nodes[i] / 64] |= 1ul << (nodes[i] % 64);
    }
    return mbind_raw(addr, len, MPOL_INTERLEAVE, mask);
}

int ilm_mbind_preferred(void *addr, size_t len, int node) {
    unsigned long mask[MASK_WORDS] = {0};
    if (node < 0 || node >= MASK_BITS) return -EINVAL;
    mask[node / 64] = 1ul << (node % 64);
    // PREFERRED rather than BIND: if the node runs short the kernel falls back instead of
    // killing us; the fit check at start keeps that from happening in practice.
    return mbind_raw(addr, len, MPOL_PREFERRED, mask);
}

// ---- placement --------------------------------------------------------------------------------

static void format_bytes(char *buf, size_t len, double b) {
    if (b >= 1ull << 30) snprintf(buf, len, "%.2f GiB", b / (1ull << 30));
    else if (b >= 1 << 20) snprintf(buf, len, "%.1f MiB", b / (1 << 20));
    else snprintf(buf, len, "%.0f KiB", b / 1024);
}

static int copies_of(const ilm_pool *pool) {
    return ilm_pool_numa_policy(pool) == ILM_NUMA_REPLICATE ? ilm_pool_n_nodes(pool) : 1;
}

size_t ilm_pool_placed_cost(const ilm_pool *pool, size_t weight_bytes) {
    size_t cost;
    return ilm_mul_ok(weight_bytes, (size_t)copies_of(pool), &cost) ? cost : SIZE_MAX;
}

// Bytes of `bytes` that the policy puts on pool node k (interleave: page round-robin).
static size_t share_on_node(const ilm_pool *pool, size_t bytes, int k) {
    int n = ilm_pool_n_nodes(pool);
    switch (ilm_pool_numa_policy(pool)) {
    case ILM_NUMA_REPLICATE: return bytes;
    case ILM_NUMA_INTERLEAVE: {
        size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = (bytes + page - 1) / page;
        size_t mine = pages / (size_t)n + ((size_t)k < pages % (size_t)n);
        size_t b = mine * page;
        // the last page is short: take it off the node that got it
        if (pages && (size_t)k == (pages - 1) % (size_t)n) b -= pages * page - bytes;
        return b;
    }
    default: return k == 0 ? bytes : 0;   // first touch decides; counted on node 0
    }
}

int ilm_pool_placement_fits(const ilm_pool *pool, size_t weight_bytes, ilm_err *err) {
    const ilm_topology *t = ilm_pool_topology(pool);
    const ilm_placement_stats *st = ilm_pool_placement((ilm_pool *)pool);
    int n = ilm_pool_n_nodes(pool), policy = ilm_pool_numa_policy(pool);
    char need_s[32], have_s[32];
    if (policy == ILM_NUMA_REPLICATE || policy == ILM_NUMA_INTERLEAVE) {
        for (int k = 0; k < n; k++) {
            const ilm_numa_node *node = &t->nodes[ilm_pool_node_topo(pool, k)];
            if (!node->mem_avail) continue;
            uint64_t need = (uint64_t)share_on_node(pool, weight_bytes, k);
            uint64_t have = node->mem_avail > st->node_bytes[k] ? node->mem_avail - st->node_bytes[k] : 0;
            if (need > have) {
                format_bytes(need_s, sizeof need_s, (double)need);
                format_bytes(have_s, sizeof have_s, (double)have);
                return ilm_fail(err, "--numa %s needs %s on NUMA node %d, which has %s available; "
                                     "use --numa interleave or distribute",
                                policy == ILM_NUMA_REPLICATE ? "replicate" : "interleave",
                                need_s, node->os_id, have_s);
            }
        }
        return 0;
    }
    uint64_t have = 0;
    for (int k = 0; k < n; k++) {
        uint64_t a = t->nodes[ilm_pool_node_topo(pool, k)].mem_avail;
        if (!a) return 0;   // unknown: let the kernel decide
        have += a;
    }
    have = have > st->resident_bytes ? have - st->resident_bytes : 0;
    if (weight_bytes > have) {
        format_bytes(need_s, sizeof need_s, (double)weight_bytes);
        format_bytes(have_s, sizeof have_s, (double)have);
        return ilm_fail(err, "the weights need %s of memory; the nodes in use have %s available",
                        need_s, have_s);
    }
    return 0;
}

void ilm_pool_placement_describe(const ilm_pool *pool, size_t weight_bytes, char *buf, size_t len) {
    const ilm_topology *t = ilm_pool_topology(pool);
    int n = ilm_pool_n_nodes(pool), copies = copies_of(pool);
    char one[32], all[32], avail[32];
    format_bytes(one, sizeof one, (double)weight_bytes);
    format_bytes(all, sizeof all, (double)weight_bytes * copies);
    int used = snprintf(buf, len, "numa %s: ", ilm_numa_policy_name(ilm_pool_numa_policy(pool)));
    if (copies > 1)
        used += snprintf(buf + used, len > (size_t)used ? len - used : 0, "%d copies x %s = %s", copies, one, all);
    else
        used += snprintf(buf + used, len > (size_t)used ? len - used : 0, "%s", one);
    for (int k = 0; k < n && (size_t)used < len; k++) {
        const ilm_numa_node *node = &t->nodes[ilm_pool_node_topo(pool, k)];
        if (node->mem_avail) format_bytes(avail, sizeof avail, (double)node->mem_avail);
        else snprintf(avail, sizeof avail, "?");
        used += snprintf(buf + used, len - used, "%snode %d: %s available%s", k ? ", " : " (",
                         node->os_id, avail, k == n - 1 ? ")" : "");
    }
}

typedef struct {
    const ilm_pool *pool;
    ilm_placed *placed;
    ilm_fill_fn fill;
    void *ctx;
} fill_job;

static void fill_task(void *arg, int ith, int nth) {
    fill_job *job = arg;
    if (job->placed->n_copies > 1) {   // replicate: the node's threads fill the node's copy
        int node = ilm_pool_node_of(job->pool, ith);
        job->fill(job->ctx, job->placed->copy[node], ilm_pool_rank_in_node(job->pool, ith),
                  ilm_pool_threads_on_node(job->pool, node));
    } else {
        job->fill(job->ctx, job->placed->copy[0], ith, nth);
    }
}

static void note_mbind_failure(ilm_pool *pool, int rc, const char *what) {
    ilm_placement_stats *st = ilm_pool_placement(pool);
    if (st->mbind_failures++ == 0)
        fprintf(stderr, "ironlm: warning: mbind (%s) failed: %s; weights stay where the "
                        "threads first touch them (reported once)\n", what, strerror(-rc));
    st->mbind_last_errno = -rc;
}

int ilm_placed_alloc(ilm_pool *pool, ilm_placed *out, size_t bytes, ilm_fill_fn fill, void *ctx,
                     ilm_err *err) {
    memset(out, 0, sizeof *out);
    out->bytes = bytes;
    out->n_copies = 1;
    if (bytes == 0) return 0;
    int policy = ilm_pool_numa_policy(pool), n_nodes = ilm_pool_n_nodes(pool);
    int copies = copies_of(pool);
    if (copies > ILM_PLACED_MAX)
        return ilm_fail(err, "--numa replicate supports at most %d nodes", ILM_PLACED_MAX);
    if (policy == ILM_NUMA_REPLICATE && ilm_pool_placement_fits(pool, bytes, err) != 0) return -1;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), len = ilm_align_up(bytes, page);
    if (len < bytes) return ilm_fail(err, "weight buffer of %zu bytes is too large", bytes);
    for (int c = 0; c < copies; c++) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            for (int j = 0; j < c; j++) munmap(out->copy[j], len);
            memset(out->copy, 0, sizeof out->copy);
            return ilm_fail(err, "cannot allocate %zu bytes of weights (copy %d of %d): %s",
                            bytes, c + 1, copies, strerror(e));
        }
        out->copy[c] = p;
        // Large weights benefit from huge pages (fewer TLB misses in GEMV); optional.
        if (len >= (2u << 20)) madvise(p, len, MADV_HUGEPAGE);
    }
    out->n_copies = copies;
    // The policy must be set before the first touch below.
    if (policy == ILM_NUMA_INTERLEAVE && n_nodes > 1) {
        int ids[ILM_MAX_NODES];
        for (int k = 0; k < n_nodes; k++)
            ids[k] = ilm_pool_topology(pool)->nodes[ilm_pool_node_topo(pool, k)].os_id;
        int rc = ilm_mbind_interleave(out->copy[0], len, ids, n_nodes);
        if (rc != 0) note_mbind_failure(pool, rc, "interleave");
    } else if (copies > 1) {
        for (int k = 0; k < copies; k++) {
            int id = ilm_pool_topology(pool)->nodes[ilm_pool_node_topo(pool, k)].os_id;
            int rc = ilm_mbind_preferred(out->copy[k], len, id);
            if (rc != 0) note_mbind_failure(pool, rc, "replica");
        }
    }
    for (int c = copies; c < ILM_PLACED_MAX; c++) out->copy[c] = out->copy[0];
    if (fill) {
        fill_job job = {pool, out, fill, ctx};
        ilm_pool_run(pool, fill_task, &job);
    }
    ilm_placement_stats *st = ilm_pool_placement(pool);
    st->logical_bytes += bytes;
    st->resident_bytes += bytes * (size_t)copies;
    for (int k = 0; k < n_nodes && k < ILM_MAX_NODES; k++)
        st->node_bytes[k] += share_on_node(pool, bytes, k);
    return 0;
}

void ilm_placed_free(ilm_placed *p) {
    if (!p) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), len = ilm_align_up(p->bytes, page);
    for (int c = 0; c < p->n_copies && c < ILM_PLACED_MAX; c++)
        if (p->copy[c]) munmap(p->copy[c], len);
    memset(p, 0, sizeof *p);
}
