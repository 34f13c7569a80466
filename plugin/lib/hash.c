/*
 * Intrusive chained hash table (see rtm_hash.h). Buckets double when the
 * element count passes the bucket count; the rehash is one O(n) pass, which
 * amortizes to O(1) per insert.
 */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "rtm_hash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ROTL(v[1], 13);
    v[1] ^= v[0];
    v[0] = ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = ROTL(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = ROTL(v[1], 17);
    v[1] ^= v[2];
    v[2] = ROTL(v[2], 32);
}

static void sip_absorb(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sip_round(v);
    sip_round(v);
    v[0] ^= m;
}

/* Little-endian load of n <= 8 bytes, whatever the host's byte order. */
static uint64_t load_le(const unsigned char *p, size_t n)
{
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++)
        m |= (uint64_t)p[i] << (8 * i);
    return m;
}

uint64_t rtm_siphash(const struct rtm_hash_key *key, const void *data, size_t len)
{
    const unsigned char *p = len ? data : (const void *)""; /* never offset NULL */
    uint64_t v[4] = {
        key->k0 ^ 0x736f6d6570736575ULL,
        key->k1 ^ 0x646f72616e646f6dULL,
        key->k0 ^ 0x6c7967656e657261ULL,
        key->k1 ^ 0x7465646279746573ULL,
    };
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8)
        sip_absorb(v, load_le(p + i, 8));
    sip_absorb(v, load_le(p + whole, len - whole) | (uint64_t)(len & 0xff) << 56);
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

uint64_t rtm_hash_bytes(const struct rtm_hash *h, const void *data, size_t len)
{
    return rtm_siphash(&h->key, data, len);
}

uint64_t rtm_hash_pair(const struct rtm_hash *h, const char *a, const char *b)
{
    char key[2 * RTM_HASH_PART_MAX + 1];
    size_t la = strnlen(a, RTM_HASH_PART_MAX), lb = strnlen(b, RTM_HASH_PART_MAX);
    memcpy(key, a, la);
    key[la] = '\0';
    memcpy(key + la + 1, b, lb);
    return rtm_siphash(&h->key, key, la + 1 + lb);
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

int rtm_hash_init(struct rtm_hash *h, size_t initial_buckets, const struct rtm_hash_key *key)
{
    static const struct rtm_hash_key zero;
    h->key = key ? *key : zero;
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
