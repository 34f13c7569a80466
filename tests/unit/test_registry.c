/*
 * Unit tests for plugin/services/registry.c: validating registration payloads
 * (SPEC.md section 6.1) and the registry's two indexes (uid -> devices,
 * token -> device), including a randomized run against a reference model
 * made of plain arrays and a run with 100,000 devices.
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

#include "rtm_registry.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

#ifdef HAVE_ASAN
/* From <sanitizer/allocator_interface.h>, which is not always installed. */
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t allocated_bytes(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#else
#include <malloc.h>
static size_t allocated_bytes(void)
{
    return mallinfo2().uordblks;
}
#endif

/* --- parsing -------------------------------------------------------------- */

/* Parses `len` bytes copied into a buffer of exactly that size (no NUL after
 * it, as an MQTT payload), so reading past `len` is caught by ASan. */
static bool parse_n(const char *payload, size_t len, struct rtm_registration *out, const char **why)
{
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, payload, len);
    memset(out, 0x5A, sizeof(*out));
    *why = NULL;
    bool ok = rtm_registration_parse(buf, len, out, why);
    free(buf);
    return ok;
}

static void expect_ok(const char *payload, enum rtm_platform platform, const char *token)
{
    struct rtm_registration r;
    const char *why = NULL;
    bool ok = parse_n(payload, strlen(payload), &r, &why);
    if (!ok)
        print_error("refused (%s): %.200s\n", why ? why : "?", payload);
    assert_true(ok);
    assert_string_equal(r.provider, "jpush");
    assert_int_equal(r.platform, platform);
    assert_string_equal(r.token, token);
}

static void expect_bad_n(const char *payload, size_t len)
{
    struct rtm_registration r;
    const char *why = NULL;
    bool ok = parse_n(payload, len, &r, &why);
    if (ok)
        print_error("accepted: %.200s\n", payload);
    assert_false(ok);
    assert_non_null(why);
    assert_true(why[0] != '\0');
}

static void expect_bad(const char *payload)
{
    expect_bad_n(payload, strlen(payload));
}

/* A registration padded with an ignored field to exactly `total` bytes. */
static char *padded(size_t total)
{
    static const char head[] = "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t1\","
                               "\"pad\":\"";
    size_t fixed = strlen(head) + 2;
    assert_true(total > fixed);
    char *s = malloc(total + 1);
    assert_non_null(s);
    memcpy(s, head, strlen(head));
    memset(s + strlen(head), 'x', total - fixed);
    memcpy(s + total - 2, "\"}", 3);
    assert_int_equal(strlen(s), total);
    return s;
}

static void test_platform_names(void **state)
{
    (void)state;
    assert_string_equal(rtm_platform_name(RTM_PLATFORM_ANDROID), "android");
    assert_string_equal(rtm_platform_name(RTM_PLATFORM_IOS), "ios");
    assert_string_equal(rtm_platform_name(RTM_PLATFORM_HMOS), "hmos");
    assert_string_equal(rtm_platform_name((enum rtm_platform)99), "");
}

static void test_parse_accepts(void **state)
{
    (void)state;
    expect_ok("{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":\"1a0018970a\"}",
              RTM_PLATFORM_ANDROID, "1a0018970a");
    expect_ok("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"abc\"}", RTM_PLATFORM_IOS,
              "abc");
    expect_ok("{\"token\":\"x\",\"platform\":\"hmos\",\"provider\":\"jpush\"}", RTM_PLATFORM_HMOS,
              "x");
    /* Every allowed character; whitespace around; extra fields of any type. */
    expect_ok(" \n{ \"provider\" : \"jpush\", \"platform\":\"ios\", \"extra\":[1,{\"a\":null}],"
              " \"token\":\"AZaz09_-:.\", \"n\":3.5 }\r\n\t",
              RTM_PLATFORM_IOS, "AZaz09_-:.");
    /* Non-ASCII in an ignored field is fine. */
    expect_ok(
        "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t\",\"name\":\"Jos\xc3\xa9\"}",
        RTM_PLATFORM_IOS, "t");
    /* A token of exactly 256 characters. */
    char tok[RTM_TOKEN_MAX + 1];
    memset(tok, 'k', RTM_TOKEN_MAX);
    tok[RTM_TOKEN_MAX] = '\0';
    char buf[400];
    snprintf(buf, sizeof(buf), "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":\"%s\"}",
             tok);
    expect_ok(buf, RTM_PLATFORM_ANDROID, tok);
    /* Exactly 1024 bytes. */
    char *s = padded(1024);
    expect_ok(s, RTM_PLATFORM_IOS, "t1");
    free(s);
}

