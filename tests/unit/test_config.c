/*
 * Unit tests for plugin/core/config.c: defaults (PROTOCOL.md, SPEC.md), parsing of
 * every option, and refusal of bad values with an error naming the option.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rtm_config.h"

#define ERR_LEN 256

/* Parses one option over the defaults. Returns rtm_config_parse's result. */
static int parse1(struct rtm_config *cfg, const char *key, const char *value, char *err)
{
    struct rtm_option opt = {key, value};
    rtm_config_defaults(cfg);
    err[0] = '\0';
    return rtm_config_parse(cfg, &opt, 1, err, ERR_LEN);
}

/* The option must be refused with an error that names it. */
static void expect_refused(const char *key, const char *value)
{
    struct rtm_config cfg;
    char err[ERR_LEN];
    int rc = parse1(&cfg, key, value, err);
    if (rc != -1) {
        print_error("option %s=\"%s\" was accepted, expected refusal\n", key, value);
        rtm_config_free(&cfg);
    }
    assert_int_equal(rc, -1);
    if (strstr(err, key) == NULL)
        print_error("error for %s=\"%s\" does not name the option: \"%s\"\n", key, value, err);
    assert_non_null(strstr(err, key));
}

/* The option must be accepted; the config is returned for inspection. */
static void expect_ok(struct rtm_config *cfg, const char *key, const char *value)
{
    char err[ERR_LEN];
    int rc = parse1(cfg, key, value, err);
    if (rc != 0)
        print_error("option %s=\"%s\" refused: %s\n", key, value, err);
    assert_int_equal(rc, 0);
}

static void test_defaults(void **state)
{
    (void)state;
    struct rtm_config cfg;
    memset(&cfg, 0xA5, sizeof(cfg));
    rtm_config_defaults(&cfg);
    assert_string_equal(cfg.topic_prefix, "rtm");
    assert_int_equal(cfg.prefix_len, 3);
    assert_int_equal(cfg.identity, RTM_IDENTITY_AUTO);
    assert_int_equal(cfg.auth, RTM_AUTH_NONE);
    assert_int_equal(cfg.other_topics, RTM_OTHER_DEFER);
    assert_int_equal(cfg.invite_timeout_ms, 30000);
    assert_int_equal(cfg.ring_timeout_ms, 60000);
    assert_int_equal(cfg.caller_grace_ms, 10000);
    assert_int_equal(cfg.max_invite_timeout_s, 120);
    assert_int_equal(cfg.busy_limit, 16);
    assert_int_equal(cfg.invite_rate, 60);
    assert_int_equal(cfg.max_payload, 8192);
    assert_int_equal(cfg.admin_count, 0);
    assert_false(cfg.debug_log);
    assert_int_equal(cfg.max_message, 32768);
    assert_int_equal(cfg.message_rate, 60);
    assert_int_equal(cfg.join_rate, 10);
    assert_int_equal(cfg.max_channels, 20);
    assert_int_equal(cfg.member_events_max, 512);
    assert_int_equal(cfg.user_attr_lifetime, RTM_ATTR_SESSION);
    assert_int_equal(cfg.max_attr_keys, 32);
    assert_int_equal(cfg.max_attr_bytes, 8192);
    assert_int_equal(cfg.attr_rate, 10);
    assert_int_equal(cfg.max_attributes, 1000000);
    assert_false(rtm_config_is_admin(&cfg, "admin"));
    assert_false(rtm_config_is_admin(&cfg, ""));
    rtm_config_free(&cfg);
}

static void test_parse_nothing_keeps_defaults(void **state)
{
    (void)state;
    struct rtm_config cfg;
    char err[ERR_LEN] = "";
    rtm_config_defaults(&cfg);
    assert_int_equal(rtm_config_parse(&cfg, NULL, 0, err, sizeof(err)), 0);
    assert_string_equal(cfg.topic_prefix, "rtm");
    assert_int_equal(cfg.invite_timeout_ms, 30000);
    assert_int_equal(cfg.busy_limit, 16);
    rtm_config_free(&cfg);
}

