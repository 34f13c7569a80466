/*
 * The core's login decision (plugin_opt_auth): none accepts, defer leaves it
 * to another source, token accepts only a valid token for the client's own
 * uid on a client id of that uid, and every refusal is one log line that
 * never holds the token.
 */
#include <stdio.h>
#include <string.h>

#include "core_fixture.h"
#include "rtm_token.h"

#define SECRET "s3cret-for-tests"
#define VECTOR "rtm1.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA"
/* 1893456000 s is 2030-01-01; T0 is 2025-11-25. */
#define VECTOR_EXPIRY_MS INT64_C(1893456000000)

static void boot_token_mode(void)
{
    T.cfg.auth = RTM_AUTH_TOKEN;
    strcpy(T.cfg.token_secret, SECRET);
    T.cfg.token_leeway_s = 30;
    boot();
}

static enum rtm_login_verdict login(const struct rtm_client *c, const char *password)
{
    return rtm_core_authenticate(T.core, c, password, T.now);
}

static const char *minted(const char *uid, int64_t expiry_s)
{
    static char buf[RTM_LOGIN_TOKEN_MAX + 1];
    assert_true(rtm_token_mint(SECRET, strlen(SECRET), uid, expiry_s, buf, sizeof(buf)) > 0);
    return buf;
}

/* Exactly one log line since the last clear, naming `uid` and `why`, and
 * never the password that was tried. */
static void expect_refusal_logged(const char *uid, const char *why, const char *password)
{
    assert_int_equal(T.rec.nlogs, 1);
    const char *line = T.rec.logs[0].text;
    if (!strstr(line, uid) || !strstr(line, why))
        fail_msg("log line \"%s\" should name %s and %s", line, uid, why);
    if (password && *password && strstr(line, password))
        fail_msg("the token is in the log line: %s", line);
    rec_clear();
}

static void test_none_accepts_everyone(void **state)
{
    (void)state;
    boot();
    assert_int_equal(login(&alice, NULL), RTM_LOGIN_ACCEPT);
    assert_int_equal(login(&anon, "anything"), RTM_LOGIN_ACCEPT);
}

static void test_defer_leaves_it_to_others(void **state)
{
    (void)state;
    T.cfg.auth = RTM_AUTH_DEFER;
    boot();
    assert_int_equal(login(&alice, "whatever"), RTM_LOGIN_DEFER);
    assert_int_equal(login(&anon, NULL), RTM_LOGIN_DEFER);
    assert_int_equal(T.rec.nlogs, 0);
}

static void test_token_spec_vector_logs_in(void **state)
{
    (void)state;
    boot_token_mode();
    const struct rtm_client bob_c = {bob.handle, "bob", "bob-phone"};
    assert_int_equal(login(&bob_c, VECTOR), RTM_LOGIN_ACCEPT);
    assert_int_equal(T.rec.nlogs, 0);
}

static void test_token_for_another_uid_refused(void **state)
{
    (void)state;
    boot_token_mode();
    assert_int_equal(login(&alice, VECTOR), RTM_LOGIN_REFUSE);
    expect_refusal_logged("alice", "bad signature", VECTOR);
}

static void test_token_missing_or_malformed_refused(void **state)
{
    (void)state;
    boot_token_mode();
    assert_int_equal(login(&alice, NULL), RTM_LOGIN_REFUSE);
    expect_refusal_logged("alice", "missing", NULL);
    assert_int_equal(login(&alice, "hunter2"), RTM_LOGIN_REFUSE);
    expect_refusal_logged("alice", "malformed", "hunter2");
    assert_int_equal(login(&anon, minted("alice", T0 / 1000 + 60)), RTM_LOGIN_REFUSE);
    expect_refusal_logged("no uid", "no valid uid", NULL);
}

static void test_token_expiry_and_leeway(void **state)
{
    (void)state;
    boot_token_mode();
    int64_t expiry_s = T0 / 1000 + 60;
    char token[RTM_LOGIN_TOKEN_MAX + 1];
    strcpy(token, minted("alice", expiry_s));
    assert_int_equal(login(&alice, token), RTM_LOGIN_ACCEPT);
    T.now = (expiry_s + 30) * 1000 + 999; /* still within the 30 s leeway */
    assert_int_equal(login(&alice, token), RTM_LOGIN_ACCEPT);
    T.now = (expiry_s + 31) * 1000;
    assert_int_equal(login(&alice, token), RTM_LOGIN_REFUSE);
    expect_refusal_logged("alice", "expired", token);
}

static void test_token_forged_with_other_secret_refused(void **state)
{
    (void)state;
    boot_token_mode();
    const char *other = "another-secret-of-16+";
    char token[RTM_LOGIN_TOKEN_MAX + 1];
    assert_true(
        rtm_token_mint(other, strlen(other), "alice", T0 / 1000 + 60, token, sizeof(token)) > 0);
    assert_int_equal(login(&alice, token), RTM_LOGIN_REFUSE);
    expect_refusal_logged("alice", "bad signature", token);
}

/* mallory, holding a valid token of her own, connects with client id `id`. */
static enum rtm_login_verdict mallory_as(const char *id)
{
    static int handle;
    const struct rtm_client c = {&handle, "mallory", id};
    return login(&c, minted("mallory", T0 / 1000 + 60));
}

