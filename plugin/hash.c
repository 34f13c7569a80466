/*
 * Intrusive chained hash table (see rtm_hash.h). Buckets double when the
 * element count passes the bucket count; the rehash is one O(n) pass, which
 * amortizes to O(1) per insert.
 */
#include <stdlib.h>

#include "rtm_hash.h"

uint64_t rtm_hash_bytes(const void *data, size_t len)
{
    /* FNV-1a: short keys (uids, ids), no seed needed for our sizes. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t rtm_hash_ptr(const void *ptr)
{
    /* splitmix64 finalizer: pointers share their low and high bits. */
    uint64_t x = (uint64_t)(uintptr_t)ptr;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static size_t round_up_pow2(size_t n)
{
    size_t p = 8;
    while (p < n)
        p <<= 1;
    return p;
}

int rtm_hash_init(struct rtm_hash *h, size_t initial_buckets)
{
    size_t n = round_up_pow2(initial_buckets);
    h->buckets = calloc(n, sizeof(*h->buckets));
    if (!h->buckets)
        return -1;
    h->mask = n - 1;
    h->count = 0;
    h->low = 0;
    return 0;
}

void rtm_hash_fini(struct rtm_hash *h)
{
    free(h->buckets);
    h->buckets = NULL;
    h->mask = 0;
    h->count = 0;
}

static void grow(struct rtm_hash *h)
{
    size_t old_n = h->mask + 1;
    size_t n = old_n * 2;
    struct rtm_hnode **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return; /* keep the old size: slower, still correct */
    for (size_t i = 0; i < old_n; i++) {
        struct rtm_hnode *node = h->buckets[i];
        while (node) {
            struct rtm_hnode *next = node->next;
            size_t b = node->hash & (n - 1);
            node->next = nb[b];
            nb[b] = node;
            node = next;
        }
    }
    free(h->buckets);
    h->buckets = nb;
    h->mask = n - 1;
    h->low = 0;
}

void rtm_hash_insert(struct rtm_hash *h, struct rtm_hnode *node, uint64_t hash)
{
    if (h->count >= h->mask + 1)
        grow(h);
    size_t b = hash & h->mask;
    node->hash = hash;
    node->next = h->buckets[b];
    h->buckets[b] = node;
    h->count++;
    if (b < h->low)
        h->low = b;
}

struct rtm_hnode *rtm_hash_find(const struct rtm_hash *h, uint64_t hash, rtm_hash_eq_fn eq,
                                const void *key)
{
    for (struct rtm_hnode *n = h->buckets[hash & h->mask]; n; n = n->next) {
        if (n->hash == hash && eq(n, key))
            return n;
    }
    return NULL;
}

void rtm_hash_remove(struct rtm_hash *h, struct rtm_hnode *node)
{
    struct rtm_hnode **pp = &h->buckets[node->hash & h->mask];
    while (*pp && *pp != node)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = node->next;
        node->next = NULL;
        h->count--;
    }
}

struct rtm_hnode *rtm_hash_pop(struct rtm_hash *h)
{
    if (h->count == 0)
        return NULL;
    for (size_t i = h->low; i <= h->mask; i++) {
        struct rtm_hnode *n = h->buckets[i];
        if (n) {
            h->buckets[i] = n->next;
            n->next = NULL;
            h->count--;
            h->low = i;
            return n;
        }
    }
    return NULL;
}
