// synth.h — GGUF files with the exact tensor names, shapes and metadata of a real Gemma 4
// variant (docs/gemma4.md §1, §3) and seeded random weights, for benchmarks and real-shape
// tests without downloading checkpoints (src/tools/synth_*.c; the `ironlm synth` command is
// src/cli/cmd_synth.c).
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/util.h"

enum {
    ILM_SYNTH_MAX_LAYERS = 64,   // the largest --layers (and the most layers of any variant)
    ILM_SYNTH_VOCAB = 262144,    // the real vocabulary size, the largest --vocab
};

typedef struct {
    const char *variant;    // "e2b", "e4b", "12b", "26b-a4b", "31b"
    int type;               // ILM_TYPE_Q4_0, _Q8_0, _F16 or _BF16 (2-D/3-D weights)
    const char *out;
    uint64_t seed;
    int layers;             // > 0: only the first N layers (rule in synth_plan.c); ignored for drafters
    bool drafter;           // the variant's MTP drafter (arch gemma4_mtp) instead
    int vocab;              // 0: the real 262144; tests use a smaller one to keep files small
    int n_threads;          // <= 0: every online CPU
    bool progress;          // progress bar on stderr
    bool dry_run;           // print the plan and size, write nothing
    uint64_t free_bytes;    // 0: ask the file system (statvfs); else pretend this much is free
    // Hugging Face checkpoint instead of a GGUF (ilm_synth_hf): type is then the dtype of
    // every tensor (ILM_TYPE_BF16, _F16 or _F32)
    const char *hf_dir;     // non-NULL: write this directory (created if missing)
    int shards;             // <= 1: model.safetensors; else N shards + model.safetensors.index.json
    bool w4a16;             // the linear layers as compressed-tensors pack-quantized W4A16
} ilm_synth_opts;

// Writes the file (through a temp file + rename), or the checkpoint when opts->hf_dir is set.
// On success *bytes_out (if non-NULL) is the file size (the checkpoint: all its files).
int ilm_synth_file(const ilm_synth_opts *opts, uint64_t *bytes_out, ilm_err *err);

// The planned model as a Hugging Face checkpoint in opts->hf_dir (src/tools/synth_hf.c):
// config.json (Gemma4ForConditionalGeneration, the variant's text_config), the weights in
// model.safetensors or opts->shards shards with model.safetensors.index.json, tokenizer.json
// (the synth vocabulary as BPE) and tokenizer_config.json; what `ironlm convert` reads.
// Streams tensor by tensor: memory is a few chunks of rows whatever the model size. Drafters
// are not supported. On failure the files written so far are removed.
int ilm_synth_hf(const ilm_synth_opts *opts, uint64_t *bytes_out, ilm_err *err);

// The tensor table a synth file would have (names, types, shapes in file order), without
// writing anything. *tensors is malloc'd.
typedef struct {
    char name[64];
    int type, n_dims;
    int64_t ne[4];
} ilm_synth_tensor;
int ilm_synth_plan(const ilm_synth_opts *opts, ilm_synth_tensor **tensors, int *n, ilm_err *err);

// The disk-room rule: fails with a message naming `path`, the size and the free space if
// `need` bytes (plus a margin) do not fit in `avail`.
int ilm_synth_check_space(uint64_t need, uint64_t avail, const char *path, ilm_err *err);

// Whether `name` is one of the variants ("e2b", "e4b", "12b", "26b-a4b", "31b").
bool ilm_synth_variant_known(const char *name);
