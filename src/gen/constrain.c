// constrain.c — the JSON automaton, the schema compiler and the token mask. See constrain.h.
// Length: one automaton, one file — the byte grammar, the schema compiler that builds its nodes and
// the token mask that walks it over the vocabulary trie share the frame and node encodings.
#include "gen/constrain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "format/json.h"

// ---- compiled schema ------------------------------------------------------------------------

enum { N_ANY, N_ANYOBJ, N_OBJ, N_ARR, N_STR, N_NUM, N_INT, N_LIT, N_ANYOF, N_CALLS };
// Fixed nodes every schema has: any value and its parts.
enum { NODE_ANY, NODE_ANYOBJ, NODE_ANYARR, NODE_STR, NODE_NUM, NODE_KEYWORD, NODE_FIXED };

typedef struct {
    uint8_t kind;
    int32_t first, n;       // props (OBJ), lits (LIT), alts (ANYOF), functions (CALLS)
    int32_t items;          // ARR
    uint32_t min, max;      // ARR; CALLS: max 1 = several calls in a row allowed
} cnode;
typedef struct {
    char *text;             // OBJ: the key as JSON text with its quotes (Gemma: bare); LIT: the value's
                            // compact text; CALLS: VB_OPEN "call:NAME{"
    uint32_t len;
    int32_t node;           // OBJ: the value's schema; CALLS: the arguments' (an object)
    bool required;
} citem;

typedef struct {
    cnode *nodes;
    int32_t n_nodes, cap_nodes;
    citem *items;
    int32_t n_items, cap_items;
    int32_t *alts;
    int32_t n_alts, cap_alts;
    int32_t root;
    bool gemma;             // Gemma 4 tool-call notation instead of JSON (see constrain.h)
} schema;

// Gemma notation's three markers are single special tokens; the automaton sees each as one
// byte that never occurs in UTF-8 text (byte-fallback tokens of these bytes are left out of the
// vocabulary tables, so only the marker token can produce it).
#define VB_QUOTE 0xF8   // <|"|>
#define VB_OPEN 0xF9    // <|tool_call>
#define VB_CLOSE 0xFA   // <tool_call|>
static const char *const MARKER_TEXT[3] = {"<|\"|>", "<|tool_call>", "<tool_call|>"};

// ---- the vocabulary -------------------------------------------------------------------------

typedef struct {
    int32_t n_nodes, cap_nodes, n_edges, cap_edges, n_toks;
    int32_t *e_off, *t_off;     // [node] first edge, first token
    uint16_t *e_cnt;            // [node]
    int32_t *t_cnt;             // [node]
    uint8_t *e_byte;            // [edge]
    int32_t *e_child;           // [edge]
    int32_t *toks;              // token ids, grouped by the node they end at
} trie;

struct ilm_constraint_vocab {
    int32_t n_vocab;
    uint32_t *p_off, *p_len;    // [n_vocab] piece of each token in `bytes` (len 0: never allowed)
    uint8_t *bytes;
    uint64_t *plain;            // bitset: pieces that leave a string's plain state unchanged
    uint64_t *gplain;           // the same for a Gemma-notation string (quotes and backslashes plain)
    trie all, nonplain, gnonplain;
    int32_t marker[3];          // token ids of <|"|>, <|tool_call>, <tool_call|> (-1: absent)
    int32_t eog[ILM_TOK_MAX_EOG];
    int n_eog;
};

struct ilm_constraint {
    schema sc;
    const ilm_constraint_vocab *v;
    ilm_constraint_vocab *owned;
    struct pentry { ilm_con_frame f; int32_t next; } *pool;
    int32_t pool_cap;
    bool oom;
    ilm_constraint_state cur;
    uint64_t *allow;            // [n_vocab/64] the mask of state `mask_gen`
    uint64_t counter, mask_gen;  // counter: the last state number given out
};

// ---- the automaton -----------------------------------------------------------------------------

enum { M_ROOT, M_VAL, M_OBJ, M_ARR, M_STR, M_NUM, M_LIT, M_BKEY, M_CALLS };
enum { R_START, R_DONE };
enum { O_FIRST, O_KEYSTART, O_KEY, O_COLON, O_AFTER };
enum { A_FIRST, A_AFTER };
enum { S_NORM, S_ESC, S_HEX, S_UTF };
enum { NS_MINUS, NS_ZERO, NS_INT, NS_DOT, NS_FRAC, NS_E, NS_ESIGN, NS_EXP };
enum { CS_START, CS_NAME, CS_CLOSE, CS_CLOSED };
#define NUM_LONG 24

