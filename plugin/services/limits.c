/*
 * Rate limits (rtm_limits.h). A bucket admits an action when the
 * theoretical arrival time is at most a burst ahead of the clock.
 */
#include "rtm_limits.h"

bool rtm_bucket_take(struct rtm_bucket *b, uint32_t rate, int64_t period_ms, int64_t now)
{
    const int64_t interval = period_ms * 1000 / rate; /* microseconds per action */
    const int64_t burst = interval * (rate - 1);      /* how far ahead of now it may run */
    int64_t now_us = now * 1000;
    int64_t tat = b->tat_us > now_us ? b->tat_us : now_us;
    if (tat - now_us > burst)
        return false;
    b->tat_us = tat + interval;
    return true;
}

int64_t rtm_bucket_full_at(const struct rtm_bucket *b)
{
    return b->tat_us ? (b->tat_us + 999) / 1000 : -1;
}