static void test_durations_in_seconds(void **state)
{
    (void)state;
    struct rtm_config cfg;
    expect_ok(&cfg, "invite_timeout", "5");
    assert_int_equal(cfg.invite_timeout_ms, 5000);
    assert_int_equal(cfg.ring_timeout_ms, 60000);
    rtm_config_free(&cfg);

    expect_ok(&cfg, "ring_timeout", "90");
    assert_int_equal(cfg.ring_timeout_ms, 90000);
    assert_int_equal(cfg.invite_timeout_ms, 30000);
    rtm_config_free(&cfg);

    expect_ok(&cfg, "caller_grace", "3");
    assert_int_equal(cfg.caller_grace_ms, 3000);
    rtm_config_free(&cfg);

    expect_ok(&cfg, "max_invite_timeout", "300");
    assert_int_equal(cfg.max_invite_timeout_s, 300);
    rtm_config_free(&cfg);
}

static void test_counts(void **state)
{
    (void)state;
    struct rtm_config cfg;
    expect_ok(&cfg, "busy_limit", "3");
    assert_int_equal(cfg.busy_limit, 3);
    rtm_config_free(&cfg);

    expect_ok(&cfg, "invite_rate", "120");
    assert_int_equal(cfg.invite_rate, 120);
    rtm_config_free(&cfg);

    expect_ok(&cfg, "max_payload", "65536");
    assert_int_equal(cfg.max_payload, 65536);
    rtm_config_free(&cfg);
}

static void test_several_options_at_once(void **state)
{
    (void)state;
    struct rtm_config cfg;
    char err[ERR_LEN] = "";
    const struct rtm_option opts[] = {
        {"topic_prefix", "app/rtm"}, {"identity", "username"}, {"auth", "defer"},
        {"other_topics", "allow"},   {"invite_timeout", "7"},  {"ring_timeout", "8"},
        {"caller_grace", "9"},       {"busy_limit", "4"},      {"invite_rate", "5"},
        {"max_payload", "1000"},     {"admin_users", "root"},  {"max_invite_timeout", "60"},
        {"debug_log", "on"},
    };
    rtm_config_defaults(&cfg);
    assert_int_equal(rtm_config_parse(&cfg, opts, sizeof(opts) / sizeof(opts[0]), err, sizeof(err)),
                     0);
    assert_string_equal(cfg.topic_prefix, "app/rtm");
    assert_int_equal(cfg.prefix_len, 7);
    assert_int_equal(cfg.identity, RTM_IDENTITY_USERNAME);
    assert_int_equal(cfg.auth, RTM_AUTH_DEFER);
    assert_int_equal(cfg.other_topics, RTM_OTHER_ALLOW);
    assert_int_equal(cfg.invite_timeout_ms, 7000);
    assert_int_equal(cfg.ring_timeout_ms, 8000);
    assert_int_equal(cfg.caller_grace_ms, 9000);
    assert_int_equal(cfg.busy_limit, 4);
    assert_int_equal(cfg.invite_rate, 5);
    assert_int_equal(cfg.max_payload, 1000);
    assert_int_equal(cfg.max_invite_timeout_s, 60);
    assert_true(cfg.debug_log);
    assert_true(rtm_config_is_admin(&cfg, "root"));
    rtm_config_free(&cfg);
}

/* The SPEC 8 limits: each a whole number within its range, stored as is. */
static const struct {
    const char *key;
    size_t offset;
    uint32_t min, max;
} limits[] = {
    {"max_message", offsetof(struct rtm_config, max_message), 1, 16777216},
    {"message_rate", offsetof(struct rtm_config, message_rate), 1, 100000},
    {"join_rate", offsetof(struct rtm_config, join_rate), 1, 100000},
    {"max_channels", offsetof(struct rtm_config, max_channels), 1, 1000},
    {"member_events_max", offsetof(struct rtm_config, member_events_max), 0, 1000000},
    {"max_attr_keys", offsetof(struct rtm_config, max_attr_keys), 1, 1000},
    {"max_attr_bytes", offsetof(struct rtm_config, max_attr_bytes), 1, 1048576},
    {"attr_rate", offsetof(struct rtm_config, attr_rate), 1, 10000},
    {"max_attributes", offsetof(struct rtm_config, max_attributes), 1, 100000000},
};

static uint32_t limit_value(const struct rtm_config *cfg, size_t i)
{
    uint32_t v;
    memcpy(&v, (const char *)cfg + limits[i].offset, sizeof(v));
    return v;
}

