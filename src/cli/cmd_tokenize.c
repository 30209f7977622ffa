// cmd_tokenize.c — `ironlm tokenize` and `ironlm detokenize`, the tokenizer's part of the
// numerical interface (docs/design.md). A vocab-only GGUF is enough for both.
//
//   ironlm tokenize -m MODEL.gguf (-p TEXT | -f FILE) [--ids] [--no-bos] [--no-parse-special] [--timing]
//     --ids: the ids comma-separated on one line ("2,9259,1902\n").
//     --timing: the vocabulary load and tokenization times on stderr (bench/README.md, Tokenizer).
//     otherwise: one line per token, "ID<TAB>PIECE", the piece's bytes with \n, \r, \t, \\ and
//     other control bytes escaped (\xHH) so that every token stays on its line.
//   ironlm detokenize -m MODEL.gguf --ids 2,17,300 [--no-render-special]
//     writes the text bytes to stdout, no added newline; control tokens (<bos>, <|turn>, ...)
//     are written as their text unless --no-render-special.
#include "cli/commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/tokenizer.h"

static int usage_error(const char *cmd, const char *fmt, const char *arg) {
    fprintf(stderr, "ironlm: error: %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 2;
}

static int report(const ilm_err *err) {
    fprintf(stderr, "ironlm: error: %s\n", err->msg);
    return 1;
}

static void print_escaped(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\\') fputs("\\\\", f);
        else if (c < 0x20 || c == 0x7f) fprintf(f, "\\x%02X", c);
        else fputc(c, f);
    }
}

static int finish_output(const char *cmd) {
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "ironlm: error: %s: cannot write to stdout\n", cmd);
        return 1;
    }
    return 0;
}

int ilm_cmd_tokenize(int argc, char **argv) {
    const char *cmd = "tokenize", *model = NULL, *prompt = NULL, *file = NULL;
    bool ids_only = false, timing = false;
    int flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--ids")) ids_only = true;
        else if (!strcmp(a, "--no-bos")) flags |= ILM_TOK_NO_BOS;
        else if (!strcmp(a, "--no-parse-special")) flags |= ILM_TOK_NO_SPECIAL;
        else if (!strcmp(a, "--timing")) timing = true;
        else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_value) model = argv[++i];
        else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && has_value) prompt = argv[++i];
        else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && has_value) file = argv[++i];
        else if (!strcmp(a, "-t") && has_value) i++;   // every command takes -t; nothing to thread here
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs("usage: ironlm tokenize -m MODEL.gguf (-p TEXT | -f FILE) [options]\n"
                  "  -m, --model FILE     the model (or a vocabulary-only GGUF)\n"
                  "  -p, --prompt TEXT    the text\n"
                  "  -f, --file FILE      the text from a file\n"
                  "  --ids                ids only, one per line (default: id and piece)\n"
                  "  --no-bos             no BOS token at the start\n"
                  "  --no-parse-special   special-token texts tokenized as plain text\n"
                  "  --timing             tokens per second on stderr\n"
                  "  -h, --help           this help\n",
                  stdout);
            return 0;
        } else if (a[0] == '-') return usage_error(cmd, "unknown option or missing value: %s", a);
        else return usage_error(cmd, "unexpected argument: %s", a);
    }
    if (!model) return usage_error(cmd, "%s", "missing -m MODEL.gguf");
    if ((prompt != NULL) == (file != NULL)) return usage_error(cmd, "%s", "give exactly one of -p TEXT or -f FILE");

    ilm_err err = {{0}};
    char *data = NULL;
    size_t len = 0;
    if (file) {
        if (ilm_read_file(file, &data, &len, &err)) return report(&err);
    } else {
        len = strlen(prompt);
    }
    ilm_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    int n = 0, rc = 1;
    double t0 = ilm_now();
    if (ilm_tokenizer_load_file(&tok, model, &err)) {
        report(&err);
        goto done;
    }
    double t1 = ilm_now();
    if (ilm_tokenize(tok, file ? data : prompt, len, flags, &ids, &n, &err)) {
        report(&err);
        goto done;
    }
    double t2 = ilm_now();
    if (timing)
        fprintf(stderr, "tokenize: vocabulary %d tokens loaded in %.1f ms; %zu bytes -> %d tokens in %.2f ms\n",
                tok->n_vocab, (t1 - t0) * 1e3, len, n, (t2 - t1) * 1e3);
    for (int i = 0; i < n; i++) {
        if (ids_only) {
            printf(i ? ",%d" : "%d", ids[i]);
            continue;
        }
        size_t plen;
        const char *piece = ilm_tok_piece(tok, ids[i], true, &plen);
        printf("%d\t", ids[i]);
        print_escaped(stdout, piece, plen);
        putchar('\n');
    }
    if (ids_only) putchar('\n');
    rc = finish_output(cmd);
done:
    free(ids);
    free(data);
    ilm_tokenizer_free(tok);
    return rc;
}

int ilm_cmd_detokenize(int argc, char **argv) {
    const char *cmd = "detokenize", *model = NULL, *list = NULL;
    bool render_special = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_value) model = argv[++i];
        else if ((!strcmp(a, "--ids") || !strcmp(a, "--tokens")) && has_value) list = argv[++i];
        else if (!strcmp(a, "--no-render-special")) render_special = false;
        else if (!strcmp(a, "-t") && has_value) i++;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs("usage: ironlm detokenize -m MODEL.gguf --ids 2,17,300 [options]\n"
                  "  -m, --model FILE        the model (or a vocabulary-only GGUF)\n"
                  "  --ids, --tokens LIST    comma-separated token ids\n"
                  "  --no-render-special     control tokens written as nothing\n"
                  "  -h, --help              this help\n",
                  stdout);
            return 0;
        } else if (a[0] == '-') return usage_error(cmd, "unknown option or missing value: %s", a);
        else return usage_error(cmd, "unexpected argument: %s", a);
    }
    if (!model) return usage_error(cmd, "%s", "missing -m MODEL.gguf");
    if (!list) return usage_error(cmd, "%s", "missing --ids LIST (comma-separated token ids)");

    ilm_err err = {{0}};
    int32_t *ids = NULL;
    int n = 0;
    if (ilm_parse_int_list(list, &ids, &n, &err)) {
        fprintf(stderr, "ironlm: error: %s: --ids: %s\n", cmd, err.msg);
        return 2;
    }
    ilm_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = 1;
    if (ilm_tokenizer_load_file(&tok, model, &err) || ilm_detokenize(tok, ids, n, render_special, &text, &len, &err)) {
        report(&err);
        goto done;
    }
    fwrite(text, 1, len, stdout);
    rc = finish_output(cmd);
done:
    free(text);
    free(ids);
    ilm_tokenizer_free(tok);
    return rc;
}
