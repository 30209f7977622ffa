// bench_kernels.h — `ironlm bench --kernels`: throughput of every matrix kernel x kernel set
// x batch width, next to the machine's measured read bandwidth (src/tools/bench_kernels.c).
#pragma once

// Runs the kernel benchmark and prints its table on stdout; returns 0, or 1 after printing
// "ironlm: error: ..." on stderr. Options: -t N, --isa a,b, --types q4_0,q8_0,..,
// -n 1,2,4, --rows R, --cols K, --mem MiB, --min-time S (see --help).
int ilm_cmd_bench_kernels(int argc, char **argv);

// STREAM-like read bandwidth in GB/s (1e9 bytes/s) with n_threads threads: every thread sums
// its slice of a buffer far larger than the last-level cache; best of several passes.
double ilm_measure_read_bw(int n_threads);
