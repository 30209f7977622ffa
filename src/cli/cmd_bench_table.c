// cmd_bench_table.c — the tables of `ironlm bench`: llama-bench's markdown, JSON and CSV
// (one row per model x threads x test), and for the speculative sweep the Gemma 4 MTP
// write-ups' table with the component costs and projected speedups.
#include <stdio.h>
#include <string.h>

#include "cli/cmd_bench.h"
#include "format/json.h"

static void fmt_params(uint64_t n, char *buf, size_t len) {
    if (n >= 1000000000ull) snprintf(buf, len, "%.2f B", n / 1e9);
    else snprintf(buf, len, "%.2f M", n / 1e6);
}

static void print_load(const bench_state *S, FILE *f) {
    if (S->load_start >= 0 && S->load_end >= 0)
        fprintf(f, "load average (1 min): %.2f at start, %.2f at end\n", S->load_start, S->load_end);
}

static void print_md(const bench_state *S, FILE *f) {
    print_load(S, f);
    bool any_cached = false;
    for (int i = 0; i < S->n_rows; i++) any_cached |= S->rows[i].cache_resident;
    for (int i = 0; i < S->n_bw; i++) {
        fprintf(f, "read bandwidth: %.1f GB/s (%d threads) [%s]\n", S->bw[i], S->bw_threads[i], S->bw_method[i]);
        if (S->peak[i] > 0)
            fprintf(f, "int8 dot peak: %.0f GOPS (%d threads, the %s set's int8 dot loop)\n", S->peak[i], S->bw_threads[i],
                    S->models[0].kernels);
    }
    if (any_cached)
        fprintf(f, "(LLC): the weights a pass streams fit the last-level cache (%zu MiB): bw%% may pass 100\n", S->llc >> 20);
    fprintf(f, "\n| model | size | params | kernels | threads | test | t/s | GB/s | bw%% | %%peak |\n");
    fprintf(f, "| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < S->n_rows; i++) {
        const bench_row *r = &S->rows[i];
        const model_entry *m = &S->models[r->model];
        char params[32];
        fmt_params(m->info.n_params, params, sizeof params);
        char peak[32] = "-";
        if (r->peak_pct > 0) snprintf(peak, sizeof peak, "%.1f", r->peak_pct);
        fprintf(f, "| %s | %.2f GiB | %s | %s | %d | %s | %.2f ± %.2f | %.1f | %.1f%s | %s |\n", m->name,
                m->info.size / 1073741824.0, params, m->kernels, r->n_threads, r->test, r->avg, r->sd, r->gb_s,
                r->bw_pct, r->cache_resident ? " (LLC)" : "", peak);
    }
}