static bool is_ws(int b) { return b == ' ' || b == '\n' || b == '\t' || b == '\r'; }
static bool is_digit(int b) { return b >= '0' && b <= '9'; }
static bool is_hex(int b) { return is_digit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F'); }
#define BKEY_LONG 64
static bool is_key_char(int b) {  // a bare key of Gemma notation (any-object arguments)
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || is_digit(b) || b == '_' || b == '-' || b == '.' || b == '$';
}

static ilm_con_frame frame(int node, int mode, int sub) {
    ilm_con_frame f = {(uint16_t)node, (uint8_t)mode, (uint8_t)sub, 0, 0, 0};
    return f;
}

static bool push(ilm_constraint *c, ilm_con_st *s, ilm_con_frame f) {
    if (s->depth >= ILM_CON_MAX_DEPTH) return false;
    if (c->cur.pool_len == c->pool_cap) {
        int32_t cap = c->pool_cap ? c->pool_cap * 2 : 1024;
        struct pentry *p = realloc(c->pool, (size_t)cap * sizeof *p);
        if (!p) {
            c->oom = true;
            return false;
        }
        c->pool = p;
        c->pool_cap = cap;
    }
    int32_t i = c->cur.pool_len++;
    c->pool[i].f = s->top;
    c->pool[i].next = s->below;
    s->below = i;
    s->top = f;
    s->depth++;
    return true;
}

static void pop(const ilm_constraint *c, ilm_con_st *s) {
    s->top = c->pool[s->below].f;
    s->below = c->pool[s->below].next;
    s->depth--;
}

static bool st_eq(const ilm_con_st *x, const ilm_con_st *y) {
    return x->below == y->below && x->ws == y->ws && x->depth == y->depth && x->top.node == y->top.node &&
           x->top.mode == y->top.mode && x->top.sub == y->top.sub && x->top.a == y->top.a && x->top.b == y->top.b &&
           x->top.c == y->top.c;
}

static void emit(ilm_con_st *out, int *n, const ilm_con_st *s) {
    for (int i = 0; i < *n; i++)
        if (st_eq(&out[i], s)) return;
    if (*n < ILM_CON_MAX_SET) out[(*n)++] = *s;
}

// First item k in [lo, hi] whose text agrees with item lo's first pos bytes and has byte b at
// pos; -1 if none. Items before lo already disagreed with an earlier byte.
static int lit_next(const schema *sc, int first, int lo, int hi, int pos, int b) {
    const citem *base = &sc->items[first + lo];
    for (int k = lo; k <= hi; k++) {
        const citem *it = &sc->items[first + k];
        if (it->len > (uint32_t)pos && (uint8_t)it->text[pos] == b && !memcmp(it->text, base->text, (size_t)pos))
            return k;
    }
    return -1;
}

// Some item in [lo, hi] equals item lo's first pos bytes exactly (the literal may end here).
static bool lit_complete(const schema *sc, int first, int lo, int hi, int pos) {
    const citem *base = &sc->items[first + lo];
    for (int k = lo; k <= hi; k++) {
        const citem *it = &sc->items[first + k];
        if (it->len == (uint32_t)pos && !memcmp(it->text, base->text, (size_t)pos)) return true;
    }
    return false;
}

// The last property a key at `next` may name: the first required one at or after it.
static int key_last(const schema *sc, const cnode *nd, int next) {
    for (int k = next; k < nd->n; k++)
        if (sc->items[nd->first + k].required) return k;
    return nd->n - 1;
}

static bool required_left(const schema *sc, const cnode *nd, int next) {
    for (int k = next; k < nd->n; k++)
        if (sc->items[nd->first + k].required) return true;
    return false;
}

static bool num_complete(int sub) { return sub == NS_ZERO || sub == NS_INT || sub == NS_FRAC || sub == NS_EXP; }

// Whitespace where the grammar allows it: counted, at most ILM_CON_MAX_WS in a row (none in
// Gemma notation: the template writes none).
#define WS_OR_RESET                                     \
    do {                                                \
        if (is_ws(b) && !sc->gemma) {                              \
            if (s.ws >= ILM_CON_MAX_WS) return;         \
            s.ws++;                                     \
            emit(out, n, &s);                           \
            return;                                     \
        }                                               \
        s.ws = 0;                                       \
    } while (0)

// One byte from one state: the successor states are added to out (none: b is rejected).
static void step1(ilm_constraint *c, ilm_con_st s, int b, ilm_con_st *out, int *n) {
    const schema *sc = &c->sc;
    for (;;) {
        ilm_con_frame *f = &s.top;
        const cnode *nd = &sc->nodes[f->node];
        switch (f->mode) {
        case M_ROOT:
            if (f->sub == R_DONE) return;
            if (!sc->gemma) WS_OR_RESET;
            f->sub = R_DONE;
            if (!push(c, &s, frame(sc->root, sc->gemma ? M_CALLS : M_VAL, 0))) return;  // 0: CS_START
            continue;
        case M_VAL:
            WS_OR_RESET;
            switch (nd->kind) {
            case N_ANYOF:
                for (int k = 0; k < nd->n; k++) {
                    ilm_con_st t = s;
                    t.top.node = (uint16_t)sc->alts[nd->first + k];
                    step1(c, t, b, out, n);
                }
                return;
            case N_ANY:
                f->node = b == '{' ? NODE_ANYOBJ : b == '[' ? NODE_ANYARR : b == (sc->gemma ? VB_QUOTE : '"') ? NODE_STR
                        : b == '-' || is_digit(b) ? NODE_NUM : b == 't' || b == 'f' || b == 'n' ? NODE_KEYWORD : 0;
                if (f->node == 0) return;
                continue;
            case N_ANYOBJ:
            case N_OBJ:
                if (b != '{') return;
                *f = frame(f->node, M_OBJ, O_FIRST);
                emit(out, n, &s);
                return;
            case N_ARR:
                if (b != '[') return;
                *f = frame(f->node, M_ARR, A_FIRST);
                emit(out, n, &s);
                return;
            case N_STR:
                if (b != (sc->gemma ? VB_QUOTE : '"')) return;
                *f = frame(f->node, M_STR, S_NORM);
                emit(out, n, &s);
                return;
            case N_NUM:
            case N_INT:
                if (b == '-') *f = frame(f->node, M_NUM, NS_MINUS);
                else if (b == '0') *f = frame(f->node, M_NUM, NS_ZERO);
                else if (is_digit(b)) *f = frame(f->node, M_NUM, NS_INT);
                else return;
                f->a = 1;
                emit(out, n, &s);
                return;
            case N_LIT:
                *f = frame(f->node, M_LIT, 0);
                continue;
            }
            return;
        case M_OBJ:
            if (f->sub != O_KEY) WS_OR_RESET;
            switch (f->sub) {
            case O_FIRST:
            case O_KEYSTART:
                if (b == '}' && f->sub == O_FIRST && (nd->kind == N_ANYOBJ || !required_left(sc, nd, 0))) {
                    pop(c, &s);
                    emit(out, n, &s);
                    return;
                }
                if (sc->gemma && nd->kind == N_ANYOBJ) {  // a bare key
                    if (!is_key_char(b)) return;
                    f->sub = O_COLON;
                    ilm_con_frame k = frame(NODE_STR, M_BKEY, 0);
                    k.a = 1;
                    if (push(c, &s, k)) emit(out, n, &s);
                    return;
                }
                if (b != '"' && !sc->gemma) return;  // JSON keys start with their quote (part of the text)
                if (nd->kind == N_ANYOBJ) {
                    f->sub = O_COLON;
                    if (push(c, &s, frame(NODE_STR, M_STR, S_NORM))) emit(out, n, &s);
                    return;
                }
                if (f->a >= nd->n) return;
                f->sub = O_KEY;
                f->b = f->a;
                f->c = 0;
                continue;
            case O_KEY: {
                int k = lit_next(sc, nd->first, f->b, key_last(sc, nd, f->a), f->c, b);
                if (k < 0) return;
                f->b = (uint16_t)k;
                f->c++;
                if (f->c == sc->items[nd->first + k].len) {
                    f->sub = O_COLON;
                    f->a = (uint16_t)(k + 1);
                }
                emit(out, n, &s);
                return;
            }
            case O_COLON:
                if (b != ':') return;
                f->sub = O_AFTER;
                if (push(c, &s, frame(nd->kind == N_ANYOBJ ? NODE_ANY : sc->items[nd->first + f->b].node, M_VAL, 0)))
                    emit(out, n, &s);
                return;
            case O_AFTER:
                if (b == ',' && (nd->kind == N_ANYOBJ || f->a < nd->n)) {
                    f->sub = O_KEYSTART;
                    emit(out, n, &s);
                } else if (b == '}' && (nd->kind == N_ANYOBJ || !required_left(sc, nd, f->a))) {
                    pop(c, &s);
                    emit(out, n, &s);
                }
                return;
            }
            return;
        case M_ARR:
            WS_OR_RESET;
            if (f->sub == A_FIRST) {
                if (b == ']') {
                    if (nd->min > 0) return;
                    pop(c, &s);
                    emit(out, n, &s);
                    return;
                }
                if (nd->max == 0) return;
                f->sub = A_AFTER;
                f->a = 1;
                if (!push(c, &s, frame(nd->items, M_VAL, 0))) return;
                continue;
            }
            if (b == ',' && f->a < nd->max) {
                f->a++;
                if (push(c, &s, frame(nd->items, M_VAL, 0))) emit(out, n, &s);
            } else if (b == ']' && f->a >= nd->min) {
                pop(c, &s);
                emit(out, n, &s);
            }
            return;
        case M_STR:
            switch (f->sub) {
            case S_NORM:
                if (sc->gemma) {  // verbatim text up to the closing <|"|>
                    if (b == VB_QUOTE) {
                        pop(c, &s);
                        emit(out, n, &s);
                        return;
                    }
                    if (b < 0x20 && b != '\n' && b != '\t' && b != '\r') return;
                    if (b < 0x80) {
                        emit(out, n, &s);
                        return;
                    }
                }
                if (b == '"' && !sc->gemma) pop(c, &s);
                else if (b == '\\' && !sc->gemma) f->sub = S_ESC;
                else if (b < 0x20) return;
                else if (b >= 0x80) {
                    int rem, lo = 0x80, hi = 0xBF;
                    if (b >= 0xC2 && b <= 0xDF) rem = 1;
                    else if (b >= 0xE0 && b <= 0xEF) {
                        rem = 2;
                        if (b == 0xE0) lo = 0xA0;
                        if (b == 0xED) hi = 0x9F;
                    } else if (b >= 0xF0 && b <= 0xF4) {
                        rem = 3;
                        if (b == 0xF0) lo = 0x90;
                        if (b == 0xF4) hi = 0x8F;
                    } else return;
                    f->sub = S_UTF;
                    f->a = (uint16_t)rem;
                    f->b = (uint16_t)lo;
                    f->c = (uint16_t)hi;
                }
                emit(out, n, &s);
                return;
            case S_ESC:
                if (b == 'u') {
                    f->sub = S_HEX;
                    f->a = 0;
                } else if (b && strchr("\"\\/bfnrt", b)) f->sub = S_NORM;
                else return;
                emit(out, n, &s);
                return;
            case S_HEX:
                if (!is_hex(b)) return;
                if (++f->a == 4) f->sub = S_NORM, f->a = 0;
                emit(out, n, &s);
                return;
            case S_UTF:
                if (b < f->b || b > f->c) return;
                f->b = 0x80;
                f->c = 0xBF;
                if (--f->a == 0) f->sub = S_NORM, f->b = f->c = 0;
                emit(out, n, &s);
                return;
            }
            return;
        case M_NUM: {
            const bool integer = nd->kind == N_INT, room = f->a < NUM_LONG;
            int next = -1;
            switch (f->sub) {
            case NS_MINUS: next = b == '0' ? NS_ZERO : is_digit(b) ? NS_INT : -1; break;
            case NS_ZERO:
            case NS_INT:
            case NS_FRAC:
                if (is_digit(b) && f->sub != NS_ZERO) next = room ? f->sub : -1;
                else if (b == '.' && f->sub != NS_FRAC) next = room && !integer ? NS_DOT : -1;
                else if (b == 'e' || b == 'E') next = room && !integer ? NS_E : -1;
                break;
            case NS_DOT: next = is_digit(b) ? NS_FRAC : -1; break;
            case NS_E: next = b == '+' || b == '-' ? NS_ESIGN : is_digit(b) ? NS_EXP : -1; break;
            case NS_ESIGN: next = is_digit(b) ? NS_EXP : -1; break;
            case NS_EXP: next = is_digit(b) && room ? NS_EXP : -1; break;
            }
            if (next >= 0) {
                f->sub = (uint8_t)next;
                f->a++;
                emit(out, n, &s);
                return;
            }
            if (!num_complete(f->sub)) return;
            pop(c, &s);  // the number ended: b belongs to what follows
            continue;
        }
        case M_LIT: {
            int k = lit_next(sc, nd->first, f->a, nd->n - 1, f->b, b);
            if (k >= 0) {
                f->a = (uint16_t)k;
                f->b++;
                emit(out, n, &s);
                return;
            }
            if (!lit_complete(sc, nd->first, f->a, nd->n - 1, f->b)) return;
            pop(c, &s);
            continue;
        }
        case M_BKEY:  // a bare key's characters; anything else ends it
            if (is_key_char(b) && f->a < BKEY_LONG) {
                f->a++;
                emit(out, n, &s);
                return;
            }
            pop(c, &s);
            continue;
        case M_CALLS:  // (<|tool_call>call:NAME{args}<tool_call|>)+
            switch (f->sub) {
            case CS_START:
                *f = frame(f->node, M_CALLS, CS_NAME);
                continue;
            case CS_NAME: {
                int k = lit_next(sc, nd->first, f->b, nd->n - 1, f->c, b);
                if (k < 0) return;
                f->b = (uint16_t)k;
                f->c++;
                if (f->c == sc->items[nd->first + k].len) {  // the text ends with the arguments' '{'
                    f->sub = CS_CLOSE;
                    if (!push(c, &s, frame(sc->items[nd->first + k].node, M_OBJ, O_FIRST))) return;
                }
                emit(out, n, &s);
                return;
            }
            case CS_CLOSE:
                if (b != VB_CLOSE) return;
                f->sub = CS_CLOSED;
                emit(out, n, &s);
                return;
            case CS_CLOSED:
                if (b != VB_OPEN || !nd->max) return;
                f->sub = CS_START;
                continue;
            }
            return;
        }
        return;
    }
}

static int step_set(ilm_constraint *c, const ilm_con_st *in, int n_in, int b, ilm_con_st *out) {
    int n = 0;
    for (int i = 0; i < n_in; i++) step1(c, in[i], b, out, &n);
    return n;
}

static bool st_done(const ilm_constraint *c, ilm_con_st s) {
    for (;;) {
        const ilm_con_frame *f = &s.top;
        if (f->mode == M_ROOT) return f->sub == R_DONE;
        if ((f->mode == M_NUM && num_complete(f->sub)) || (f->mode == M_CALLS && f->sub == CS_CLOSED)) {
            pop(c, &s);
            continue;
        }
        if (f->mode == M_LIT) {
            const cnode *nd = &c->sc.nodes[f->node];
            if (!lit_complete(&c->sc, nd->first, f->a, nd->n - 1, f->b)) return false;
            pop(c, &s);
            continue;
        }
        return false;
    }
}

bool ilm_constraint_done(const ilm_constraint *c) {
    if (c->cur.ended) return false;
    for (int i = 0; i < c->cur.n; i++)
        if (st_done(c, c->cur.s[i])) return true;
    return false;
}

// Steps the committed state over bytes; on failure the state is left as it was.
static int feed(ilm_constraint *c, const uint8_t *p, size_t len) {
    if (c->cur.ended) return -1;
    ilm_constraint_state save = c->cur;
    ilm_con_st tmp[2][ILM_CON_MAX_SET];
    const ilm_con_st *in = c->cur.s;
    int n = c->cur.n, w = 0;
    for (size_t i = 0; i < len && n > 0; i++) {
        n = step_set(c, in, n, p[i], tmp[w]);
        in = tmp[w];
        w ^= 1;
    }
    if (n == 0 || c->oom) {
        c->cur = save;
        c->oom = false;
        return -1;
    }
    int32_t pl = c->cur.pool_len;
    memcpy(c->cur.s, in, sizeof(ilm_con_st) * (size_t)n);
    c->cur.n = n;
    c->cur.pool_len = pl;
    c->cur.gen = ++c->counter;
    return 0;
}

int ilm_constraint_feed(ilm_constraint *c, const char *bytes, size_t n) {
    if (!c->sc.gemma) return feed(c, (const uint8_t *)bytes, n);
    uint8_t *t = malloc(n + 1);  // the markers' texts → their bytes
    if (!t) return -1;
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        int k = 0;
        while (k < 3 && (n - i < strlen(MARKER_TEXT[k]) || memcmp(bytes + i, MARKER_TEXT[k], strlen(MARKER_TEXT[k])))) k++;
        if (k < 3) {
            t[m++] = (uint8_t)(VB_QUOTE + k);
            i += strlen(MARKER_TEXT[k]);
        } else t[m++] = (uint8_t)bytes[i++];
    }
    int r = feed(c, t, m);
    free(t);
    return r;
}

