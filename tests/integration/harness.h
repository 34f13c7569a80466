/*
 * Integration test harness: a real /usr/sbin/mosquitto with the built plugin
 * on a free 127.0.0.1 port, real MQTT clients through libmosquitto, and a raw
 * MQTT 3.1.1 socket client for abrupt drops and silent keepalive timeouts.
 *
 * Every test case runs in its own forked process (run_tests), so a failing
 * assertion ends only that case: it prints why, prints the broker logs, kills
 * its brokers and exits non-zero. Nothing here sleeps and hopes: every wait is
 * for an event, bounded by a deadline on CLOCK_MONOTONIC.
 */
#ifndef RTM_IT_HARNESS_H
#define RTM_IT_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* --- failing ------------------------------------------------------------- */

/* Prints the failure, the logs of every running broker, kills them and exits
 * the test case. Call it from the test's own thread only. */
_Noreturn void rt_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define FAIL(...) rt_fail(__FILE__, __LINE__, __VA_ARGS__)
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            rt_fail(__FILE__, __LINE__, "check failed: %s", #cond);                                \
    } while (0)
#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            rt_fail(__FILE__, __LINE__, __VA_ARGS__);                                              \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            rt_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, a_, #b, b_);        \
    } while (0)

/* Field assertions on a received JSON object; on failure the whole object is
 * printed. */
void rt_expect_str(const char *file, int line, const cJSON *obj, const char *key,
                   const char *expected);
void rt_expect_bool(const char *file, int line, const cJSON *obj, const char *key, bool expected);
void rt_expect_int(const char *file, int line, const cJSON *obj, const char *key,
                   long long expected);
void rt_expect_absent(const char *file, int line, const cJSON *obj, const char *key);
long long rt_get_int(const char *file, int line, const cJSON *obj, const char *key);
/* Checks that obj's "ts" is the server's time now (within 10 s of this
 * machine's clock, in ms since the epoch). */
void rt_expect_ts_now(const char *file, int line, const cJSON *obj);
/* Checks that `obj` has exactly the listed keys (NULL-terminated), no more. */
void rt_expect_keys(const char *file, int line, const cJSON *obj, ...) __attribute__((sentinel));

#define EXPECT_STR(o, k, v)  rt_expect_str(__FILE__, __LINE__, (o), (k), (v))
#define EXPECT_BOOL(o, k, v) rt_expect_bool(__FILE__, __LINE__, (o), (k), (v))
#define EXPECT_INT(o, k, v)  rt_expect_int(__FILE__, __LINE__, (o), (k), (v))
#define EXPECT_ABSENT(o, k)  rt_expect_absent(__FILE__, __LINE__, (o), (k))
#define GET_INT(o, k)        rt_get_int(__FILE__, __LINE__, (o), (k))
#define EXPECT_KEYS(o, ...)  rt_expect_keys(__FILE__, __LINE__, (o), __VA_ARGS__, (char *)NULL)

/* --- time ------------------------------------------------------------------ */

int64_t now_mono_ms(void);
int64_t now_wall_ms(void);
/* Lets a documented deadline pass (e.g. to show an id is still remembered
 * after ring_timeout), or paces a poll loop bounded by a deadline. Never use
 * it alone to wait for an event: wait for the event. */
void rt_wait_ms(int ms);

/* --- valgrind ---------------------------------------------------------------
 * RTM_VALGRIND=1 (`bash tools/test.sh --valgrind`) starts every broker under
 * valgrind memcheck (a value starting with '/' names the valgrind binary; ""
 * or "0" is off). Its report goes to valgrind-<pid>.log in the broker's temp
 * dir, with tests/integration/valgrind.supp; once the broker has exited
 * (broker_stop, broker_kill9, broker_start_refused) the harness fails the test
 * on any error or leak (definitely, indirectly or possibly lost) with a stack
 * frame in the plugin (mosquitto_rtm.so, plugin/, include/), printing it.
 * Records wholly inside Mosquitto or libc (2.0.11 leaks its configuration when
 * start-up fails, for one) are only counted. Not with RTM_PRELOAD (ASan). */