static void test_parse_rejects_envelope(void **state)
{
    (void)state;
    expect_bad_n("", 0);
    expect_bad("not json");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t\"");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t\"} x");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t\"}{}");
    expect_bad("[{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t\"}]");
    expect_bad("\"jpush\"");
    expect_bad("null");
    expect_bad("42");
    /* A NUL inside the payload ends the JSON early. */
    static const char nul[] = "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t\"}\0 ";
    expect_bad_n(nul, sizeof(nul) - 1);
    /* Invalid UTF-8: a stray byte, an overlong '/', a surrogate, a cut sequence. */
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t\",\"x\":\"\xff\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t\",\"x\":\"\xc0\xaf\"}");
    expect_bad(
        "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t\",\"x\":\"\xed\xa0\x80\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t\",\"x\":\"\xe2\x82\"}");
    /* More than 1024 bytes, even though otherwise valid. */
    char *s = padded(1025);
    expect_bad(s);
    free(s);
}

static void test_parse_rejects_provider(void **state)
{
    (void)state;
    expect_bad("{\"platform\":\"ios\",\"token\":\"t\"}");
    expect_bad("{\"provider\":\"fcm\",\"platform\":\"ios\",\"token\":\"t\"}");
    expect_bad("{\"provider\":\"JPush\",\"platform\":\"ios\",\"token\":\"t\"}");
    expect_bad("{\"provider\":\"jpush \",\"platform\":\"ios\",\"token\":\"t\"}");
    expect_bad("{\"provider\":\"\",\"platform\":\"ios\",\"token\":\"t\"}");
    expect_bad("{\"provider\":1,\"platform\":\"ios\",\"token\":\"t\"}");
    expect_bad("{\"provider\":null,\"platform\":\"ios\",\"token\":\"t\"}");
    expect_bad("{\"provider\":[\"jpush\"],\"platform\":\"ios\",\"token\":\"t\"}");
    /* cJSON would read "jpush\u0000x" as "jpush". */
    expect_bad("{\"provider\":\"jpush\\u0000x\",\"platform\":\"ios\",\"token\":\"t\"}");
}

static void test_parse_rejects_platform(void **state)
{
    (void)state;
    expect_bad("{\"provider\":\"jpush\",\"token\":\"t\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"windows\",\"token\":\"t\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"Android\",\"token\":\"t\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"\",\"token\":\"t\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":0,\"token\":\"t\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":true,\"token\":\"t\"}");
}

static void test_parse_rejects_token(void **state)
{
    (void)state;
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"a b\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\" ab\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"a/b\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"a+b\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"a\\nb\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t\xc3\xb6k\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"ab\\u0000cd\"}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":12345}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":null}");
    expect_bad("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":[\"t\"]}");
    char tok[RTM_TOKEN_MAX + 2];
    memset(tok, 'k', RTM_TOKEN_MAX + 1);
    tok[RTM_TOKEN_MAX + 1] = '\0';
    char buf[400];
    snprintf(buf, sizeof(buf), "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"%s\"}",
             tok);
    expect_bad(buf);
}

/* An escaped backslash before "u0000" is not an escaped NUL. */
static void test_parse_backslash_then_u0000(void **state)
{
    (void)state;
    expect_ok("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"t\",\"x\":\"\\\\u0000\"}",
              RTM_PLATFORM_IOS, "t");
}