void ilm_constraint_save(const ilm_constraint *c, ilm_constraint_state *out) { *out = c->cur; }

void ilm_constraint_restore(ilm_constraint *c, const ilm_constraint_state *in) {
    c->cur = *in;
}

void ilm_constraint_reset(ilm_constraint *c) {
    memset(&c->cur, 0, sizeof c->cur);
    c->cur.n = 1;
    c->cur.s[0].top = frame(0, M_ROOT, R_START);
    c->cur.s[0].below = -1;
    c->cur.gen = ++c->counter;
}

// ---- tokens ---------------------------------------------------------------------------------

static bool is_eog(const ilm_constraint_vocab *v, int32_t t) {
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == t) return true;
    return false;
}

static void dfs(ilm_constraint *c, const trie *tr, int32_t node, const ilm_con_st *in, int n_in) {
    ilm_con_st next[ILM_CON_MAX_SET];
    const int32_t e0 = tr->e_off[node], ne = tr->e_cnt[node];
    for (int32_t e = e0; e < e0 + ne; e++) {
        int32_t mark = c->cur.pool_len;
        int n = step_set(c, in, n_in, tr->e_byte[e], next);
        if (n > 0) {
            int32_t ch = tr->e_child[e];
            for (int32_t k = tr->t_off[ch]; k < tr->t_off[ch] + tr->t_cnt[ch]; k++) {
                int32_t t = tr->toks[k];
                c->allow[t >> 6] |= 1ull << (t & 63);
            }
            if (tr->e_cnt[ch]) dfs(c, tr, ch, next, n);
        }
        c->cur.pool_len = mark;
    }
}

