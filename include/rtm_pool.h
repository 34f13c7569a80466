/*
 * A slab pool for the core's long-lived records (users, sessions, calls).
 *
 * Why not malloc: every invitation also makes short-lived allocations (the
 * parsed request, the stamped payload, the broker's own message copies).
 * Interleaved in one glibc arena with records that live for a minute, the
 * freed short-lived chunks leave holes the arena cannot give back: measured
 * at about 130 bytes of resident memory per pending invitation on top of
 * its heap. Records of one size class share 64 KiB slabs of their own, so
 * nothing short-lived lands between them, and no record pays malloc's
 * 8-byte chunk header.
 *
 * Sizes are rounded up to 16 bytes, up to RTM_POOL_MAX. A slab whose last
 * record is freed is given back to the system unless it is its class's only
 * slab with room, so a burst of a million calls does not stay resident.
 * Not thread-safe: the broker thread owns it, like the rest of the core.
 */
#ifndef RTM_POOL_H
#define RTM_POOL_H

#include <stddef.h>

#define RTM_POOL_MAX     512
#define RTM_POOL_CLASSES (RTM_POOL_MAX / 16)

struct rtm_pool_slab;

struct rtm_pool {
    struct rtm_pool_slab *partial[RTM_POOL_CLASSES]; /* slabs with room, per class */
    struct rtm_pool_slab *all;                       /* every slab */
    size_t slabs;                                    /* slabs mapped */
    size_t live;                                     /* records allocated, not yet freed */
};

void rtm_pool_init(struct rtm_pool *pool);
/* Gives every slab back. Records still allocated become invalid: the
 * owner frees them first (rtm_pool_live() says whether it did). */
void rtm_pool_fini(struct rtm_pool *pool);

/* A zeroed record of `size` bytes (1..RTM_POOL_MAX), 16-byte aligned, or
 * NULL when out of memory or too large. */
void *rtm_pool_alloc(struct rtm_pool *pool, size_t size);
/* Frees a record from rtm_pool_alloc() of the same pool; NULL is ignored. */
void rtm_pool_free(struct rtm_pool *pool, void *ptr);

size_t rtm_pool_live(const struct rtm_pool *pool);
/* Bytes mapped for slabs: what the records cost, their padding included. */
size_t rtm_pool_bytes(const struct rtm_pool *pool);

#endif
