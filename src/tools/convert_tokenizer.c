// convert_tokenizer.c — placeholder until the tokenizer conversion lands (same branch window).
#include "tools/convert_tokenizer.h"

int ilm_convert_tokenizer(ilm_gguf_writer *w, const char *hf_dir, ilm_err *err) {
    (void)w;
    return ilm_fail(err, "%s: tokenizer conversion is not built yet", hf_dir);
}
