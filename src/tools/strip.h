// strip.h — rewriting a GGUF file without chosen metadata keys (src/tools/strip.c; the
// `ironlm strip` command is src/cli/cmd_strip.c).
#pragma once
#include "base/util.h"

// Rewrites IN to OUT without the listed metadata keys (tensors byte-identical); refuses
// OUT == IN; writes through a temp file + rename. *n_removed: how many keys were dropped.
int ilm_gguf_strip_file(const char *in, const char *out, const char *const *keys, int n_keys, int *n_removed,
                        ilm_err *err);