// The allowed set of the current state into c->allow (cached per state generation).
static void compute_allow(ilm_constraint *c) {
    if (c->mask_gen == c->cur.gen) return;
    const ilm_constraint_vocab *v = c->v;
    const size_t words = ((size_t)v->n_vocab + 63) / 64;
    int32_t mark = c->cur.pool_len;
    if (c->cur.ended || c->cur.n == 0) {
        memset(c->allow, 0, words * sizeof *c->allow);
    } else if (c->cur.n == 1 && c->cur.s[0].top.mode == M_STR && c->cur.s[0].top.sub == S_NORM) {
        memcpy(c->allow, c->sc.gemma ? v->gplain : v->plain, words * sizeof *c->allow);
        dfs(c, c->sc.gemma ? &v->gnonplain : &v->nonplain, 0, c->cur.s, 1);
    } else {
        memset(c->allow, 0, words * sizeof *c->allow);
        dfs(c, &v->all, 0, c->cur.s, c->cur.n);
    }
    c->cur.pool_len = mark;
    c->oom = false;
    if (ilm_constraint_done(c))
        for (int i = 0; i < v->n_eog; i++) c->allow[v->eog[i] >> 6] |= 1ull << (v->eog[i] & 63);
    c->mask_gen = c->cur.gen;
}

void ilm_constraint_mask(ilm_constraint *c, float *logits, int n_vocab) {
    if (!c->v) return;
    compute_allow(c);
    const int n = n_vocab < c->v->n_vocab ? n_vocab : c->v->n_vocab;
    const size_t words = ((size_t)c->v->n_vocab + 63) / 64;
    uint64_t any = 0;
    for (size_t w = 0; w < words; w++) any |= c->allow[w];
    if (!any) {  // nothing can follow: let the sequence end
        for (int i = 0; i < n_vocab; i++) logits[i] = -INFINITY;
        for (int i = 0; i < c->v->n_eog; i++)
            if (c->v->eog[i] < n_vocab) logits[c->v->eog[i]] = 0.0f;
        return;
    }
    for (int w = 0; w * 64 < n; w++) {
        uint64_t m = c->allow[w];
        if (m == ~0ull && (w + 1) * 64 <= n) continue;
        for (int i = w * 64; i < n && i < (w + 1) * 64; i++)
            if (!(m >> (i & 63) & 1)) logits[i] = -INFINITY;
    }
    for (int i = n; i < n_vocab; i++) logits[i] = -INFINITY;
}

bool ilm_constraint_allows(ilm_constraint *c, int32_t tok) {
    const ilm_constraint_vocab *v = c->v;
    if (!v || tok < 0 || tok >= v->n_vocab) return false;
    if (c->mask_gen == c->cur.gen) return c->allow[tok >> 6] >> (tok & 63) & 1;
    if (is_eog(v, tok)) return ilm_constraint_done(c);
    if (!v->p_len[tok]) return false;
    ilm_constraint_state save = c->cur;
    bool ok = feed(c, v->bytes + v->p_off[tok], v->p_len[tok]) == 0;
    c->cur = save;
    return ok;
}

int ilm_constraint_accept(ilm_constraint *c, int32_t tok) {
    const ilm_constraint_vocab *v = c->v;
    if (!v || tok < 0 || tok >= v->n_vocab || c->cur.ended) return -1;
    if (is_eog(v, tok)) {
        if (!ilm_constraint_done(c)) return -1;
        c->cur.ended = true;
        c->cur.gen = ++c->counter;
        return 0;
    }
    if (!v->p_len[tok]) return -1;
    return feed(c, v->bytes + v->p_off[tok], v->p_len[tok]);
}

// ---- the vocabulary precomputation ------------------------------------------------------------

typedef struct {
    const uint8_t *p;
    uint32_t len;
    int32_t id;
} tokref;

static int tokref_cmp(const void *x, const void *y) {
    const tokref *a = x, *b = y;
    uint32_t n = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->p, b->p, n);
    if (r) return r;
    return a->len < b->len ? -1 : a->len > b->len ? 1 : a->id < b->id ? -1 : 1;
}

// Grows *p (elements of sz bytes, capacity *cap) to hold need elements.
static int grow(void *pp, int32_t *cap, int32_t need, size_t sz) {
    if (need <= *cap) return 0;
    int32_t nc = *cap ? *cap : 1024;
    while (nc < need) nc *= 2;
    void *q = realloc(*(void **)pp, (size_t)nc * sz);
    if (!q) return -1;
    *(void **)pp = q;
    *cap = nc;
    return 0;
}