/* `value` of limit i is accepted and stored; no other limit changes. */
static void expect_limit(size_t i, uint32_t value)
{
    struct rtm_config cfg, defaults;
    char text[16];
    snprintf(text, sizeof(text), "%u", value);
    expect_ok(&cfg, limits[i].key, text);
    rtm_config_defaults(&defaults);
    for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++)
        assert_int_equal(limit_value(&cfg, k), k == i ? value : limit_value(&defaults, k));
    rtm_config_free(&cfg);
}

static void test_spec8_limits(void **state)
{
    (void)state;
    char text[16], err[ERR_LEN], want[ERR_LEN];
    struct rtm_config cfg;
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        expect_limit(i, limits[i].min);
        expect_limit(i, limits[i].max);
        expect_limit(i, limits[i].min + 1);
        snprintf(text, sizeof(text), "%u", limits[i].max + 1);
        assert_int_equal(parse1(&cfg, limits[i].key, text, err), -1);
        snprintf(want, sizeof(want), "plugin_opt_%s must be a whole number from %u to %u",
                 limits[i].key, limits[i].min, limits[i].max);
        assert_string_equal(err, want);
        if (limits[i].min > 0)
            expect_refused(limits[i].key, "0");
        expect_refused(limits[i].key, "-1");
        expect_refused(limits[i].key, "4294967296");
    }
}

static void test_user_attr_lifetime(void **state)
{
    (void)state;
    struct rtm_config cfg;
    char err[ERR_LEN];
    expect_ok(&cfg, "user_attr_lifetime", "persistent");
    assert_int_equal(cfg.user_attr_lifetime, RTM_ATTR_PERSISTENT);
    rtm_config_free(&cfg);
    expect_ok(&cfg, "user_attr_lifetime", " session ");
    assert_int_equal(cfg.user_attr_lifetime, RTM_ATTR_SESSION);
    rtm_config_free(&cfg);
    static const char *const bad[] = {"",        "Session", "persist",
                                      "forever", "1",       "session persistent"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused("user_attr_lifetime", bad[i]);
    assert_int_equal(parse1(&cfg, "user_attr_lifetime", "forever", err), -1);
    assert_string_equal(err, "plugin_opt_user_attr_lifetime must be one of: session persistent");
}

static void test_identity_values(void **state)
{
    (void)state;
    struct rtm_config cfg;
    expect_ok(&cfg, "identity", "auto");
    assert_int_equal(cfg.identity, RTM_IDENTITY_AUTO);
    rtm_config_free(&cfg);
    expect_ok(&cfg, "identity", "username");
    assert_int_equal(cfg.identity, RTM_IDENTITY_USERNAME);
    rtm_config_free(&cfg);
    expect_ok(&cfg, "identity", "clientid");
    assert_int_equal(cfg.identity, RTM_IDENTITY_CLIENTID);
    rtm_config_free(&cfg);
    expect_refused("identity", "email");
    expect_refused("identity", "");
}

static void test_auth_values(void **state)
{
    (void)state;
    struct rtm_config cfg;
    expect_ok(&cfg, "auth", "none");
    assert_int_equal(cfg.auth, RTM_AUTH_NONE);
    rtm_config_free(&cfg);
    expect_ok(&cfg, "auth", "defer");
    assert_int_equal(cfg.auth, RTM_AUTH_DEFER);
    rtm_config_free(&cfg);
    expect_refused("auth", "maybe");
}

static int parse_n(struct rtm_config *cfg, const struct rtm_option *opts, size_t n, char *err)
{
    rtm_config_defaults(cfg);
    err[0] = '\0';
    return rtm_config_parse(cfg, opts, n, err, ERR_LEN);
}

static void test_token_options(void **state)
{
    (void)state;
    struct rtm_config cfg;
    char err[ERR_LEN];
    const struct rtm_option ok[] = {
        {"auth", "token"}, {"token_secret", " 0123456789abcdef "}, {"token_leeway", "0"}};
    assert_int_equal(parse_n(&cfg, ok, 3, err), 0);
    assert_int_equal(cfg.auth, RTM_AUTH_TOKEN);
    assert_string_equal(cfg.token_secret, "0123456789abcdef");
    assert_int_equal(cfg.token_leeway_s, 0);
    rtm_config_free(&cfg);
    /* The secret is wiped, not only forgotten. */
    assert_string_equal(cfg.token_secret, "");

    expect_ok(&cfg, "token_leeway", "3600");
    assert_int_equal(cfg.token_leeway_s, 3600);
    rtm_config_free(&cfg);
    rtm_config_defaults(&cfg);
    assert_int_equal(cfg.token_leeway_s, 30);
    expect_refused("token_leeway", "3601");
    expect_refused("token_leeway", "-1");
}

static void test_token_secret_required_and_long_enough(void **state)
{
    (void)state;
    struct rtm_config cfg;
    char err[ERR_LEN];
    const struct rtm_option missing[] = {{"auth", "token"}};
    assert_int_equal(parse_n(&cfg, missing, 1, err), -1);
    assert_non_null(strstr(err, "plugin_opt_token_secret"));
    const struct rtm_option short_secret[] = {{"auth", "token"},
                                              {"token_secret", "15-characters.."}};
    assert_int_equal(parse_n(&cfg, short_secret, 2, err), -1);
    assert_non_null(strstr(err, "at least 16"));
    /* A secret with another auth mode is a mistake worth stopping for. */
    const struct rtm_option unused[] = {{"auth", "none"}, {"token_secret", "0123456789abcdef"}};
    assert_int_equal(parse_n(&cfg, unused, 2, err), -1);
    assert_non_null(strstr(err, "plugin_opt_auth is not token"));
}

static void test_token_secret_file(void **state)
{
    (void)state;
    char path[] = "/tmp/rtm-token-secret-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("  s3cret-for-tests  \nsecond line ignored\n", f);
    fclose(f);
    struct rtm_config cfg;
    char err[ERR_LEN];
    const struct rtm_option opts[] = {{"auth", "token"}, {"token_secret_file", path}};
    int rc = parse_n(&cfg, opts, 2, err);
    unlink(path);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.token_secret, "s3cret-for-tests");
    rtm_config_free(&cfg);
    const struct rtm_option gone[] = {{"auth", "token"}, {"token_secret_file", path}};
    assert_int_equal(parse_n(&cfg, gone, 2, err), -1);
    assert_non_null(strstr(err, "plugin_opt_token_secret_file"));
}

