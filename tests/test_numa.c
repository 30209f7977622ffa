// test_numa.c — topology parsing (src/runtime/topology.c) on the fake sysfs trees in tests/data/sysfs,
// the IRONLM_TOPOLOGY override, and weight placement under fake 2- and 4-node machines.
// No machine here has several NUMA nodes: these tests are how the multi-node paths run.
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "runtime/placement.h"
#include "runtime/threadpool.h"

// Fixture trees ship with the tests; the runner runs from the repository root.
static const char *sysfs_case(const char *name) {
    static char path[8][256];
    static int slot;
    char *p = path[slot++ & 7];
    snprintf(p, sizeof path[0], "tests/data/sysfs/%s", name);
    return p;
}

static int find_cpu(const ilm_topology *t, int os_cpu) {
    for (int i = 0; i < t->n_cpus; i++)
        if (t->cpus[i].cpu == os_cpu) return i;
    return -1;
}

TEST(numa_parse_cpulist) {
    int *v, n;
    ilm_err err;
    CHECK_EQ(ilm_parse_cpulist("0-3,8-11\n", &v, &n, &err), 0);
    int want[] = {0, 1, 2, 3, 8, 9, 10, 11};
    CHECK_EQ(n, 8);
    for (int i = 0; i < n && i < 8; i++) CHECK_EQ(v[i], want[i]);
    free(v);
    CHECK_EQ(ilm_parse_cpulist("5", &v, &n, &err), 0);
    CHECK(n == 1 && v[0] == 5);
    free(v);
    CHECK_EQ(ilm_parse_cpulist("\n", &v, &n, &err), 0);   // a memory-only node
    CHECK_EQ(n, 0);
    free(v);
    CHECK_EQ(ilm_parse_cpulist("0-12:4,2", &v, &n, &err), 0);
    CHECK(n == 5 && v[0] == 0 && v[1] == 2 && v[2] == 4 && v[4] == 12);
    free(v);
    CHECK(ilm_parse_cpulist("3-1", &v, &n, &err) != 0);
    CHECK(ilm_parse_cpulist("a", &v, &n, &err) != 0);
    CHECK(strstr(err.msg, "CPU list") != NULL);
}

TEST(numa_sysfs_one_node_two_cores) {
    ilm_topology t;
    ilm_err err = {{0}};
    CHECK_MSG(ilm_topology_from_sysfs(&t, sysfs_case("1node-2core"), &err) == 0, "%s", err.msg);
    CHECK_EQ(t.n_nodes, 1);
    CHECK_EQ(t.n_cpus, 2);
    CHECK_EQ(t.n_cores, 2);
    CHECK(t.fake);
    CHECK(t.nodes[0].os_id == 0 && t.nodes[0].n_cores == 2);
    CHECK_EQ(t.nodes[0].mem_total, 8388608ull * 1024);
    CHECK_EQ(t.nodes[0].mem_avail, (4194304ull + 1048576) * 1024);   // MemFree + Inactive(file)
    CHECK(t.cpus[0].smt == 0 && t.cpus[1].smt == 0 && t.cpus[1].core == 1);
    ilm_topology_free(&t);
}

TEST(numa_sysfs_two_nodes_smt2) {
    ilm_topology t;
    ilm_err err = {{0}};
    CHECK_MSG(ilm_topology_from_sysfs(&t, sysfs_case("2node-4core-smt2"), &err) == 0, "%s", err.msg);
    CHECK_EQ(t.n_nodes, 2);
    CHECK_EQ(t.n_cpus, 16);
    CHECK_EQ(t.n_cores, 8);
    for (int k = 0; k < 2; k++) CHECK(t.nodes[k].n_cpus == 8 && t.nodes[k].n_cores == 4);
    CHECK_EQ(t.nodes[1].mem_avail, 14680064ull * 1024);
    for (int cpu = 0; cpu < 16; cpu++) {
        int i = find_cpu(&t, cpu);
        CHECK(i >= 0);
        if (i < 0) continue;
        CHECK_EQ(t.cpus[i].node, (cpu % 8) / 4);
        CHECK_EQ(t.cpus[i].smt, cpu >= 8);
        CHECK_EQ(t.cpus[i].core, t.cpus[find_cpu(&t, cpu % 8)].core);   // sibling shares a core
    }
    ilm_topology_free(&t);
}

