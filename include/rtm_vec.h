/*
 * A growable array of pointers, for the short queues the core drains on
 * every tick (sessions to confirm, users whose presence may have changed).
 * A queue entry costs 8 bytes only while queued, where an intrusive list
 * node would cost 16 in every record for its whole life.
 */
#ifndef RTM_VEC_H
#define RTM_VEC_H

#include <stdlib.h>

struct rtm_vec {
    void **v;
    size_t len;
    size_t cap;
};

/* Appends `p`. Returns 0, or -1 when out of memory (nothing changed). */
static inline int rtm_vec_push(struct rtm_vec *vec, void *p)
{
    if (vec->len == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 64;
        void **v = realloc(vec->v, cap * sizeof(*v));
        if (!v)
            return -1;
        vec->v = v;
        vec->cap = cap;
    }
    vec->v[vec->len++] = p;
    return 0;
}

/* Empties the queue. A burst (a reconnect storm) grows it; the memory goes
 * back once it is drained rather than staying for the process's life. */
static inline void rtm_vec_clear(struct rtm_vec *vec)
{
    vec->len = 0;
    if (vec->cap > 1024) {
        free(vec->v);
        vec->v = NULL;
        vec->cap = 0;
    }
}

static inline void rtm_vec_free(struct rtm_vec *vec)
{
    free(vec->v);
    vec->v = NULL;
    vec->len = vec->cap = 0;
}

#endif
