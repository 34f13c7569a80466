/*
 * Unit tests for plugin/lib/hash.c: the intrusive chained hash table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "rtm_hash.h"
#include "rtm_list.h"

#define MANY 100000

struct item {
    struct rtm_hnode node;
    int value;
    bool in_table;
    bool popped;
    char key[24];
};

static bool item_eq(const struct rtm_hnode *node, const void *key)
{
    const struct item *it = rtm_container_of(node, const struct item, node);
    return strcmp(it->key, key) == 0;
}

static const struct rtm_hash_key test_key = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

static uint64_t key_hash(const char *key)
{
    return rtm_siphash(&test_key, key, strlen(key));
}

static struct item *find(const struct rtm_hash *h, const char *key)
{
    struct rtm_hnode *n = rtm_hash_find(h, key_hash(key), item_eq, key);
    return n ? rtm_container_of(n, struct item, node) : NULL;
}

static struct item *make_items(size_t n)
{
    struct item *items = calloc(n, sizeof(*items));
    assert_non_null(items);
    for (size_t i = 0; i < n; i++) {
        snprintf(items[i].key, sizeof(items[i].key), "user-%zu", i);
        items[i].value = (int)i;
    }
    return items;
}

static void test_empty(void **state)
{
    (void)state;
    struct rtm_hash h;
    assert_int_equal(rtm_hash_init(&h, 0, NULL), 0);
    assert_int_equal(h.count, 0);
    /* A power of two. */
    assert_int_equal((h.mask + 1) & h.mask, 0);
    assert_null(find(&h, "nobody"));
    assert_null(rtm_hash_pop(&h));
    rtm_hash_fini(&h);
}

static void test_initial_buckets_power_of_two(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 7, 8, 9, 100, 1000, 1024, 1025};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct rtm_hash h;
        assert_int_equal(rtm_hash_init(&h, sizes[i], NULL), 0);
        assert_int_equal((h.mask + 1) & h.mask, 0);
        assert_true(h.mask + 1 >= sizes[i]);
        rtm_hash_fini(&h);
    }
}

static void test_insert_find_remove_many(void **state)
{
    (void)state;
    struct rtm_hash h;
    struct item *items = make_items(MANY);
    assert_int_equal(rtm_hash_init(&h, 8, NULL), 0);
    size_t initial_buckets = h.mask + 1;

    for (size_t i = 0; i < MANY; i++) {
        rtm_hash_insert(&h, &items[i].node, key_hash(items[i].key));
        items[i].in_table = true;
        assert_int_equal(h.count, i + 1);
    }
    /* Growth: the load stays at or below 1, and the bucket count is still a
     * power of two. */
    assert_true(h.mask + 1 > initial_buckets);
    assert_true(h.mask + 1 >= h.count);
    assert_int_equal((h.mask + 1) & h.mask, 0);

    for (size_t i = 0; i < MANY; i++) {
        struct item *it = find(&h, items[i].key);
        assert_ptr_equal(it, &items[i]);
    }
    assert_null(find(&h, "user-100000"));
    assert_null(find(&h, "user-"));
    assert_null(find(&h, ""));

    /* Remove every other one, then every third of the rest. */
    size_t expected = MANY;
    for (size_t i = 0; i < MANY; i += 2) {
        rtm_hash_remove(&h, &items[i].node);
        items[i].in_table = false;
        expected--;
    }
    for (size_t i = 1; i < MANY; i += 6) {
        rtm_hash_remove(&h, &items[i].node);
        items[i].in_table = false;
        expected--;
    }
    assert_int_equal(h.count, expected);
    for (size_t i = 0; i < MANY; i++) {
        struct item *it = find(&h, items[i].key);
        if (items[i].in_table)
            assert_ptr_equal(it, &items[i]);
        else
            assert_null(it);
    }

    /* Re-insert the removed ones: all findable again. */
    for (size_t i = 0; i < MANY; i++) {
        if (!items[i].in_table) {
            rtm_hash_insert(&h, &items[i].node, key_hash(items[i].key));
            items[i].in_table = true;
        }
    }
    assert_int_equal(h.count, MANY);
    for (size_t i = 0; i < MANY; i += 7)
        assert_ptr_equal(find(&h, items[i].key), &items[i]);

    rtm_hash_fini(&h);
    free(items);
}