/* --- the registry ------------------------------------------------------- */

static struct rtm_registration mkreg(const char *token, enum rtm_platform platform)
{
    struct rtm_registration r;
    memset(&r, 0, sizeof(r));
    strcpy(r.provider, "jpush");
    r.platform = platform;
    snprintf(r.token, sizeof(r.token), "%s", token);
    return r;
}

/* Sets and expects OK without a move. */
static void set_ok(struct rtm_registry *reg, const char *uid, const char *device, const char *token)
{
    struct rtm_registration r = mkreg(token, RTM_PLATFORM_ANDROID);
    struct rtm_device_ref from;
    bool moved = true;
    assert_int_equal(rtm_registry_set(reg, uid, device, &r, &from, &moved), RTM_REG_OK);
    assert_false(moved);
}

/* Sets and expects OK with `token` moved away from (from_uid, from_device). */
static void set_moves(struct rtm_registry *reg, const char *uid, const char *device,
                      const char *token, const char *from_uid, const char *from_device)
{
    struct rtm_registration r = mkreg(token, RTM_PLATFORM_IOS);
    struct rtm_device_ref from;
    memset(&from, 0, sizeof(from));
    bool moved = false;
    assert_int_equal(rtm_registry_set(reg, uid, device, &r, &from, &moved), RTM_REG_OK);
    assert_true(moved);
    assert_string_equal(from.uid, from_uid);
    assert_string_equal(from.device, from_device);
}

/* The token `uid`'s `device` has, or NULL when it is not registered. */
static const char *token_of(const struct rtm_registry *reg, const char *uid, const char *device)
{
    struct rtm_device_entry e[64];
    size_t n = rtm_registry_devices(reg, uid, e, 64);
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].device, device) == 0)
            return e[i].token;
    }
    return NULL;
}

static size_t devices_of(const struct rtm_registry *reg, const char *uid)
{
    struct rtm_device_entry e[1];
    return rtm_registry_devices(reg, uid, e, 0);
}

static void test_set_update_remove(void **state)
{
    (void)state;
    struct rtm_registry *reg = rtm_registry_new(10, NULL);
    assert_non_null(reg);
    assert_int_equal(rtm_registry_count(reg), 0);
    assert_int_equal(devices_of(reg, "bob"), 0);

    set_ok(reg, "bob", "phone", "T1");
    set_ok(reg, "bob", "tablet", "T2");
    set_ok(reg, "alice", "phone", "T3");
    assert_int_equal(rtm_registry_count(reg), 3);

    struct rtm_device_entry e[4];
    assert_int_equal(rtm_registry_devices(reg, "bob", e, 4), 2);
    assert_string_equal(e[0].device, "phone");
    assert_string_equal(e[0].provider, "jpush");
    assert_int_equal(e[0].platform, RTM_PLATFORM_ANDROID);
    assert_string_equal(e[0].token, "T1");
    assert_string_equal(e[1].device, "tablet");
    assert_string_equal(e[1].token, "T2");
    /* Fewer slots than devices: the full count comes back. */
    assert_int_equal(rtm_registry_devices(reg, "bob", e, 1), 2);
    assert_string_equal(e[0].device, "phone");

    /* Same token again: an update, not a move; the platform changes. */
    struct rtm_registration r = mkreg("T1", RTM_PLATFORM_HMOS);
    bool moved = true;
    assert_int_equal(rtm_registry_set(reg, "bob", "phone", &r, NULL, &moved), RTM_REG_OK);
    assert_false(moved);
    assert_int_equal(rtm_registry_devices(reg, "bob", e, 4), 2);
    assert_int_equal(e[0].platform, RTM_PLATFORM_HMOS);

    /* A new token for the same device: the token index follows. */
    set_ok(reg, "bob", "phone", "T9");
    assert_string_equal(token_of(reg, "bob", "phone"), "T9");
    assert_int_equal(rtm_registry_count(reg), 3);
    assert_false(rtm_registry_remove_token(reg, "T1", NULL));
    set_ok(reg, "carol", "phone", "T1"); /* T1 is free: no move */

    /* Removing: unknown ones are no-ops. */
    rtm_registry_remove(reg, "bob", "nothing");
    rtm_registry_remove(reg, "nobody", "phone");
    assert_int_equal(rtm_registry_count(reg), 4);
    rtm_registry_remove(reg, "bob", "phone");
    assert_null(token_of(reg, "bob", "phone"));
    assert_string_equal(token_of(reg, "bob", "tablet"), "T2");
    assert_int_equal(rtm_registry_count(reg), 3);
    /* The removed device's token is free again. */
    set_ok(reg, "dave", "phone", "T9");
    rtm_registry_free(reg);
    rtm_registry_free(NULL);
}

