/*
 * Unit tests for plugin/lib/heap.c: the timer min-heap.
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
#include <time.h>

#include "rtm_heap.h"

static void test_empty(void **state)
{
    (void)state;
    struct rtm_heap heap;
    rtm_heap_init(&heap);
    assert_null(rtm_heap_peek(&heap));
    assert_null(rtm_heap_pop_due(&heap, INT64_MAX));
    struct rtm_timer t;
    memset(&t, 0, sizeof(t));
    rtm_heap_disarm(&heap, &t); /* not armed: a no-op */
    assert_false(rtm_timer_armed(&t));
    rtm_heap_fini(&heap);
    rtm_heap_fini(&heap); /* fini leaves an empty heap behind */
}

static void test_ordering(void **state)
{
    (void)state;
    static const int64_t dues[] = {50, 10, 40, 30, 20, 70, 60, 5, 100, 1};
    enum { N = sizeof(dues) / sizeof(dues[0]) };
    struct rtm_heap heap;
    struct rtm_timer t[N];
    memset(t, 0, sizeof(t));
    rtm_heap_init(&heap);
    for (int i = 0; i < N; i++) {
        assert_int_equal(rtm_heap_arm(&heap, &t[i], dues[i]), 0);
        assert_true(rtm_timer_armed(&t[i]));
        assert_int_equal(t[i].due, dues[i]);
    }
    assert_int_equal(heap.len, N);
    assert_ptr_equal(rtm_heap_peek(&heap), &t[9]);

    int64_t last = INT64_MIN;
    for (int i = 0; i < N; i++) {
        struct rtm_timer *x = rtm_heap_pop_due(&heap, INT64_MAX);
        assert_non_null(x);
        assert_false(rtm_timer_armed(x));
        assert_true(x->due >= last);
        last = x->due;
    }
    assert_null(rtm_heap_pop_due(&heap, INT64_MAX));
    rtm_heap_fini(&heap);
}

static void test_ties_fire_in_arming_order(void **state)
{
    (void)state;
    enum { N = 40 };
    struct rtm_heap heap;
    struct rtm_timer t[N];
    memset(t, 0, sizeof(t));
    rtm_heap_init(&heap);
    /* All at the same due time, interleaved with earlier ones. */
    for (int i = 0; i < N; i++)
        assert_int_equal(rtm_heap_arm(&heap, &t[i], (i % 2) ? 100 : 50), 0);
    for (int i = 0; i < N; i += 2)
        assert_ptr_equal(rtm_heap_pop_due(&heap, 1000), &t[i]);
    for (int i = 1; i < N; i += 2)
        assert_ptr_equal(rtm_heap_pop_due(&heap, 1000), &t[i]);
    rtm_heap_fini(&heap);
}

/* The tie-break sequence is 24 bits: ties armed across its wrap still fire
 * in arming order. */
static void test_ties_keep_order_across_wrap(void **state)
{
    (void)state;
    enum { N = 40 };
    struct rtm_heap heap;
    struct rtm_timer t[N];
    memset(t, 0, sizeof(t));
    rtm_heap_init(&heap);
    heap.next_seq = 0xffffff - N / 2;
    for (int i = 0; i < N; i++)
        assert_int_equal(rtm_heap_arm(&heap, &t[i], 100), 0);
    assert_true(t[0].seq > t[N - 1].seq); /* it did wrap */
    for (int i = 0; i < N; i++)
        assert_ptr_equal(rtm_heap_pop_due(&heap, 100), &t[i]);
    rtm_heap_fini(&heap);
}

