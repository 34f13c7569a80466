/*
 * Binary min-heap of timers (see rtm_heap.h), ordered by (due, seq). Each
 * timer records its slot so it can be moved or removed without a search.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "rtm_heap.h"

void rtm_heap_init(struct rtm_heap *heap)
{
    heap->v = NULL;
    heap->len = 0;
    heap->cap = 0;
    heap->next_seq = 0;
}

void rtm_heap_fini(struct rtm_heap *heap)
{
    for (size_t i = 0; i < heap->len; i++)
        heap->v[i]->slot = 0;
    free(heap->v);
    rtm_heap_init(heap);
}

/* Earlier due first; at the same due, the earlier armed, comparing the
 * 24-bit sequence numbers as serial numbers, so that ties armed within 8
 * million armings of each other keep their order across a wrap. */
static bool before(const struct rtm_timer *a, const struct rtm_timer *b)
{
    if (a->due != b->due)
        return a->due < b->due;
    return (int32_t)((uint32_t)(a->seq - b->seq) << 8) < 0;
}

static void place(struct rtm_heap *heap, size_t i, struct rtm_timer *t)
{
    heap->v[i] = t;
    t->slot = (uint32_t)(i + 1);
}

static void sift_up(struct rtm_heap *heap, size_t i)
{
    struct rtm_timer *t = heap->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(t, heap->v[parent]))
            break;
        place(heap, i, heap->v[parent]);
        i = parent;
    }
    place(heap, i, t);
}

static void sift_down(struct rtm_heap *heap, size_t i)
{
    struct rtm_timer *t = heap->v[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= heap->len)
            break;
        if (child + 1 < heap->len && before(heap->v[child + 1], heap->v[child]))
            child++;
        if (!before(heap->v[child], t))
            break;
        place(heap, i, heap->v[child]);
        i = child;
    }
    place(heap, i, t);
}

static int reserve_one(struct rtm_heap *heap)
{
    if (heap->len < heap->cap)
        return 0;
    size_t cap = heap->cap ? heap->cap * 2 : 64;
    struct rtm_timer **v = realloc(heap->v, cap * sizeof(*v));
    if (!v)
        return -1;
    heap->v = v;
    heap->cap = cap;
    return 0;
}

int rtm_heap_arm(struct rtm_heap *heap, struct rtm_timer *t, int64_t due)
{
    if (rtm_timer_armed(t))
        rtm_heap_disarm(heap, t);
    if (reserve_one(heap) != 0)
        return -1;
    t->due = due;
    t->seq = heap->next_seq++ & 0xffffff;
    heap->len++;
    place(heap, heap->len - 1, t);
    sift_up(heap, heap->len - 1);
    return 0;
}

void rtm_heap_disarm(struct rtm_heap *heap, struct rtm_timer *t)
{
    if (!rtm_timer_armed(t))
        return;
    size_t i = t->slot - 1;
    t->slot = 0;
    heap->len--;
    if (i == heap->len)
        return;
    struct rtm_timer *last = heap->v[heap->len];
    place(heap, i, last);
    if (i > 0 && before(last, heap->v[(i - 1) / 2]))
        sift_up(heap, i);
    else
        sift_down(heap, i);
}

struct rtm_timer *rtm_heap_peek(const struct rtm_heap *heap)
{
    return heap->len ? heap->v[0] : NULL;
}

struct rtm_timer *rtm_heap_pop_due(struct rtm_heap *heap, int64_t now)
{
    struct rtm_timer *t = rtm_heap_peek(heap);
    if (!t || t->due > now)
        return NULL;
    rtm_heap_disarm(heap, t);
    return t;
}
