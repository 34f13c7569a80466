/*
 * rtm-loadgen: the benchmark load generator (bench/README in BENCHMARKS.md).
 *
 * One thread, one epoll loop, many libmosquitto clients driven with
 * mosquitto_loop_read/_write (no library threads), all on 127.0.0.1. Each
 * mode (lifecycle, unrelated, scale, presence, push) measures the broker with
 * the plugin against a baseline in the same process and prints result rows:
 *
 *   ROW <tab> key <tab> measurement <tab> unit <tab> plugin <tab> baseline
 *       <tab> ratio <tab> target <tab> result
 *
 * plus "#"-prefixed detail lines (every repetition) that bench/run.sh keeps
 * in its log. Numbers that cannot be measured are printed as "n/a".
 */
#ifndef RTM_LG_H
#define RTM_LG_H

#include <math.h>
#include <mosquitto.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_HOST "127.0.0.1"
#define LG_NS   1000000000LL
#define LG_MS   1000000LL

/* --- time, samples, /proc (lg_util.c) --------------------------------------------- */

int64_t lg_now_ns(void);  /* CLOCK_MONOTONIC */
int64_t lg_wall_ms(void); /* CLOCK_REALTIME, ms since the epoch */

/* A growable list of int64 samples (latencies in ns, ...). */
struct lg_samples {
    int64_t *v;
    size_t n;
    size_t cap;
};

void lg_samples_add(struct lg_samples *s, int64_t v);
void lg_samples_clear(struct lg_samples *s);
void lg_samples_free(struct lg_samples *s);
/* Nearest-rank percentile (sorts the samples); -1 when empty. */
int64_t lg_pct(struct lg_samples *s, double pct);
/* The same as a double, NaN when there are no samples (no result, never a pass). */
double lg_pct_ns(struct lg_samples *s, double pct);
/* Median of n doubles (sorts them); NaN when n == 0. */
double lg_median(double *v, size_t n);

/* VmRSS of `pid` in kB, or -1. */
long lg_rss_kb(int pid);
/* On-CPU time of the main thread of `pid` (0: this process), in ns, from
 * /proc/<pid>/schedstat; -1 when unreadable. */
int64_t lg_cpu_ns(int pid);

/* Involuntary context switches of the main thread of `pid` (0: this
 * process): how often something else took its CPU; -1 when unreadable. */
long lg_preempted(int pid);
/* On-CPU time of every thread of `pid` but the main one, in ns (the plugin's
 * HTTP worker and registry loader threads); -1 when unreadable. */
int64_t lg_threads_cpu_ns(int pid);
/* On-CPU time of the whole process `pid` (every thread, live or gone), in
 * ns, from /proc/<pid>/stat; -1 when unreadable. */
int64_t lg_proc_cpu_ns(int pid);
/* TcpExt ListenOverflows from /proc/net/netstat (this network namespace):
 * connections dropped because a listen queue was full; -1 when unreadable. */
long long lg_listen_overflows(void);
/* Finds "key": in a JSON payload (flat, as the plugin writes it) and returns
 * the start of its value (after an opening quote for strings) and its length
 * in *len; NULL when absent. */
const char *lg_field(const char *json, size_t json_len, const char *key, size_t *len);
/* The value of "key" as an integer (a quoted value may start with digits);
 * `dflt` when absent. */
long long lg_field_ll(const char *json, size_t json_len, const char *key, long long dflt);
/* Writes `n` as exactly 19 zero-padded digits (no NUL). */
void lg_put19(char *out, long long n);

/* --- results (lg_util.c) ------------------------------------------------------------- */

#define LG_NONE_BASE (-INFINITY) /* a row without a baseline: "-" */

/* Prints one result row. `plugin` and `baseline` are shown with `digits`
 * decimals (NaN: "n/a"); `ratio` NaN is computed as plugin / baseline.
 * `target` is NULL (none) or "<op> <limit><unit>" with op one of >=, <=, <:
 * a limit ending in "x" applies to the ratio ("<= 1.1x"), any other to the
 * plugin's value ("<= 256 B", "< 1000 us"). The result is pass, miss, or
 * n/a when the value is not a number. */
