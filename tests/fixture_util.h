// fixture_util.h — what the end-to-end tests share: reading the JSON references of
// ../shared/fixtures, opening a verifier (+ drafter) from the fixtures, collecting tokens.
#pragma once
#include <stdint.h>

#include "model/drafter.h"
#include "gen/engine.h"
#include "format/json.h"

// Parses fixture file `rel`; on failure records a test failure and returns NULL.
ilm_json *t_load_json(const char *rel);
// A JSON array of integers as a malloc'd int32 array (*n elements; NULL array -> 0).
int32_t *t_json_ids(const ilm_json *a, int *n);
// Opens fixture `target` (context 512, quiet) and, if `drafter` is not NULL, its drafter
// (*d = NULL otherwise). Records a failure and returns -1 on error.
int t_open_pair(const char *target, const char *drafter, int kv_type, ilm_engine *e, ilm_drafter **d);
// The same with the caller's engine options (model and verbose are set here).
int t_open_pair_with(const char *target, const char *drafter, const ilm_engine_opts *opts, ilm_engine *e,
                     ilm_drafter **d);

// ilm_gen_opts.on_token callback appending to a caller-sized array.
typedef struct {
    int32_t *out;
    int n;
} t_collect;
int t_collect_token(void *ctx, int32_t t);
// Greedy runner-up after ids[0..n) + gen[0..k) (from an empty cache of sequence 0): the
// margin between the top two logits and the runner-up's id (lowest id on ties).
void t_top2_after(ilm_engine *e, const int32_t *ids, int n, const int32_t *gen, int k, float *margin,
                  int32_t *second);
