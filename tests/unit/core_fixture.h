/*
 * The shared fixture of the core's tests (test_core_*.c): they test the
 * whole core (plugin/core/dispatch.c, invite.c, presence.c, users.c) through
 * rtm_core.h only, as the adapter drives it. A recording sink keeps every
 * publish (parsed with cJSON), every log line and every push, and a fake
 * clock (T.now) moves only when a test says so. PROTOCOL.md is the
 * contract.
 *
 * Every test runs between core_setup() and core_teardown(): core_setup()
 * fills T.cfg with the short timeouts below, the test may change it, then
 * boot() creates the core.
 */
#ifndef RTM_TESTS_CORE_FIXTURE_H
#define RTM_TESTS_CORE_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>

#include <cJSON.h>

#include "rtm_config.h"
#include "rtm_core.h"
#include "recorder.h"

#define T0          INT64_C(1764100000000)
#define INVITE_MS   2000
#define RING_MS     4000
#define GRACE_MS    1000
#define REMEMBER_MS 60000 /* max(ring_timeout, 60 s) with RING_MS */

/* --- the recording sink and the fake clock ---------------------------------- */

struct pushed {
    enum rtm_push_kind kind;
    char *call_id, *caller, *callee, *channel;
    char *reason; /* NULL when the push had none */
    int64_t expires_at;
    int64_t now_ms;
    bool has_why; /* a non-empty reason for the log line */
};

struct core_fixture {
    struct rtm_config cfg;
    struct rtm_sink sink;
    struct rtm_core *core;
    int64_t now;
    struct recorder rec; /* the publishes and log lines */
    struct pushed *pushes;
    size_t npushes, pushcap;
    char *out; /* the payload of the last RTM_REPLACE, NUL-terminated */
    cJSON *out_json;
};

extern struct core_fixture T;

/* The push hook: a test installs it with rtm_core_set_push(T.core, rec_push, &T). */
void rec_push(void *ud, const struct rtm_push *push);
/* Forgets every publish, log line and push recorded so far. */
void rec_clear(void);
void out_clear(void);

/* cmocka setup and teardown of every core test. */
int core_setup(void **state);
int core_teardown(void **state);

/* Creates the core once the test has set the configuration it wants. */
void boot(void);

/* --- clients ------------------------------------------------------------------ */

extern const struct rtm_client alice, alice2, bob, bob2, carol, dave, root, anon;
/* A new connection with alice's client id: a takeover. */
extern const struct rtm_client alice_again;

void tick(void);
void tick_at(int64_t t);
void conn(const struct rtm_client *c);
void disc(const struct rtm_client *c);
/* Connects and confirms `c`, then forgets what that published. */
void online(const struct rtm_client *c);
void offline(const struct rtm_client *c);
const char *presence_topic(const char *uid);
struct rtm_core_stats stats(void);

/* --- JSON helpers ----------------------------------------------------------------- */

/* Asserts that `o` has exactly the keys listed (NULL-terminated), no more. */
void assert_keys(const cJSON *o, ...);
void assert_event(const cJSON *j, const char *type, const char *id, const char *caller,
                  const char *callee, const char *by, int64_t ts);

/* --- publishes ---------------------------------------------------------------------- */

size_t count_on(const char *topic);
/* The only publish on `topic`. */
const struct pub *only_on(const char *topic);
size_t count_type(const char *type);
/* The only publish of `type` on `topic`. */
const struct pub *only_type_on(const char *topic, const char *type);
void expect_quiet(void);

/* --- requests ------------------------------------------------------------------------- */

/* Publishes `len` bytes copied into a buffer of exactly that size (no NUL
 * after it, as an MQTT payload), so a read past the end is caught by ASan. */
enum rtm_verdict send_raw(const struct rtm_client *c, const char *topic, const char *payload,
                          size_t len, bool retain);
enum rtm_verdict send_to(const struct rtm_client *c, const char *peer, const char *json);
/* Expects `json` from `c` to `peer`'s inbox to be let through, stamped. */
const cJSON *expect_replace(const struct rtm_client *c, const char *peer, const char *json);
/* An ending was let through: the same event was also published, once, to
 * the sender's own inbox, for every subscriber. */
void expect_own_copy(const struct rtm_client *c);
/* Expects the request to be refused: RTM_DENY, and exactly one publish, an
 * error to the sender's own inbox for the sending session only. `id` and
 * `request` NULL: the error must not carry that field. */
void expect_error_raw(const struct rtm_client *c, const char *topic, const char *payload,
                      size_t len, bool retain, const char *code, const char *id,
                      const char *request);
void expect_error(const struct rtm_client *c, const char *peer, const char *json, const char *code,
                  const char *id, const char *request);
/* The only publish since the last rec_clear() erased `topic`: empty,
 * retained, to every subscriber. Clears the record. */
void expect_erased(const char *topic);
/* The only publish recorded is the error of a refused SPEC 8 publish to
 * `topic`: to c's own inbox, for its session only, naming the topic. */
void expect_topic_error(const struct rtm_client *c, const char *topic, const char *code);
/* A WRITE check of `topic` by `c` (the broker's ACL check before MESSAGE). */
enum rtm_acl write_check(const struct rtm_client *c, const char *topic, const char *payload,
                         bool retain);
/* A READ check: may `c` get this message on `topic`? */
enum rtm_acl read_check(const struct rtm_client *c, const char *topic, const char *payload,
                        bool retain);
/* A failure was published in this tick: once to each inbox, to every
 * subscriber, by the server, at T.now. */
void expect_failure(const char *id, const char *caller, const char *callee, const char *reason);
/* Ticks at every millisecond-exact boundary: nothing at due - 1, the
 * failure at due. */
void expect_failure_at(int64_t due, const char *id, const char *caller, const char *callee,
                       const char *reason);
void expect_presence(const struct pub *p, const char *uid, bool online, int sessions);

#define INVITE(id)       "{\"type\":\"invite\",\"id\":\"" id "\"}"
#define INVITE_T(id, s)  "{\"type\":\"invite\",\"id\":\"" id "\",\"timeout\":" #s "}"
#define ANSWER(type, id) "{\"type\":\"" type "\",\"id\":\"" id "\"}"

#endif