static void test_other_topics_values(void **state)
{
    (void)state;
    struct rtm_config cfg;
    expect_ok(&cfg, "other_topics", "defer");
    assert_int_equal(cfg.other_topics, RTM_OTHER_DEFER);
    rtm_config_free(&cfg);
    expect_ok(&cfg, "other_topics", "allow");
    assert_int_equal(cfg.other_topics, RTM_OTHER_ALLOW);
    rtm_config_free(&cfg);
    expect_refused("other_topics", "deny-ish");
}

static void test_topic_prefix(void **state)
{
    (void)state;
    struct rtm_config cfg;

    expect_ok(&cfg, "topic_prefix", "calls");
    assert_string_equal(cfg.topic_prefix, "calls");
    assert_int_equal(cfg.prefix_len, 5);
    rtm_config_free(&cfg);

    /* A trailing slash is tolerated and stripped. */
    expect_ok(&cfg, "topic_prefix", "rtm/");
    assert_string_equal(cfg.topic_prefix, "rtm");
    assert_int_equal(cfg.prefix_len, 3);
    rtm_config_free(&cfg);

    /* Several levels. */
    expect_ok(&cfg, "topic_prefix", "app/rtm");
    assert_string_equal(cfg.topic_prefix, "app/rtm");
    assert_int_equal(cfg.prefix_len, 7);
    rtm_config_free(&cfg);

    expect_ok(&cfg, "topic_prefix", "a/b/c/");
    assert_string_equal(cfg.topic_prefix, "a/b/c");
    assert_int_equal(cfg.prefix_len, 5);
    rtm_config_free(&cfg);

    /* Exactly RTM_PREFIX_MAX characters fit. */
    char longp[RTM_PREFIX_MAX + 2];
    memset(longp, 'p', RTM_PREFIX_MAX);
    longp[RTM_PREFIX_MAX] = '\0';
    expect_ok(&cfg, "topic_prefix", longp);
    assert_int_equal(cfg.prefix_len, RTM_PREFIX_MAX);
    assert_int_equal(strlen(cfg.topic_prefix), RTM_PREFIX_MAX);
    rtm_config_free(&cfg);

    /* Refused: wildcards, empty, too long. */
    expect_refused("topic_prefix", "rtm/#");
    expect_refused("topic_prefix", "rtm/+");
    expect_refused("topic_prefix", "r+m");
    expect_refused("topic_prefix", "a/+/b");
    expect_refused("topic_prefix", "#");
    expect_refused("topic_prefix", "");
    expect_refused("topic_prefix", "/");
    longp[RTM_PREFIX_MAX] = 'p';
    longp[RTM_PREFIX_MAX + 1] = '\0';
    expect_refused("topic_prefix", longp);
}

