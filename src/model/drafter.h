// drafter.h — Gemma 4's MTP "assistant" drafter (docs/gemma4.md §4): a 4-layer model that
// reads the verifier's KV cache and final hidden state and proposes the next tokens.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "model/kv.h"
#include "model/model.h"

typedef struct ilm_drafter ilm_drafter;

// Loads a drafter for `target`: arch gemma4_mtp (ik_llama.cpp), gemma4-assistant
// (llama.cpp) or gemma4_assistant (community files). Refuses a drafter whose vocabulary,
// backbone width, head dims or KV head counts do not fit the target.
int ilm_drafter_load(ilm_drafter **out, const char *path, const ilm_model *target, ilm_pool *pool, int act,
                     ilm_err *err);
void ilm_drafter_free(ilm_drafter *d);
const char *ilm_drafter_describe(const ilm_drafter *d);

// One drafter step at position `pos` (§4.2): input token `tok` and conditioning vector g
// (length H_t). The verifier cache must hold exactly the positions < pos that the draft may
// see. Returns the argmax token (lowest id on ties; over the centroid candidates when the
// drafter has an ordered-embedding head) and sets *conf (may be NULL) to its softmax
// probability. g_next (length H_t; may be NULL) receives the next step's conditioning
// vector; logits (may be NULL) the full-vocabulary logits.
int32_t ilm_drafter_step(ilm_drafter *d, const ilm_kv *kv, int32_t tok, const float *g, int pos, float *g_next,
                         float *conf, float *logits);

// Scratch for batched steps of up to nb rows (ilm_drafter_step_batch, ilm_drafter_chains).
int ilm_drafter_reserve(ilm_drafter *d, int nb, ilm_err *err);

// n drafter steps at once, row r for its own sequence: cache kvs[r], token toks[r],
// conditioning g[r] ([n][H_t]), position pos[r]; out[r] the argmax, conf[r] (may be NULL) its
// probability, g_next ([n][H_t]) and logits ([n][V]) as in ilm_drafter_step (may be NULL).
// Each row gets exactly what ilm_drafter_step gives it alone (the matrix kernels compute every
// column independently). n <= the reserved rows.
int ilm_drafter_step_batch(ilm_drafter *d, int n, const ilm_kv *const *kvs, const int32_t *toks, const float *g,
                           const int *pos, float *g_next, int32_t *out, float *conf, float *logits);

// Verification hook, off by default (ILM_DRAFT_CLEAN: the cache holds positions < pos,
// sliding layers see pos-W < j < pos, what decoding uses). It reproduces a reference's
// attention so tests can check all other drafter math against it; never used for decoding.
//  * ILM_DRAFT_HF_ASSISTED: transformers' assisted generation (hf/mtp*-ref.json
//    assistant_calls) masks the shared sliding K/V with a bidirectional window |q-k| <= W
//    and, the query having no entry of its own, shows W+1 past positions (pos-W-1 .. pos-1)
//    instead of W-1.
enum ilm_drafter_attention { ILM_DRAFT_CLEAN, ILM_DRAFT_HF_ASSISTED };
void ilm_drafter_emulate(ilm_drafter *d, enum ilm_drafter_attention mode);

// The draft chain of §4.5: up to n tokens, all at position `pos`. A draft whose probability
// is below p_min stops the chain (the first draft is always kept). Returns the count.
int ilm_drafter_chain(ilm_drafter *d, const ilm_kv *kv, int32_t t0, const float *g0, int pos, int n, float p_min,
                      int32_t *drafts, float *confs);
// n chains at once (one per sequence), each step of all running chains one batched step:
// chain i starts from t0[i], g0[i] ([n][H_t]) at pos[i] over kvs[i] and drafts up to len[i]
// tokens into drafts[i·ld ..] (confs likewise, may be NULL), stopping where its draft's
// probability is below p_min[i]; count[i] gets how many. The same
// drafts as n separate ilm_drafter_chain calls. Returns -1 when n exceeds the reserved rows.
int ilm_drafter_chains(ilm_drafter *d, int n, const ilm_kv *const *kvs, const int32_t *t0, const float *g0,
                       const int *pos, const int *len, const float *p_min, int32_t *drafts, int ld, int *count,
                       float *confs);