static void test_max_devices(void **state)
{
    (void)state;
    struct rtm_registry *reg = rtm_registry_new(3, NULL);
    set_ok(reg, "bob", "d1", "T1");
    set_ok(reg, "bob", "d2", "T2");
    set_ok(reg, "bob", "d3", "T3");
    /* At the limit, re-registering is an update, even with a new token. */
    set_ok(reg, "bob", "d2", "T2");
    set_ok(reg, "bob", "d3", "T33");
    /* A new device is refused, and nothing changes. */
    struct rtm_registration r = mkreg("T4", RTM_PLATFORM_IOS);
    bool moved = true;
    assert_int_equal(rtm_registry_set(reg, "bob", "d4", &r, NULL, &moved), RTM_REG_TOO_MANY);
    assert_false(moved);
    assert_int_equal(devices_of(reg, "bob"), 3);
    assert_null(token_of(reg, "bob", "d4"));
    assert_false(rtm_registry_remove_token(reg, "T4", NULL));
    /* Refused, even with a token another user holds: that user keeps it. */
    set_ok(reg, "alice", "a1", "A1");
    r = mkreg("A1", RTM_PLATFORM_IOS);
    assert_int_equal(rtm_registry_set(reg, "bob", "d4", &r, NULL, &moved), RTM_REG_TOO_MANY);
    assert_false(moved);
    assert_string_equal(token_of(reg, "alice", "a1"), "A1");
    assert_int_equal(rtm_registry_count(reg), 4);
    /* Other users have their own limit. */
    set_ok(reg, "alice", "a2", "A2");
    /* After a removal there is room again. */
    rtm_registry_remove(reg, "bob", "d1");
    set_ok(reg, "bob", "d4", "T4");
    assert_int_equal(devices_of(reg, "bob"), 3);
    rtm_registry_free(reg);
}

static void test_max_devices_zero(void **state)
{
    (void)state;
    struct rtm_registry *reg = rtm_registry_new(0, NULL);
    struct rtm_registration r = mkreg("T1", RTM_PLATFORM_IOS);
    assert_int_equal(rtm_registry_set(reg, "bob", "d1", &r, NULL, NULL), RTM_REG_TOO_MANY);
    assert_int_equal(rtm_registry_count(reg), 0);
    rtm_registry_free(reg);
}

static void test_token_moves_between_users(void **state)
{
    (void)state;
    struct rtm_registry *reg = rtm_registry_new(10, NULL);
    set_ok(reg, "alice", "phone", "SHARED");
    set_ok(reg, "alice", "laptop", "A2");
    /* bob logs in on alice's phone: the token leaves alice. */
    set_moves(reg, "bob", "phone", "SHARED", "alice", "phone");
    assert_null(token_of(reg, "alice", "phone"));
    assert_string_equal(token_of(reg, "alice", "laptop"), "A2");
    assert_string_equal(token_of(reg, "bob", "phone"), "SHARED");
    assert_int_equal(rtm_registry_count(reg), 2);
    /* carol takes it with a device id bob also has: the entry moves again. */
    set_moves(reg, "carol", "phone", "SHARED", "bob", "phone");
    assert_int_equal(devices_of(reg, "bob"), 0); /* bob's record is gone */
    /* An existing device switching to a held token moves it too. */
    set_moves(reg, "alice", "laptop", "SHARED", "carol", "phone");
    assert_int_equal(devices_of(reg, "carol"), 0);
    assert_string_equal(token_of(reg, "alice", "laptop"), "SHARED");
    assert_false(rtm_registry_remove_token(reg, "A2", NULL)); /* alice's old token is free */
    assert_int_equal(rtm_registry_count(reg), 1);
    /* A move with no out-parameters at all. */
    struct rtm_registration r = mkreg("SHARED", RTM_PLATFORM_IOS);
    assert_int_equal(rtm_registry_set(reg, "dave", "x", &r, NULL, NULL), RTM_REG_OK);
    assert_int_equal(devices_of(reg, "alice"), 0);
    assert_int_equal(rtm_registry_count(reg), 1);
    rtm_registry_free(reg);
}