static void test_admin_users(void **state)
{
    (void)state;
    struct rtm_config cfg;
    expect_ok(&cfg, "admin_users", "server1, ops ,app@example.com");
    assert_int_equal(cfg.admin_count, 3);
    assert_true(rtm_config_is_admin(&cfg, "server1"));
    assert_true(rtm_config_is_admin(&cfg, "ops"));
    assert_true(rtm_config_is_admin(&cfg, "app@example.com"));
    assert_false(rtm_config_is_admin(&cfg, "server"));
    assert_false(rtm_config_is_admin(&cfg, "server12"));
    assert_false(rtm_config_is_admin(&cfg, "ops "));
    assert_false(rtm_config_is_admin(&cfg, " ops"));
    assert_false(rtm_config_is_admin(&cfg, "OPS"));
    assert_false(rtm_config_is_admin(&cfg, ""));
    assert_false(rtm_config_is_admin(&cfg, "bob"));
    rtm_config_free(&cfg);

    expect_ok(&cfg, "admin_users", "solo");
    assert_int_equal(cfg.admin_count, 1);
    assert_true(rtm_config_is_admin(&cfg, "solo"));
    rtm_config_free(&cfg);
}

/* auto (the default), none, or an IP and port: no host names. */
static void test_registry_listener(void **state)
{
    (void)state;
    struct rtm_config cfg;
    rtm_config_defaults(&cfg);
    assert_string_equal(cfg.registry_listener, "auto");
    static const char *const ok[] = {"auto",     "none",           "127.0.0.1:1883", "[::1]:18830",
                                     "::1:1883", "localhost:1883", "10.0.0.5:65535", "0.0.0.0:1"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        expect_ok(&cfg, "registry_listener", ok[i]);
        assert_string_equal(cfg.registry_listener, ok[i]);
        rtm_config_free(&cfg);
    }
    static const char *const bad[] = {"",
                                      "1883",
                                      "127.0.0.1",
                                      "127.0.0.1:",
                                      "127.0.0.1:0",
                                      "127.0.0.1:65536",
                                      ":1883",
                                      "broker.example:1883",
                                      "[::1:1883",
                                      "127.0.0.1:18x3",
                                      "AUTO"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused("registry_listener", bad[i]);
}

static void test_free_is_idempotent_on_defaults(void **state)
{
    (void)state;
    struct rtm_config cfg;
    rtm_config_defaults(&cfg);
    rtm_config_free(&cfg);
}

static void test_unknown_option(void **state)
{
    (void)state;
    expect_refused("no_such_option", "1");
    expect_refused("invite_timeout_typo", "30");
}

static const char *const numeric_opts[] = {
    "invite_timeout", "ring_timeout",      "caller_grace",  "max_invite_timeout", "busy_limit",
    "invite_rate",    "max_payload",       "max_message",   "message_rate",       "join_rate",
    "max_channels",   "member_events_max", "max_attr_keys", "max_attr_bytes",     "attr_rate",
};

static void test_bad_numbers(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "abc",
        "-5",
        "-0x10",
        "30s",
        "30 x",
        "3O",
        "1.5",
        "0x10x",
        "1e3",
        "30,",
        " ",
        "+-3",
        "--3",
        "99999999999999999999999",
        "18446744073709551616",
        "9223372036854775808",
    };
    for (size_t i = 0; i < sizeof(numeric_opts) / sizeof(numeric_opts[0]); i++)
        for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++)
            expect_refused(numeric_opts[i], bad[j]);
}

static void test_zero_refused(void **state)
{
    (void)state;
    /* A zero here would make the feature unusable (every invitation fails at
     * once, no invitation may be placed, no message fits). */
    expect_refused("invite_timeout", "0");
    expect_refused("ring_timeout", "0");
    expect_refused("max_invite_timeout", "0");
    expect_refused("busy_limit", "0");
    expect_refused("max_payload", "0");
}

