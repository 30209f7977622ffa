// topology.c — CPU/NUMA topology from sysfs, hwloc or a fake spec (topology.h).
//
// The topology is a flat list of online CPUs tagged with node, physical core and SMT rank.
// Every source (sysfs tree, hwloc, IRONLM_TOPOLOGY spec) produces per-CPU facts that one
// function, topology_finish, turns into sorted CPUs, dense core numbers and node counts.
#include "runtime/topology.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int ilm_topology_restrict_to_affinity(ilm_topology *t, ilm_err *err) {
    if (t->fake) return 0;   // synthetic CPU ids say nothing about this process's mask
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return 0;
    return ilm_topology_restrict(t, &allowed, err);
}

int ilm_topology_copy(ilm_topology *dst, const ilm_topology *src, ilm_err *err) {
    *dst = *src;
    dst->nodes = malloc((size_t)(src->n_nodes ? src->n_nodes : 1) * sizeof *dst->nodes);
    dst->cpus = malloc((size_t)(src->n_cpus ? src->n_cpus : 1) * sizeof *dst->cpus);
    if (!dst->nodes || !dst->cpus) {
        free(dst->nodes), free(dst->cpus);
        dst->nodes = NULL, dst->cpus = NULL;
        return ilm_fail(err, "out of memory copying the topology");
    }
    memcpy(dst->nodes, src->nodes, (size_t)src->n_nodes * sizeof *dst->nodes);
    memcpy(dst->cpus, src->cpus, (size_t)src->n_cpus * sizeof *dst->cpus);
    return 0;
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
