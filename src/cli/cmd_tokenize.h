// cmd_tokenize.h — the `tokenize` and `detokenize` sub-commands (src/cli/cmd_tokenize.c).
// argv[0] is the sub-command name; each returns the process exit code (0 ok, 1 failure,
// 2 bad usage) after printing any error as one "ironlm: error: ..." line on stderr.
#pragma once

int ilm_cmd_tokenize(int argc, char **argv);
int ilm_cmd_detokenize(int argc, char **argv);
