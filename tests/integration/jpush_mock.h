/*
 * The mock JPush server (tests/mock_jpush/mock_jpush.py) driven from the
 * integration tests: start and stop it, script its answers and read what it
 * recorded over its control API (libcurl, loopback only), and point a
 * broker's plugin at it. Plus the device-registration helpers the registry
 * and push tests share.
 *
 * A started mock is stopped when the test case ends (SIGTERM, then it must
 * exit 0); when the case fails it is killed and the tail of its log (one
 * line per request) is printed after the broker logs.
 */
#ifndef RTM_IT_JPUSH_MOCK_H
#define RTM_IT_JPUSH_MOCK_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "harness.h"

/* The credentials the mock checks unless told otherwise. The secret is
 * distinctive so that tests can grep broker logs for it. */
#define MOCK_APP_KEY       "rtm-it-app-key"
#define MOCK_MASTER_SECRET "rtm-it-Secret-7c1e9d"

struct mock_opts {
    bool tls;                  /* HTTPS with a throwaway CA: DIR/ca.pem */
    const char *app_key;       /* NULL: MOCK_APP_KEY */
    const char *master_secret; /* NULL: MOCK_MASTER_SECRET */
};

struct mock;

/* Starts the mock and waits (15 s) until it listens; fails the test if not. */
struct mock *mock_start(const struct mock_opts *o);
/* SIGTERM and waitpid (5 s); fails unless it exited 0. Done automatically
 * when the case ends; call it to stop earlier. */
void mock_stop(struct mock *m);

int mock_port(const struct mock *m);
/* "http://127.0.0.1:PORT" or "https://..." */
const char *mock_url(const struct mock *m);
/* The CA that signed the HTTPS certificate (only with tls). */
const char *mock_ca_file(const struct mock *m);
const char *mock_app_key(const struct mock *m);
const char *mock_master_secret(const struct mock *m);

/* POST /_mock/behaviour with one behaviour object or a list of them. */
void mock_behaviour(struct mock *m, const char *json);
/* POST /_mock/reset. */
void mock_reset(struct mock *m);
/* Every push request recorded so far (a JSON array, owned by the mock). */
cJSON *mock_requests(struct mock *m);
/* Waits until at least `count` push requests were recorded, or timeout_ms;
 * returns the list either way (check its size). */
cJSON *mock_wait(struct mock *m, int count, int timeout_ms);
/* Prints the recorded requests to stderr (for failure messages). */
void mock_dump(struct mock *m);

/* Waits for `count` recorded requests; fails (dumping them) otherwise. */
cJSON *mock_expect_at(const char *file, int line, struct mock *m, int count, int timeout_ms);
#define MOCK_EXPECT(m, count, ms) mock_expect_at(__FILE__, __LINE__, (m), (count), (ms))

/* plugin_opts that point a broker's plugin at `m` (jpush_endpoint,
 * jpush_app_key, jpush_master_secret, and jpush_ca_file for TLS unless
 * `no_ca`), followed by the NULL-terminated `extra` (may be NULL). The array
 * lives as long as the mock. */
const char *const *mock_plugin_opts(struct mock *m, const char *const *extra);
const char *const *mock_plugin_opts_no_ca(struct mock *m, const char *const *extra);

/* --- reading a recorded request ------------------------------------------ */

/* The value of header `name` (case-insensitive), or NULL. */
const char *rec_header(const cJSON *rec, const char *name);
const cJSON *rec_body(const cJSON *rec);
/* notification.android.extras.rtm / .id of a recorded push ("" if absent). */
const char *rec_kind(const cJSON *rec);
const char *rec_call_id(const cJSON *rec);
/* The record's "elapsed_ms" (mock-monotonic) and "time" (Unix ms). */
long long rec_elapsed_ms(const cJSON *rec);
long long rec_time_ms(const cJSON *rec);
/* How many records in `list` are pushes of `kind` for call `id` (NULL: any). */
int rec_count(const cJSON *list, const char *kind, const char *id);
/* The first such record, or NULL. */
const cJSON *rec_find(const cJSON *list, const char *kind, const char *id);

/* Checks what every push must be (SPEC 6.3): POST /v3/push, Basic auth with
 * the mock's credentials, Content-Type application/json, platform "all",
 * extras rtm = kind and id = `id`, audience.registration_id exactly the
 * NULL-terminated tokens (in any order). Fails, printing the record. */
void rec_check_push(const char *file, int line, const struct mock *m, const cJSON *rec,
                    const char *kind, const char *id, ...) __attribute__((sentinel));
#define CHECK_PUSH(m, rec, kind, id, ...)                                                          \
    rec_check_push(__FILE__, __LINE__, (m), (rec), (kind), (id), __VA_ARGS__, (char *)NULL)

/* --- devices ------------------------------------------------------------- */

/* The device topic of uid. */
const char *device_topic(const char *uid, const char *device);
/* The registration payload. */
const char *device_json(const char *platform, const char *token);
/* Publishes a registration, retained at QoS 1, and fails unless the broker
 * accepted it (MQTT 5 clients: reason code < 0x80). */
void device_register(struct client *c, const char *uid, const char *device, const char *platform,
                     const char *token);
/* Publishes the empty retained payload that unregisters a device. */
void device_unregister(struct client *c, const char *uid, const char *device);
/* Waits until `obs` (subscribed to rtm/presence/{uid}) sees uid offline. */
void wait_offline(struct client *obs, const char *uid);
/* Opens an MQTT 5 client (uid = client id unless username). */
struct client *open5(const struct broker *b, const char *id, const char *username);

/* Publishes on a new topic outside the prefix that only `c` listens to
 * (it/flush/{client id}/...) and waits for it: everything the broker queued for
 * `c` before (retained messages of an earlier SUBSCRIBE, earlier publishes)
 * has then been received. Needs other_topics allow (the harness default). */
void client_flush(struct client *c);

/* Fails if the broker log holds `secret` anywhere. */
void expect_secret_not_logged(const struct broker *b, const char *secret);

#endif
