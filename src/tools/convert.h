// convert.h — Hugging Face checkpoint directory → GGUF, no Python (`ironlm convert`, and the
// direct load of a checkpoint directory through a memfd).
//
// Supported: Gemma 4 text models (Gemma4ForConditionalGeneration: the text tower only;
// Gemma4ForCausalLM) in every variant (K=V, per-layer embeddings + KV sharing, double-wide MLP,
// 26B-A4B MoE), MTP drafters (Gemma4AssistantForCausalLM) in the upstream `gemma4-assistant`
// layout or ik's `gemma4_mtp` layout (docs/gemma4.md §3.4–3.5; the centroid head is kept in
// both), and compressed-tensors W4A16 checkpoints, repacked losslessly into Q4_0
// (docs/gemma4.md §5.6). Metadata: the keys the reference converter writes, in its order; the
// tokenizer keys come from tools/convert_tokenizer.h. Files: convert.c (driver),
// convert_config.c (config.json → hyper-parameters → keys), convert_tensors.c (names, shapes,
// types), convert_w4a16.c (the repack).
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "base/util.h"
#include "gen/engine.h"

enum { ILM_DRAFTER_ASSISTANT = 0, ILM_DRAFTER_MTP = 1 };

typedef struct {
    const char *hf_dir;   // checkpoint directory: config.json, *.safetensors, tokenizer files
    const char *out;      // output GGUF path (ilm_convert only)
    int type;             // ILM_TYPE_F32/F16/BF16/Q8_0/Q4_0 for the weights; -1: the source's
                          // precision (W4A16: Q4_0)
    int drafter_layout;   // ILM_DRAFTER_ASSISTANT (default) or ILM_DRAFTER_MTP
    bool progress;        // progress on stderr (a bar on a terminal, else a line per 10 %)
    int n_threads;        // threads converting rows (<= 0: one per physical core)
} ilm_convert_opts;

void ilm_convert_opts_default(ilm_convert_opts *o);

// Converts o->hf_dir into the GGUF o->out, tensor by tensor (memory: about one row plus one
// token-ordering table). Refuses to overwrite any input file or an existing non-regular output
// (a FIFO, a directory); on any error no output file is left. Notes (skipped vision/audio
// tensors, W4A16 tensors kept wider) go to stderr.
int ilm_convert(const ilm_convert_opts *o, ilm_err *err);

// The same into an anonymous in-memory file (memfd_create): returns the descriptor (>= 0,
// close-on-exec, offset at the end) whose content is byte-identical to ilm_convert's file, or
// -1 with err set. The GGUF reader opens it as "/proc/self/fd/N".
int ilm_convert_to_fd(const ilm_convert_opts *o, ilm_err *err);

// For `-m PATH` of the model commands: if PATH is a directory, converts it (source precision,
// upstream drafter layout, no progress) into a memfd, sets *fd and writes "/proc/self/fd/N" into
// buf; otherwise copies PATH into buf and sets *fd = -1. The caller closes *fd (>= 0) after
// loading. *w4a16 (may be NULL): the directory is a compressed-tensors W4A16 checkpoint, whose
// weights were trained with float activations (the commands then default to --act bf16).
// Returns 0, or -1 with err set.
int ilm_convert_resolve_model(const char *path, char *buf, size_t cap, int *fd, bool *w4a16, ilm_err *err);
// The activations a model command uses for a checkpoint: a W4A16 one was trained with float
// activations, so it gets --act bf16 unless --act was given.
void ilm_convert_pick_act(ilm_engine_opts *o, bool w4a16);

// The checkpoint name (Gemma4ForConditionalGeneration layout, "model.language_model." ...) of a
// target model's GGUF tensor: the converter's mapping in reverse (synth --hf uses it). Returns 0,
// or -1 when the tensor has no checkpoint name (rope_freqs.weight is generated) or cap is short.
int ilm_convert_hf_name(const char *gguf, char *buf, size_t cap);