void lg_row(const char *key, const char *what, const char *unit, int digits, double plugin,
            double baseline, double ratio, const char *target);
/* "#"-prefixed detail line to stdout (kept in the log, not in the table). */
void lg_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints to stderr and exits 1. */
_Noreturn void lg_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- options (lg_main.c) ------------------------------------------------------------ */

struct lg_broker {
    int port;
    int pid; /* 0 when not given: no RSS or CPU numbers */
};

struct lg_opts {
    struct lg_broker plain;
    struct lg_broker rtm;
    struct lg_broker control; /* unrelated: a second broker without the plugin (A/A) */
    int mock_port;
    int mock_pid;
    int reps;
    double seconds; /* measured window of one repetition */
    double warmup;  /* discarded start of each repetition */
    double load;    /* offered load for latency, as a fraction of baseline capacity */
    double rate;    /* fixed offered rate (msg/s or invites/s) where a mode needs one */
    long count;     /* invitations, connections... */
    int pairs;      /* lifecycle pairs, unrelated streams, scale callers */
    int window;     /* closed-loop window per pair or stream */
    int users;      /* idle online users (unrelated) */
    long pending;   /* pending invitations in the background (unrelated) */
    double idle;    /* scale: seconds of nothing due before timers fire */
    int spread;     /* scale: timeout groups, so timers fire at rate / spread */
    int delay_ms;   /* push: the mock's answer delay */
    double drive;   /* rtm: seconds of joins and leaves for the count coalescing rows */
};

int lg_lifecycle(const struct lg_opts *o);
int lg_unrelated(const struct lg_opts *o);
int lg_scale(const struct lg_opts *o);
int lg_presence(const struct lg_opts *o);
int lg_push(const struct lg_opts *o);
int lg_stalls(const struct lg_opts *o);
int lg_rtm(const struct lg_opts *o);
int lg_rtm_memory(const struct lg_opts *o);

/* --- connections and the loop (lg_net.c) --------------------------------------------- */

/* What the epoll set points at: the first member of every connection. */
struct lg_io {
    void (*on_event)(struct lg_io *io, uint32_t events);
};

/* Registers (or changes, or removes) a socket in the loop's epoll set. */
bool lg_io_add(struct lg_io *io, int fd, uint32_t events);
bool lg_io_mod(struct lg_io *io, int fd, uint32_t events);
void lg_io_del(int fd);

struct lg_conn;
typedef void (*lg_msg_fn)(struct lg_conn *c, const struct mosquitto_message *m, int64_t now);

struct lg_conn {
    struct lg_io io;
    struct mosquitto *mosq;
    int fd;
    bool want_out; /* EPOLLOUT registered */
    bool up;       /* CONNACK accepted */
    bool down;     /* closed, refused or lost */
    int connack_rc;
    int subs;       /* SUBACKs still due */
    uint64_t acks;  /* QoS 1 PUBACKs received */
    uint64_t sent;  /* QoS 1 publishes sent */
    uint64_t recvd; /* messages received */
    int64_t connack_ns;
    lg_msg_fn on_msg;
    void *ud;
    int idx;
};

void lg_net_init(void);
/* Starts a non-blocking connect; CONNACK arrives through lg_poll. */
bool lg_open(struct lg_conn *c, int port, const char *client_id, lg_msg_fn fn, void *ud, int idx);
/* Waits for events for up to timeout_ms (or _us) and handles them all. */
void lg_poll(int timeout_ms);
void lg_poll_us(int64_t timeout_us);
/* Opens n connections named "<prefix><i>", at most `pending` connecting at
 * once, and waits for every CONNACK; returns how many are up. */
size_t lg_open_many(struct lg_conn *cs, size_t n, int port, const char *prefix, lg_msg_fn fn,
                    void *ud, int pending, int timeout_ms);
/* Subscribes every connection to the filter made from `fmt` and its uid
 * ("%s" = "<prefix><i>"), and waits for the SUBACKs. */
