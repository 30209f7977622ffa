// numa.c — CPU/NUMA topology (sysfs, hwloc or a fake spec) and weight placement (numa.h).
//
// The topology is a flat list of online CPUs tagged with node, physical core and SMT rank.
// Placement allocates weight buffers with mmap and sets their memory policy with raw
// mbind(2) (no libnuma): interleaved over the pool's nodes, or one copy per node that the
// node's own threads first-touch. An mbind that fails (no NUMA, seccomp, a fake topology)
// is reported once and the buffer simply stays where first touch puts it.
#include "runtime/numa.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/mempolicy.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(ILM_HWLOC) && ILM_HWLOC
#include <hwloc.h>
#endif

#define SYSFS_ROOT "/sys/devices/system"

// ---- small file helpers -------------------------------------------------------------------

// Reads a small text file (sysfs) into a malloc'd NUL-terminated string; NULL if unreadable.
static char *read_text(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - 1 - len, f);
        if (len < cap - 1 || feof(f) || ferror(f)) break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger, cap *= 2;
    }
    fclose(f);
    if (buf) buf[len] = 0;
    return buf;
}

static int read_int_file(const char *path, int fallback) {
    char *s = read_text(path);
    if (!s) return fallback;
    char *end;
    long v = strtol(s, &end, 10);
    int ok = end != s;
    free(s);
    return ok && v >= INT_MIN && v <= INT_MAX ? (int)v : fallback;
}

int ilm_parse_cpulist(const char *s, int **out, int *n, ilm_err *err) {
    *out = NULL, *n = 0;
    int cap = 0, count = 0, *list = NULL;
    const char *p = s;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p)) p++;
        if (!*p) break;
        char *end;
        long a = strtol(p, &end, 10), b = a, stride = 1;
        if (end == p || a < 0) goto bad;
        p = end;
        if (*p == '-') {
            b = strtol(p + 1, &end, 10);
            if (end == p + 1 || b < a) goto bad;
            p = end;
            if (*p == ':') {   // "0-15:2" (used by the kernel's cpulist format too)
                stride = strtol(p + 1, &end, 10);
                if (end == p + 1 || stride <= 0) goto bad;
                p = end;
            }
        }
        if (*p && *p != ',' && !isspace((unsigned char)*p)) goto bad;
        if (b > 1 << 20) goto bad;
        for (long v = a; v <= b; v += stride) {
            if (count == cap) {
                cap = cap ? cap * 2 : 16;
                int *bigger = realloc(list, (size_t)cap * sizeof *list);
                if (!bigger) {
                    free(list);
                    return ilm_fail(err, "out of memory parsing CPU list");
                }
                list = bigger;
            }
            list[count++] = (int)v;
        }
    }
    // sort ascending, drop duplicates
    for (int i = 1; i < count; i++)
        for (int j = i; j > 0 && list[j - 1] > list[j]; j--) {
            int t = list[j];
            list[j] = list[j - 1], list[j - 1] = t;
        }
    int m = 0;
    for (int i = 0; i < count; i++)
        if (m == 0 || list[m - 1] != list[i]) list[m++] = list[i];
    *out = list, *n = m;
    return 0;
bad:
    free(list);
    return ilm_fail(err, "bad CPU list \"%.64s\"", s);
}

// ---- building a topology from per-CPU facts ---------------------------------------------------

typedef struct {
    int cpu, node;        // node: index into the topology's node array being built
    long long core_key;   // equal for the hardware threads of one physical core
    int smt_order;        // orders the threads of a core
    int first_cpu;        // lowest CPU of the core (sort key)
} raw_cpu;

static int raw_cmp(const void *a, const void *b) {
    const raw_cpu *x = a, *y = b;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    if (x->first_cpu != y->first_cpu) return x->first_cpu < y->first_cpu ? -1 : 1;
    if (x->smt_order != y->smt_order) return x->smt_order < y->smt_order ? -1 : 1;
    return x->cpu < y->cpu ? -1 : x->cpu > y->cpu;
}

