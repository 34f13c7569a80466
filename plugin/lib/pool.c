/*
 * Slab pool (rtm_pool.h). Each slab is a 64 KiB mapping aligned to its
 * size, so a record finds its slab by masking its address. A slab hands out
 * never-used records from `fresh` first, then the ones freed into its own
 * free list (linked through their first word).
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, which POSIX 2008 lacks */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "rtm_pool.h"

/* Sanitizers and valgrind cannot see inside a slab by themselves: tell
 * them which records are allocated, so that a use after free or a leaked
 * record is still reported. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif
#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define POOL_VALGRIND 1
#endif
#endif
#ifndef POOL_VALGRIND
#define VALGRIND_MALLOCLIKE_BLOCK(p, n, rz, zeroed) ((void)(p), (void)(n))
#define VALGRIND_FREELIKE_BLOCK(p, rz)              ((void)(p))
#define VALGRIND_MAKE_MEM_DEFINED(p, n)             ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_NOACCESS(p, n)            ((void)(p), (void)(n))
#endif

#define SLAB_SIZE   ((size_t)64 * 1024)
#define SLAB_HEADER 128 /* the header below, rounded so records stay aligned */

struct rtm_pool_slab {
    struct rtm_pool_slab *next, *prev;         /* pool->partial[cls] while it has room */
    struct rtm_pool_slab *all_next, *all_prev; /* pool->all */
    void *free;                                /* records freed into this slab */
    char *fresh;                               /* the next never-used record */
    char *end;                                 /* the end of the records' space */
    unsigned used;                             /* records allocated from it */
    unsigned cls;
    bool listed; /* in pool->partial[cls] */
};
_Static_assert(sizeof(struct rtm_pool_slab) <= SLAB_HEADER, "slab header too large");

static size_t class_size(unsigned cls)
{
    return ((size_t)cls + 1) * 16;
}

static struct rtm_pool_slab *slab_of(const void *ptr)
{
    return (struct rtm_pool_slab *)((uintptr_t)ptr & ~(uintptr_t)(SLAB_SIZE - 1));
}

/* Maps twice the size and trims it, the only portable way to an aligned
 * mapping. Fresh anonymous memory reads as zero. */
static struct rtm_pool_slab *map_slab(unsigned cls)
{
    char *raw =
        mmap(NULL, 2 * SLAB_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + SLAB_SIZE - 1) & ~(uintptr_t)(SLAB_SIZE - 1);
    char *slab_start = (char *)start;
    if (slab_start > raw)
        munmap(raw, (size_t)(slab_start - raw));
    char *tail = slab_start + SLAB_SIZE;
    if (tail < raw + 2 * SLAB_SIZE)
        munmap(tail, (size_t)(raw + 2 * SLAB_SIZE - tail));
    struct rtm_pool_slab *slab = (struct rtm_pool_slab *)slab_start;
    slab->cls = cls;
    slab->fresh = slab_start + SLAB_HEADER;
    slab->end = slab_start + SLAB_SIZE;
    POISON(slab->fresh, (size_t)(slab->end - slab->fresh));
    VALGRIND_MAKE_MEM_NOACCESS(slab->fresh, (size_t)(slab->end - slab->fresh));
    return slab;
}

static void add_slab(struct rtm_pool *pool, struct rtm_pool_slab *slab)
{
    slab->all_prev = NULL;
    slab->all_next = pool->all;
    if (pool->all)
        pool->all->all_prev = slab;
    pool->all = slab;
    pool->slabs++;
}

/* Unlinks and unmaps; the slab's address range may be mapped again for
 * anything, so the sanitizer must forget what it was told about it. */
static void drop_slab(struct rtm_pool *pool, struct rtm_pool_slab *slab)
{
    if (slab->all_prev)
        slab->all_prev->all_next = slab->all_next;
    else
        pool->all = slab->all_next;
    if (slab->all_next)
        slab->all_next->all_prev = slab->all_prev;
    pool->slabs--;
    UNPOISON(slab, SLAB_SIZE);
    munmap(slab, SLAB_SIZE);
}

static void link_partial(struct rtm_pool *pool, struct rtm_pool_slab *slab)
{
    struct rtm_pool_slab **head = &pool->partial[slab->cls];
    slab->prev = NULL;
    slab->next = *head;
    if (*head)
        (*head)->prev = slab;
    *head = slab;
    slab->listed = true;
}

static void unlink_partial(struct rtm_pool *pool, struct rtm_pool_slab *slab)
{
    if (slab->prev)
        slab->prev->next = slab->next;
    else
        pool->partial[slab->cls] = slab->next;
    if (slab->next)
        slab->next->prev = slab->prev;
    slab->next = slab->prev = NULL;
    slab->listed = false;
}

static bool slab_full(const struct rtm_pool_slab *slab)
{
    return !slab->free && (size_t)(slab->end - slab->fresh) < class_size(slab->cls);
}

void rtm_pool_init(struct rtm_pool *pool)
{
    memset(pool, 0, sizeof(*pool));
}

/* Takes one record out of `slab`, which has room. */
static void *take(struct rtm_pool_slab *slab, size_t size)
{
    void *p;
    if (slab->free) {
        p = slab->free;
        UNPOISON(p, sizeof(void *));
        VALGRIND_MAKE_MEM_DEFINED(p, sizeof(void *));
        slab->free = *(void **)p;
    } else {
        p = slab->fresh;
        slab->fresh += size;
    }
    UNPOISON(p, size);
    VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, 1);
    memset(p, 0, size);
    slab->used++;
    return p;
}

void *rtm_pool_alloc(struct rtm_pool *pool, size_t size)
{
    if (size == 0 || size > RTM_POOL_MAX)
        return NULL;
    unsigned cls = (unsigned)((size + 15) / 16 - 1);
    struct rtm_pool_slab *slab = pool->partial[cls];
    if (!slab) {
        slab = map_slab(cls);
        if (!slab)
            return NULL;
        add_slab(pool, slab);
        link_partial(pool, slab);
    }
    void *p = take(slab, class_size(cls));
    if (slab_full(slab))
        unlink_partial(pool, slab);
    pool->live++;
    return p;
}

void rtm_pool_free(struct rtm_pool *pool, void *ptr)
{
    if (!ptr)
        return;
    struct rtm_pool_slab *slab = slab_of(ptr);
    size_t size = class_size(slab->cls);
    VALGRIND_FREELIKE_BLOCK(ptr, 0);
    VALGRIND_MAKE_MEM_DEFINED(ptr, sizeof(void *));
    *(void **)ptr = slab->free;
    slab->free = ptr;
    POISON(ptr, size);
    VALGRIND_MAKE_MEM_NOACCESS(ptr, size);
    slab->used--;
    pool->live--;
    if (!slab->listed)
        link_partial(pool, slab);
    /* Keep one slab with room per class, so that one record coming and
     * going at a boundary does not map and unmap a slab each time. */
    if (slab->used == 0 && (slab->prev || slab->next)) {
        unlink_partial(pool, slab);
        drop_slab(pool, slab);
    }
}

void rtm_pool_fini(struct rtm_pool *pool)
{
    while (pool->all)
        drop_slab(pool, pool->all);
    rtm_pool_init(pool);
}

size_t rtm_pool_live(const struct rtm_pool *pool)
{
    return pool->live;
}

size_t rtm_pool_bytes(const struct rtm_pool *pool)
{
    return pool->slabs * SLAB_SIZE;
}
