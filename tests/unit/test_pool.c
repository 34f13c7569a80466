/*
 * The slab pool: records are zeroed, aligned, never overlap, come back
 * after a free, and emptied slabs go back to the system.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rtm_pool.h"

#define SLAB ((size_t)64 * 1024)

static void test_sizes(void **state)
{
    (void)state;
    struct rtm_pool pool;
    rtm_pool_init(&pool);
    assert_null(rtm_pool_alloc(&pool, 0));
    assert_null(rtm_pool_alloc(&pool, RTM_POOL_MAX + 1));
    for (size_t size = 1; size <= RTM_POOL_MAX; size++) {
        unsigned char *p = rtm_pool_alloc(&pool, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (size_t i = 0; i < size; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xab, size);
        rtm_pool_free(&pool, p);
    }
    assert_int_equal(rtm_pool_live(&pool), 0);
    rtm_pool_free(&pool, NULL);
    rtm_pool_fini(&pool);
    assert_int_equal(rtm_pool_bytes(&pool), 0);
}

/* A freed record is the next one handed out in its class, zeroed again. */
static void test_reuse(void **state)
{
    (void)state;
    struct rtm_pool pool;
    rtm_pool_init(&pool);
    char *a = rtm_pool_alloc(&pool, 100);
    char *b = rtm_pool_alloc(&pool, 100);
    assert_ptr_not_equal(a, b);
    memset(a, 'x', 100);
    rtm_pool_free(&pool, a);
    char *c = rtm_pool_alloc(&pool, 112); /* the same 16-byte class */
    assert_ptr_equal(a, c);
    assert_int_equal(c[0], 0);
    assert_int_equal(c[99], 0);
    assert_int_equal(rtm_pool_live(&pool), 2);
    rtm_pool_free(&pool, b);
    rtm_pool_free(&pool, c);
    rtm_pool_fini(&pool);
}

/* Enough records for many slabs, freed in an order unlike the allocation:
 * every emptied slab but one per class is unmapped. */
static void test_slabs_given_back(void **state)
{
    (void)state;
    struct rtm_pool pool;
    rtm_pool_init(&pool);
    enum { N = 20000 };
    void **v = calloc(N, sizeof(*v));
    assert_non_null(v);
    for (int i = 0; i < N; i++) {
        v[i] = rtm_pool_alloc(&pool, i % 2 ? 160 : 48);
        assert_non_null(v[i]);
    }
    size_t mapped = rtm_pool_bytes(&pool);
    assert_true(mapped >= (N / 2 * 160 + N / 2 * 48));
    assert_true(mapped <= (N / 2 * 160 + N / 2 * 48) * 11 / 10 + 2 * SLAB);
    for (int i = 0; i < N; i += 2)
        rtm_pool_free(&pool, v[i]);
    for (int i = N - 1; i > 0; i -= 2)
        rtm_pool_free(&pool, v[i]);
    assert_int_equal(rtm_pool_live(&pool), 0);
    assert_true(rtm_pool_bytes(&pool) <= 2 * SLAB);
    rtm_pool_fini(&pool);
    free(v);
}

/* Random allocations and frees, each record filled with its own byte:
 * nothing overwrites another record. */
static void test_random(void **state)
{
    (void)state;
    struct rtm_pool pool;
    rtm_pool_init(&pool);
    enum { SLOTS = 4096 };
    unsigned char *rec[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    srand(11);
    for (int step = 0; step < 200000; step++) {
        int i = rand() % SLOTS;
        if (rec[i]) {
            for (size_t k = 0; k < size[i]; k++)
                assert_int_equal(rec[i][k], (unsigned char)i);
            rtm_pool_free(&pool, rec[i]);
            rec[i] = NULL;
        } else {
            size[i] = 1 + (size_t)rand() % RTM_POOL_MAX;
            rec[i] = rtm_pool_alloc(&pool, size[i]);
            assert_non_null(rec[i]);
            memset(rec[i], (unsigned char)i, size[i]);
        }
    }
    size_t live = 0;
    for (int i = 0; i < SLOTS; i++)
        live += rec[i] != NULL;
    assert_int_equal(rtm_pool_live(&pool), live);
    for (int i = 0; i < SLOTS; i++)
        rtm_pool_free(&pool, rec[i]);
    assert_int_equal(rtm_pool_live(&pool), 0);
    assert_true(rtm_pool_bytes(&pool) <= RTM_POOL_CLASSES * SLAB);
    rtm_pool_fini(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_slabs_given_back),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
