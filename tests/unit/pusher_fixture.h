/*
 * The shared fixture of the push dispatcher's tests (test_pusher_*.c): they
 * test plugin/push/pusher.c (rtm_pusher.h, SPEC 6.2 and 6.3) as the plugin drives
 * it: a real device registry, the real JPush provider, a recording `submit`
 * that keeps every request (its body parsed with cJSON) and frees it, a
 * `call_pending` the test controls, a recording sink (publishes and log
 * lines) and a fake clock (P.now) that moves only when a test says so.
 *
 * Every test runs between pusher_setup() and pusher_teardown(), and ends by
 * checking that no log line and no publish ever carried the master secret
 * (pusher_teardown fails the test otherwise).
 */
#ifndef RTM_TESTS_PUSHER_FIXTURE_H
#define RTM_TESTS_PUSHER_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>

#include <cJSON.h>

#include "rtm_config.h"
#include "rtm_core.h"
#include "rtm_push.h"
#include "rtm_pusher.h"
#include "rtm_registry.h"
#include "recorder.h"

#define T0       INT64_C(1764100000000)
#define ENDPOINT "https://api.jpush.example"
#define APP_KEY  "7d431e42dfa6a6d693ac2d04"
#define SECRET   "Sup3rS3cretMasterKey9f8e7d"
#define FAR      (T0 + 600000) /* an expires_at no retry schedule reaches */

#define OK_BODY    "{\"sendno\":\"0\",\"msg_id\":\"54043195528445178\"}"
#define ERR_500    "{\"error\":{\"code\":1000,\"message\":\"Server Internal Error\"}}"
#define ERR_AUTH   "{\"error\":{\"code\":1004,\"message\":\"Authen failed\"}}"
#define ERR_APPKEY "{\"error\":{\"code\":1008,\"message\":\"app_key is not a valid appkey\"}}"
#define ERR_1011   "{\"error\":{\"code\":1011,\"message\":\"cannot find user by this audience\"}}"

/* --- the recording sender, sink and call state -------------------------------- */

struct sub {
    uint64_t tag;
    int64_t at; /* the fake clock when it was submitted */
    char *url, *username, *password;
    cJSON *body; /* NULL when the body was not JSON */
};

struct pusher_fixture {
    struct rtm_config cfg;
    struct rtm_push_settings settings;
    struct rtm_sink sink;
    struct rtm_registry *registry;
    struct rtm_pusher *pusher;
    int64_t now;
    bool dry_run; /* boot without a submit function */
    bool full;    /* submit refuses (-1) */
    bool loading; /* boot with the registry still being read back */
    bool pending; /* what call_pending answers */
    size_t pending_asked;
    char pending_last[RTM_ID_MAX + 1];
    char pending_caller[RTM_UID_MAX + 1]; /* the caller of pending_last */
    size_t submit_calls;                  /* including refused ones */
    struct sub *subs;
    size_t nsubs, subcap;
    struct recorder rec; /* the publishes and log lines */
};

extern struct pusher_fixture P;

/* --- setup, teardown and booting --------------------------------------------------- */

/* cmocka setup and teardown of every pusher test: the teardown fails the
 * test when the master secret leaked into a log line or a publish. */
int pusher_setup(void **state);
int pusher_teardown(void **state);

/* Checks the secret before forgetting what was recorded. */
void clear(void);
/* True when no log line and no publish so far carries the master secret. */
bool secret_kept(void);

/* Creates the registry (once) and a new pusher with the jitter `seed`. */
void boot_seed(uint64_t seed);
/* boot_seed(42). */
void boot(void);

/* --- the registry ----------------------------------------------------------------- */

/* Registers `device` of `uid` as an Android JPush device with `token`. */
void reg(const char *uid, const char *device, const char *token);
size_t devices_of(const char *uid);
/* Does `uid` hold a device called `device` with `token`? */
bool has_device(const char *uid, const char *device, const char *token);

/* --- pushes, results, the clock and the counters ----------------------------------- */

/* A call_invite / call_cancel push from alice to `callee`, at P.now. */
void invite(const char *id, const char *callee, int64_t expires_at);
void cancel(const char *id, const char *callee, int64_t expires_at);

/* The provider's answer to request `tag`, at P.now. */
void respond_full(uint64_t tag, long status, const char *body, const char *retry_after,
                  const char *reset);
void respond(uint64_t tag, long status, const char *body);

/* Moves the clock to `t` and ticks the pusher. */
void tick_at(int64_t t);

struct rtm_pusher_stats stats(void);
void expect_stats(size_t jobs, size_t calls, uint64_t sent, uint64_t ok, uint64_t retried,
                  uint64_t failed, uint64_t dropped, uint64_t removed);
/* The counters a full sender moves (what is remembered for a cancel is left
 * open: the header does not say). */
void expect_sender(size_t jobs, uint64_t sent, uint64_t retried, uint64_t dropped);

/* Ticks every millisecond from now+1 until something is submitted or `until`
 * has been ticked; returns the delay from `from`, or -1 when nothing came. */
int64_t tick_until_submitted(int64_t from, int64_t until);

/* --- request bodies ------------------------------------------------------------------ */

/* The member `name` of `obj`, which must be there (a string, for str_field). */
const cJSON *field(const cJSON *obj, const char *name);
const char *str_field(const cJSON *obj, const char *name);
/* The request's audience.registration_id array. */
const cJSON *audience(const struct sub *s);
/* The request's audience is exactly tokens[0..n), in any order, each once. */
void expect_audience(const struct sub *s, const char *const *tokens, size_t n);
/* The request was made for call `id` of kind `rtm` (JPush v3, Basic auth
 * with the app key and the master secret as given, never elsewhere). */
void expect_request(const struct sub *s, const char *rtm, const char *id);
/* The request's options.time_to_live, in seconds. */
int64_t ttl_of(const struct sub *s);

/* --- publishes and log lines --------------------------------------------------------- */

size_t count_topic(const char *topic);
/* The one `pushed` event published since the last clear. */
void expect_pushed(const char *id, const char *callee, size_t devices);
/* An empty retained publish on {prefix}/u/{uid}/devices/{device}. */
void expect_cleared(const char *uid, const char *device);
size_t count_logs_at(enum rtm_log_level level);

#endif