bool lg_subscribe_all(struct lg_conn *cs, size_t n, const char *prefix, const char *fmt, int qos,
                      int timeout_ms);
bool lg_subscribe(struct lg_conn *c, const char *filter, int qos);
bool lg_wait_subs(struct lg_conn *cs, size_t n, int timeout_ms);
bool lg_publish(struct lg_conn *c, const char *topic, const void *payload, int len, int qos,
                bool retain);
/* Waits until every QoS 1 publish of the connections is acknowledged. */
bool lg_wait_acks(struct lg_conn *cs, size_t n, int timeout_ms);
/* Polls for `ms` milliseconds. */
void lg_pump(int ms);
/* Sends DISCONNECT (closes the socket); lg_free destroys the client. */
void lg_close(struct lg_conn *c);
void lg_free(struct lg_conn *c);
void lg_free_all(struct lg_conn *cs, size_t n);
/* Keepalive for long phases: mosquitto_loop_misc on each. */
void lg_misc(struct lg_conn *cs, size_t n);

/* --- raw MQTT 3.1.1 connections (lg_raw.c) -------------------------------------------
 * For thousands of connections that only connect and disconnect: one fd
 * each, where a libmosquitto client holds three (its socket and a
 * socketpair), which a 20,000 fd limit cannot fit 10,000 times. */

struct lg_raw {
    struct lg_io io;
    int fd;
    bool sent; /* CONNECT written */
    bool up;   /* CONNACK 0 received */
    bool down; /* refused, failed or closed */
    int got;   /* CONNACK bytes read */
    int64_t connack_ns;
    char id[40];
};

/* Opens n connections "<prefix><i>" (at most `pending` waiting for their
 * CONNACK at once) and waits for them; returns how many are up. */
size_t lg_raw_open_many(struct lg_raw *rs, size_t n, int port, const char *prefix, int pending,
                        int timeout_ms);
/* Sends DISCONNECT on every connection that is up and closes them all. */
void lg_raw_close_all(struct lg_raw *rs, size_t n);

/* --- the plugin's $SYS/broker/rtm/stats (lg_sys.c) ----------------------------------- */

struct lg_stat {
    int64_t at_ns; /* when received */
    long long ts;  /* the report's ts (ms since the epoch) */
    long long users, sessions, calls_live, timers, devices, heap_bytes;
    /* -1 when the plugin does not report them (SPEC 8.5 fields came later). */
    long long pool_bytes, rss_bytes, channels, memberships, attributes;
    /* TICK and timer fields; has_tick is false when the plugin has none. */
    bool has_tick;
    long long ticks, tick_avg_us, tick_max_us;
    long long timers_fired, timer_late_p99_ms, timer_late_max_ms;
};

struct lg_monitor {
    struct lg_conn conn;
    struct lg_stat *v;
    size_t n, cap;
};

/* Connects a client that records every stats report of the broker. */
bool lg_monitor_open(struct lg_monitor *m, int port, const char *client_id);
const struct lg_stat *lg_monitor_last(const struct lg_monitor *m);
/* Waits for a report received after `after_ns` satisfying calls_live >= live
 * (live < 0: any report); NULL on timeout. */
const struct lg_stat *lg_monitor_wait(struct lg_monitor *m, int64_t after_ns, long long live,
                                      int timeout_ms);
void lg_monitor_free(struct lg_monitor *m);

/* --- pub/sub streams on non-rtm topics (lg_flow.c) ----------------------------------- */

struct lg_flow;

/* `streams` publisher/subscriber pairs on <tag>/t/<i>, QoS 0, 64-byte payloads. */
struct lg_flow *lg_flow_new(int port, int streams, const char *tag);
/* The same as peer messages (SPEC 8.1): publisher <tag>p<i> sends to
 * <prefix>/u/<tag>s<i>/msg/<tag>p<i>, subscriber <tag>s<i> listens on
 * <prefix>/u/<tag>s<i>/msg/+, both at `qos`. */