bool rt_valgrind(void);
/* 1, or under valgrind RTM_TIME_SCALE (default 5): the broker is much slower
 * there, so WAIT_MS, TIMER_WAIT_MS, QUIET_MS, the broker's start and stop
 * waits and the per-case deadline are multiplied by it. rt_wait_ms is not:
 * what it lets pass is a plugin setting's deadline. */
int rt_time_scale(void);
/* The tolerance of a timing assertion (how late an event may come, how long a
 * round trip may take): `ms`, times rt_time_scale() under valgrind, whose
 * slower broker would otherwise fail it for no fault of the plugin. Only for
 * lateness bounds; not for lower bounds, nor for bounds tied to a plugin
 * setting (they would stop meaning anything). */
int rt_slack_ms(int ms);

/* Starts `path` with `argv` and `envp`, its stdout and stderr appended to
 * `log_path`; the child dies with the test process. Fails the test if it
 * cannot. */
pid_t rt_spawn_logged(const char *path, char *const argv[], char *const envp[],
                      const char *log_path);

/* --- broker --------------------------------------------------------------- */

/* The broker binary every test starts (and test_wills' plugin-less one):
 * RTM_BROKER when set (`tools/test.sh --broker`, which picks another broker
 * without rebuilding anything), else MOSQUITTO_BIN (ctest sets it from
 * CMake's MOSQUITTO_BIN), else /usr/sbin/mosquitto. */
const char *rt_broker_bin(void);
/* Prints which broker the tests run on and its version (`mosquitto -h`);
 * run_tests calls it once per test program. False, with the reason printed,
 * when the binary cannot be run. */
bool rt_print_broker(void);
/* Is that broker at least version major.minor? Fails the test when its
 * version cannot be read. */
bool rt_broker_at_least(int major, int minor);

struct broker;

struct broker_opts {
    /* "name value" pairs written as `plugin_opt_name value`; NULL-terminated.
     * `other_topics allow` is written first unless other_topics_default. */
    const char *const *plugin_opts;
    /* Raw mosquitto.conf lines; NULL-terminated. `@DIR@` is replaced by the
     * broker's temp dir (e.g. "password_file @DIR@/passwd"). They come after
     * every line of the plugin's, so a `plugin` line here, and the
     * `plugin_opt_` lines after it, load another plugin after this one. */
    const char *const *extra_lines;
    /* "user:pass" entries: a password file is made with mosquitto_passwd and
     * `password_file` added to the config. NULL: none. */
    const char *const *passwd_users;
    /* Leave plugin_opt_other_topics at its default (defer). */
    bool other_topics_default;
    /* plugin_opt_registry_listener. NULL: not written, so the plugin's
     * default (auto: the broker's own listeners) is what every test runs
     * with. Not written either when plugin_opts sets registry_listener. */
    const char *registry_listener;
    /* Lines written in place of the default `listener <port> 127.0.0.1`
     * (with their cafile/certfile/... lines), NULL-terminated: `@PORT@` is
     * the broker's port (the one clients use and the start-up probe waits
     * for), `@PORT2@` a second free port (b->port2), `@DIR@` as below. */
    const char *const *listeners;
    /* The address clients connect to and the probe tries: NULL 127.0.0.1
     * (e.g. "::1" for an IPv6-only listener). */
    const char *host;
    /* Files written into the broker's temp dir before it first starts:
     * name, content, name, content, ..., NULL (e.g. {"acl", "user alice\n",
     * NULL} with the extra line "acl_file @DIR@/acl"). */
    const char *const *files;
    /* Called once before the broker first starts, after `passwd_users` and
     * `files` are written: for files a tool must make in b->dir (e.g.
     * mosquitto_ctrl dynsec init). It fails the test itself when it cannot. */
    void (*prepare)(const struct broker *b, void *ud);
    void *prepare_ud;
};

struct broker {
    int pid;
    int port;
    int port2;     /* broker_opts.listeners' @PORT2@ */
    char host[48]; /* broker_opts.host */
    char dir[256];
    char conf_path[300];
    char log_path[300];
    /* Under valgrind: the running (or last) broker's valgrind log; "" else. */
    char valgrind_log[320];
};

/* Starts a broker and waits until it accepts TCP connections with the plugin
 * loaded; fails the test (printing the log) otherwise. */