static int trie_reserve(trie *tr, int32_t nodes, int32_t edges) {
    if (nodes > tr->cap_nodes) {
        int32_t c1 = tr->cap_nodes, c2 = c1, c3 = c1, c4 = c1;
        if (grow(&tr->e_off, &c1, nodes, sizeof *tr->e_off) || grow(&tr->t_off, &c2, nodes, sizeof *tr->t_off) ||
            grow(&tr->e_cnt, &c3, nodes, sizeof *tr->e_cnt) || grow(&tr->t_cnt, &c4, nodes, sizeof *tr->t_cnt))
            return -1;
        tr->cap_nodes = c1;
    }
    if (edges > tr->cap_edges) {
        int32_t c1 = tr->cap_edges, c2 = c1;
        if (grow(&tr->e_byte, &c1, edges, 1) || grow(&tr->e_child, &c2, edges, sizeof *tr->e_child)) return -1;
        tr->cap_edges = c1;
    }
    return 0;
}

// Node for the tokens r[lo, hi), which share their first `depth` bytes; returns its id or -1.
static int32_t trie_build(trie *tr, const tokref *r, int lo, int hi, uint32_t depth) {
    if (trie_reserve(tr, tr->n_nodes + 1, tr->n_edges)) return -1;
    int32_t node = tr->n_nodes++;
    tr->t_off[node] = tr->n_toks;
    int i = lo;
    while (i < hi && r[i].len == depth) tr->toks[tr->n_toks++] = r[i++].id;
    tr->t_cnt[node] = tr->n_toks - tr->t_off[node];
    int groups = 0;
    for (int k = i; k < hi; k++)
        if (k == i || r[k].p[depth] != r[k - 1].p[depth]) groups++;
    if (trie_reserve(tr, tr->n_nodes, tr->n_edges + groups)) return -1;
    int32_t e = tr->e_off[node] = tr->n_edges;
    tr->e_cnt[node] = (uint16_t)groups;
    tr->n_edges += groups;
    while (i < hi) {
        int j = i + 1;
        while (j < hi && r[j].p[depth] == r[i].p[depth]) j++;
        int32_t ch = trie_build(tr, r, i, j, depth + 1);
        if (ch < 0) return -1;
        tr->e_byte[e] = r[i].p[depth];
        tr->e_child[e++] = ch;
        i = j;
    }
    return node;
}

static void trie_free(trie *tr) {
    free(tr->e_off);
    free(tr->t_off);
    free(tr->e_cnt);
    free(tr->t_cnt);
    free(tr->e_byte);
    free(tr->e_child);
    free(tr->toks);
}

static int trie_make(trie *tr, tokref *r, int n) {
    qsort(r, (size_t)n, sizeof *r, tokref_cmp);
    tr->toks = malloc(sizeof(int32_t) * (size_t)(n + 1));
    if (!tr->toks) return -1;
    return trie_build(tr, r, 0, n, 0) < 0 ? -1 : 0;
}

// A piece that, inside a string, is plain content: complete UTF-8 characters, no quote,
// backslash or control byte.
static bool piece_plain(const uint8_t *p, uint32_t n, bool gemma) {
    for (uint32_t i = 0; i < n;) {
        uint8_t b = p[i];
        if (gemma ? b < 0x20 && b != '\n' && b != '\t' && b != '\r' : b < 0x20 || b == '"' || b == '\\') return false;
        if (b < 0x80) {
            i++;
            continue;
        }
        int rem;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) rem = 1;
        else if (b >= 0xE0 && b <= 0xEF) rem = 2, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
        else if (b >= 0xF0 && b <= 0xF4) rem = 3, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
        else return false;
        if (i + (uint32_t)rem >= n) return false;
        if (p[i + 1] < lo || p[i + 1] > hi) return false;
        for (int k = 2; k <= rem; k++)
            if (p[i + (uint32_t)k] < 0x80 || p[i + (uint32_t)k] > 0xBF) return false;
        i += (uint32_t)rem + 1;
    }
    return true;
}

// The bytes a token contributes to the text the automaton reads (NULL: never allowed):
// normal and byte pieces (not end-of-generation tokens; byte-fallback tokens of bytes that never
// occur in UTF-8 are left out, they stand for the markers), and the three markers as one byte.
static const uint8_t *token_bytes(const ilm_tokenizer *t, const int32_t marker[3], int32_t i, uint8_t *mb,
                                  size_t *len) {
    for (int k = 0; k < 3; k++)
        if (marker[k] == i) {
            *mb = (uint8_t)(VB_QUOTE + k);
            *len = 1;
            return mb;
        }
    int ty = ilm_tok_type(t, i);
    *len = 0;
    if ((ty != ILM_TOK_NORMAL && ty != ILM_TOK_BYTE) || ilm_tok_is_eog(t, i)) return NULL;
    const uint8_t *p = (const uint8_t *)ilm_tok_piece(t, i, false, len);
    if (!p || !*len || (ty == ILM_TOK_BYTE && *len == 1 && p[0] >= 0xF5)) {
        *len = 0;
        return NULL;
    }
    return p;
}

ilm_constraint_vocab *ilm_constraint_vocab_new(const ilm_tokenizer *t, ilm_err *err) {
    ilm_constraint_vocab *v = calloc(1, sizeof *v);
    tokref *all = NULL, *np = NULL, *gnp = NULL;
    if (!v) goto oom;
    const int V = t->n_vocab;
    v->n_vocab = V;
    for (int k = 0; k < 3; k++) v->marker[k] = ilm_tok_find(t, MARKER_TEXT[k]);
    v->p_off = calloc((size_t)V, sizeof *v->p_off);
    v->p_len = calloc((size_t)V, sizeof *v->p_len);
    v->plain = calloc(((size_t)V + 63) / 64, sizeof *v->plain);
    v->gplain = calloc(((size_t)V + 63) / 64, sizeof *v->gplain);
    all = malloc(sizeof *all * (size_t)V);
    np = malloc(sizeof *np * (size_t)V);
    gnp = malloc(sizeof *gnp * (size_t)V);
    if (!v->p_off || !v->p_len || !v->plain || !v->gplain || !all || !np || !gnp) goto oom;
    size_t total = 0;
    uint8_t mb;
    for (int i = 0; i < V; i++) {
        size_t len;
        token_bytes(t, v->marker, i, &mb, &len);
        total += len;
    }
    v->bytes = malloc(total + 1);
    if (!v->bytes) goto oom;
    size_t off = 0;
    int n_all = 0, n_np = 0, n_gnp = 0;
    for (int i = 0; i < V; i++) {
        size_t len;
        const uint8_t *p = token_bytes(t, v->marker, i, &mb, &len);
        if (!p) continue;
        memcpy(v->bytes + off, p, len);
        v->p_off[i] = (uint32_t)off;
        v->p_len[i] = (uint32_t)len;
        tokref r = {v->bytes + off, (uint32_t)len, i};
        all[n_all++] = r;
        if (piece_plain(r.p, r.len, false)) v->plain[i >> 6] |= 1ull << (i & 63);
        else np[n_np++] = r;
        if (piece_plain(r.p, r.len, true)) v->gplain[i >> 6] |= 1ull << (i & 63);
        else gnp[n_gnp++] = r;
        off += len;
    }
    if (trie_make(&v->all, all, n_all) || trie_make(&v->nonplain, np, n_np) || trie_make(&v->gnonplain, gnp, n_gnp))
        goto oom;
    for (int i = 0; i < t->n_eog && v->n_eog < ILM_TOK_MAX_EOG; i++)
        if (t->eog_ids[i] >= 0 && t->eog_ids[i] < V) v->eog[v->n_eog++] = t->eog_ids[i];
    free(all);
    free(np);
    free(gnp);
    return v;
oom:
    free(all);
    free(np);
    free(gnp);
    ilm_constraint_vocab_free(v);
    ilm_fail(err, "constraint: out of memory for the vocabulary tables");
    return NULL;
}