static void test_pop_drains(void **state)
{
    (void)state;
    struct rtm_hash h;
    struct item *items = make_items(MANY);
    assert_int_equal(rtm_hash_init(&h, 16, NULL), 0);
    for (size_t i = 0; i < MANY; i++)
        rtm_hash_insert(&h, &items[i].node, key_hash(items[i].key));

    size_t popped = 0;
    struct rtm_hnode *n;
    while ((n = rtm_hash_pop(&h)) != NULL) {
        struct item *it = rtm_container_of(n, struct item, node);
        assert_true(it >= items && it < items + MANY);
        assert_false(it->popped); /* each element exactly once */
        it->popped = true;
        popped++;
        assert_int_equal(h.count, MANY - popped);
    }
    assert_int_equal(popped, MANY);
    assert_int_equal(h.count, 0);
    for (size_t i = 0; i < MANY; i += 1000)
        assert_null(find(&h, items[i].key));
    assert_null(rtm_hash_pop(&h));

    /* The table is still usable after draining. */
    rtm_hash_insert(&h, &items[5].node, key_hash(items[5].key));
    assert_ptr_equal(find(&h, items[5].key), &items[5]);
    rtm_hash_fini(&h);
    free(items);
}

static void test_same_hash_different_keys(void **state)
{
    (void)state;
    /* Full 64-bit collisions: the eq callback tells the elements apart, and
     * removing one from the middle of a chain keeps the others. */
    struct rtm_hash h;
    struct item items[5];
    memset(items, 0, sizeof(items));
    assert_int_equal(rtm_hash_init(&h, 8, NULL), 0);
    for (int i = 0; i < 5; i++) {
        snprintf(items[i].key, sizeof(items[i].key), "k%d", i);
        rtm_hash_insert(&h, &items[i].node, 42);
    }
    for (int i = 0; i < 5; i++) {
        struct rtm_hnode *n = rtm_hash_find(&h, 42, item_eq, items[i].key);
        assert_ptr_equal(n, &items[i].node);
    }
    assert_null(rtm_hash_find(&h, 42, item_eq, "k9"));
    assert_null(rtm_hash_find(&h, 43, item_eq, "k1"));

    rtm_hash_remove(&h, &items[2].node);
    assert_null(rtm_hash_find(&h, 42, item_eq, "k2"));
    for (int i = 0; i < 5; i++) {
        if (i == 2)
            continue;
        assert_ptr_equal(rtm_hash_find(&h, 42, item_eq, items[i].key), &items[i].node);
    }
    assert_int_equal(h.count, 4);
    rtm_hash_remove(&h, &items[0].node);
    rtm_hash_remove(&h, &items[4].node);
    assert_int_equal(h.count, 2);
    assert_ptr_equal(rtm_hash_find(&h, 42, item_eq, "k1"), &items[1].node);
    assert_ptr_equal(rtm_hash_find(&h, 42, item_eq, "k3"), &items[3].node);
    rtm_hash_fini(&h);
}

static void test_hash_bytes(void **state)
{
    (void)state;
    const struct rtm_hash_key *k = &test_key;
    assert_true(rtm_siphash(k, "bob", 3) == rtm_siphash(k, "bob", 3));
    assert_true(rtm_siphash(k, "bob", 3) != rtm_siphash(k, "bOb", 3));
    assert_true(rtm_siphash(k, "bob", 3) != rtm_siphash(k, "bob", 2));
    assert_true(rtm_siphash(k, "ab", 2) != rtm_siphash(k, "ba", 2));
    /* Only `len` bytes count. */
    assert_true(rtm_siphash(k, "bobX", 3) == rtm_siphash(k, "bobY", 3));
    (void)rtm_siphash(k, NULL, 0);

    /* Sequential keys spread over the buckets. */
    enum { N = 1 << 16 };
    unsigned *hits = calloc(N, sizeof(*hits));
    assert_non_null(hits);
    char key[32];
    for (unsigned i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "call-%u", i);
        hits[key_hash(key) & (N - 1)]++;
    }
    unsigned worst = 0;
    for (unsigned i = 0; i < N; i++)
        if (hits[i] > worst)
            worst = hits[i];
    /* With a fair hash the longest of 65536 chains at load 1 is about 8. */
    assert_true(worst <= 16);
    free(hits);
}

/* OpenSSL's SIPHASH MAC (2-4 rounds, 8-byte tag, little endian) is an
 * independent implementation to check ours against. */
static uint64_t openssl_siphash(const unsigned char key[16], const unsigned char *data, size_t len)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    assert_non_null(ctx);
    size_t size = 8, out_len = 0;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_end()};
    unsigned char out[8];
    assert_int_equal(EVP_MAC_init(ctx, key, 16, params), 1);
    assert_int_equal(EVP_MAC_update(ctx, data, len), 1);
    assert_int_equal(EVP_MAC_final(ctx, out, &out_len, sizeof(out)), 1);
    assert_int_equal(out_len, 8);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)out[i] << (8 * i);
    return v;
}

