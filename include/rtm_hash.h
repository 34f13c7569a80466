/*
 * Intrusive chained hash table. Elements embed a struct rtm_hnode and carry
 * their own key; lookups compare through a callback. Buckets double when the
 * load passes 1, so lookups stay O(1) from ten entries to millions.
 */
#ifndef RTM_HASH_H
#define RTM_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rtm_hnode {
    struct rtm_hnode *next;
    uint64_t hash;
};

struct rtm_hash {
    struct rtm_hnode **buckets;
    size_t mask; /* bucket count - 1; the count is a power of two */
    size_t count;
    size_t low; /* no bucket below this one is in use: keeps draining O(n) */
};

typedef bool (*rtm_hash_eq_fn)(const struct rtm_hnode *node, const void *key);

uint64_t rtm_hash_bytes(const void *data, size_t len);
uint64_t rtm_hash_ptr(const void *ptr);

/* Returns 0, or -1 when out of memory. */
int rtm_hash_init(struct rtm_hash *h, size_t initial_buckets);

/* Frees the buckets, not the elements. */
void rtm_hash_fini(struct rtm_hash *h);

/* Links `node` under `hash`. Never fails: when growing runs out of memory the
 * table keeps its size and only gets slower. */
void rtm_hash_insert(struct rtm_hash *h, struct rtm_hnode *node, uint64_t hash);

struct rtm_hnode *rtm_hash_find(const struct rtm_hash *h, uint64_t hash, rtm_hash_eq_fn eq,
                                const void *key);

/* Unlinks `node`, which must be in the table. */
void rtm_hash_remove(struct rtm_hash *h, struct rtm_hnode *node);

/* Unlinks and returns any one element, or NULL when empty: for teardown. */
struct rtm_hnode *rtm_hash_pop(struct rtm_hash *h);

#endif