TEST(numa_sysfs_offline_cpu_and_holes) {
    ilm_topology t;
    ilm_err err = {{0}};
    CHECK_MSG(ilm_topology_from_sysfs(&t, sysfs_case("offline-cpu"), &err) == 0, "%s", err.msg);
    CHECK_EQ(t.n_nodes, 1);
    CHECK_EQ(t.n_cpus, 7);   // 0-3,8-10; cpu 11 is offline
    CHECK_EQ(t.n_cores, 4);
    CHECK_EQ(find_cpu(&t, 11), -1);
    CHECK_EQ(t.cpus[find_cpu(&t, 10)].smt, 1);
    CHECK_EQ(t.cpus[find_cpu(&t, 3)].smt, 0);
    CHECK_EQ(t.cpus[find_cpu(&t, 9)].core, t.cpus[find_cpu(&t, 1)].core);
    ilm_topology_free(&t);
}

TEST(numa_sysfs_missing_tree_is_an_error) {
    ilm_topology t;
    ilm_err err = {{0}};
    CHECK(ilm_topology_from_sysfs(&t, "tests/data/sysfs/no-such-case", &err) != 0);
    CHECK(strstr(err.msg, "no online CPU") != NULL);
}

TEST(numa_this_machine) {
    ilm_topology t;
    ilm_err err = {{0}};
    CHECK_MSG(ilm_topology_from_sysfs(&t, NULL, &err) == 0, "%s", err.msg);
    CHECK(t.n_nodes >= 1 && t.n_cpus >= 1 && t.n_cores >= 1 && t.n_cores <= t.n_cpus);
    CHECK(!t.fake);
    CHECK(t.nodes[0].mem_total > 0);
    ilm_topology_free(&t);
#if defined(ILM_HWLOC) && ILM_HWLOC
    ilm_topology h;
    CHECK_MSG(ilm_topology_from_hwloc(&h, &err) == 0, "%s", err.msg);
    CHECK(h.n_cpus >= 1 && h.n_cores >= 1);
    ilm_topology_free(&h);
#endif
}

TEST(numa_topology_spec) {
    ilm_topology t;
    ilm_err err = {{0}};
    CHECK_EQ(ilm_topology_from_spec(&t, "2x4", &err), 0);
    CHECK(t.n_nodes == 2 && t.n_cpus == 8 && t.n_cores == 8 && t.fake);
    CHECK_EQ(t.cpus[find_cpu(&t, 5)].node, 1);
    ilm_topology_free(&t);

    CHECK_EQ(ilm_topology_from_spec(&t, "2x4x2@1G", &err), 0);
    CHECK(t.n_nodes == 2 && t.n_cpus == 16 && t.n_cores == 8);
    CHECK_EQ(t.nodes[1].mem_avail, 1ull << 30);
    CHECK_EQ(t.cpus[find_cpu(&t, 8)].core, t.cpus[find_cpu(&t, 0)].core);   // siblings N*C apart
    CHECK_EQ(t.cpus[find_cpu(&t, 8)].smt, 1);
    CHECK_EQ(t.cpus[find_cpu(&t, 12)].node, 1);
    ilm_topology_free(&t);

    const char *bad[] = {"", "2", "0x4", "2x", "2x4x", "2y4", "2x4@", "2x4@-1G", "100x1", "2x4x2x2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_MSG(ilm_topology_from_spec(&t, bad[i], &err) != 0, "accepted \"%s\"", bad[i]);
        CHECK(strstr(err.msg, "IRONLM_TOPOLOGY") != NULL);
    }
}

TEST(numa_env_override) {
    setenv("IRONLM_TOPOLOGY", "2x3", 1);
    ilm_topology t;
    ilm_err err = {{0}};
    int rc = ilm_topology_load(&t, &err);
    ilm_pool *pool = NULL;
    ilm_pool_opts o = {.n_threads = 0, .numa = ILM_NUMA_DISTRIBUTE, .pin = 1};
    int prc = ilm_pool_create(&pool, &o, &err);
    setenv("IRONLM_TOPOLOGY", "nonsense", 1);
    ilm_pool *bad = NULL;
    int brc = ilm_pool_create(&bad, &o, &err);
    unsetenv("IRONLM_TOPOLOGY");
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        CHECK(t.n_nodes == 2 && t.n_cpus == 6 && t.fake);
        CHECK(strstr(t.source, "2x3") != NULL);
        ilm_topology_free(&t);
    }
    CHECK_EQ(prc, 0);
    if (pool) {
        CHECK_EQ(ilm_pool_size(pool), 6);
        CHECK_EQ(ilm_pool_n_nodes(pool), 2);
        CHECK(strstr(ilm_pool_describe(pool), "IRONLM_TOPOLOGY=2x3") != NULL);
    }
    ilm_pool_destroy(pool);
    CHECK(brc != 0 && bad == NULL);
    CHECK(strstr(err.msg, "nonsense") != NULL);
}