static void test_token_moves_within_user(void **state)
{
    (void)state;
    struct rtm_registry *reg = rtm_registry_new(2, NULL);
    set_ok(reg, "bob", "old", "T1");
    /* The same token on a second device of bob's: it leaves the first. */
    set_moves(reg, "bob", "new", "T1", "bob", "old");
    assert_int_equal(devices_of(reg, "bob"), 1);
    assert_null(token_of(reg, "bob", "old"));
    assert_string_equal(token_of(reg, "bob", "new"), "T1");
    /* At the limit, a new device taking the token of one of bob's own devices
     * replaces it: bob still has max_devices, so it is allowed. */
    set_ok(reg, "bob", "other", "T2");
    assert_int_equal(devices_of(reg, "bob"), 2);
    set_moves(reg, "bob", "third", "T2", "bob", "other");
    assert_int_equal(devices_of(reg, "bob"), 2);
    assert_string_equal(token_of(reg, "bob", "third"), "T2");
    assert_string_equal(token_of(reg, "bob", "new"), "T1");
    /* An existing device taking its sibling's token. */
    set_moves(reg, "bob", "new", "T2", "bob", "third");
    assert_int_equal(devices_of(reg, "bob"), 1);
    assert_int_equal(rtm_registry_count(reg), 1);
    assert_false(rtm_registry_remove_token(reg, "T1", NULL));
    rtm_registry_free(reg);
}

static void test_remove_token(void **state)
{
    (void)state;
    struct rtm_registry *reg = rtm_registry_new(10, NULL);
    set_ok(reg, "bob", "phone", "T1");
    set_ok(reg, "bob", "tablet", "T2");
    struct rtm_device_ref ref;
    memset(&ref, 0, sizeof(ref));
    assert_false(rtm_registry_remove_token(reg, "nope", &ref));
    assert_true(rtm_registry_remove_token(reg, "T2", &ref));
    assert_string_equal(ref.uid, "bob");
    assert_string_equal(ref.device, "tablet");
    assert_false(rtm_registry_remove_token(reg, "T2", &ref));
    assert_int_equal(devices_of(reg, "bob"), 1);
    assert_true(rtm_registry_remove_token(reg, "T1", NULL));
    assert_int_equal(devices_of(reg, "bob"), 0);
    assert_int_equal(rtm_registry_count(reg), 0);
    rtm_registry_free(reg);
}

/* Full-length uids and device ids come back whole in a device ref. */
static void test_long_names(void **state)
{
    (void)state;
    char uid[RTM_UID_MAX + 1], dev[RTM_ID_MAX + 1];
    memset(uid, 'u', RTM_UID_MAX);
    uid[RTM_UID_MAX] = '\0';
    memset(dev, 'd', RTM_ID_MAX);
    dev[RTM_ID_MAX] = '\0';
    struct rtm_registry *reg = rtm_registry_new(10, NULL);
    set_ok(reg, uid, dev, "T1");
    set_moves(reg, "bob", "x", "T1", uid, dev);
    struct rtm_device_ref ref;
    assert_true(rtm_registry_remove_token(reg, "T1", &ref));
    assert_string_equal(ref.uid, "bob");
    rtm_registry_free(reg);
}