static void test_siphash_matches_openssl(void **state)
{
    (void)state;
    unsigned char key[16], data[64];
    for (int i = 0; i < 16; i++)
        key[i] = (unsigned char)i;
    for (int i = 0; i < 64; i++)
        data[i] = (unsigned char)(i * 37 + 11);
    /* test_key is the same 00..0f key as two little-endian words. */
    for (size_t len = 0; len <= sizeof(data); len++)
        assert_true(rtm_siphash(&test_key, data, len) == openssl_siphash(key, data, len));
    /* The reference paper's vector: key 00..0f, message 00..0e. */
    unsigned char msg[15];
    for (int i = 0; i < 15; i++)
        msg[i] = (unsigned char)i;
    assert_true(rtm_siphash(&test_key, msg, sizeof(msg)) == 0xa129ca6149be45e5ULL);
}

static void test_tables_are_keyed(void **state)
{
    (void)state;
    struct rtm_hash_key other = {1, 2};
    struct rtm_hash a, b;
    assert_int_equal(rtm_hash_init(&a, 8, &test_key), 0);
    assert_int_equal(rtm_hash_init(&b, 8, &other), 0);
    /* Another key, other hashes: colliding keys cannot be computed offline. */
    assert_true(rtm_hash_bytes(&a, "bob", 3) == rtm_siphash(&test_key, "bob", 3));
    assert_true(rtm_hash_bytes(&a, "bob", 3) != rtm_hash_bytes(&b, "bob", 3));
    rtm_hash_fini(&a);
    rtm_hash_fini(&b);
}

/* A pair hashes as its two strings with a NUL between them, so that no
 * two pairs run together; only the first RTM_HASH_PART_MAX bytes of each
 * count. */
static void test_hash_pair(void **state)
{
    (void)state;
    struct rtm_hash h;
    assert_int_equal(rtm_hash_init(&h, 8, &test_key), 0);
    assert_true(rtm_hash_pair(&h, "alice", "c-1") == rtm_siphash(&test_key, "alice\0c-1", 9));
    assert_true(rtm_hash_pair(&h, "ab", "c") != rtm_hash_pair(&h, "a", "bc"));
    assert_true(rtm_hash_pair(&h, "", "") == rtm_siphash(&test_key, "", 1));
    char a[RTM_HASH_PART_MAX + 2], b[RTM_HASH_PART_MAX + 2];
    memset(a, 'a', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memcpy(b, a, sizeof(b));
    b[RTM_HASH_PART_MAX] = 'b'; /* past the part that counts */
    assert_true(rtm_hash_pair(&h, a, "x") == rtm_hash_pair(&h, b, "x"));
    assert_true(rtm_hash_pair(&h, "x", a) == rtm_hash_pair(&h, "x", b));
    rtm_hash_fini(&h);
}

static void test_hash_ptr(void **state)
{
    (void)state;
    /* Adjacent allocations share their high bits and their alignment bits:
     * the hash must still spread them. */
    enum { N = 1 << 16 };
    struct item *items = calloc(N, sizeof(*items));
    unsigned *hits = calloc(N, sizeof(*hits));
    assert_non_null(items);
    assert_non_null(hits);
    assert_true(rtm_hash_ptr(&items[0]) == rtm_hash_ptr(&items[0]));
    assert_true(rtm_hash_ptr(&items[0]) != rtm_hash_ptr(&items[1]));
    for (unsigned i = 0; i < N; i++)
        hits[rtm_hash_ptr(&items[i]) & (N - 1)]++;
    unsigned worst = 0;
    for (unsigned i = 0; i < N; i++)
        if (hits[i] > worst)
            worst = hits[i];
    assert_true(worst <= 16);
    free(hits);

    /* Keyed by pointer in a table, as sessions are. */
    struct rtm_hash h;
    assert_int_equal(rtm_hash_init(&h, 4, NULL), 0);
    for (unsigned i = 0; i < N; i++)
        rtm_hash_insert(&h, &items[i].node, rtm_hash_ptr(&items[i]));
    assert_int_equal(h.count, N);
    for (unsigned i = 0; i < N; i += 17) {
        bool found = false;
        for (struct rtm_hnode *n = h.buckets[rtm_hash_ptr(&items[i]) & h.mask]; n; n = n->next)
            if (n == &items[i].node)
                found = true;
        assert_true(found);
    }
    while (rtm_hash_pop(&h))
        ;
    rtm_hash_fini(&h);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_initial_buckets_power_of_two),
        cmocka_unit_test(test_insert_find_remove_many),
        cmocka_unit_test(test_pop_drains),
        cmocka_unit_test(test_same_hash_different_keys),
        cmocka_unit_test(test_hash_bytes),
        cmocka_unit_test(test_siphash_matches_openssl),
        cmocka_unit_test(test_tables_are_keyed),
        cmocka_unit_test(test_hash_pair),
        cmocka_unit_test(test_hash_ptr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
