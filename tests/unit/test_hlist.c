/*
 * Unit tests for include/rtm_hlist.h: the list with a one-pointer head
 * that holds each user's calls (struct rtm_user.calls_in, calls_out).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "rtm_hlist.h"

struct item {
    int value;
    struct rtm_hlist_node link;
};

static int value_of(const struct rtm_hlist_node *n)
{
    return rtm_container_of(n, struct item, link)->value;
}

/* Asserts that `head` holds exactly `want` (oldest first), walking it both
 * ways, and that every pprev points at the pointer that points at its node. */
static void expect_items(const struct rtm_hlist *head, const int *want, size_t n)
{
    size_t i = n;
    struct rtm_hlist_node *const *link = &head->first;
    for (struct rtm_hlist_node *x = head->first; x; x = x->next) {
        assert_true(i > 0);
        assert_int_equal(value_of(x), want[--i]); /* newest first */
        assert_ptr_equal(x->pprev, link);
        assert_true(rtm_hlist_linked(x));
        link = &x->next;
    }
    assert_int_equal(i, 0);
    assert_int_equal(rtm_hlist_empty(head), n == 0);
    for (struct rtm_hlist_node *x = rtm_hlist_last(head); x; x = rtm_hlist_prev(head, x)) {
        assert_true(i < n);
        assert_int_equal(value_of(x), want[i++]); /* oldest first */
    }
    assert_int_equal(i, n);
}

static void test_empty(void **state)
{
    (void)state;
    struct rtm_hlist head;
    rtm_hlist_init(&head);
    assert_true(rtm_hlist_empty(&head));
    assert_null(rtm_hlist_last(&head));
    struct rtm_hlist zeroed;
    memset(&zeroed, 0, sizeof(zeroed)); /* a zeroed head is an empty list */
    assert_true(rtm_hlist_empty(&zeroed));
    struct item a;
    memset(&a, 0, sizeof(a)); /* a zeroed node is an unlinked one */
    assert_false(rtm_hlist_linked(&a.link));
    rtm_hlist_remove(&a.link); /* a no-op */
    assert_false(rtm_hlist_linked(&a.link));
}

static void test_add_and_walk(void **state)
{
    (void)state;
    struct rtm_hlist head;
    rtm_hlist_init(&head);
    struct item it[4];
    memset(it, 0, sizeof(it));
    for (int i = 0; i < 4; i++) {
        it[i].value = i;
        rtm_hlist_add_head(&head, &it[i].link);
    }
    static const int all[] = {0, 1, 2, 3};
    expect_items(&head, all, 4);
    assert_ptr_equal(head.first, &it[3].link);
    assert_ptr_equal(rtm_hlist_last(&head), &it[0].link);
    assert_null(rtm_hlist_prev(&head, &it[3].link));
    assert_ptr_equal(rtm_hlist_prev(&head, &it[0].link), &it[1].link);
}

static void test_remove_anywhere(void **state)
{
    (void)state;
    struct rtm_hlist head;
    rtm_hlist_init(&head);
    struct item it[5];
    memset(it, 0, sizeof(it));
    for (int i = 0; i < 5; i++) {
        it[i].value = i;
        rtm_hlist_add_head(&head, &it[i].link);
    }
    rtm_hlist_remove(&it[2].link); /* the middle */
    assert_false(rtm_hlist_linked(&it[2].link));
    assert_null(it[2].link.next);
    static const int w1[] = {0, 1, 3, 4};
    expect_items(&head, w1, 4);
    rtm_hlist_remove(&it[2].link); /* twice: a no-op */
    expect_items(&head, w1, 4);
    rtm_hlist_remove(&it[4].link); /* the first (newest) */
    static const int w2[] = {0, 1, 3};
    expect_items(&head, w2, 3);
    rtm_hlist_remove(&it[0].link); /* the last (oldest) */
    static const int w3[] = {1, 3};
    expect_items(&head, w3, 2);
    rtm_hlist_add_head(&head, &it[2].link); /* a removed node joins again */
    static const int w4[] = {1, 3, 2};
    expect_items(&head, w4, 3);
    rtm_hlist_remove(&it[1].link);
    rtm_hlist_remove(&it[3].link);
    rtm_hlist_remove(&it[2].link);
    expect_items(&head, NULL, 0);
}

/* Removing the node a walk stands on, as rtm_calls_caller_gone() does:
 * the step back is taken first, and stays valid. */
static void test_remove_while_walking_back(void **state)
{
    (void)state;
    struct rtm_hlist head;
    rtm_hlist_init(&head);
    struct item it[3];
    memset(it, 0, sizeof(it));
    for (int i = 0; i < 3; i++) {
        it[i].value = i;
        rtm_hlist_add_head(&head, &it[i].link);
    }
    int seen = 0;
    struct rtm_hlist_node *n = rtm_hlist_last(&head);
    while (n) {
        struct rtm_hlist_node *newer = rtm_hlist_prev(&head, n);
        assert_int_equal(value_of(n), seen++);
        rtm_hlist_remove(n);
        n = newer;
    }
    assert_int_equal(seen, 3);
    assert_true(rtm_hlist_empty(&head));
}

/* Random adds and removes against an array kept in insertion order. */
static void test_against_a_model(void **state)
{
    (void)state;
    enum { N = 64, STEPS = 20000 };
    struct rtm_hlist head;
    rtm_hlist_init(&head);
    struct item it[N];
    memset(it, 0, sizeof(it));
    int order[N]; /* the linked values, oldest first */
    size_t len = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (int step = 0; step < STEPS; step++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int v = (int)(rng % N);
        it[v].value = v;
        if (rtm_hlist_linked(&it[v].link)) {
            rtm_hlist_remove(&it[v].link);
            size_t i = 0;
            while (order[i] != v)
                i++;
            memmove(&order[i], &order[i + 1], (len - i - 1) * sizeof(order[0]));
            len--;
        } else {
            rtm_hlist_add_head(&head, &it[v].link);
            order[len++] = v;
        }
        if (step % 97 == 0)
            expect_items(&head, order, len);
    }
    expect_items(&head, order, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),           cmocka_unit_test(test_add_and_walk),
        cmocka_unit_test(test_remove_anywhere), cmocka_unit_test(test_remove_while_walking_back),
        cmocka_unit_test(test_against_a_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
