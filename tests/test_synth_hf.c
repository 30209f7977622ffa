// test_synth_hf.c — `ironlm synth --hf` (src/tools/synth_hf.c): the checkpoint it writes (bf16
// in 2 shards; W4A16 in one file) converts with `ironlm convert`, the GGUF runs, and `-m DIR`
// (converted in memory) gives byte-identical logits.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "format/json.h"
#include "harness.h"
#include "simd/types.h"
#include "tools/synth.h"

// Writes the checkpoint through the CLI, converts it, runs it and compares the logits of the
// file with those of the directory.
static void round_trip(const char *name, const char *flags) {
    char dir[512], gguf[600], cmd[4096];
    snprintf(dir, sizeof dir, "%s", t_tmp(name));
    snprintf(gguf, sizeof gguf, "%s.gguf", dir);
    snprintf(cmd, sizeof cmd, "%s synth --variant e2b --layers 2 --vocab 2048 --seed 3 --no-progress --hf %s %s 2>&1",
             t_bin(), dir, flags);
    CHECK_EQ(t_run(cmd, NULL), 0);
    snprintf(cmd, sizeof cmd, "%s convert %s %s >/dev/null 2>&1", t_bin(), dir, gguf);
    CHECK_EQ(t_run(cmd, NULL), 0);
    snprintf(cmd, sizeof cmd, "%s run -m %s -p hi -n 4 -t 2 >/dev/null 2>&1", t_bin(), gguf);
    CHECK_EQ(t_run(cmd, NULL), 0);
    snprintf(cmd, sizeof cmd,
             "%s logits -m %s -t 2 --act q8 -o %s.file.f32 --tokens 2,300,301,302 2>/dev/null && %s logits -m %s -t 2 --act q8 -o %s.dir.f32 "
             "--tokens 2,300,301,302 2>/dev/null && cmp -s %s.file.f32 %s.dir.f32",
             t_bin(), gguf, dir, t_bin(), dir, dir, dir, dir);
    CHECK_EQ(t_run(cmd, NULL), 0);
}

TEST(synth_hf_bf16_shards_convert_and_run) {
    round_trip("hf-bf16", "--shards 2");
    // two shards and their index, the text tower's names
    size_t n;
    char *idx = t_read(t_tmp("hf-bf16/model.safetensors.index.json"), &n);
    CHECK(idx != NULL);
    if (!idx) return;
    ilm_err err;
    ilm_json *j = ilm_json_parse(idx, n, &err);
    CHECK(j != NULL);
    const ilm_json *wm = j ? ilm_json_get(j, "weight_map") : NULL;
    CHECK(wm && wm->type == JSON_OBJ);
    const ilm_json *e = wm ? ilm_json_get(wm, "model.language_model.embed_tokens.weight") : NULL;
    CHECK(e && e->type == JSON_STR && !strcmp(e->str, "model-00001-of-00002.safetensors"));
    const ilm_json *q = wm ? ilm_json_get(wm, "model.language_model.layers.1.self_attn.q_proj.weight") : NULL;
    CHECK(q && q->type == JSON_STR && !strcmp(q->str, "model-00002-of-00002.safetensors"));
    ilm_json_free(j);
    free(idx);
    // the converted file has the planned GGUF tensors in the source precision
    ilm_gguf *g;
    if (ilm_gguf_open(&g, t_tmp("hf-bf16.gguf"), &err) == 0) {
        const ilm_gguf_tensor *t = ilm_gguf_find_tensor(g, "blk.1.attn_q.weight");
        CHECK(t && t->type == ILM_TYPE_BF16);
        CHECK(ilm_gguf_find_tensor(g, "rope_freqs.weight") != NULL);
        CHECK(ilm_gguf_find_tensor(g, "per_layer_token_embd.weight") != NULL);
        ilm_gguf_close(g);
    } else {
        CHECK_MSG(0, "%s", err.msg);
    }
}

TEST(synth_hf_w4a16_converts_to_q4_0) {
    round_trip("hf-w4a16", "--w4a16");
    ilm_err err;
    ilm_gguf *g;
    if (ilm_gguf_open(&g, t_tmp("hf-w4a16.gguf"), &err) == 0) {
        const ilm_gguf_tensor *t = ilm_gguf_find_tensor(g, "blk.0.ffn_down.weight");
        CHECK(t && t->type == ILM_TYPE_Q4_0);
        t = ilm_gguf_find_tensor(g, "token_embd.weight");
        CHECK(t && t->type == ILM_TYPE_BF16);
        ilm_gguf_close(g);
    } else {
        CHECK_MSG(0, "%s", err.msg);
    }
}

TEST(synth_hf_options) {
    ilm_err err;
    uint64_t bytes = 0;
    // dry run: the size without writing; a 12B bf16 checkpoint is ~24 GB
    ilm_synth_opts o = {.variant = "12b", .type = ILM_TYPE_BF16, .hf_dir = t_tmp("never"), .shards = 5, .dry_run = true};
    CHECK_EQ(ilm_synth_file(&o, &bytes, &err), 0);
    CHECK(bytes > 22000000000ull && bytes < 26000000000ull);
    o.drafter = true;
    CHECK(ilm_synth_file(&o, &bytes, &err) != 0 && strstr(err.msg, "drafter"));
    o.drafter = false;
    o.type = ILM_TYPE_Q4_0;
    CHECK(ilm_synth_file(&o, &bytes, &err) != 0 && strstr(err.msg, "bf16"));
    // no room: refused before anything is written
    o = (ilm_synth_opts){.variant = "e2b", .type = ILM_TYPE_BF16, .hf_dir = t_tmp("full"), .layers = 2, .vocab = 2048,
                         .free_bytes = 1000};
    CHECK(ilm_synth_file(&o, &bytes, &err) != 0 && strstr(err.msg, "not enough disk space"));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s synth --variant e2b --shards 2 -o x.gguf --type bf16 2>/dev/null", t_bin());
    CHECK_EQ(t_run(cmd, NULL), 2);
}
