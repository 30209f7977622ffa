// tokenizer_decode.c — ids → text for the Gemma 4 tokenizer (docs/gemma4.md §3.7,
// "Detokenization"): per-token pieces (built at load by tokenizer.c), whole sequences, and the
// streaming detokenizer that never emits half a UTF-8 character.
#include <stdlib.h>
#include <string.h>

#include "gen/tokenizer.h"

// ---- decoding ---------------------------------------------------------------------------------

const char *ilm_tok_piece(const ilm_tokenizer *t, int32_t id, bool render_special, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (!render_special && (t->type[id] == ILM_TOK_CONTROL || t->type[id] == ILM_TOK_UNKNOWN)) {
        *len = 0;
        return "";
    }
    *len = t->pieces[id].len;
    return t->arena + t->pieces[id].off;
}

static int bad_id(const ilm_tokenizer *t, int32_t id, ilm_err *err) {
    return ilm_fail(err, "token id %d is outside the vocabulary (%d tokens)", id, t->n_vocab);
}

int ilm_detokenize(const ilm_tokenizer *t, const int32_t *ids, int n_ids, bool render_special, char **text,
                   size_t *len, ilm_err *err) {
    size_t total = 0, n;
    for (int i = 0; i < n_ids; i++) {
        if (!ilm_tok_piece(t, ids[i], render_special, &n)) return bad_id(t, ids[i], err);
        total += n;
    }
    char *out = ilm_malloc(total + 1, err);
    if (!out) return -1;
    size_t o = 0;
    for (int i = 0; i < n_ids; i++) {
        const char *p = ilm_tok_piece(t, ids[i], render_special, &n);
        memcpy(out + o, p, n);
        o += n;
    }
    out[o] = 0;
    *text = out;
    *len = o;
    return 0;
}

// ---- streaming detokenizer --------------------------------------------------------------------

struct ilm_detok {
    const ilm_tokenizer *tok;
    bool render_special;
    char *buf;             // pending bytes + the newest piece
    size_t cap;
    char pending[4];       // the unfinished UTF-8 sequence held back (at most 3 bytes)
    size_t n_pending;
};

ilm_detok *ilm_detok_new(const ilm_tokenizer *t, bool render_special, ilm_err *err) {
    ilm_detok *d = ilm_calloc(1, sizeof *d, err);
    if (!d) return NULL;
    d->tok = t;
    d->render_special = render_special;
    d->cap = t->max_piece_len + sizeof d->pending;
    d->buf = ilm_malloc(d->cap, err);
    if (!d->buf) {
        free(d);
        return NULL;
    }
    return d;
}

void ilm_detok_free(ilm_detok *d) {
    if (!d) return;
    free(d->buf);
    free(d);
}

// Bytes of s[0..n) that can be shown now: complete characters and bytes that can never be part
// of one; a valid but unfinished sequence at the very end is held back.
static size_t utf8_emittable(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t need = ilm_tok_utf8_len(s[i]);
        size_t k = 1;
        while (k < need && i + k < n && (s[i + k] & 0xC0) == 0x80) k++;
        if (k == need) i += need;
        else if (i + k == n) return i;   // unfinished, may complete with the next token
        else i++;                        // broken sequence: let the lead byte through
    }
    return n;
}

const char *ilm_detok_push(ilm_detok *d, int32_t id, size_t *len, ilm_err *err) {
    size_t n;
    const char *p = ilm_tok_piece(d->tok, id, d->render_special, &n);
    if (!p) {
        bad_id(d->tok, id, err);
        return NULL;
    }
    memcpy(d->buf, d->pending, d->n_pending);
    memcpy(d->buf + d->n_pending, p, n);
    size_t total = d->n_pending + n;
    size_t emit = utf8_emittable((const uint8_t *)d->buf, total);
    d->n_pending = total - emit;
    memcpy(d->pending, d->buf + emit, d->n_pending);
    *len = emit;
    return d->buf;
}

const char *ilm_detok_flush(ilm_detok *d, size_t *len) {
    memcpy(d->buf, d->pending, d->n_pending);
    *len = d->n_pending;
    d->n_pending = 0;
    return d->buf;
}
