// bench_kernels.h — the measurements of `ironlm bench --kernels` (src/tools/bench_kernels.c):
// throughput of every matrix kernel x kernel set x batch width, next to the machine's
// measured read bandwidth. The options and the table are src/cli/cmd_bench_kernels.c.
#pragma once
#include <stddef.h>

#include "base/util.h"

// The read-bandwidth probe: the best of several read methods over a buffer far larger than the
// last-level cache (ilm_probe_buffer_bytes): the portable 16-byte loop and the active kernel
// set's widest loads (read_sum) at software prefetch distances 0..4 KiB, with n_threads
// threads and with one; two passes each. gb_s = 1e9 bytes/s of the fastest pass.
typedef struct {
    double gb_s;
    char method[96];      // "avx512bf16 loads, prefetch 1024 B, 2 threads"
    size_t bytes;         // the buffer
    size_t llc;           // ilm_kbench_llc_bytes()
} ilm_bw_probe;
ilm_bw_probe ilm_probe_read_bw(int n_threads);
double ilm_measure_read_bw(int n_threads);  // ilm_probe_read_bw(n_threads).gb_s
// Bytes the probe reads: max(1 GiB, 8 x LLC), at most 4 GiB and half the available memory.
size_t ilm_probe_buffer_bytes(void);
// The int8 dot-product peak of the active kernel set (its int8_dot_loop, the instructions
// mm_q8 uses) in GOPS (2 ops per multiply-add), n_threads pinned threads each running the
// tight loop at the clock they get; best of 3 passes. 0 when the set has no such loop.
double ilm_measure_int8_peak(int n_threads);

// The last-level cache in bytes: sysfs (cpu0's highest cache level), else what glibc reports
// (CPUID: L3, else L2), else 32 MiB.
size_t ilm_kbench_llc_bytes(void);
// Bytes of weights to stream per pass: 4x the LLC, at least 256 MiB, at most 2 GiB (VMs
// often report the whole socket's L3, far more than the cores we run on can use).
size_t ilm_kbench_stream_bytes(void);

typedef struct {
    int n_threads, rows, cols;  // cols a multiple of 32
    double min_time;            // seconds of timed passes per measurement (at least 2 passes)
    size_t mem;                 // weight bytes streamed per pass (copies of one matrix)
    const char *isa_list;       // comma list of kernel sets; NULL: every set but scalar
    const char *type_list;      // comma list of q4_0,q8_0,q4_0f,q8_0f,f16,bf16,f32; NULL: all
    int ns[16], n_ns;           // batch widths
} ilm_kbench_opts;

#define ILM_KBENCH_N_MAX 1024   // the widest batch (-n)

// Checks the lists before any work: every --isa name a kernel set compiled in and run by this
// CPU, every --types name one of the seven kinds; "--isa: ..." / "--types: ..." errors.
int ilm_kbench_check(const ilm_kbench_opts *o, ilm_err *err);

// One measurement: kernel set x kernel x batch width n, the fastest pass.
typedef struct {
    const char *isa, *kernel;   // "avx2", "q4_0 x q8"
    int n;
    double secs;                // the fastest pass
    double gb_s, bw_pct;        // weight bytes per second; its share of the read bandwidth (%)
    double gflop_s;
    double secs_n1;             // the fastest pass of the same kernel at n = 1; 0 if not measured
} ilm_kbench_row;

// Where the sweep reports: start once (read bandwidth in GB/s, the thread pool described),
// then row for each measurement as it is made.
typedef struct {
    void (*start)(void *ctx, double read_bw, const char *pool);
    void (*row)(void *ctx, const ilm_kbench_row *r);
    void *ctx;
} ilm_kbench_report;

// Selects the kernels (ilm_kernels_init), starts a pinned pool of o->n_threads, measures the
// read bandwidth, then for every weight kind x kernel set x batch width streams o->mem bytes
// of weights through mm_q8 / mm_f32 per pass. Returns 0, or -1 with err set.
int ilm_kbench_run(const ilm_kbench_opts *o, const ilm_kbench_report *out, ilm_err *err);