// Turns raw CPUs into t->cpus (sorted, cores numbered densely, SMT ranks 0..), counts per
// node and drops nodes without CPUs. Takes over `raw`. t->nodes must hold t->n_nodes nodes.
static int topology_finish(ilm_topology *t, raw_cpu *raw, int n, ilm_err *err) {
    for (int i = 0; i < n; i++) {
        raw[i].first_cpu = raw[i].cpu;
        for (int j = 0; j < n; j++)
            if (raw[j].node == raw[i].node && raw[j].core_key == raw[i].core_key &&
                raw[j].cpu < raw[i].first_cpu)
                raw[i].first_cpu = raw[j].cpu;
    }
    qsort(raw, (size_t)n, sizeof *raw, raw_cmp);
    free(t->cpus);
    t->cpus = malloc((size_t)(n ? n : 1) * sizeof *t->cpus);
    if (!t->cpus) {
        free(raw);
        return ilm_fail(err, "out of memory building the topology");
    }
    int *new_index = malloc((size_t)(t->n_nodes ? t->n_nodes : 1) * sizeof *new_index);
    if (!new_index) {
        free(raw);
        return ilm_fail(err, "out of memory building the topology");
    }
    int kept = 0;
    for (int k = 0; k < t->n_nodes; k++) {
        int has_cpu = 0;
        for (int i = 0; i < n && !has_cpu; i++) has_cpu = raw[i].node == k;
        new_index[k] = has_cpu ? kept : -1;
        if (has_cpu) t->nodes[kept++] = t->nodes[k];
    }
    t->n_nodes = kept;
    for (int k = 0; k < kept; k++) t->nodes[k].n_cpus = t->nodes[k].n_cores = 0;
    t->n_cpus = n;
    t->n_cores = 0;
    for (int i = 0; i < n; i++) {
        int new_core = i == 0 || raw[i].node != raw[i - 1].node ||
                       raw[i].core_key != raw[i - 1].core_key ||
                       raw[i].first_cpu != raw[i - 1].first_cpu;
        if (new_core) t->n_cores++;
        ilm_cpu *c = &t->cpus[i];
        c->cpu = raw[i].cpu;
        c->node = new_index[raw[i].node];
        c->core = t->n_cores - 1;
        c->smt = new_core ? 0 : t->cpus[i - 1].smt + 1;
        t->nodes[c->node].n_cpus++;
        if (new_core) t->nodes[c->node].n_cores++;
    }
    free(new_index);
    free(raw);
    return 0;
}

void ilm_topology_free(ilm_topology *t) {
    if (!t) return;
    free(t->nodes);
    free(t->cpus);
    t->nodes = NULL, t->cpus = NULL;
    t->n_nodes = t->n_cpus = t->n_cores = 0;
}

int ilm_topology_restrict(ilm_topology *t, const void *allowed_cpu_set, ilm_err *err) {
    const cpu_set_t *allowed = allowed_cpu_set;
    raw_cpu *raw = malloc((size_t)(t->n_cpus ? t->n_cpus : 1) * sizeof *raw);
    if (!raw) return ilm_fail(err, "out of memory restricting the topology");
    int n = 0;
    for (int i = 0; i < t->n_cpus; i++) {
        int cpu = t->cpus[i].cpu;
        if (cpu < CPU_SETSIZE && CPU_ISSET(cpu, allowed))
            raw[n++] = (raw_cpu){.cpu = cpu, .node = t->cpus[i].node,
                                 .core_key = t->cpus[i].core, .smt_order = t->cpus[i].smt};
    }
    if (n == 0) {
        free(raw);
        return ilm_fail(err, "none of the %d CPUs of the topology (%s) may be used by this process",
                        t->n_cpus, t->source);
    }
    return topology_finish(t, raw, n, err);
}

// ---- memory sizes -----------------------------------------------------------------------------

// Reads "Key: <n> kB" from a meminfo file ("Node 0 MemFree: ..." in a node's). Returns bytes.
static int meminfo_value(const char *text, const char *key, uint64_t *out) {
    size_t klen = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *k = p;
        if (strncmp(k, "Node ", 5) == 0) {   // skip "Node N "
            k += 5;
            while (isdigit((unsigned char)*k)) k++;
            while (*k == ' ') k++;
        }
        if (strncmp(k, key, klen) == 0 && k[klen] == ':') {
            *out = strtoull(k + klen + 1, NULL, 10) * 1024;
            return 1;
        }
    }
    return 0;
}

