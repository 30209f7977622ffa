// commands.h — entry points of the sub-commands implemented in src/cmd_*.c.
// Each takes argv[0] = the sub-command name and returns the process exit code.
#pragma once

int ilm_cmd_logits(int argc, char **argv);
int ilm_cmd_run(int argc, char **argv);
int ilm_cmd_bench(int argc, char **argv);
