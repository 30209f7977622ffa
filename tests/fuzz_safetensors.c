// fuzz_safetensors.c — libFuzzer target for the safetensors reader (make fuzz-run).
#include <stddef.h>
#include <stdint.h>

#include "format/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ilm_st *s;
    ilm_err err;
    if (ilm_st_open_mem(&s, data, size, "fuzz", &err) == 0) {
        // Touch what the converter touches: every tensor's first and last byte, every lookup.
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < s->n_tensors; i++) {
            if (s->tensors[i].bytes) {
                sink ^= ((const uint8_t *)s->tensors[i].data)[0];
                sink ^= ((const uint8_t *)s->tensors[i].data)[s->tensors[i].bytes - 1];
            }
            if (ilm_st_find(s, s->tensors[i].name) != &s->tensors[i]) __builtin_trap();
        }
        (void)sink;
        ilm_st_close(s);
    }
    return 0;
}