struct lg_flow *lg_flow_new_peer(int port, int streams, const char *tag, const char *prefix,
                                 int qos);
/* Closed loop: each stream keeps `window` messages in flight. */
void lg_flow_closed(struct lg_flow *f, int window);
/* Open loop at `rate` messages per second in all. */
void lg_flow_open(struct lg_flow *f, double rate);
/* Sends what is due; call it from every loop turn. */
void lg_flow_pump(struct lg_flow *f, int64_t now);
/* Stops sending and waits up to timeout_ms for what is in flight. */
void lg_flow_stop(struct lg_flow *f, int timeout_ms);
/* Starts counting deliveries, and recording the latency of messages sent
 * from `from` on. */
void lg_flow_measure(struct lg_flow *f, int64_t from);
/* Stops counting deliveries; only messages sent before `until` are recorded. */
void lg_flow_end(struct lg_flow *f, int64_t until);
/* Deliveries received between lg_flow_measure and lg_flow_end. */
uint64_t lg_flow_count(const struct lg_flow *f);
/* Latency samples since lg_flow_measure: sent-at times and latencies (ns). */
struct lg_samples *lg_flow_sent_at(struct lg_flow *f);
struct lg_samples *lg_flow_latency(struct lg_flow *f);
/* Messages sent but never delivered so far. */
uint64_t lg_flow_lost(const struct lg_flow *f);
void lg_flow_free(struct lg_flow *f);

/* Capacity (msg/s, closed loop) and p50/p99 latency (ns, open loop) of a
 * flow, for one repetition. */
struct lg_flow_rep {
    double rate;
    double cpu_us; /* broker CPU per message, us */
    double broker_util;
    double p50_ns, p99_ns;
    long preempted; /* involuntary switches of the broker and the load generator */
    double lg_util; /* the load generator's own CPU use over the window */
};
void lg_flow_capacity(struct lg_flow *f, const struct lg_broker *b, double warmup, double secs,
                      int window, struct lg_flow_rep *out);
void lg_flow_latency_rep(struct lg_flow *f, const struct lg_broker *b, double warmup, double secs,
                         double rate, struct lg_flow_rep *out);

/* --- RTM sessions: inboxes, joins and leaves (lg_crowd.c) ----------------------------
 * n sessions with uids <tag><i>, each subscribed at QoS 1 to its inbox
 * <prefix>/u/<uid>/call (SPEC 3), where the plugin answers joins. Messages on
 * the inboxes are counted by type; every other message is a delivery. */

struct lg_crowd;
typedef void (*lg_crowd_fn)(struct lg_crowd *k, int i, const struct mosquitto_message *m,
                            int64_t now);

struct lg_crowd {
    struct lg_conn *c;
    size_t n;
    char prefix[16];
    char tag[16];
    uint64_t joined;                    /* {"type":"joined"} answers */
    uint64_t errors;                    /* {"type":"error"} answers */
    uint64_t delivered;                 /* messages on any other topic */
    lg_crowd_fn on_joined, on_delivery; /* NULL: only counted */
    void *ud;
    char last_error[200];
};

/* Opens the sessions and subscribes their inboxes; dies when it cannot. */
void lg_crowd_open(struct lg_crowd *k, int port, const char *prefix, const char *tag, size_t n);
/* Subscribes every session to the same filter (QoS `qos`) and waits. */
bool lg_crowd_subscribe(struct lg_crowd *k, const char *filter, int qos);
/* Session i publishes a request, QoS 1, not retained, to
 * <prefix>/c/<ch>/<verb> ("join", "leave"). */
bool lg_crowd_request(struct lg_crowd *k, size_t i, const char *ch, const char *verb);
/* Polls until `joined` reaches `want`, or with the errors does (requests
 * refused); true when every one was joined. */
bool lg_crowd_wait_joined(struct lg_crowd *k, uint64_t want, int timeout_ms);
/* A note with the error answers received, if any. */
void lg_crowd_report_errors(const struct lg_crowd *k, const char *what);
void lg_crowd_free(struct lg_crowd *k);

#endif
