// test_scaleout.c — runs tests/scaleout.sh: two `ironlm serve` instances behind nginx with
// deploy/nginx-ironlm.conf, `ironlm loadtest` through it with zero errors, both instances
// serving, graceful SIGTERM exits. Skipped when nginx is not installed (the script exits 77).
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

TEST(scaleout_two_instances_behind_nginx) {
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "IRONLM_BIN='%s' timeout -k 5 90 bash tests/scaleout.sh 2>&1", t_bin());
    int rc = t_run(cmd, &out);
    if (rc == 77) t_skip("nginx not installed");
    else CHECK_MSG(rc == 0, "tests/scaleout.sh exited %d:\n%s", rc, out ? out : "");
    free(out);
}