TEST(numa_pool_on_sysfs_fixture) {
    ilm_topology t;
    ilm_err err = {{0}};
    if (ilm_topology_from_sysfs(&t, sysfs_case("2node-4core-smt2"), &err) != 0) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return;
    }
    ilm_pool *pool = NULL;
    ilm_pool_opts o = {.n_threads = 0, .numa = ILM_NUMA_DISTRIBUTE, .pin = 1};
    CHECK_MSG(ilm_pool_create_on(&pool, &o, &t, &err) == 0, "%s", err.msg);
    ilm_topology_free(&t);
    if (!pool) return;
    CHECK_EQ(ilm_pool_size(pool), 8);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(ilm_pool_node_of(pool, i), i % 2);
        CHECK_EQ(ilm_pool_rank_in_node(pool, i), i / 2);
        int cpu = ilm_pool_cpu_of(pool, i);
        CHECK(cpu < 8);                    // physical cores first, no SMT sibling
        CHECK_EQ((cpu % 8) / 4, i % 2);    // on its node
    }
    ilm_pool_destroy(pool);
}

// ---- placement --------------------------------------------------------------------------------

// Byte i of the buffer depends only on i, so any split of the fill gives the same bytes.
static unsigned char pattern(size_t i) { return (unsigned char)(i * 2654435761u >> 13); }

typedef struct {
    size_t bytes;
} fill_ctx;

static void fill_pattern(void *ctx, void *dst, int ith, int nth) {
    fill_ctx *f = ctx;
    size_t pages = (f->bytes + 4095) / 4096;
    int r0, r1;
    ilm_split_rows((int)pages, 1, ith, nth, &r0, &r1);
    unsigned char *d = dst;
    for (size_t i = (size_t)r0 * 4096; i < (size_t)r1 * 4096 && i < f->bytes; i++) d[i] = pattern(i);
}

static ilm_pool *fake_pool(const char *spec, int numa, int n_threads) {
    ilm_topology t;
    ilm_err err = {{0}};
    if (ilm_topology_from_spec(&t, spec, &err) != 0) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return NULL;
    }
    ilm_pool *pool = NULL;
    ilm_pool_opts o = {.n_threads = n_threads, .numa = numa, .pin = 1};
    if (ilm_pool_create_on(&pool, &o, &t, &err) != 0) t_fail(__FILE__, __LINE__, "%s", err.msg);
    ilm_topology_free(&t);
    return pool;
}

// Sends stderr to a file until capture_stderr_end, which returns what was written (malloc'd).
static void capture_stderr_begin(int *saved) {
    fflush(stderr);
    *saved = dup(2);
    int fd = open(t_tmp("stderr.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
}

static char *capture_stderr_end(int saved) {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return t_read(t_tmp("stderr.txt"), NULL);
}

static int count_substr(const char *s, const char *sub) {
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, sub)); p += strlen(sub)) n++;
    return n;
}

typedef struct {
    const ilm_placed *placed;
    const ilm_pool *pool;
    const void *seen[16];
} reader_ctx;

static void read_own_copy(void *ctx, int ith, int nth) {
    (void)nth;
    reader_ctx *r = ctx;
    r->seen[ith] = ilm_placed_for(r->placed, r->pool, ith);
}