static void read_meminfo(const char *path, uint64_t *total, uint64_t *avail) {
    *total = *avail = 0;
    char *text = read_text(path);
    if (!text) return;
    uint64_t free_b = 0, inactive_file = 0, available = 0;
    meminfo_value(text, "MemTotal", total);
    if (meminfo_value(text, "MemAvailable", &available)) {
        *avail = available;   // /proc/meminfo
    } else if (meminfo_value(text, "MemFree", &free_b)) {
        // Node meminfo has no MemAvailable: free pages plus the page cache the kernel
        // drops first (which is where mmap'd model files sit).
        meminfo_value(text, "Inactive(file)", &inactive_file);
        *avail = free_b + inactive_file;
    }
    free(text);
}

// ---- sysfs ------------------------------------------------------------------------------------

static int *read_list_file(const char *path, int *n) {
    char *s = read_text(path);
    int *list = NULL;
    *n = -1;   // -1: file missing
    if (s && ilm_parse_cpulist(s, &list, n, NULL) != 0) *n = -1, list = NULL;
    free(s);
    return list;
}

// Numbers N of the entries "<prefix>N" of a directory, ascending.
static int *list_numbered_dirs(const char *dir, const char *prefix, int *n) {
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    int cap = 0, *list = NULL;
    size_t plen = strlen(prefix);
    for (struct dirent *e; (e = readdir(d));) {
        const char *s = e->d_name;
        if (strncmp(s, prefix, plen) != 0 || !isdigit((unsigned char)s[plen])) continue;
        char *end;
        long v = strtol(s + plen, &end, 10);
        if (*end || v > INT_MAX) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            int *bigger = realloc(list, (size_t)cap * sizeof *list);
            if (!bigger) break;
            list = bigger;
        }
        list[(*n)++] = (int)v;
    }
    closedir(d);
    for (int i = 1; i < *n; i++)
        for (int j = i; j > 0 && list[j - 1] > list[j]; j--) {
            int t = list[j];
            list[j] = list[j - 1], list[j - 1] = t;
        }
    return list;
}

int ilm_topology_from_sysfs(ilm_topology *t, const char *root, ilm_err *err) {
    memset(t, 0, sizeof *t);
    if (!root) root = SYSFS_ROOT;
    int is_real = strcmp(root, SYSFS_ROOT) == 0;
    t->fake = !is_real;   // a fixture describes another machine: its CPUs may not exist here
    snprintf(t->source, sizeof t->source, is_real ? "sysfs" : "sysfs:%.56s", root);
    char path[4096];

    int n_online;
    snprintf(path, sizeof path, "%s/cpu/online", root);
    int *online = read_list_file(path, &n_online);
    if (n_online < 0) {   // no "online" file: every cpuN directory counts
        snprintf(path, sizeof path, "%s/cpu", root);
        online = list_numbered_dirs(path, "cpu", &n_online);
    }
    if (n_online <= 0) {
        free(online);
        return ilm_fail(err, "no online CPU found under %s/cpu", root);
    }

    int n_node_ids;
    snprintf(path, sizeof path, "%s/node/online", root);
    int *node_ids = read_list_file(path, &n_node_ids);
    if (n_node_ids < 0) {
        snprintf(path, sizeof path, "%s/node", root);
        node_ids = list_numbered_dirs(path, "node", &n_node_ids);
    }
    int no_numa = n_node_ids <= 0;   // kernel without NUMA: one node with every CPU
    if (no_numa) n_node_ids = 1;
    if (n_node_ids > ILM_MAX_NODES) {
        free(online), free(node_ids);
        return ilm_fail(err, "%s lists %d NUMA nodes; ironlm handles at most %d", root,
                        n_node_ids, ILM_MAX_NODES);
    }
    t->nodes = calloc((size_t)n_node_ids, sizeof *t->nodes);
    int *cpu_node = malloc((size_t)n_online * sizeof *cpu_node);
    if (!t->nodes || !cpu_node) {
        free(online), free(node_ids), free(cpu_node);
        ilm_topology_free(t);
        return ilm_fail(err, "out of memory reading the topology");
    }
    t->n_nodes = n_node_ids;
    for (int i = 0; i < n_online; i++) cpu_node[i] = no_numa ? 0 : -1;
    for (int k = 0; k < n_node_ids; k++) {
        ilm_numa_node *node = &t->nodes[k];
        node->os_id = no_numa ? 0 : node_ids[k];
        if (no_numa) {
            if (is_real) read_meminfo("/proc/meminfo", &node->mem_total, &node->mem_avail);
            continue;
        }
        snprintf(path, sizeof path, "%s/node/node%d/meminfo", root, node->os_id);
        read_meminfo(path, &node->mem_total, &node->mem_avail);
        int n_list;
        snprintf(path, sizeof path, "%s/node/node%d/cpulist", root, node->os_id);
        int *list = read_list_file(path, &n_list);
        for (int j = 0; j < n_list; j++)   // offline CPUs of the list are not in `online`
            for (int i = 0; i < n_online; i++)
                if (online[i] == list[j] && cpu_node[i] < 0) cpu_node[i] = k;
        free(list);
    }
    free(node_ids);

    raw_cpu *raw = malloc((size_t)n_online * sizeof *raw);
    if (!raw) {
        free(online), free(cpu_node);
        ilm_topology_free(t);
        return ilm_fail(err, "out of memory reading the topology");
    }
    for (int i = 0; i < n_online; i++) {
        int cpu = online[i];
        snprintf(path, sizeof path, "%s/cpu/cpu%d/topology/physical_package_id", root, cpu);
        long long package = read_int_file(path, 0);
        snprintf(path, sizeof path, "%s/cpu/cpu%d/topology/die_id", root, cpu);
        long long die = read_int_file(path, 0);
        snprintf(path, sizeof path, "%s/cpu/cpu%d/topology/core_id", root, cpu);
        long long core_id = read_int_file(path, cpu);
        // SMT rank: position among the online CPUs of thread_siblings_list.
        int n_sib, smt = 0;
        snprintf(path, sizeof path, "%s/cpu/cpu%d/topology/thread_siblings_list", root, cpu);
        int *sib = read_list_file(path, &n_sib);
        for (int j = 0; j < n_sib && sib[j] < cpu; j++)
            for (int m = 0; m < n_online; m++)
                if (online[m] == sib[j]) smt++;
        free(sib);
        // A CPU no node lists (should not happen) goes to the first node.
        raw[i] = (raw_cpu){.cpu = cpu, .node = cpu_node[i] < 0 ? 0 : cpu_node[i],
                           .core_key = (package << 42) | ((die & 0xffff) << 26) | (core_id & 0x3ffffff),
                           .smt_order = smt};
    }
    free(online), free(cpu_node);
    if (topology_finish(t, raw, n_online, err) != 0) {
        ilm_topology_free(t);
        return -1;
    }
    return 0;
}