static void test_rearm_moves(void **state)
{
    (void)state;
    struct rtm_heap heap;
    struct rtm_timer a, b, c;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    rtm_heap_init(&heap);
    assert_int_equal(rtm_heap_arm(&heap, &a, 10), 0);
    assert_int_equal(rtm_heap_arm(&heap, &b, 20), 0);
    assert_int_equal(rtm_heap_arm(&heap, &c, 30), 0);
    assert_ptr_equal(rtm_heap_peek(&heap), &a);

    /* Later: moves behind the others, and the heap does not hold it twice. */
    assert_int_equal(rtm_heap_arm(&heap, &a, 40), 0);
    assert_int_equal(heap.len, 3);
    assert_ptr_equal(rtm_heap_peek(&heap), &b);
    /* Earlier: moves to the front. */
    assert_int_equal(rtm_heap_arm(&heap, &c, 5), 0);
    assert_int_equal(heap.len, 3);
    assert_ptr_equal(rtm_heap_peek(&heap), &c);

    assert_ptr_equal(rtm_heap_pop_due(&heap, 100), &c);
    assert_ptr_equal(rtm_heap_pop_due(&heap, 100), &b);
    assert_ptr_equal(rtm_heap_pop_due(&heap, 100), &a);
    assert_null(rtm_heap_pop_due(&heap, 100));

    /* Re-arming at the same due time counts as a new arming: it goes behind
     * the timers already armed for that time. */
    assert_int_equal(rtm_heap_arm(&heap, &a, 10), 0);
    assert_int_equal(rtm_heap_arm(&heap, &b, 10), 0);
    assert_int_equal(rtm_heap_arm(&heap, &a, 10), 0);
    assert_ptr_equal(rtm_heap_pop_due(&heap, 10), &b);
    assert_ptr_equal(rtm_heap_pop_due(&heap, 10), &a);
    rtm_heap_fini(&heap);
}

static void test_disarm_middle(void **state)
{
    (void)state;
    enum { N = 64 };
    struct rtm_heap heap;
    struct rtm_timer t[N];
    memset(t, 0, sizeof(t));
    rtm_heap_init(&heap);
    for (int i = 0; i < N; i++)
        assert_int_equal(rtm_heap_arm(&heap, &t[i], (int64_t)((i * 37) % N)), 0);
    /* Disarm every third, including ones deep inside the heap. */
    for (int i = 0; i < N; i += 3) {
        rtm_heap_disarm(&heap, &t[i]);
        assert_false(rtm_timer_armed(&t[i]));
        rtm_heap_disarm(&heap, &t[i]); /* twice: a no-op */
    }
    size_t expected = N - (N + 2) / 3;
    assert_int_equal(heap.len, expected);
    int64_t last = INT64_MIN;
    size_t n = 0;
    struct rtm_timer *x;
    while ((x = rtm_heap_pop_due(&heap, INT64_MAX)) != NULL) {
        int idx = (int)(x - t);
        assert_true(idx % 3 != 0);
        assert_true(x->due >= last);
        last = x->due;
        n++;
    }
    assert_int_equal(n, expected);
    rtm_heap_fini(&heap);
}

static void test_pop_due_respects_now(void **state)
{
    (void)state;
    struct rtm_heap heap;
    struct rtm_timer a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    rtm_heap_init(&heap);
    assert_int_equal(rtm_heap_arm(&heap, &a, 1000), 0);
    assert_int_equal(rtm_heap_arm(&heap, &b, 2000), 0);
    assert_null(rtm_heap_pop_due(&heap, 999));
    assert_true(rtm_timer_armed(&a));
    assert_ptr_equal(rtm_heap_pop_due(&heap, 1000), &a); /* due exactly now */
    assert_null(rtm_heap_pop_due(&heap, 1000));
    assert_null(rtm_heap_pop_due(&heap, 1999));
    assert_ptr_equal(rtm_heap_pop_due(&heap, 5000), &b);
    assert_null(rtm_heap_pop_due(&heap, 5000));

    /* Negative and huge due times. */
    assert_int_equal(rtm_heap_arm(&heap, &a, -5), 0);
    assert_int_equal(rtm_heap_arm(&heap, &b, INT64_MAX), 0);
    assert_ptr_equal(rtm_heap_pop_due(&heap, -5), &a);
    assert_null(rtm_heap_pop_due(&heap, INT64_MAX - 1));
    assert_ptr_equal(rtm_heap_pop_due(&heap, INT64_MAX), &b);
    rtm_heap_fini(&heap);
}