static void test_overflow_refused(void **state)
{
    (void)state;
    /* Fits in 64 bits as seconds but not once converted to milliseconds. */
    expect_refused("invite_timeout", "9223372036854775807");
    expect_refused("ring_timeout", "9223372036854776");
    expect_refused("caller_grace", "18446744073709551615");
    /* uint32_t fields. */
    expect_refused("busy_limit", "4294967296");
    expect_refused("invite_rate", "4294967296");
    expect_refused("max_payload", "4294967296");
    expect_refused("max_invite_timeout", "4294967296");
}

static void test_surrounding_spaces(void **state)
{
    (void)state;
    struct rtm_config cfg;
    /* Mosquitto passes the rest of the line, spaces included. */
    expect_ok(&cfg, "invite_timeout", " 30 ");
    assert_int_equal(cfg.invite_timeout_ms, 30000);
    rtm_config_free(&cfg);

    expect_ok(&cfg, "busy_limit", "\t7  ");
    assert_int_equal(cfg.busy_limit, 7);
    rtm_config_free(&cfg);

    expect_ok(&cfg, "ring_timeout", "45 ");
    assert_int_equal(cfg.ring_timeout_ms, 45000);
    rtm_config_free(&cfg);

    expect_ok(&cfg, "identity", " clientid ");
    assert_int_equal(cfg.identity, RTM_IDENTITY_CLIENTID);
    rtm_config_free(&cfg);

    expect_ok(&cfg, "other_topics", "allow ");
    assert_int_equal(cfg.other_topics, RTM_OTHER_ALLOW);
    rtm_config_free(&cfg);

    expect_ok(&cfg, "admin_users", "  a ,b  ");
    assert_int_equal(cfg.admin_count, 2);
    assert_true(rtm_config_is_admin(&cfg, "a"));
    assert_true(rtm_config_is_admin(&cfg, "b"));
    rtm_config_free(&cfg);
}

static void test_error_after_admin_list_leaks_nothing(void **state)
{
    (void)state;
    /* The admin list is allocated before the bad option is seen; on error the
     * config holds nothing to free (LSan checks this under the sanitizer build). */
    struct rtm_config cfg;
    char err[ERR_LEN] = "";
    const struct rtm_option opts[] = {
        {"admin_users", "a,b,c"},
        {"busy_limit", "lots"},
    };
    rtm_config_defaults(&cfg);
    assert_int_equal(rtm_config_parse(&cfg, opts, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "busy_limit"));
}

static void test_small_error_buffer(void **state)
{
    (void)state;
    struct rtm_config cfg;
    char err[8];
    memset(err, 'x', sizeof(err));
    struct rtm_option opt = {"invite_timeout", "nope"};
    rtm_config_defaults(&cfg);
    assert_int_equal(rtm_config_parse(&cfg, &opt, 1, err, sizeof(err)), -1);
    /* Truncated, but terminated inside the buffer. */
    assert_non_null(memchr(err, '\0', sizeof(err)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_parse_nothing_keeps_defaults),
        cmocka_unit_test(test_durations_in_seconds),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_several_options_at_once),
        cmocka_unit_test(test_spec8_limits),
        cmocka_unit_test(test_user_attr_lifetime),
        cmocka_unit_test(test_identity_values),
        cmocka_unit_test(test_auth_values),
        cmocka_unit_test(test_token_options),
        cmocka_unit_test(test_token_secret_required_and_long_enough),
        cmocka_unit_test(test_token_secret_file),
        cmocka_unit_test(test_other_topics_values),
        cmocka_unit_test(test_topic_prefix),
        cmocka_unit_test(test_admin_users),
        cmocka_unit_test(test_registry_listener),
        cmocka_unit_test(test_free_is_idempotent_on_defaults),
        cmocka_unit_test(test_unknown_option),
        cmocka_unit_test(test_bad_numbers),
        cmocka_unit_test(test_zero_refused),
        cmocka_unit_test(test_overflow_refused),
        cmocka_unit_test(test_surrounding_spaces),
        cmocka_unit_test(test_error_after_admin_list_leaks_nothing),
        cmocka_unit_test(test_small_error_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