static void check_replicate(const char *spec, int n_nodes) {
    ilm_pool *pool = fake_pool(spec, ILM_NUMA_REPLICATE, 0);
    if (!pool) return;
    CHECK_EQ(ilm_pool_n_nodes(pool), n_nodes);
    size_t bytes = 3 * 4096 + 123;
    ilm_placed p;
    ilm_err err = {{0}};
    fill_ctx f = {bytes};
    int saved;
    capture_stderr_begin(&saved);   // mbind to fake nodes may fail: that is reported, not fatal
    int rc = ilm_placed_alloc(pool, &p, bytes, fill_pattern, &f, &err);
    free(capture_stderr_end(saved));
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc != 0) goto done;
    CHECK_EQ(p.n_copies, n_nodes);
    CHECK_EQ(p.bytes, bytes);
    for (int k = 0; k < n_nodes; k++) {
        for (int j = 0; j < k; j++) CHECK(p.copy[k] != p.copy[j]);
        const unsigned char *c = p.copy[k];
        size_t bad = 0;
        for (size_t i = 0; i < bytes; i++) bad += c[i] != pattern(i);
        CHECK_MSG(bad == 0, "%s: replica %d has %zu wrong bytes", spec, k, bad);
        CHECK(memcmp(p.copy[k], p.copy[0], bytes) == 0);
    }
    // Every thread reads the copy of its own node.
    reader_ctx r = {&p, pool, {0}};
    ilm_pool_run(pool, read_own_copy, &r);
    for (int i = 0; i < ilm_pool_size(pool); i++) {
        CHECK_EQ(ilm_pool_node_of(pool, i), i % n_nodes);   // round-robin over the nodes
        CHECK(r.seen[i] == p.copy[ilm_pool_node_of(pool, i)]);
    }
    // Accounting: a full copy per node.
    ilm_placement_stats *st = ilm_pool_placement(pool);
    CHECK_EQ(st->logical_bytes, bytes);
    CHECK_EQ(st->resident_bytes, bytes * n_nodes);
    for (int k = 0; k < n_nodes; k++) CHECK_EQ(st->node_bytes[k], bytes);
    CHECK_EQ(ilm_pool_placed_cost(pool, 1000), 1000 * n_nodes);
    char line[256];
    ilm_pool_placement_describe(pool, (size_t)3 << 30, line, sizeof line);
    CHECK_MSG(strstr(line, "copies") && strstr(line, "node 1"), "%s", line);
    ilm_placed_free(&p);
    CHECK(p.copy[0] == NULL);
done:
    ilm_pool_destroy(pool);
}

TEST(numa_replicate_two_nodes) { check_replicate("2x2", 2); }
TEST(numa_replicate_four_nodes) { check_replicate("4x2x2", 4); }

TEST(numa_interleave_accounting) {
    ilm_pool *pool = fake_pool("2x2", ILM_NUMA_INTERLEAVE, 0);
    if (!pool) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), bytes = 5 * page + 100;
    ilm_placed p;
    ilm_err err = {{0}};
    fill_ctx f = {bytes};
    int saved;
    capture_stderr_begin(&saved);
    int rc = ilm_placed_alloc(pool, &p, bytes, fill_pattern, &f, &err);
    free(capture_stderr_end(saved));
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        CHECK_EQ(p.n_copies, 1);
        for (int k = 1; k < 8; k++) CHECK(p.copy[k] == p.copy[0]);
        reader_ctx r = {&p, pool, {0}};
        ilm_pool_run(pool, read_own_copy, &r);
        for (int i = 0; i < ilm_pool_size(pool); i++) CHECK(r.seen[i] == p.copy[0]);
        size_t bad = 0;
        for (size_t i = 0; i < bytes; i++) bad += ((unsigned char *)p.copy[0])[i] != pattern(i);
        CHECK_EQ(bad, 0);
        ilm_placement_stats *st = ilm_pool_placement(pool);
        CHECK_EQ(st->resident_bytes, bytes);
        CHECK_EQ(st->node_bytes[0], 3 * page);         // pages 0, 2, 4
        CHECK_EQ(st->node_bytes[1], 2 * page + 100);   // pages 1, 3 and the short page 5
        CHECK_EQ(ilm_pool_placed_cost(pool, bytes), bytes);
        ilm_placed_free(&p);
    }
    ilm_pool_destroy(pool);
}