static void test_fini_disarms(void **state)
{
    (void)state;
    struct rtm_heap heap;
    struct rtm_timer t[10];
    memset(t, 0, sizeof(t));
    rtm_heap_init(&heap);
    for (int i = 0; i < 10; i++)
        assert_int_equal(rtm_heap_arm(&heap, &t[i], i), 0);
    rtm_heap_fini(&heap);
    for (int i = 0; i < 10; i++)
        assert_false(rtm_timer_armed(&t[i]));
}

/* --- randomized test against a sorted reference ---------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

enum { RT = 500 };

struct ref {
    bool armed;
    int64_t due;
    uint64_t order; /* arming order, as the reference sees it */
};

/* The armed reference timer that must fire first, or -1. */
static int ref_first(const struct ref *ref)
{
    int best = -1;
    for (int i = 0; i < RT; i++) {
        if (!ref[i].armed)
            continue;
        if (best < 0 || ref[i].due < ref[best].due ||
            (ref[i].due == ref[best].due && ref[i].order < ref[best].order))
            best = i;
    }
    return best;
}

static void run_random(uint64_t seed, int steps)
{
    struct rtm_heap heap;
    static struct rtm_timer t[RT];
    static struct ref ref[RT];
    memset(t, 0, sizeof(t));
    memset(ref, 0, sizeof(ref));
    rtm_heap_init(&heap);
    rng_state = seed;
    uint64_t order = 0;
    int64_t now = 0;
    size_t armed = 0;

    for (int step = 0; step < steps; step++) {
        unsigned op = (unsigned)(rnd() % 100);
        int i = (int)(rnd() % RT);
        if (op < 45) {
            /* Small range of due times: plenty of ties. */
            int64_t due = now + (int64_t)(rnd() % 50);
            assert_int_equal(rtm_heap_arm(&heap, &t[i], due), 0);
            if (!ref[i].armed)
                armed++;
            ref[i].armed = true;
            ref[i].due = due;
            ref[i].order = order++;
        } else if (op < 60) {
            rtm_heap_disarm(&heap, &t[i]);
            if (ref[i].armed)
                armed--;
            ref[i].armed = false;
        } else if (op < 90) {
            int expect = ref_first(ref);
            struct rtm_timer *x = rtm_heap_pop_due(&heap, now);
            if (expect < 0 || ref[expect].due > now) {
                assert_null(x);
            } else {
                if (x != &t[expect])
                    print_error("seed %llu step %d: popped %d, expected %d\n",
                                (unsigned long long)seed, step, x ? (int)(x - t) : -1, expect);
                assert_ptr_equal(x, &t[expect]);
                ref[expect].armed = false;
                armed--;
            }
        } else {
            now += (int64_t)(rnd() % 20);
        }
        assert_int_equal(heap.len, armed);
        int first = ref_first(ref);
        if (first < 0)
            assert_null(rtm_heap_peek(&heap));
        else
            assert_ptr_equal(rtm_heap_peek(&heap), &t[first]);
        for (int k = 0; k < RT; k += 50)
            assert_int_equal(rtm_timer_armed(&t[k]) != 0, ref[k].armed);
    }

    /* Drain everything in reference order. */
    for (;;) {
        int expect = ref_first(ref);
        struct rtm_timer *x = rtm_heap_pop_due(&heap, INT64_MAX);
        if (expect < 0) {
            assert_null(x);
            break;
        }
        assert_ptr_equal(x, &t[expect]);
        ref[expect].armed = false;
    }
    rtm_heap_fini(&heap);
}

static void test_random_against_reference(void **state)
{
    (void)state;
    /* Five fixed seeds, and one from the clock or RTM_TEST_SEED (to replay). */
    uint64_t seeds[6] = {1, 2, 3, 0xdeadbeef, 20251125, 0};
    const char *env = getenv("RTM_TEST_SEED");
    seeds[5] = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    for (size_t s = 0; s < 6; s++) {
        print_message("heap random: seed %llu\n", (unsigned long long)seeds[s]);
        run_random(seeds[s], 20000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_ties_fire_in_arming_order),
        cmocka_unit_test(test_ties_keep_order_across_wrap),
        cmocka_unit_test(test_rearm_moves),
        cmocka_unit_test(test_disarm_middle),
        cmocka_unit_test(test_pop_due_respects_now),
        cmocka_unit_test(test_fini_disarms),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