static void test_users_freed_when_empty(void **state)
{
    (void)state;
    struct rtm_registry *reg = rtm_registry_new(2, NULL);
    for (int round = 0; round < 3; round++) {
        set_ok(reg, "bob", "d1", "T1");
        set_ok(reg, "bob", "d2", "T2");
        assert_int_equal(rtm_registry_count(reg), 2);
        rtm_registry_remove(reg, "bob", "d1");
        assert_true(rtm_registry_remove_token(reg, "T2", NULL));
        assert_int_equal(rtm_registry_count(reg), 0);
        assert_int_equal(devices_of(reg, "bob"), 0);
    }
    /* A fresh record starts from zero devices: two fit again. */
    set_ok(reg, "bob", "d3", "T3");
    set_ok(reg, "bob", "d4", "T4");
    assert_int_equal(devices_of(reg, "bob"), 2);
    /* The registry is freed with its records (LeakSanitizer checks). */
    rtm_registry_free(reg);
}

/* Memory follows live state: 100,000 users come and go one at a time, and
 * the heap ends where it started (a kept user record would cost ~40 bytes). */
static void test_memory_follows_live_state(void **state)
{
    (void)state;
    struct rtm_registry *reg = rtm_registry_new(10, NULL);
    set_ok(reg, "warmup", "d", "W");
    rtm_registry_remove(reg, "warmup", "d");
    size_t before = allocated_bytes();
    char uid[32], tok[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(uid, sizeof(uid), "user%d", i);
        snprintf(tok, sizeof(tok), "tok%d", i);
        set_ok(reg, uid, "phone", tok);
        if (i % 2)
            rtm_registry_remove(reg, uid, "phone");
        else
            assert_true(rtm_registry_remove_token(reg, tok, NULL));
    }
    size_t after = allocated_bytes();
    if (after > before + 4096)
        print_error("heap grew from %zu to %zu bytes\n", before, after);
    assert_true(after <= before + 4096);
    rtm_registry_free(reg);
}

/* --- randomized test against a reference model --------------------------- */

enum { NU = 6, ND = 5, NT = 14, MAXD = 3 };

struct slot {
    bool used;
    int token;
    enum rtm_platform platform;
};

struct model {
    struct slot s[NU][ND]; /* (uid, device) -> registration */
    uint64_t seed;
    int step;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char *uid_name(int u)
{
    static char names[NU][16];
    snprintf(names[u], sizeof(names[u]), "user.%d", u);
    return names[u];
}

static const char *dev_name(int d)
{
    static char names[ND][16];
    snprintf(names[d], sizeof(names[d]), "dev-%d", d);
    return names[d];
}

static const char *tok_name(int t)
{
    static char names[NT][16];
    snprintf(names[t], sizeof(names[t]), "tok:%d", t);
    return names[t];
}

#define MCHECK(m, cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("seed %llu step %d: %s\n", (unsigned long long)(m)->seed, (m)->step,       \
                        #cond);                                                                    \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static bool model_holder(const struct model *m, int t, int *hu, int *hd)
{
    for (int u = 0; u < NU; u++) {
        for (int d = 0; d < ND; d++) {
            if (m->s[u][d].used && m->s[u][d].token == t) {
                *hu = u;
                *hd = d;
                return true;
            }
        }
    }
    return false;
}

static size_t model_user_count(const struct model *m, int u)
{
    size_t n = 0;
    for (int d = 0; d < ND; d++)
        n += m->s[u][d].used;
    return n;
}

static size_t model_count(const struct model *m)
{
    size_t n = 0;
    for (int u = 0; u < NU; u++)
        n += model_user_count(m, u);
    return n;
}

static void model_set(struct model *m, struct rtm_registry *reg, int u, int d, int t,
                      enum rtm_platform p)
{
    int hu = -1, hd = -1;
    bool held = model_holder(m, t, &hu, &hd);
    bool move = held && (hu != u || hd != d);
    size_t have = model_user_count(m, u) - (held && hu == u && hd != d ? 1 : 0);
    bool refused = !m->s[u][d].used && have >= MAXD;