void ilm_constraint_vocab_free(ilm_constraint_vocab *v) {
    if (!v) return;
    free(v->p_off);
    free(v->p_len);
    free(v->bytes);
    free(v->plain);
    free(v->gplain);
    trie_free(&v->all);
    trie_free(&v->nonplain);
    trie_free(&v->gnonplain);
    free(v);
}

// ---- the schema compiler --------------------------------------------------------------------

static int add_node(schema *sc, cnode nd) {
    if (sc->n_nodes >= 65535 || grow(&sc->nodes, &sc->cap_nodes, sc->n_nodes + 1, sizeof *sc->nodes)) return -1;
    sc->nodes[sc->n_nodes] = nd;
    return sc->n_nodes++;
}

static int add_item(schema *sc, char *text, size_t len, int32_t node, bool required) {
    if (grow(&sc->items, &sc->cap_items, sc->n_items + 1, sizeof *sc->items)) return -1;
    citem it = {text, (uint32_t)len, node, required};
    sc->items[sc->n_items++] = it;
    return 0;
}

static int lit_node(schema *sc, const char *const *texts, int n) {
    cnode nd = {N_LIT, sc->n_items, n, 0, 0, 0};
    for (int i = 0; i < n; i++) {
        char *s = malloc(strlen(texts[i]) + 1);
        if (!s) return -1;
        memcpy(s, texts[i], strlen(texts[i]) + 1);
        if (add_item(sc, s, strlen(s), 0, false)) {
            free(s);
            return -1;
        }
    }
    return add_node(sc, nd);
}

// Compact JSON text of a value (enum / const literals); gemma: in Gemma notation (strings
// between quote markers, bare keys).
static void write_value(ilm_buf *b, const ilm_json *j, bool gemma) {
    if (!gemma || j->type == JSON_NULL || j->type == JSON_BOOL || j->type == JSON_NUM) {
        ilm_json_buf_value(b, j);
        return;
    }
    if (j->type == JSON_STR) {
        ilm_buf_putc(b, (char)VB_QUOTE);
        ilm_buf_add(b, j->str, j->len);
        ilm_buf_putc(b, (char)VB_QUOTE);
        return;
    }
    ilm_buf_puts(b, j->type == JSON_ARR ? "[" : "{");
    for (size_t i = 0; i < j->len; i++) {
        if (i) ilm_buf_puts(b, ",");
        if (j->type == JSON_OBJ) {
            ilm_buf_puts(b, j->keys[i]);
            ilm_buf_puts(b, ":");
        }
        write_value(b, &j->items[i], gemma);
    }
    ilm_buf_puts(b, j->type == JSON_ARR ? "]" : "}");
}

static int literal_of(schema *sc, const ilm_json *vals, size_t n, ilm_err *err) {
    cnode nd = {N_LIT, sc->n_items, (int32_t)n, 0, 0, 0};
    if (n == 0) return ilm_fail(err, "JSON Schema: empty enum (no value can match)");
    for (size_t i = 0; i < n; i++) {
        ilm_buf b = {0};
        write_value(&b, &vals[i], sc->gemma);
        if (!b.p || b.len >= 65535) {
            free(b.p);
            return ilm_fail(err, "JSON Schema: enum/const value too long or out of memory");
        }
        if (add_item(sc, b.p, b.len, 0, false)) {
            free(b.p);
            return ilm_fail(err, "JSON Schema: out of memory");
        }
    }
    int r = add_node(sc, nd);
    return r < 0 ? ilm_fail(err, "JSON Schema: too large") : r;
}

static int compile(schema *sc, const ilm_json *j, int depth, ilm_err *err);

// A property name the tool-call parser reads back as written (gen/toolcall.c: a bare key ends
// at any of :,{}[]<" or a newline).
static bool gemma_key_ok(const char *k) {
    if (!*k || strlen(k) > 256) return false;
    for (const char *p = k; *p; p++)
        if (strchr(":,{}[]<\"\n\r\t ", *p) || (uint8_t)*p >= 0xF5) return false;
    return true;
}

static int compile_type(schema *sc, const ilm_json *j, const char *type, int depth, ilm_err *err) {
    if (!strcmp(type, "string")) return NODE_STR;
    if (!strcmp(type, "number")) return NODE_NUM;
    if (!strcmp(type, "integer")) {
        cnode nd = {N_INT, 0, 0, 0, 0, 0};
        return add_node(sc, nd);
    }
    if (!strcmp(type, "boolean")) {
        const char *v[] = {"false", "true"};
        return lit_node(sc, v, 2);
    }
    if (!strcmp(type, "null")) {
        const char *v[] = {"null"};
        return lit_node(sc, v, 1);
    }
    if (!strcmp(type, "array")) {
        const ilm_json *it = ilm_json_get(j, "items"), *mn = ilm_json_get(j, "minItems"),
                       *mx = ilm_json_get(j, "maxItems");
        int items = it ? compile(sc, it, depth + 1, err) : NODE_ANY;
        if (items < 0) return -1;
        double lo = 0, hi = 65535;
        if (mn && (mn->type != JSON_NUM || mn->num < 0 || mn->num != floor(mn->num)))
            return ilm_fail(err, "JSON Schema: minItems must be a non-negative integer");
        if (mx && (mx->type != JSON_NUM || mx->num < 0 || mx->num != floor(mx->num)))
            return ilm_fail(err, "JSON Schema: maxItems must be a non-negative integer");
        if (mn) lo = mn->num;
        if (mx) hi = mx->num;
        if (lo > 65535) return ilm_fail(err, "JSON Schema: minItems %g is too large (at most 65535)", lo);
        if (hi > 65535) hi = 65535;
        if (lo > hi) return ilm_fail(err, "JSON Schema: minItems %g > maxItems %g (impossible)", lo, hi);
        cnode nd = {N_ARR, 0, 0, items, (uint32_t)lo, (uint32_t)hi};
        return add_node(sc, nd);
    }
    if (!strcmp(type, "object")) {
        const ilm_json *pr = ilm_json_get(j, "properties"), *rq = ilm_json_get(j, "required"),
                       *ad = ilm_json_get(j, "additionalProperties");
        if (ad && ad->type != JSON_BOOL)
            return ilm_fail(err, "JSON Schema: unsupported construct 'additionalProperties' with a schema (only true/false)");
        if (pr && pr->type != JSON_OBJ) return ilm_fail(err, "JSON Schema: 'properties' must be an object");
        if (rq && rq->type != JSON_ARR) return ilm_fail(err, "JSON Schema: 'required' must be an array");
        for (size_t i = 0; rq && i < rq->len; i++) {
            if (rq->items[i].type != JSON_STR) return ilm_fail(err, "JSON Schema: 'required' entries must be strings");
            if (!ilm_json_get(pr, rq->items[i].str))
                return ilm_fail(err, "JSON Schema: required property '%s' is not in properties", rq->items[i].str);
        }
        if (!pr || pr->len == 0) {
            if (ad && ad->num == 0) {  // only {}
                cnode nd = {N_OBJ, sc->n_items, 0, 0, 0, 0};
                return add_node(sc, nd);
            }
            return NODE_ANYOBJ;
        }
        int32_t vals[256];
        if (pr->len > 256) return ilm_fail(err, "JSON Schema: more than 256 properties");
        for (size_t i = 0; i < pr->len; i++)
            if ((vals[i] = compile(sc, &pr->items[i], depth + 1, err)) < 0) return -1;
        cnode nd = {N_OBJ, sc->n_items, (int32_t)pr->len, 0, 0, 0};
        for (size_t i = 0; i < pr->len; i++) {
            bool req = false;
            for (size_t k = 0; rq && k < rq->len; k++) req |= !strcmp(rq->items[k].str, pr->keys[i]);
            ilm_buf b = {0};
            if (!sc->gemma) ilm_json_buf_str(&b, pr->keys[i], strlen(pr->keys[i]));
            else if (!gemma_key_ok(pr->keys[i]))
                return ilm_fail(err, "tool arguments: property name '%.60s' cannot be written bare in Gemma's notation",
                                pr->keys[i]);
            else ilm_buf_puts(&b, pr->keys[i]);
            if (!b.p || b.len >= 65535 || add_item(sc, b.p, b.len, vals[i], req)) {
                free(b.p);
                return ilm_fail(err, "JSON Schema: property name too long or out of memory");
            }
        }
        int r = add_node(sc, nd);
        return r < 0 ? ilm_fail(err, "JSON Schema: too large") : r;
    }
    return ilm_fail(err, "JSON Schema: unsupported type '%s'", type);
}