// The Gemma 4 MTP write-ups' table: baseline vs each draft length.
static void print_spec(const bench_state *S, FILE *f) {
    for (int c = 0; c < S->n_costs; c++) {
        const ilm_bench_costs *co = &S->costs[c];
        const bench_row *base = NULL;
        int max_n = 0;
        for (int i = 0; i < S->n_rows; i++)
            if (S->rows[i].costs == co) {
                if (S->rows[i].t.draft_max == 0 && !base) base = &S->rows[i];
                if (S->rows[i].t.draft_max > max_n) max_n = S->rows[i].t.draft_max;
            }
        fprintf(f, "\nspeculative decoding: %s; prompt %d tokens, greedy\n\n", S->costs_label[c], co->depth);
        fprintf(f, "| test | draft-max | t/s | speedup | acceptance | accepted/round |");
        for (int k = 0; k < max_n; k++) fprintf(f, " acc@%d |", k + 1);
        fprintf(f, "\n| --- | ---: | ---: | ---: | ---: | ---: |");
        for (int k = 0; k < max_n; k++) fprintf(f, " ---: |");
        fprintf(f, "\n");
        for (int i = 0; i < S->n_rows; i++) {
            const bench_row *r = &S->rows[i];
            if (r->costs != co) continue;
            char sp[32] = "-";
            if (base && base->avg > 0) snprintf(sp, sizeof sp, "%.2fx", r->avg / base->avg);
            fprintf(f, "| tg%d | %d%s | %.2f ± %.2f | %s |", r->t.n_gen, r->t.draft_max,
                    r->t.draft_max ? "" : " (baseline)", r->avg, r->sd, sp);
            if (r->t.draft_max) fprintf(f, " %.3f | %.2f |", r->accept_rate, r->mean_accepted);
            else fprintf(f, " - | - |");
            for (int k = 0; k < max_n; k++)
                if (k < r->n_accept_at) fprintf(f, " %.3f |", r->accept_at[k]);
                else fprintf(f, " |");
            fprintf(f, "\n");
        }
        fprintf(f, "\ncomponent costs at depth %d (fastest of repeated passes): decode(1) %.3f ms", co->depth,
                co->t_decode * 1e3);
        if (co->t_draft > 0)
            fprintf(f, ", drafter step %.3f ms = %.3f x decode(1)", co->t_draft * 1e3, co->t_draft / co->t_decode);
        fprintf(f, "\n\n| N | verify(N+1) ms | verify(N+1)/decode(1) | round cost/decode(1) | proj. speedup a=0.60 | "
                   "a=0.75 | a=0.90 |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for (int N = 1; N <= co->n_max; N++)
            fprintf(f, "| %d | %.3f | %.3f | %.3f | %.2fx | %.2fx | %.2fx |\n", N, co->t_verify[N] * 1e3,
                    co->t_verify[N] / co->t_decode, (co->t_verify[N] + N * co->t_draft) / co->t_decode,
                    ilm_bench_projected_speedup(co, N, 0.6), ilm_bench_projected_speedup(co, N, 0.75),
                    ilm_bench_projected_speedup(co, N, 0.9));
        fprintf(f, "\nprojected speedup = (sum_{k=0..N} a^k) / ((verify(N+1) + N x drafter step) / decode(1)), a = "
                   "per-draft acceptance\n");
    }
}

static void print_json(const bench_state *S, FILE *f) {
    fprintf(f, "[\n");
    for (int i = 0; i < S->n_rows; i++) {
        const bench_row *r = &S->rows[i];
        const model_entry *m = &S->models[r->model];
        fprintf(f, "  {\"model_filename\": ");
        ilm_json_write_str(f, m->name, strlen(m->name));
        fprintf(f, ", \"model_type\": ");
        ilm_json_write_str(f, m->info.type, strlen(m->info.type));
        fprintf(f, ", \"model_size\": %llu, \"model_n_params\": %llu, \"kernels\": ",
                (unsigned long long)m->info.size, (unsigned long long)m->info.n_params);
        ilm_json_write_str(f, m->kernels, strlen(m->kernels));
        fprintf(f, ", \"n_threads\": %d, \"test\": ", r->n_threads);
        ilm_json_write_str(f, r->test, strlen(r->test));
        fprintf(f, ", \"n_prompt\": %d, \"n_gen\": %d, \"n_depth\": %d, \"avg_ts\": %.6f, \"stddev_ts\": %.6f, "
                   "\"samples_ts\": [",
                r->t.n_prompt, r->t.n_gen, r->t.depth, r->avg, r->sd);
        for (int k = 0; k < r->reps; k++) fprintf(f, "%s%.6f", k ? ", " : "", r->ts[k]);
        fprintf(f, "], \"gb_s\": %.6f, \"bw_pct\": %.4f, \"cache_resident\": %s, \"peak_pct\": %.4f", r->gb_s, r->bw_pct,
                r->cache_resident ? "true" : "false", r->peak_pct);
        if (r->t.kind == T_SPEC) {
            fprintf(f, ", \"draft_max\": %d, \"accept_rate\": %.6f, \"mean_accepted\": %.6f, \"accept_at\": [",
                    r->t.draft_max, r->accept_rate, r->mean_accepted);
            for (int k = 0; k < r->n_accept_at; k++) fprintf(f, "%s%.6f", k ? ", " : "", r->accept_at[k]);
            fprintf(f, "]");
            if (r->costs) {
                const ilm_bench_costs *c = r->costs;
                fprintf(f, ", \"decode_ms\": %.6f, \"draft_step_ratio\": %.6f, \"verify_ratio\": [", c->t_decode * 1e3,
                        c->t_decode > 0 ? c->t_draft / c->t_decode : 0);
                for (int N = 1; N <= c->n_max; N++) fprintf(f, "%s%.6f", N > 1 ? ", " : "", c->t_verify[N] / c->t_decode);
                fprintf(f, "]");
            }
        }
        fprintf(f, "}%s\n", i + 1 < S->n_rows ? "," : "");
    }
    fprintf(f, "]\n");
}

static void csv_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void print_csv(const bench_state *S, FILE *f) {
    fprintf(f, "model_filename,model_type,model_size,model_n_params,kernels,n_threads,test,n_prompt,n_gen,n_depth,"
               "avg_ts,stddev_ts,samples_ts,gb_s,bw_pct,draft_max,accept_rate\n");
    for (int i = 0; i < S->n_rows; i++) {
        const bench_row *r = &S->rows[i];
        const model_entry *m = &S->models[r->model];
        csv_str(f, m->name);
        fputc(',', f);
        csv_str(f, m->info.type);
        fprintf(f, ",%llu,%llu,", (unsigned long long)m->info.size, (unsigned long long)m->info.n_params);
        csv_str(f, m->kernels);
        fprintf(f, ",%d,", r->n_threads);
        csv_str(f, r->test);
        fprintf(f, ",%d,%d,%d,%.6f,%.6f,\"", r->t.n_prompt, r->t.n_gen, r->t.depth, r->avg, r->sd);
        for (int k = 0; k < r->reps; k++) fprintf(f, "%s%.6f", k ? ";" : "", r->ts[k]);
        fprintf(f, "\",%.6f,%.4f,", r->gb_s, r->bw_pct);
        if (r->t.kind == T_SPEC) fprintf(f, "%d,%.6f\n", r->t.draft_max, r->accept_rate);
        else fprintf(f, ",\n");
    }
}

void ilm_benchcli_print(const bench_state *S, int out) {
    if (out == OUT_MD) {
        print_md(S, stdout);
        print_spec(S, stdout);
    } else {
        if (out == OUT_JSON) print_json(S, stdout);
        else print_csv(S, stdout);
        print_load(S, stderr);
        print_spec(S, stderr);
    }
}
