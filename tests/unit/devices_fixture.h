/*
 * The shared fixture of the device registration tests (test_devices_*.c):
 * they test device registration (plugin/features/devices.c, SPEC 6.1) and the core's
 * push hook (SPEC 6.2) through rtm_core.h only: registrations are published
 * with rtm_core_message on {prefix}/u/{uid}/devices/{device}, the registry is
 * read back with rtm_core_registry, and a recording push function stands in
 * for the dispatcher. A recording sink keeps every publish and log line; the
 * clock (T.now) is fake.
 *
 * Every test runs between devices_setup() and devices_teardown():
 * devices_setup() fills T.cfg with the defaults and admin_users root, the
 * test may change it, then boot() creates the core.
 */
#ifndef RTM_TESTS_DEVICES_FIXTURE_H
#define RTM_TESTS_DEVICES_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>

#include <cJSON.h>

#include "rtm_config.h"
#include "rtm_core.h"
#include "rtm_registry.h"
#include "recorder.h"

#define T0 INT64_C(1764100000000)

/* --- the recording sink, push function and fake clock -------------------------- */

struct pushed {
    enum rtm_push_kind kind;
    char *call_id, *caller, *callee, *channel, *why;
    char *reason; /* NULL when the push had none */
    int64_t expires_at;
    int64_t now_ms;
};

struct devices_fixture {
    struct rtm_config cfg;
    struct rtm_sink sink;
    struct rtm_core *core;
    int64_t now;
    struct recorder rec; /* the publishes and log lines */
    struct pushed *pushes;
    size_t npushes, pushcap;
    char *out; /* the payload of the last RTM_REPLACE */
    size_t out_len;
};

extern struct devices_fixture T;

/* Forgets every publish, log line and push recorded so far. */
void rec_clear(void);

/* cmocka setup and teardown of every device test. */
int devices_setup(void **state);
int devices_teardown(void **state);

/* Creates the core once the test has set the configuration it wants. */
void boot(void);

/* --- clients ------------------------------------------------------------------------ */

/* Each client's handle is its own address, as a test's own clients' must
 * be (recorder.h). */
extern const struct rtm_client alice, bob, carol, root, anon;

/* Moves the clock to `t` and ticks the core. */
void tick_at(int64_t t);
/* Connects and confirms `c`, then forgets what that published. */
void online(const struct rtm_client *c);
/* Disconnects `c`, then forgets what that published. */
void offline(const struct rtm_client *c);
/* {prefix}/u/{uid}/devices/{device}, and {prefix}/u/{uid}/call (each in
 * one of four rotating buffers). */
const char *dev_topic(const char *uid, const char *device);

/* --- JSON ------------------------------------------------------------------------------ */

/* The string member `key` of `o`, which must be there. */

/* --- publishing ------------------------------------------------------------------------ */

/* Publishes `len` bytes copied into a buffer of exactly that size (no NUL
 * after it, as an MQTT payload), so a read past the end is caught by ASan.
 * A replaced payload is kept in T.out. */
enum rtm_verdict send_raw(const struct rtm_client *c, const char *topic, const char *payload,
                          size_t len, bool retain);
/* send_raw of a NUL-terminated payload on dev_topic(uid, device). */
enum rtm_verdict send_dev(const struct rtm_client *c, const char *uid, const char *device,
                          const char *payload, bool retain);

/* A registration payload in its normalized form (the field order the core
 * writes back). */
#define REG(platform, token)                                                                       \
    "{\"provider\":\"jpush\",\"platform\":\"" platform "\",\"token\":\"" token "\"}"

/* A registration accepted: replaced by exactly the normalized form, and
 * nothing published. */
void expect_registered(const struct rtm_client *c, const char *uid, const char *device,
                       const char *payload, const char *normalized);
/* A registration refused: RTM_DENY and one error to the sender's own inbox,
 * for the sending session only, naming the device. */
void expect_refused_raw(const struct rtm_client *c, const char *uid, const char *device,
                        const char *payload, size_t len, bool retain);
void expect_refused(const struct rtm_client *c, const char *uid, const char *device,
                    const char *payload, bool retain);
/* The same, with the error code `code` instead of bad_request. */
void expect_refused_code(const struct rtm_client *c, const char *uid, const char *device,
                         const char *payload, size_t len, bool retain, const char *code);

/* --- the registry --------------------------------------------------------------------- */

size_t devices_of(const char *uid);
/* `uid` has `device` with `token` on `platform`. */
void expect_device(const char *uid, const char *device, enum rtm_platform platform,
                   const char *token);
bool has_device(const char *uid, const char *device);

#endif