// ---- fake topology ----------------------------------------------------------------------------

int ilm_topology_from_spec(ilm_topology *t, const char *spec, ilm_err *err) {
    memset(t, 0, sizeof *t);
    int dims[3] = {0, 0, 1}, n_dims = 0;
    const char *p = spec;
    char *end;
    while (n_dims < 3) {
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || v > 4096) break;
        dims[n_dims++] = (int)v;
        p = end;
        if (*p != 'x' || n_dims == 3 || !isdigit((unsigned char)p[1])) break;
        p++;
    }
    uint64_t mem_per_node = 0;
    if (n_dims >= 2 && *p == '@') {
        double v = strtod(p + 1, &end);
        uint64_t unit = 1;
        switch (*end) {
        case 'K': case 'k': unit = 1ull << 10, end++; break;
        case 'M': case 'm': unit = 1ull << 20, end++; break;
        case 'G': case 'g': unit = 1ull << 30, end++; break;
        case 'T': case 't': unit = 1ull << 40, end++; break;
        }
        if (end == p + 1 || v <= 0) n_dims = 0;
        mem_per_node = (uint64_t)(v * (double)unit);
        p = end;
    }
    int nodes = dims[0], cores = dims[1], smt = dims[2];
    if (n_dims < 2 || *p || nodes > ILM_MAX_NODES || smt > 8 || (long)nodes * cores * smt > 4096)
        return ilm_fail(err, "bad IRONLM_TOPOLOGY \"%.64s\": want NODESxCORES[xSMT][@MEM], "
                             "e.g. 2x4 or 2x4x2@8G (at most %d nodes, 8 SMT, 4096 CPUs)",
                        spec, ILM_MAX_NODES);
    uint64_t total = 0, avail = 0;
    if (!mem_per_node) read_meminfo("/proc/meminfo", &total, &avail);
    int n = nodes * cores * smt;
    t->nodes = calloc((size_t)nodes, sizeof *t->nodes);
    raw_cpu *raw = malloc((size_t)n * sizeof *raw);
    if (!t->nodes || !raw) {
        free(raw);
        ilm_topology_free(t);
        return ilm_fail(err, "out of memory building the fake topology");
    }
    t->n_nodes = nodes;
    t->fake = 1;
    snprintf(t->source, sizeof t->source, "IRONLM_TOPOLOGY=%.40s", spec);
    for (int k = 0; k < nodes; k++) {
        t->nodes[k].os_id = k;
        t->nodes[k].mem_total = mem_per_node ? mem_per_node : total / (uint64_t)nodes;
        t->nodes[k].mem_avail = mem_per_node ? mem_per_node : avail / (uint64_t)nodes;
    }
    int i = 0;
    for (int k = 0; k < nodes; k++)
        for (int c = 0; c < cores; c++)
            for (int s = 0; s < smt; s++)   // Linux numbers SMT siblings N*C apart
                raw[i++] = (raw_cpu){.cpu = k * cores + c + s * nodes * cores, .node = k,
                                     .core_key = k * cores + c, .smt_order = s};
    if (topology_finish(t, raw, n, err) != 0) {
        ilm_topology_free(t);
        return -1;
    }
    return 0;
}