// An anyOf node over n compiled alternatives (anyOf, or a list of types).
static int anyof_node(schema *sc, const int32_t *alts, int32_t n, ilm_err *err) {
    cnode nd = {N_ANYOF, sc->n_alts, n, 0, 0, 0};
    if (grow(&sc->alts, &sc->cap_alts, sc->n_alts + n, sizeof *sc->alts)) return ilm_fail(err, "JSON Schema: out of memory");
    memcpy(sc->alts + sc->n_alts, alts, sizeof(int32_t) * (size_t)n);
    sc->n_alts += n;
    int r = add_node(sc, nd);
    return r < 0 ? ilm_fail(err, "JSON Schema: too large") : r;
}

static int compile(schema *sc, const ilm_json *j, int depth, ilm_err *err) {
    if (depth > 32) return ilm_fail(err, "JSON Schema: nested more than 32 levels");
    if (j->type == JSON_BOOL) {
        if (j->num != 0) return NODE_ANY;
        return ilm_fail(err, "JSON Schema: unsupported construct 'false' schema (nothing matches)");
    }
    if (j->type != JSON_OBJ) return ilm_fail(err, "JSON Schema: a schema must be an object");
    static const char *const known[] = {"type", "properties", "required", "additionalProperties", "items", "minItems",
                                        "maxItems", "enum", "const", "anyOf", "title", "description", "$schema",
                                        "$id", "$comment", "default", "examples"};
    for (size_t i = 0; i < j->len; i++) {
        bool ok = false;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++) ok |= !strcmp(j->keys[i], known[k]);
        if (!ok) return ilm_fail(err, "JSON Schema: unsupported keyword '%s'", j->keys[i]);
    }
    const ilm_json *en = ilm_json_get(j, "enum"), *cn = ilm_json_get(j, "const"), *ty = ilm_json_get(j, "type"),
                   *any = ilm_json_get(j, "anyOf");
    if (cn) return literal_of(sc, cn, 1, err);
    if (en) {
        if (en->type != JSON_ARR) return ilm_fail(err, "JSON Schema: 'enum' must be an array");
        return literal_of(sc, en->items, en->len, err);
    }
    if (any) {
        if (ty) return ilm_fail(err, "JSON Schema: unsupported construct 'anyOf' together with 'type'");
        if (any->type != JSON_ARR || any->len == 0) return ilm_fail(err, "JSON Schema: 'anyOf' must be a non-empty array");
        if (any->len > 64) return ilm_fail(err, "JSON Schema: 'anyOf' with more than 64 alternatives");
        int32_t alts[64];
        for (size_t i = 0; i < any->len; i++)
            if ((alts[i] = compile(sc, &any->items[i], depth + 1, err)) < 0) return -1;
        return anyof_node(sc, alts, (int32_t)any->len, err);
    }
    if (ty && ty->type == JSON_STR) return compile_type(sc, j, ty->str, depth, err);
    if (ty && ty->type == JSON_ARR) {
        if (ty->len == 0 || ty->len > 8) return ilm_fail(err, "JSON Schema: 'type' list must have 1 to 8 entries");
        int32_t alts[8];
        for (size_t i = 0; i < ty->len; i++) {
            if (ty->items[i].type != JSON_STR) return ilm_fail(err, "JSON Schema: 'type' entries must be strings");
            if ((alts[i] = compile_type(sc, j, ty->items[i].str, depth, err)) < 0) return -1;
        }
        return anyof_node(sc, alts, (int32_t)ty->len, err);
    }
    if (ty) return ilm_fail(err, "JSON Schema: 'type' must be a string or an array");
    if (ilm_json_get(j, "properties") || ilm_json_get(j, "required") || ilm_json_get(j, "additionalProperties"))
        return compile_type(sc, j, "object", depth, err);
    if (ilm_json_get(j, "items") || ilm_json_get(j, "minItems") || ilm_json_get(j, "maxItems"))
        return compile_type(sc, j, "array", depth, err);
    return NODE_ANY;
}

static void schema_free(schema *sc) {
    for (int32_t i = 0; i < sc->n_items; i++) free(sc->items[i].text);
    free(sc->items);
    free(sc->nodes);
    free(sc->alts);
}

// The nodes every schema starts with.
static int schema_init(schema *sc, bool gemma, ilm_err *err) {
    memset(sc, 0, sizeof *sc);
    sc->gemma = gemma;
    cnode fixed[NODE_FIXED] = {{N_ANY, 0, 0, 0, 0, 0}, {N_ANYOBJ, 0, 0, 0, 0, 0}, {N_ARR, 0, 0, NODE_ANY, 0, 65535},
                               {N_STR, 0, 0, 0, 0, 0}, {N_NUM, 0, 0, 0, 0, 0}, {N_LIT, 0, 0, 0, 0, 0}};
    for (int i = 0; i < NODE_FIXED; i++)
        if (add_node(sc, fixed[i]) < 0) return ilm_fail(err, "constraint: out of memory");
    const char *kw[] = {"false", "null", "true"};
    int k = lit_node(sc, kw, 3);
    if (k < 0) return ilm_fail(err, "constraint: out of memory");
    sc->nodes[NODE_KEYWORD] = sc->nodes[k];
    return 0;
}

