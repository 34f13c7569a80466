/*
 * Timers in a binary min-heap. The timer struct lives inside its owner (an
 * invitation, a user), so arming never allocates an element; the heap holds
 * pointers and each timer knows its slot, so re-arming and disarming are
 * O(log n). Ties fire first-armed first. The heap never reads a clock.
 */
#ifndef RTM_HEAP_H
#define RTM_HEAP_H

#include <stddef.h>
#include <stdint.h>

/* 16 bytes: one sits in every invitation and every user, so it counts. */
struct rtm_timer {
    int64_t due;       /* ms */
    uint32_t slot;     /* index in the heap + 1; 0 when not armed */
    uint32_t seq : 24; /* arming order, breaks ties (serial arithmetic: it wraps) */
    uint32_t kind : 8; /* what the owner is; read by the dispatcher */
};

struct rtm_heap {
    struct rtm_timer **v;
    size_t len;
    size_t cap;
    uint32_t next_seq;
};

void rtm_heap_init(struct rtm_heap *heap);
void rtm_heap_fini(struct rtm_heap *heap);

static inline int rtm_timer_armed(const struct rtm_timer *t)
{
    return t->slot != 0;
}

/* Arms `t` for `due`, or moves it there if already armed. Returns 0, or -1
 * when the heap cannot grow (the timer is then not armed). */
int rtm_heap_arm(struct rtm_heap *heap, struct rtm_timer *t, int64_t due);

/* Disarms `t`; a no-op when it is not armed. */
void rtm_heap_disarm(struct rtm_heap *heap, struct rtm_timer *t);

/* The earliest timer, or NULL. */
struct rtm_timer *rtm_heap_peek(const struct rtm_heap *heap);

/* Disarms and returns the earliest timer if it is due at `now`, else NULL. */
struct rtm_timer *rtm_heap_pop_due(struct rtm_heap *heap, int64_t now);

#endif