TEST(numa_replicate_refuses_what_does_not_fit) {
    ilm_pool *pool = fake_pool("2x2@1M", ILM_NUMA_REPLICATE, 0);
    if (!pool) return;
    ilm_err err = {{0}};
    CHECK(ilm_pool_placement_fits(pool, 2u << 20, &err) != 0);
    CHECK_MSG(strstr(err.msg, "replicate") && strstr(err.msg, "node 0"), "%s", err.msg);
    ilm_placed p;
    fill_ctx f = {2u << 20};
    CHECK(ilm_placed_alloc(pool, &p, 2u << 20, fill_pattern, &f, &err) != 0);
    CHECK(strstr(err.msg, "available") != NULL);
    CHECK(p.copy[0] == NULL);
    CHECK_EQ(ilm_pool_placement(pool)->resident_bytes, 0);
    CHECK_EQ(ilm_pool_placement_fits(pool, 512u << 10, &err), 0);
    // what was placed already counts: two 600 KiB tensors do not fit in 1 MiB per node
    int saved;
    capture_stderr_begin(&saved);
    fill_ctx g = {600u << 10};
    CHECK_EQ(ilm_placed_alloc(pool, &p, 600u << 10, fill_pattern, &g, &err), 0);
    ilm_placed q;
    CHECK(ilm_placed_alloc(pool, &q, 600u << 10, fill_pattern, &g, &err) != 0);
    free(capture_stderr_end(saved));
    ilm_placed_free(&p);
    ilm_pool_destroy(pool);

    // interleave splits the need over the nodes: 1.5 MiB fits in 2 x 1 MiB
    pool = fake_pool("2x2@1M", ILM_NUMA_INTERLEAVE, 0);
    if (!pool) return;
    CHECK_EQ(ilm_pool_placement_fits(pool, 3u << 19, &err), 0);
    CHECK(ilm_pool_placement_fits(pool, 3u << 20, &err) != 0);
    ilm_pool_destroy(pool);
}

TEST(numa_mbind_failure_is_reported_once) {
    // Node numbers no kernel has: every mbind fails, whatever machine runs the test.
    ilm_topology t;
    ilm_err err = {{0}};
    if (ilm_topology_from_spec(&t, "2x2", &err) != 0) return;
    t.nodes[0].os_id = 1000, t.nodes[1].os_id = 1001;
    for (int policy = ILM_NUMA_INTERLEAVE; policy <= ILM_NUMA_REPLICATE; policy++) {
        ilm_pool *pool = NULL;
        ilm_pool_opts o = {.n_threads = 4, .numa = policy, .pin = 1};
        CHECK_MSG(ilm_pool_create_on(&pool, &o, &t, &err) == 0, "%s", err.msg);
        if (!pool) continue;
        int saved;
        capture_stderr_begin(&saved);
        ilm_placed p[3];
        int ok = 1;
        for (int i = 0; i < 3; i++) {
            fill_ctx f = {10000};
            ok &= ilm_placed_alloc(pool, &p[i], 10000, fill_pattern, &f, &err) == 0;
        }
        char *log = capture_stderr_end(saved);
        CHECK_MSG(ok, "%s", err.msg);
        ilm_placement_stats *st = ilm_pool_placement(pool);
        CHECK(st->mbind_failures >= 3);
        CHECK(st->mbind_last_errno != 0);
        CHECK_MSG(count_substr(log, "mbind") == 1, "stderr: %s", log ? log : "(none)");
        if (ok)
            for (int i = 0; i < 3; i++) {
                CHECK(((unsigned char *)p[i].copy[p[i].n_copies - 1])[9999] == pattern(9999));
                ilm_placed_free(&p[i]);
            }
        free(log);
        ilm_pool_destroy(pool);
    }
    ilm_topology_free(&t);
}

TEST(numa_one_node_degrades_to_plain) {
    for (int policy = ILM_NUMA_OFF; policy <= ILM_NUMA_REPLICATE; policy++) {
        ilm_pool *pool = fake_pool("1x2", policy, 0);
        if (!pool) return;
        CHECK_EQ(ilm_pool_n_nodes(pool), 1);
        ilm_placed p;
        ilm_err err = {{0}};
        fill_ctx f = {70000};
        CHECK_EQ(ilm_placed_alloc(pool, &p, 70000, fill_pattern, &f, &err), 0);
        CHECK_EQ(p.n_copies, 1);
        CHECK_EQ(ilm_pool_placement(pool)->mbind_failures, 0);   // nothing to bind
        CHECK_EQ(ilm_pool_placement(pool)->resident_bytes, 70000);
        CHECK(((unsigned char *)ilm_placed_for(&p, pool, 1))[69999] == pattern(69999));
        ilm_placed_free(&p);
        CHECK_EQ(ilm_placed_alloc(pool, &p, 0, fill_pattern, &f, &err), 0);   // empty tensor
        ilm_placed_free(&p);
        ilm_pool_destroy(pool);
    }
}