static int schema_build(schema *sc, const char *schema_json, ilm_err *err) {
    if (schema_init(sc, false, err)) return -1;
    if (!schema_json) {
        sc->root = NODE_ANYOBJ;
        return 0;
    }
    ilm_json *j = ilm_json_parse(schema_json, strlen(schema_json), err);
    if (!j) return ilm_fail_prefix(err, "JSON Schema: ");
    int r = compile(sc, j, 0, err);
    ilm_json_free(j);
    if (r < 0) return -1;
    sc->root = r;
    return 0;
}

// A function name the tool-call parser accepts (gen/toolcall.h: [A-Za-z0-9_.:-]+).
static bool tool_name_ok(const char *n) {
    size_t len = strlen(n);
    if (len == 0 || len > 64) return false;
    for (size_t i = 0; i < len; i++)
        if (!is_key_char((uint8_t)n[i]) && n[i] != ':') return false;
    return true;
}

// The tool-call grammar over the request's tools ([{"type":"function","function":{"name",
// "parameters"}}]): the calls of the functions (only `only` when given), each function's
// arguments compiled in Gemma notation from its parameters schema.
static int tools_compile(schema *sc, const ilm_json *tools, const char *only, bool parallel, ilm_err *err) {
    enum { MAX_TOOLS = 128 };
    if (!tools || tools->type != JSON_ARR || tools->len == 0) return ilm_fail(err, "tools: expected a non-empty array");
    if (tools->len > MAX_TOOLS) return ilm_fail(err, "tools: more than %d functions", MAX_TOOLS);
    int32_t args[MAX_TOOLS];
    const char *names[MAX_TOOLS];
    int n = 0;
    for (size_t i = 0; i < tools->len; i++) {
        const ilm_json *t = &tools->items[i], *ty = ilm_json_get(t, "type"), *fn = ilm_json_get(t, "function");
        const ilm_json *name = ilm_json_get(fn, "name"), *par = ilm_json_get(fn, "parameters");
        if (ty && (ty->type != JSON_STR || strcmp(ty->str, "function")))
            return ilm_fail(err, "tools[%zu]: only type \"function\" is supported", i);
        if (!fn || fn->type != JSON_OBJ || !name || name->type != JSON_STR)
            return ilm_fail(err, "tools[%zu]: expected function.name", i);
        if (!tool_name_ok(name->str))
            return ilm_fail(err, "tools[%zu]: function name '%.64s' is not [A-Za-z0-9_.:$-]{1,64}", i, name->str);
        if (only && strcmp(only, name->str)) continue;
        int32_t a = NODE_ANYOBJ;
        if (par && par->type != JSON_NULL) {
            if ((a = compile(sc, par, 0, err)) < 0) return ilm_fail_prefix(err, "tool '%.64s' parameters", name->str);
            if (sc->nodes[a].kind != N_OBJ && sc->nodes[a].kind != N_ANYOBJ)
                return ilm_fail(err, "tool '%.64s': parameters must be an object schema", name->str);
        }
        for (int k = 0; k < n; k++)
            if (!strcmp(names[k], name->str)) return ilm_fail(err, "tools: function '%.64s' declared twice", name->str);
        names[n] = name->str;
        args[n++] = a;
    }
    if (n == 0) return ilm_fail(err, "tool_choice names '%.64s', which is not among the tools", only ? only : "");
    cnode nd = {N_CALLS, sc->n_items, n, 0, 0, parallel ? 1u : 0u};
    for (int k = 0; k < n; k++) {
        ilm_buf b = {0};
        ilm_buf_putc(&b, (char)VB_OPEN);
        ilm_buf_printf(&b, "call:%s{", names[k]);
        if (!b.p || add_item(sc, b.p, b.len, args[k], false)) {
            free(b.p);
            return ilm_fail(err, "constraint: out of memory");
        }
    }
    int r = add_node(sc, nd);
    return r < 0 ? ilm_fail(err, "constraint: too large") : r;
}

static int tools_build(schema *sc, const char *tools_json, const char *only, bool parallel, ilm_err *err) {
    if (schema_init(sc, true, err)) return -1;
    ilm_json *j = ilm_json_parse(tools_json, strlen(tools_json), err);
    if (!j) return ilm_fail_prefix(err, "tools: ");
    int r = tools_compile(sc, j, only, parallel, err);
    ilm_json_free(j);
    if (r < 0) return -1;
    sc->root = r;
    return 0;
}

int ilm_constraint_check_schema(const char *schema_json, ilm_err *err) {
    schema sc;
    int r = schema_build(&sc, schema_json, err);
    schema_free(&sc);
    return r;
}

int ilm_constraint_check_tools(const char *tools_json, const char *only_name, ilm_err *err) {
    schema sc;
    int r = tools_build(&sc, tools_json, only_name, false, err);
    schema_free(&sc);
    return r;
}

// Takes the compiled schema (built by the caller into c->sc) and the vocabulary.
static ilm_constraint *con_finish(ilm_constraint *c, const ilm_constraint_vocab *v, int built, ilm_err *err) {
    if (built) {
        ilm_constraint_free(c);
        return NULL;
    }
    c->v = v;
    if (v && !(c->allow = calloc(((size_t)v->n_vocab + 63) / 64, sizeof *c->allow))) {
        ilm_constraint_free(c);
        ilm_fail(err, "constraint: out of memory");
        return NULL;
    }
    ilm_constraint_reset(c);
    return c;
}

ilm_constraint *ilm_constraint_new(const ilm_constraint_vocab *v, const char *schema_json, ilm_err *err) {
    ilm_constraint *c = calloc(1, sizeof *c);
    if (!c) {
        ilm_fail(err, "constraint: out of memory");
        return NULL;
    }
    return con_finish(c, v, schema_build(&c->sc, schema_json, err), err);
}

ilm_constraint *ilm_constraint_new_tools(const ilm_constraint_vocab *v, const char *tools_json, const char *only_name,
                                         bool parallel, ilm_err *err) {
    for (int k = 0; v && k < 3; k++)
        if (v->marker[k] < 0) {
            ilm_fail(err, "the vocabulary has no %s token: tool calls cannot be constrained", MARKER_TEXT[k]);
            return NULL;
        }
    ilm_constraint *c = calloc(1, sizeof *c);
    if (!c) {
        ilm_fail(err, "constraint: out of memory");
        return NULL;
    }
    return con_finish(c, v, tools_build(&c->sc, tools_json, only_name, parallel, err), err);
}

ilm_constraint *ilm_constraint_new_json(const ilm_tokenizer *t, const char *schema_json, ilm_err *err) {
    ilm_constraint_vocab *v = ilm_constraint_vocab_new(t, err);
    if (!v) return NULL;
    ilm_constraint *c = ilm_constraint_new(v, schema_json, err);
    if (!c) {
        ilm_constraint_vocab_free(v);
        return NULL;
    }
    c->owned = v;
    return c;
}

void ilm_constraint_free(ilm_constraint *c) {
    if (!c) return;
    schema_free(&c->sc);
    free(c->pool);
    free(c->allow);
    ilm_constraint_vocab_free(c->owned);
    free(c);
}