struct broker *broker_start(const struct broker_opts *opts);
/* Starts a broker whose configuration must stop it during start-up (e.g. a
 * bad plugin option): fails the test if it starts. Its log stays readable;
 * free it with broker_free. */
struct broker *broker_start_refused(const struct broker_opts *opts);
/* SIGTERM, waits up to 10 s (x rt_time_scale()), then checks the broker
 * exited cleanly, its log holds no sanitizer report and its valgrind log
 * nothing through the plugin. The struct stays valid for broker_restart. */
void broker_stop(struct broker *b);
/* SIGKILL (no chance to save or clean up). */
void broker_kill9(struct broker *b);
/* Starts the broker again on the same port, dir and config (log appended). */
void broker_restart(struct broker *b);
/* broker_stop if running, then frees; removes the temp dir. */
void broker_free(struct broker *b);
/* SIGSTOP, then waits until the kernel shows the broker stopped: kill()
 * only queues the signal, and a broker still running would handle what the
 * test writes next in a loop iteration of its own. SIGCONT resumes it. */
void broker_freeze(const struct broker *b);
void broker_thaw(const struct broker *b);

/* The log's current length: a mark to search from. */
long broker_log_mark(const struct broker *b);
bool broker_log_contains(const struct broker *b, long from, const char *needle);
/* Waits for `needle` to appear in the log after `from`. */
bool broker_wait_log(const struct broker *b, long from, const char *needle, int timeout_ms);
/* Counts the log lines after `from` that contain every one of the
 * NULL-terminated needles. */
int broker_log_lines(const struct broker *b, long from, ...) __attribute__((sentinel));
/* Waits for a log line after `from` that contains every needle. */
bool broker_wait_log_line(const struct broker *b, long from, int timeout_ms, ...)
    __attribute__((sentinel));

/* A TCP port on 127.0.0.1 that nothing listens on right now. */
int rt_free_port(void);

/* The path of `name` in the broker's temp dir. */
const char *broker_dir_file(const struct broker *b, const char *name);

/* --- libmosquitto client ------------------------------------------------- */

struct client_opts {
    const char *client_id; /* required */
    const char *username;  /* optional */
    const char *password;  /* optional */
    int protocol;          /* 4 = MQTT 3.1.1 (default), 5 = MQTT 5 */
    bool persistent;       /* clean session false / clean start false + expiry */
    int keepalive;         /* seconds; 0 = 60 */
};

struct msg {
    char *topic;
    char *payload; /* NUL-terminated copy */
    int len;
    int qos;
    bool retain;
    bool consumed;
    int64_t at_ms; /* monotonic receive time */
    cJSON *json;   /* NULL when the payload is not JSON */
    struct msg *next;
};

struct client;

struct client *client_new(const struct broker *b, const struct client_opts *o);
/* TCP connect, then waits for CONNACK (5 s). Returns the CONNACK code
 * (0 = accepted; MQTT 5: the reason code), or -1 when none came. A refused
 * client does not retry. */
int client_connect(struct client *c);
/* Monotonic time the CONNACK arrived. */
int64_t client_connack_at(const struct client *c);
/* Subscribes and waits for SUBACK: the granted QoS (0-2) or the failure code
 * (0x80 for MQTT 3.1.1, 0x87 etc. for MQTT 5); -1 when no SUBACK came. */
int client_subscribe(struct client *c, const char *filter, int qos);
/* Publishes. QoS 0: 0 once handed to the library. QoS >= 1: waits for the
 * PUBACK/PUBCOMP (or failing PUBREC) and returns its reason code (always 0
 * for MQTT 3.1.1); -1 on timeout or local error. */
int client_publish(struct client *c, const char *topic, const void *payload, int len, int qos,
                   bool retain);
int client_publish_str(struct client *c, const char *topic, const char *payload, int qos);
/* Sends DISCONNECT and stops the network thread. */
void client_disconnect(struct client *c);
/* True once the broker closed the connection (or we disconnected). */
bool client_wait_disconnected(struct client *c, int timeout_ms);
/* Stops everything (abruptly if still connected) and frees. */
void client_free(struct client *c);
const char *client_id(const struct client *c);

