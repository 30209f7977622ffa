// cmd_gguf.h — the `inspect` and `strip` sub-commands.
#pragma once
#include "base/util.h"

int ilm_cmd_inspect(int argc, char **argv);
int ilm_cmd_strip(int argc, char **argv);
// Rewrites IN to OUT without the listed metadata keys (tensors byte-identical); refuses
// OUT == IN; writes through a temp file + rename.
int ilm_gguf_strip_file(const char *in, const char *out, const char *const *keys, int n_keys, int *n_removed,
                        ilm_err *err);
