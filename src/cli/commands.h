// commands.h — the entry point of every `ironlm` sub-command (src/cli/cmd_*.c; main.c maps
// the names to them). Each takes argv[0] = the sub-command name and returns the process exit
// code: 0 ok, 1 failure, 2 bad usage (usage errors and failures print one "ironlm: error: ..."
// line on stderr).
#pragma once

#define ILM_VERSION "0.1.0"   // ironlm --version

int ilm_cmd_run(int argc, char **argv);         // cmd_run.c
int ilm_cmd_logits(int argc, char **argv);      // cmd_logits.c
int ilm_cmd_serve(int argc, char **argv);       // cmd_serve.c: the OpenAI-compatible server
// `bench` (cmd_bench*.c); with --kernels it hands over to ilm_cmd_bench_kernels.
int ilm_cmd_bench(int argc, char **argv);
// `bench --kernels` (cmd_bench_kernels.c): every matrix kernel x kernel set x batch width.
int ilm_cmd_bench_kernels(int argc, char **argv);
int ilm_cmd_tokenize(int argc, char **argv);    // cmd_tokenize.c
int ilm_cmd_detokenize(int argc, char **argv);  // cmd_tokenize.c
int ilm_cmd_inspect(int argc, char **argv);     // cmd_inspect.c
int ilm_cmd_strip(int argc, char **argv);       // cmd_strip.c
int ilm_cmd_quantize(int argc, char **argv);    // cmd_quantize.c
int ilm_cmd_synth(int argc, char **argv);       // cmd_synth.c
int ilm_cmd_convert(int argc, char **argv);     // cmd_convert.c: HF checkpoint -> GGUF
int ilm_cmd_loadtest(int argc, char **argv);    // cmd_loadtest.c