/* Waits for the first not yet consumed message on `topic` (NULL: any topic)
 * whose JSON has every listed field equal to the given text (string fields
 * compare as strings, booleans as "true"/"false", numbers as decimal
 * integers); marks it consumed and returns its JSON (owned by the client), or
 * NULL on timeout. The list is key, value, ..., NULL. */
cJSON *client_wait_json(struct client *c, const char *topic, int timeout_ms, ...)
    __attribute__((sentinel));
/* Same, returning the whole message (for its receive time, retain flag...). */
struct msg *client_wait_fields(struct client *c, const char *topic, int timeout_ms, ...)
    __attribute__((sentinel));
/* Same, any payload, no field filter. */
struct msg *client_wait_msg(struct client *c, const char *topic, int timeout_ms);
/* Counts received messages on `topic` matching the fields, consumed or not. */
int client_count(struct client *c, const char *topic, ...) __attribute__((sentinel));
/* Marks every not yet consumed match consumed (e.g. allowed duplicates);
 * returns how many. */
int client_consume_all(struct client *c, const char *topic, ...) __attribute__((sentinel));
/* Counts not yet consumed messages on `topic` (NULL: any). */
int client_count_unconsumed(struct client *c, const char *topic);
/* Calls fn for every received message on `topic` (NULL: any), in order. */
void client_foreach(struct client *c, const char *topic, void (*fn)(const struct msg *m, void *ud),
                    void *ud);
/* Prints every received message to stderr (for failure messages). */
void client_dump(struct client *c);

/* Convenience: new + connect (must be accepted) [+ subscribe to the inbox]. */
struct client *client_open(const struct broker *b, const char *client_id, const char *username);
struct client *client_open_v(const struct broker *b, const struct client_opts *o);
/* Opens and subscribes at QoS 1 to `{prefix}/u/{uid}/call` (uid = username,
 * else client id). */
struct client *client_open_inbox(const struct broker *b, const char *client_id,
                                 const char *username);

/* --- raw MQTT 3.1.1 socket client ---------------------------------------- */

struct raw;
/* Connects and waits for CONNACK (5 s); *connack_rc gets its return code
 * (-1 when none came). Never sends PINGREQ by itself. */
struct raw *raw_connect(int port, const char *client_id, const char *username, const char *password,
                        int keepalive, bool clean, int *connack_rc);
/* raw_connect in steps, for a test that must time them against the
 * broker's loop: the TCP connection, the CONNECT packet, and the wait for
 * CONNACK (its return code, or -1). */
struct raw *raw_open(int port);
void raw_send_connect(struct raw *r, const char *client_id, const char *username,
                      const char *password, int keepalive, bool clean);
int raw_connack(struct raw *r, int timeout_ms);
/* The client side's port, as the broker's log names the connection. */
int raw_local_port(const struct raw *r);
/* Publishes at QoS 0. */
void raw_publish0(struct raw *r, const char *topic, const char *payload);
/* Waits for the next PUBLISH (acknowledging QoS 1): its payload, and its
 * topic in *topic, both living until the test case ends; NULL on timeout or
 * close. Other packets are skipped. */
const char *raw_next_publish(struct raw *r, const char **topic, int timeout_ms);
/* True once the broker closed the socket. */
bool raw_wait_closed(struct raw *r, int timeout_ms);
/* Closes the socket without DISCONNECT (an abrupt drop) and frees. */
void raw_drop(struct raw *r);

/* --- real clients with a Will -------------------------------------------- */

struct rt_will {
    const char *client_id;
    const char *username; /* optional */
    int protocol;         /* 4 = MQTT 3.1.1, 5 = MQTT 5 */
    const char *topic;
    const char *payload;
    bool retain;
    int delay_s; /* MQTT 5 will delay interval; 0: none */
};

/* Starts mosquitto_sub (MOSQUITTO_SUB, default /usr/bin/mosquitto_sub) with
 * the Will at QoS 1, and waits until the broker has logged it in and its
 * subscription. Returns its pid; it dies with the test. */
pid_t rt_will_client_start(const struct broker *b, const struct rt_will *w);
/* SIGKILLs it (the broker sees the socket close, no DISCONNECT) and waits
 * for the plugin's log line refusing its Will. */
void rt_will_client_kill(const struct broker *b, pid_t pid, const struct rt_will *w);

