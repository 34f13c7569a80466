/*
 * Login tokens: the SPEC's test vector, and every way a token can be
 * malformed, forged, misused for another uid, or expired.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rtm_token.h"

#define SECRET "s3cret-for-tests"
#define VECTOR "rtm1.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA"
#define EXPIRY 1893456000LL

static enum rtm_token_result verify(const char *uid, const char *token, int64_t now_s)
{
    return rtm_token_verify(SECRET, strlen(SECRET), uid, token, now_s, 30);
}

static void test_spec_vector_minted(void **state)
{
    (void)state;
    char out[RTM_LOGIN_TOKEN_MAX + 1];
    assert_int_equal(rtm_token_mint(SECRET, strlen(SECRET), "bob", EXPIRY, out, sizeof(out)),
                     strlen(VECTOR));
    assert_string_equal(out, VECTOR);
}

static void test_spec_vector_verified(void **state)
{
    (void)state;
    assert_int_equal(verify("bob", VECTOR, EXPIRY - 3600), RTM_TOKEN_OK);
}

static void test_other_uid_or_secret_refused(void **state)
{
    (void)state;
    assert_int_equal(verify("alice", VECTOR, EXPIRY - 1), RTM_TOKEN_BAD_SIGNATURE);
    assert_int_equal(verify("bob2", VECTOR, EXPIRY - 1), RTM_TOKEN_BAD_SIGNATURE);
    assert_int_equal(verify("Bob", VECTOR, EXPIRY - 1), RTM_TOKEN_BAD_SIGNATURE);
    const char *other = "s3cret-for-tests!";
    assert_int_equal(rtm_token_verify(other, strlen(other), "bob", VECTOR, EXPIRY - 1, 30),
                     RTM_TOKEN_BAD_SIGNATURE);
}

static void test_expiry_with_leeway(void **state)
{
    (void)state;
    assert_int_equal(verify("bob", VECTOR, EXPIRY), RTM_TOKEN_OK);
    assert_int_equal(verify("bob", VECTOR, EXPIRY + 30), RTM_TOKEN_OK);
    assert_int_equal(verify("bob", VECTOR, EXPIRY + 31), RTM_TOKEN_EXPIRED);
    assert_int_equal(rtm_token_verify(SECRET, strlen(SECRET), "bob", VECTOR, EXPIRY + 1, 0),
                     RTM_TOKEN_EXPIRED);
}

/* The expiry is signed: moving it forward breaks the signature. */
static void test_extended_expiry_refused(void **state)
{
    (void)state;
    char forged[] = VECTOR;
    forged[5] = '2'; /* 2893456000 */
    assert_int_equal(verify("bob", forged, EXPIRY), RTM_TOKEN_BAD_SIGNATURE);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "rtm1",
        "rtm1.",
        "rtm1..mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA",
        "rtm2.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA",
        "RTM1.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA",
        "rtm1.01893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA",
        "rtm1.+1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA",
        "rtm1.-1.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA",
        "rtm1.1893456000x.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA",
        "rtm1.9999999999999.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA",
        "rtm1.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRS",
        "rtm1.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA=",
        "rtm1.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSAA",
        "rtm1.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06/ERt3c5Q2+ktVRSA",
        "rtm1.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA.x",
        " rtm1.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA",
        "password",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (verify("bob", bad[i], EXPIRY - 1) != RTM_TOKEN_MALFORMED)
            fail_msg("accepted as well-formed: \"%s\"", bad[i]);
    }
    assert_int_equal(verify("bob", NULL, EXPIRY - 1), RTM_TOKEN_MALFORMED);
    assert_int_equal(verify(NULL, VECTOR, EXPIRY - 1), RTM_TOKEN_MALFORMED);
}

/* Only the canonical encoding passes: 43 characters carry 258 bits, so the
 * last one has spare bits that must be zero. */
static void test_non_canonical_signature_refused(void **state)
{
    (void)state;
    char other[] = VECTOR;
    other[strlen(other) - 1] = 'B'; /* 'A' and 'B' differ only in a spare bit */
    assert_int_equal(verify("bob", other, EXPIRY - 1), RTM_TOKEN_BAD_SIGNATURE);
}

static void test_mint_range(void **state)
{
    (void)state;
    char out[RTM_LOGIN_TOKEN_MAX + 1];
    assert_int_equal(rtm_token_mint(SECRET, strlen(SECRET), "bob", -1, out, sizeof(out)), -1);
    assert_int_equal(
        rtm_token_mint(SECRET, strlen(SECRET), "bob", 1000000000000LL, out, sizeof(out)), -1);
    assert_int_equal(rtm_token_mint(SECRET, strlen(SECRET), "bob", EXPIRY, out, 20), -1);
    int n = rtm_token_mint(SECRET, strlen(SECRET), "bob", 999999999999LL, out, sizeof(out));
    assert_int_equal(n, RTM_LOGIN_TOKEN_MAX);
    assert_int_equal(verify("bob", out, 999999999999LL), RTM_TOKEN_OK);
    n = rtm_token_mint(SECRET, strlen(SECRET), "bob", 0, out, sizeof(out));
    assert_true(n > 0 && strncmp(out, "rtm1.0.", 7) == 0);
    assert_int_equal(verify("bob", out, 0), RTM_TOKEN_OK);
}

static void test_round_trip_many_uids(void **state)
{
    (void)state;
    char uid[80], out[RTM_LOGIN_TOKEN_MAX + 1];
    for (int i = 0; i < 200; i++) {
        snprintf(uid, sizeof(uid), "user.%d@example-%d", i, i * 7);
        assert_true(rtm_token_mint(SECRET, strlen(SECRET), uid, EXPIRY + i, out, sizeof(out)) > 0);
        assert_int_equal(verify(uid, out, EXPIRY), RTM_TOKEN_OK);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vector_minted),
        cmocka_unit_test(test_spec_vector_verified),
        cmocka_unit_test(test_other_uid_or_secret_refused),
        cmocka_unit_test(test_expiry_with_leeway),
        cmocka_unit_test(test_extended_expiry_refused),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_non_canonical_signature_refused),
        cmocka_unit_test(test_mint_range),
        cmocka_unit_test(test_round_trip_many_uids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