// ---- hwloc ------------------------------------------------------------------------------------

#if defined(ILM_HWLOC) && ILM_HWLOC
int ilm_topology_from_hwloc(ilm_topology *t, ilm_err *err) {
    memset(t, 0, sizeof *t);
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) return ilm_fail(err, "hwloc_topology_init failed");
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return ilm_fail(err, "hwloc_topology_load failed");
    }
    int n_numa = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    int n_pu = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    int n_nodes = n_numa > 0 ? n_numa : 1;
    if (n_nodes > ILM_MAX_NODES || n_pu <= 0) {
        hwloc_topology_destroy(topo);
        return ilm_fail(err, "hwloc reports %d NUMA nodes and %d CPUs; ironlm handles 1..%d nodes",
                        n_numa, n_pu, ILM_MAX_NODES);
    }
    t->nodes = calloc((size_t)n_nodes, sizeof *t->nodes);
    raw_cpu *raw = malloc((size_t)n_pu * sizeof *raw);
    if (!t->nodes || !raw) {
        free(raw);
        ilm_topology_free(t);
        hwloc_topology_destroy(topo);
        return ilm_fail(err, "out of memory reading the topology");
    }
    t->n_nodes = n_nodes;
    snprintf(t->source, sizeof t->source, "hwloc");
    for (int k = 0; k < n_numa; k++) {
        hwloc_obj_t node = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)k);
        t->nodes[k].os_id = (int)node->os_index;
        // hwloc knows the size, not what is free: take that from the node's meminfo.
        char path[256];
        snprintf(path, sizeof path, SYSFS_ROOT "/node/node%u/meminfo", node->os_index);
        read_meminfo(path, &t->nodes[k].mem_total, &t->nodes[k].mem_avail);
        if (!t->nodes[k].mem_total) t->nodes[k].mem_total = node->attr->numanode.local_memory;
    }
    if (n_numa == 0) read_meminfo("/proc/meminfo", &t->nodes[0].mem_total, &t->nodes[0].mem_avail);
    for (int i = 0; i < n_pu; i++) {
        hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, (unsigned)i);
        hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
        int node = 0;
        for (int k = 0; k < n_numa; k++) {
            hwloc_obj_t nd = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)k);
            if (hwloc_bitmap_isset(nd->cpuset, pu->os_index)) {
                node = k;
                break;
            }
        }
        raw[i] = (raw_cpu){.cpu = (int)pu->os_index, .node = node,
                           .core_key = core ? (long long)core->logical_index : -1 - (long long)i,
                           .smt_order = (int)pu->sibling_rank};
    }
    hwloc_topology_destroy(topo);
    if (topology_finish(t, raw, n_pu, err) != 0) {
        ilm_topology_free(t);
        return -1;
    }
    return 0;
}
#endif

int ilm_topology_load(ilm_topology *t, ilm_err *err) {
    const char *spec = getenv("IRONLM_TOPOLOGY");
    if (spec && *spec) return ilm_topology_from_spec(t, spec, err);
#if defined(ILM_HWLOC) && ILM_HWLOC
    return ilm_topology_from_hwloc(t, err);
#else
    return ilm_topology_from_sysfs(t, SYSFS_ROOT, err);
#endif
}

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
    static const char *names[] = {"off", "distribute", "interleave", "replicate"};
    int used = snprintf(buf, len, "numa %s: ", names[ilm_pool_numa_policy(pool)]);
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
