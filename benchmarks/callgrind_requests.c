/* Callgrind client requests for the benchmark worker, loaded through ctypes.
 *
 * Each macro is a no-op instruction sequence outside valgrind and a request to callgrind
 * inside it, so the worker can switch counting on and off exactly around the requests
 * it sends: no timing, no polling, the same count every run.
 */
#include <valgrind/callgrind.h>

int fsb_running_on_valgrind(void) { return RUNNING_ON_VALGRIND; }

void fsb_start_instrumentation(void) { CALLGRIND_START_INSTRUMENTATION; }

void fsb_toggle_collect(void) { CALLGRIND_TOGGLE_COLLECT; }

void fsb_zero_stats(void) { CALLGRIND_ZERO_STATS; }

void fsb_dump_stats_at(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
