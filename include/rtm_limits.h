/*
 * Rate limits (a service): `rate` actions per `period_ms` with a burst of
 * `rate`, each kept as one number (the generic cell rate algorithm, the
 * token bucket's twin): the theoretical arrival time of the next action.
 * The bucket is full once the clock has passed it. Pure arithmetic.
 */
#ifndef RTM_LIMITS_H
#define RTM_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

struct rtm_bucket {
    int64_t tat_us; /* 0: full and never drawn from */
};

/* Draws one action at `now` (ms); false, drawing nothing, when the bucket
 * is empty. `rate` > 0. */
bool rtm_bucket_take(struct rtm_bucket *b, uint32_t rate, int64_t period_ms, int64_t now);

/* When the bucket is full again (ms), or -1 when it was never drawn from. */
int64_t rtm_bucket_full_at(const struct rtm_bucket *b);

#endif
