// fixture_json.h — reading the JSON references of ../shared/fixtures in tests.
#pragma once
#include <stdint.h>

#include "json.h"

// Parses fixture file `rel`; on failure records a test failure and returns NULL.
ilm_json *t_load_json(const char *rel);
// A JSON array of integers as a malloc'd int32 array (*n elements; NULL array -> 0).
int32_t *t_json_ids(const ilm_json *a, int *n);
