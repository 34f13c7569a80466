/*
 * Intrusive chained hash table. Elements embed a struct rtm_hnode and carry
 * their own key; lookups compare through a callback. Buckets double when the
 * load passes 1, so lookups stay O(1) from ten entries to millions.
 *
 * Keys such as uids, invitation ids and device tokens are chosen by clients,
 * so byte strings are hashed with SipHash-2-4 under a secret key drawn at
 * load: nobody can craft keys that land in one bucket and turn lookups into
 * list walks (hash flooding).
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

/* The secret SipHash key; all zero is allowed (tests, benchmarks). */
struct rtm_hash_key {
    uint64_t k0, k1;
};

struct rtm_hash {
    struct rtm_hnode **buckets;
    struct rtm_hash_key key;
    size_t mask; /* bucket count - 1; the count is a power of two */
    size_t count;
    size_t low; /* no bucket below this one is in use: keeps draining O(n) */
};

typedef bool (*rtm_hash_eq_fn)(const struct rtm_hnode *node, const void *key);

/* SipHash-2-4 of `data` under `key`. */
uint64_t rtm_siphash(const struct rtm_hash_key *key, const void *data, size_t len);
/* The hash of a byte-string key in table `h` (under the table's key). */
uint64_t rtm_hash_bytes(const struct rtm_hash *h, const void *data, size_t len);
/* The hash of a key made of two strings, `a` then `b` (e.g. a caller and
 * its invitation id): the bytes of a, a NUL, the bytes of b, so that no two
 * pairs run together. Only the first RTM_HASH_PART_MAX bytes of each count:
 * keys that long hash alike, and the table's eq compares them whole. */
#define RTM_HASH_PART_MAX 128
uint64_t rtm_hash_pair(const struct rtm_hash *h, const char *a, const char *b);
/* For pointers, which clients cannot choose: a fast unkeyed mix. */
uint64_t rtm_hash_ptr(const void *ptr);

/* Returns 0, or -1 when out of memory. `key` NULL: the all-zero key. */
int rtm_hash_init(struct rtm_hash *h, size_t initial_buckets, const struct rtm_hash_key *key);

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
