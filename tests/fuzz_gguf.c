// fuzz_gguf.c — libFuzzer target for the GGUF parser (make fuzz).
#include <stddef.h>
#include <stdint.h>

#include "format/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ilm_gguf *g;
    ilm_err err;
    if (ilm_gguf_open_mem(&g, data, size, "fuzz", &err) == 0) {
        // Touch what a loader touches: every tensor's first and last byte, every key.
        volatile uint8_t sink = 0;
        for (int64_t i = 0; i < g->n_tensors; i++)
            if (g->tensors[i].bytes) {
                sink ^= ((const uint8_t *)g->tensors[i].data)[0];
                sink ^= ((const uint8_t *)g->tensors[i].data)[g->tensors[i].bytes - 1];
            }
        for (int64_t i = 0; i < g->n_kv; i++) (void)ilm_gguf_find_kv(g, g->kv[i].key);
        (void)sink;
        ilm_gguf_close(g);
    }
    return 0;
}
