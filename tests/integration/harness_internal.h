/*
 * What the harness's own files (harness_*.c) share with each other. Tests
 * include harness.h only.
 */
#ifndef RTM_IT_HARNESS_INTERNAL_H
#define RTM_IT_HARNESS_INTERNAL_H

#include "harness.h"

/* Sleeps `ms` milliseconds, resuming after a signal (harness_util.c). */
void pause_ms(int ms);

/* rt_fail with `obj` printed (compactly) after the message (harness_util.c). */
void fail_json(const char *file, int line, const cJSON *obj, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* For rt_fail: SIGKILLs every broker of the test case and prints its log
 * tail; the brokers' temp dirs are kept (harness_broker.c). */
void harness_brokers_on_fail(void);

/* For the runner, after a case returned: broker_free on every broker the
 * case left (harness_broker.c). */
void harness_brokers_free_all(void);

#endif