    struct rtm_registration r = mkreg(tok_name(t), p);
    struct rtm_device_ref from;
    bool moved = !move;
    enum rtm_registry_result res =
        rtm_registry_set(reg, uid_name(u), dev_name(d), &r, &from, &moved);
    MCHECK(m, res == (refused ? RTM_REG_TOO_MANY : RTM_REG_OK));
    MCHECK(m, moved == (move && !refused));
    if (refused)
        return;
    if (move) {
        MCHECK(m, strcmp(from.uid, uid_name(hu)) == 0 && strcmp(from.device, dev_name(hd)) == 0);
        m->s[hu][hd].used = false;
    }
    m->s[u][d] = (struct slot){.used = true, .token = t, .platform = p};
}

static void model_remove_token(struct model *m, struct rtm_registry *reg, int t)
{
    int hu = -1, hd = -1;
    bool held = model_holder(m, t, &hu, &hd);
    struct rtm_device_ref ref;
    MCHECK(m, rtm_registry_remove_token(reg, tok_name(t), &ref) == held);
    if (!held)
        return;
    MCHECK(m, strcmp(ref.uid, uid_name(hu)) == 0 && strcmp(ref.device, dev_name(hd)) == 0);
    m->s[hu][hd].used = false;
}

/* The uid index: each user lists exactly the model's devices. */
static void check_users(const struct model *m, const struct rtm_registry *reg)
{
    for (int u = 0; u < NU; u++) {
        struct rtm_device_entry e[ND + 1];
        size_t n = rtm_registry_devices(reg, uid_name(u), e, ND + 1);
        MCHECK(m, n == model_user_count(m, u));
        bool seen[ND] = {false};
        for (size_t i = 0; i < n; i++) {
            int d = atoi(e[i].device + strlen("dev-"));
            MCHECK(m, d >= 0 && d < ND && strcmp(e[i].device, dev_name(d)) == 0 && !seen[d]);
            seen[d] = true;
            const struct slot *s = &m->s[u][d];
            MCHECK(m, s->used && strcmp(e[i].token, tok_name(s->token)) == 0);
            MCHECK(m, e[i].platform == s->platform && strcmp(e[i].provider, "jpush") == 0);
        }
    }
}

/* The token index, through the API: take each token away, compare its
 * holder with the model's, and put it back. */
static void check_tokens(struct model *m, struct rtm_registry *reg)
{
    for (int t = 0; t < NT; t++) {
        int hu = -1, hd = -1;
        bool held = model_holder(m, t, &hu, &hd);
        model_remove_token(m, reg, t);
        if (held)
            model_set(m, reg, hu, hd, t, m->s[hu][hd].platform);
    }
}

static void random_step(struct model *m, struct rtm_registry *reg)
{
    unsigned op = (unsigned)(rnd() % 100);
    int u = (int)(rnd() % NU), d = (int)(rnd() % ND), t = (int)(rnd() % NT);
    if (op < 60) {
        model_set(m, reg, u, d, t, (enum rtm_platform)(rnd() % 3));
    } else if (op < 80) {
        rtm_registry_remove(reg, uid_name(u), dev_name(d));
        m->s[u][d].used = false;
    } else if (op < 95) {
        model_remove_token(m, reg, t);
    } else {
        for (int k = 0; k < ND; k++) {
            rtm_registry_remove(reg, uid_name(u), dev_name(k));
            m->s[u][k].used = false;
        }
    }
}

static void run_random(uint64_t seed, int steps)
{
    struct model m;
    memset(&m, 0, sizeof(m));
    m.seed = seed;
    rng_state = seed;
    struct rtm_registry *reg = rtm_registry_new(MAXD, NULL);
    assert_non_null(reg);
    for (m.step = 0; m.step < steps; m.step++) {
        random_step(&m, reg);
        MCHECK(&m, rtm_registry_count(reg) == model_count(&m));
        check_users(&m, reg);
        /* After every step; the platform saved before the removal goes back. */
        check_tokens(&m, reg);
        check_users(&m, reg);
    }
    rtm_registry_free(reg);
}

static void test_random_against_model(void **state)
{
    (void)state;
    /* Fixed seeds, and one from the clock or RTM_TEST_SEED (to replay). */
    uint64_t seeds[5] = {1, 2, 0xdeadbeef, 20251125, 0};
    const char *env = getenv("RTM_TEST_SEED");
    seeds[4] = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    for (size_t s = 0; s < 5; s++) {
        print_message("registry random: seed %llu\n", (unsigned long long)seeds[s]);
        run_random(seeds[s], 20000);
    }
}

/* --- scale ----------------------------------------------------------------- */

enum { BIG = 100000, PER_USER = 4 };

static void big_names(int i, char *uid, char *dev, char *tok)
{
    snprintf(uid, 32, "u%d", i / PER_USER);
    snprintf(dev, 32, "d%d", i % PER_USER);
    snprintf(tok, 32, "140fe1da9e%08d", i);
}

static void test_100k_devices(void **state)
{
    (void)state;
    char uid[32], dev[32], tok[32];
    clock_t t0 = clock();
    struct rtm_registry *reg = rtm_registry_new(10, NULL);
    for (int i = 0; i < BIG; i++) {
        big_names(i, uid, dev, tok);
        set_ok(reg, uid, dev, tok);
    }
    assert_int_equal(rtm_registry_count(reg), BIG);
    for (int i = 0; i < BIG; i++) {
        big_names(i, uid, dev, tok);
        const char *t = token_of(reg, uid, dev);
        assert_non_null(t);
        assert_string_equal(t, tok);
    }
    /* Every token moves to a device of the same id of a new user "w...". */
    for (int i = 0; i < BIG; i++) {
        big_names(i, uid, dev, tok);
        char wuid[40];
        snprintf(wuid, sizeof(wuid), "w%s", uid);
        set_moves(reg, wuid, dev, tok, uid, dev);
    }
    assert_int_equal(rtm_registry_count(reg), BIG);
    assert_int_equal(devices_of(reg, "u0"), 0);
    assert_int_equal(devices_of(reg, "wu0"), PER_USER);
    /* Half go by token, half by (uid, device). */
    for (int i = 0; i < BIG; i++) {
        big_names(i, uid, dev, tok);
        char wuid[40];
        snprintf(wuid, sizeof(wuid), "w%s", uid);
        struct rtm_device_ref ref;
        if (i % 2) {
            assert_true(rtm_registry_remove_token(reg, tok, &ref));
            assert_string_equal(ref.uid, wuid);
            assert_string_equal(ref.device, dev);
        } else {
            rtm_registry_remove(reg, wuid, dev);
        }
    }
    assert_int_equal(rtm_registry_count(reg), 0);
    assert_int_equal(devices_of(reg, "wu1"), 0);
    rtm_registry_free(reg);
    print_message("100k devices: %.0f ms\n", (double)(clock() - t0) * 1000.0 / CLOCKS_PER_SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_platform_names),
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_parse_rejects_envelope),
        cmocka_unit_test(test_parse_rejects_provider),
        cmocka_unit_test(test_parse_rejects_platform),
        cmocka_unit_test(test_parse_rejects_token),
        cmocka_unit_test(test_parse_backslash_then_u0000),
        cmocka_unit_test(test_set_update_remove),
        cmocka_unit_test(test_max_devices),
        cmocka_unit_test(test_max_devices_zero),
        cmocka_unit_test(test_token_moves_between_users),
        cmocka_unit_test(test_token_moves_within_user),
        cmocka_unit_test(test_remove_token),
        cmocka_unit_test(test_long_names),
        cmocka_unit_test(test_users_freed_when_empty),
        cmocka_unit_test(test_memory_follows_live_state),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_100k_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
