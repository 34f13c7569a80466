/*
 * Peer messages (SPEC 8.1) through the core, as the adapter drives it: the
 * WRITE check proves the sender from the topic, the MESSAGE event refuses
 * retained, oversized and too frequent messages and passes the rest
 * untouched, and the READ check lets only the peer read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core_fixture.h"
#include "rtm_message.h"

#define TO_BOB_FROM_ALICE "rtm/u/bob/msg/alice"

/* Boots with root as an admin (the fixture's other settings kept); the
 * list is the configuration's to free, as rtm_config_parse makes it. */
static void boot_with_admin(void)
{
    T.cfg.admin_users = calloc(1, sizeof(char *));
    assert_non_null(T.cfg.admin_users);
    T.cfg.admin_users[0] = strdup("root");
    T.cfg.admin_count = 1;
    boot();
}

static void test_the_topic_proves_the_sender(void **state)
{
    (void)state;
    boot_with_admin();
    online(&alice);
    online(&carol);
    assert_int_equal(write_check(&alice, TO_BOB_FROM_ALICE, "hi", false), RTM_ACL_ALLOW);
    expect_quiet();
    /* carol writing as alice, and an admin writing as someone else. */
    assert_int_equal(write_check(&carol, TO_BOB_FROM_ALICE, "hi", false), RTM_ACL_DENY);
    expect_topic_error(&carol, TO_BOB_FROM_ALICE, "not_party");
    rec_clear();
    online(&root);
    assert_int_equal(write_check(&root, TO_BOB_FROM_ALICE, "hi", false), RTM_ACL_DENY);
    expect_topic_error(&root, TO_BOB_FROM_ALICE, "not_party");
    assert_int_equal(stats().refused[RTM_ERR_NOT_PARTY], 2);
}

static void test_payload_passes_untouched(void **state)
{
    (void)state;
    boot();
    online(&alice);
    static const char binary[] = {'\0', '\xff', '{', '"', '\n'};
    assert_int_equal(send_raw(&alice, TO_BOB_FROM_ALICE, binary, sizeof(binary), false), RTM_PASS);
    expect_quiet();
    assert_null(T.out);
}

static void test_retained_and_oversized_refused(void **state)
{
    (void)state;
    T.cfg.max_message = 8;
    boot();
    online(&alice);
    rec_clear();
    assert_int_equal(send_raw(&alice, TO_BOB_FROM_ALICE, "hi", 2, true), RTM_DENY);
    expect_topic_error(&alice, TO_BOB_FROM_ALICE, "bad_request");
    rec_clear();
    assert_int_equal(send_raw(&alice, TO_BOB_FROM_ALICE, "123456789", 9, false), RTM_DENY);
    expect_topic_error(&alice, TO_BOB_FROM_ALICE, "bad_request");
    rec_clear();
    assert_int_equal(send_raw(&alice, TO_BOB_FROM_ALICE, "12345678", 8, false), RTM_PASS);
    expect_quiet();
    assert_int_equal(stats().refused[RTM_ERR_BAD_REQUEST], 2);
}

static void test_message_rate_per_uid(void **state)
{
    (void)state;
    T.cfg.message_rate = 3;
    boot();
    online(&alice);
    online(&alice2);
    /* A burst of 3 per uid, shared by its sessions and its peers. */
    assert_int_equal(send_raw(&alice, TO_BOB_FROM_ALICE, "1", 1, false), RTM_PASS);
    assert_int_equal(send_raw(&alice2, TO_BOB_FROM_ALICE, "2", 1, false), RTM_PASS);
    assert_int_equal(send_raw(&alice, "rtm/u/carol/msg/alice", "3", 1, false), RTM_PASS);
    rec_clear();
    assert_int_equal(send_raw(&alice2, TO_BOB_FROM_ALICE, "4", 1, false), RTM_DENY);
    expect_topic_error(&alice2, TO_BOB_FROM_ALICE, "rate_limited");
    /* One more every 1000/3 ms. */
    T.now += 333;
    rec_clear();
    assert_int_equal(send_raw(&alice, TO_BOB_FROM_ALICE, "5", 1, false), RTM_DENY);
    T.now += 1;
    assert_int_equal(send_raw(&alice, TO_BOB_FROM_ALICE, "6", 1, false), RTM_PASS);
    /* Reconnecting does not refill it. */
    offline(&alice);
    offline(&alice2);
    tick();
    online(&alice);
    rec_clear();
    assert_int_equal(send_raw(&alice, TO_BOB_FROM_ALICE, "7", 1, false), RTM_DENY);
    expect_topic_error(&alice, TO_BOB_FROM_ALICE, "rate_limited");
}

static void test_only_the_peer_reads(void **state)
{
    (void)state;
    boot_with_admin();
    online(&bob);
    online(&carol);
    online(&root);
    assert_int_equal(read_check(&bob, TO_BOB_FROM_ALICE, "hi", false), RTM_ACL_ALLOW);
    assert_int_equal(read_check(&bob2, TO_BOB_FROM_ALICE, "hi", false), RTM_ACL_ALLOW);
    assert_int_equal(read_check(&carol, TO_BOB_FROM_ALICE, "hi", false), RTM_ACL_DENY);
    assert_int_equal(read_check(&root, TO_BOB_FROM_ALICE, "hi", false), RTM_ACL_ALLOW);
    assert_int_equal(read_check(&anon, TO_BOB_FROM_ALICE, "hi", false), RTM_ACL_DENY);
    expect_quiet();
}

/* A retained peer message can only be one the plugin never let through
 * (stored by a broker without it): never delivered, and erased. */
static void test_retained_message_erased(void **state)
{
    (void)state;
    boot();
    online(&bob);
    rec_clear();
    assert_int_equal(read_check(&bob, TO_BOB_FROM_ALICE, "old", true), RTM_ACL_DENY);
    assert_int_equal(T.rec.npubs, 1);
    const struct pub *p = &T.rec.pubs[0];
    assert_string_equal(p->topic, TO_BOB_FROM_ALICE);
    assert_true(p->retain);
    assert_int_equal(p->payload_len, 0);
    rec_clear();
    /* The erase's own fan-out is not erased again. */
    assert_int_equal(read_check(&bob, TO_BOB_FROM_ALICE, "", true), RTM_ACL_DENY);
    expect_quiet();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_the_topic_proves_the_sender, core_setup,
                                        core_teardown),
        cmocka_unit_test_setup_teardown(test_payload_passes_untouched, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_retained_and_oversized_refused, core_setup,
                                        core_teardown),
        cmocka_unit_test_setup_teardown(test_message_rate_per_uid, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_only_the_peer_reads, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_retained_message_erased, core_setup, core_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
