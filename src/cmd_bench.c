// cmd_bench.c — `ironlm bench`: dispatches to the kernel benchmark (--kernels) or the
// model benchmark (bench.c).
#include <stdio.h>
#include <string.h>

#include "bench_kernels.h"
#include "commands.h"

int ilm_cmd_bench(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--kernels")) return ilm_cmd_bench_kernels(argc, argv);
    fprintf(stderr, "ironlm: error: bench: model benchmarks are not built yet; use ironlm bench --kernels\n");
    return 2;
}