/* SPEC 7: a client id belongs to the token's uid when it is the uid, or the
 * uid followed by '-' or '/' and anything; any other id, another user's
 * above all, is refused, so nobody can take over someone else's session. */
static void test_token_client_id_must_be_the_uids(void **state)
{
    (void)state;
    boot_token_mode();
    static const char *const own[] = {"mallory",  "mallory-1", "mallory/x",
                                      "mallory-", "mallory/",  "mallory-phone/2"};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        if (mallory_as(own[i]) != RTM_LOGIN_ACCEPT)
            fail_msg("mallory with client id %s was refused", own[i]);
    }
    assert_int_equal(T.rec.nlogs, 0);
    static const char *const foreign[] = {"bob-phone",  "bob",       "mallory2", "mallory_1",
                                          "malloryx-1", "mallor",    "",         "Mallory",
                                          "x-mallory",  "mallory.1", "mallory@x"};
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
        if (mallory_as(foreign[i]) != RTM_LOGIN_REFUSE)
            fail_msg("mallory with client id \"%s\" was accepted", foreign[i]);
        char why[96];
        snprintf(why, sizeof(why), "(client %s): client id not mallory's own", foreign[i]);
        expect_refusal_logged("mallory", why, NULL);
    }
}

/* With identity clientid (or auto without a username) the uid is the client
 * id, which trivially belongs to it. */
static void test_token_uid_from_client_id_accepted(void **state)
{
    (void)state;
    T.cfg.identity = RTM_IDENTITY_CLIENTID;
    boot_token_mode();
    const char *uid = rtm_identity_uid(&T.cfg, "bob", "mallory-tab");
    assert_non_null(uid);
    assert_string_equal(uid, "mallory-tab");
    static int handle;
    const struct rtm_client c = {&handle, uid, "mallory-tab"};
    assert_int_equal(login(&c, minted("mallory-tab", T0 / 1000 + 60)), RTM_LOGIN_ACCEPT);
    assert_int_equal(T.rec.nlogs, 0);
}

/* A reload asks again about every client the broker holds: a live session
 * is kept even though its token has expired since, and nothing about
 * sessions changes; a client without a session is checked in full and not
 * tracked (an away persistent session must not be shown online). */
static void test_reload_keeps_sessions_tracks_nothing(void **state)
{
    (void)state;
    boot_token_mode();
    char token[RTM_LOGIN_TOKEN_MAX + 1];
    strcpy(token, minted("alice", T0 / 1000 + 60));
    assert_int_equal(login(&alice, token), RTM_LOGIN_ACCEPT);
    online(&alice);
    assert_true(rtm_core_has_session(T.core, alice.handle));
    T.now = T0 + 3600 * 1000; /* the token has long expired */
    rec_clear();
    assert_int_equal(rtm_core_reauthenticate(T.core, &alice, token, T.now), RTM_LOGIN_ACCEPT);
    assert_int_equal(rtm_core_reauthenticate(T.core, &alice, NULL, T.now), RTM_LOGIN_ACCEPT);
    tick();
    expect_quiet();
    assert_int_equal(stats().sessions, 1);
    /* No session: decided in full, and never tracked. */
    assert_int_equal(rtm_core_reauthenticate(T.core, &bob, token, T.now), RTM_LOGIN_REFUSE);
    expect_refusal_logged("bob", "bad signature", token);
    strcpy(token, minted("bob", T.now / 1000 + 60));
    assert_int_equal(rtm_core_reauthenticate(T.core, &bob, token, T.now), RTM_LOGIN_ACCEPT);
    assert_false(rtm_core_has_session(T.core, bob.handle));
    tick();
    expect_quiet();
    assert_int_equal(stats().sessions, 1);
}

static void test_reload_defer_mode_defers(void **state)
{
    (void)state;
    T.cfg.auth = RTM_AUTH_DEFER;
    boot();
    online(&alice);
    assert_int_equal(rtm_core_reauthenticate(T.core, &alice, "pw", T.now), RTM_LOGIN_DEFER);
    assert_int_equal(rtm_core_reauthenticate(T.core, &bob, "pw", T.now), RTM_LOGIN_DEFER);
    tick();
    expect_quiet();
    assert_int_equal(stats().sessions, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_none_accepts_everyone, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_defer_leaves_it_to_others, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_token_spec_vector_logs_in, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_token_for_another_uid_refused, core_setup,
                                        core_teardown),
        cmocka_unit_test_setup_teardown(test_token_missing_or_malformed_refused, core_setup,
                                        core_teardown),
        cmocka_unit_test_setup_teardown(test_token_expiry_and_leeway, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_token_forged_with_other_secret_refused, core_setup,
                                        core_teardown),
        cmocka_unit_test_setup_teardown(test_token_client_id_must_be_the_uids, core_setup,
                                        core_teardown),
        cmocka_unit_test_setup_teardown(test_token_uid_from_client_id_accepted, core_setup,
                                        core_teardown),
        cmocka_unit_test_setup_teardown(test_reload_keeps_sessions_tracks_nothing, core_setup,
                                        core_teardown),
        cmocka_unit_test_setup_teardown(test_reload_defer_mode_defers, core_setup, core_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