/* --- test runner ---------------------------------------------------------- */

/* Runs fn(ud, failed) when the test case ends: with failed false after the
 * case returned and its brokers were stopped (latest registered first), or
 * with failed true from rt_fail, after the broker logs were printed (then it
 * must only kill processes and print what helps; it must not fail again). */
void rt_at_end(void (*fn)(void *ud, bool failed), void *ud);

struct test_case {
    const char *name;
    void (*fn)(void);
};

/* Runs each case (or only those named on the command line) in its own
 * process with a per-case deadline; returns the exit status for main. */
int run_tests(const struct test_case *cases, size_t count, int argc, char **argv);

/* Small helpers for tests. */
/* printf into a string that lives until the test case ends. */
const char *rt_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A unique id for invitations: prefix + pid + counter. */
const char *rt_uniq(const char *prefix);
/* Publishes the JSON text and fails the test unless the library accepted it. */
void rt_send(struct client *c, const char *topic, const char *json);
/* The login token `rtm-token` (RTM_TOKEN_TOOL) mints with `secret` for
 * `uid`, expiring at `expiry_s` (0: an hour from now). */
const char *rt_mint_token(const char *secret, const char *uid, long long expiry_s);
/* Inbox topic of a uid. */
const char *inbox(const char *uid);
/* --- call protocol helpers -------------------------------------------------- */

/* Waits (WAIT_MS) on uid's inbox for the event of `type` and `id`; fails the
 * test (dumping what `c` received) when it does not come. */
cJSON *rt_expect_event_at(const char *file, int line, struct client *c, const char *uid,
                          const char *type, const char *id, int timeout_ms);
/* Checks the stamp every delivered call event carries; ts must be within 10 s
 * of our wall clock. */
void rt_check_stamp(const char *file, int line, const cJSON *ev, const char *type, const char *id,
                    const char *caller, const char *callee, const char *by);
/* Waits for an `error` with `code` on uid's inbox and checks its fields:
 * `id`/`request` must equal the given values, be absent when NULL, and are
 * not checked when "*". */
cJSON *rt_expect_error_at(const char *file, int line, struct client *c, const char *uid,
                          const char *code, const char *id, const char *request);
/* Fails (dumping) when `c` holds any message on `topic` (NULL: any) that no
 * wait has consumed. Call it after a sentinel arrived. */
void rt_expect_nothing_else_at(const char *file, int line, struct client *c, const char *topic);

#define EXPECT_EVENT(c, uid, type, id)                                                             \
    rt_expect_event_at(__FILE__, __LINE__, (c), (uid), (type), (id), WAIT_MS)
/* For events a timer causes: they come at their due time, which may be
 * seconds away, and a loaded machine may add more. */
#define EXPECT_TIMER_EVENT(c, uid, type, id)                                                       \
    rt_expect_event_at(__FILE__, __LINE__, (c), (uid), (type), (id), TIMER_WAIT_MS)
#define CHECK_STAMP(ev, type, id, caller, callee, by)                                              \
    rt_check_stamp(__FILE__, __LINE__, (ev), (type), (id), (caller), (callee), (by))
#define EXPECT_ERROR(c, uid, code, id, request)                                                    \
    rt_expect_error_at(__FILE__, __LINE__, (c), (uid), (code), (id), (request))
/* The error of a refused SPEC 8 publish: it names the refused topic. */
cJSON *rt_expect_topic_error_at(const char *file, int line, struct client *c, const char *uid,
                                const char *code, const char *topic);
#define EXPECT_TOPIC_ERROR(c, uid, code, topic)                                                    \
    rt_expect_topic_error_at(__FILE__, __LINE__, (c), (uid), (code), (topic))
#define EXPECT_NOTHING_ELSE(c, topic) rt_expect_nothing_else_at(__FILE__, __LINE__, (c), (topic))

/* Default wait for things that should happen "at once". */
#define WAIT_MS (3000 * rt_time_scale())
/* Wait for a timer's event; how late timers fire is asserted in test_call_timers. */
#define TIMER_WAIT_MS (15000 * rt_time_scale())
/* Window after a sentinel in which an unwanted message would have shown. */
#define QUIET_MS (300 * rt_time_scale())

#endif
