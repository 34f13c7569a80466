/*
 * rtm-loadgen: the command line. bench/run.sh starts the brokers and runs
 * every mode; BENCHMARKS.md describes the method.
 */
#include "lg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: rtm-loadgen MODE [--option value]...\n"
    "modes:\n"
    "  lifecycle  --plain PORT:PID --rtm PORT:PID [--control PORT:PID] [--pairs 50 --window 4\n"
    "             --reps 5 --seconds 3 --warmup 0.5 --load 0.5 | --rate CALLS_PER_S]\n"
    "  unrelated  --plain PORT:PID --rtm PORT:PID [--control PORT:PID] [--pairs 20 --window 8\n"
    "             --users 1000 --pending 10000 --reps 5 --seconds 3 --warmup 0.5\n"
    "             --load 0.5 | --rate MSG_S]\n"
    "  scale      --rtm PORT:PID [--count 100000 --rate 20000 --pairs 20 --idle 5 --spread 2]\n"
    "  presence   --plain PORT:PID --rtm PORT:PID [--count 10000 --reps 3]\n"
    "  push       --rtm PORT:PID --mock PORT[:PID] [--count 1000 --reps 3 --seconds 3 --pairs 10\n"
    "             --delay-ms 50 --load 0.5 | --rate MSG_S]\n"
    "  rtm        --plain PORT:PID [--rtm PORT:PID] [--pairs 50 --window 4 --count 1000\n"
    "             --users 50 --rate 10000 --drive 5 --reps 5 --seconds 3 --warmup 0.5\n"
    "             --load 0.5]: SPEC 8 peer and channel messages, joins and member counts\n"
    "             (without --rtm, the baseline alone)\n"
    "  rtm-memory --plain PORT:PID --rtm PORT:PID [--count 10000]: memory per channel\n"
    "             membership and per user attribute\n"
    "  stalls     [--seconds 3]: how often, and how long, each CPU is taken from a spinning\n"
    "             thread\n"
    "  free-port  prints a free TCP port on 127.0.0.1\n"
    "  wait-port  PORT [TIMEOUT_MS]: waits until 127.0.0.1:PORT accepts connections\n"
    "Every connection goes to 127.0.0.1. Result rows start with ROW, details with #.\n";

static void defaults(struct lg_opts *o, const char *mode)
{
    memset(o, 0, sizeof(*o));
    o->reps = 5;
    o->seconds = 3;
    o->warmup = 0.5;
    o->load = 0.5;
    o->pairs = 50;
    o->window = 4;
    o->users = 1000;
    o->pending = 10000;
    o->count = 100000;
    o->idle = 5;
    o->spread = 2;
    o->delay_ms = 50;
    if (strcmp(mode, "unrelated") == 0) {
        o->pairs = 20;
        o->window = 8;
    } else if (strcmp(mode, "scale") == 0) {
        o->pairs = 20;
        o->rate = 20000;
    } else if (strcmp(mode, "presence") == 0) {
        o->count = 10000;
        o->reps = 3;
    } else if (strcmp(mode, "rtm") == 0) {
        o->count = 1000;
        o->users = 50;
        o->rate = 10000;
        o->drive = 5;
    } else if (strcmp(mode, "rtm-memory") == 0) {
        o->count = 10000;
    } else if (strcmp(mode, "push") == 0) {
        o->count = 1000;
        o->reps = 3;
        o->pairs = 10;
        o->warmup = 1;
    }
}

static void parse_broker(const char *arg, struct lg_broker *b)
{
    char *end = NULL;
    b->port = (int)strtol(arg, &end, 10);
    b->pid = end && *end == ':' ? (int)strtol(end + 1, NULL, 10) : 0;
    if (b->port <= 0 || b->port > 65535)
        lg_die("bad broker %s (PORT or PORT:PID)", arg);
}

static void parse_mock(struct lg_opts *o, const char *arg)
{
    struct lg_broker m;
    parse_broker(arg, &m);
    o->mock_port = m.port;
    o->mock_pid = m.pid;
}

static double num(const char *name, const char *v)
{
    char *end = NULL;
    double d = strtod(v, &end);
    if (!end || *end || d < 0)
        lg_die("bad value for %s: %s", name, v);
    return d;
}

static void parse_opt(struct lg_opts *o, const char *name, const char *v)
{
    if (strcmp(name, "--plain") == 0)
        parse_broker(v, &o->plain);
    else if (strcmp(name, "--rtm") == 0)
        parse_broker(v, &o->rtm);
    else if (strcmp(name, "--control") == 0)
        parse_broker(v, &o->control);
    else if (strcmp(name, "--mock") == 0)
        parse_mock(o, v);
    else if (strcmp(name, "--reps") == 0)
        o->reps = (int)num(name, v);
    else if (strcmp(name, "--seconds") == 0)
        o->seconds = num(name, v);
    else if (strcmp(name, "--warmup") == 0)
        o->warmup = num(name, v);
    else if (strcmp(name, "--load") == 0)
        o->load = num(name, v);
    else if (strcmp(name, "--rate") == 0)
        o->rate = num(name, v);
    else if (strcmp(name, "--count") == 0)
        o->count = (long)num(name, v);
    else if (strcmp(name, "--pairs") == 0)
        o->pairs = (int)num(name, v);
    else if (strcmp(name, "--window") == 0)
        o->window = (int)num(name, v);
    else if (strcmp(name, "--users") == 0)
        o->users = (int)num(name, v);
    else if (strcmp(name, "--pending") == 0)
        o->pending = (long)num(name, v);
    else if (strcmp(name, "--idle") == 0)
        o->idle = num(name, v);
    else if (strcmp(name, "--spread") == 0)
        o->spread = (int)num(name, v);
    else if (strcmp(name, "--delay-ms") == 0)
        o->delay_ms = (int)num(name, v);
    else if (strcmp(name, "--drive") == 0)
        o->drive = num(name, v);
    else
        lg_die("unknown option %s\n%s", name, usage);
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = loopback(0);
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        lg_die("no free port: %s", strerror(errno));
    close(fd);
    printf("%d\n", ntohs(sa.sin_port));
    return 0;
}

static int wait_port(int argc, char **argv)
{
    int port = argc > 2 ? atoi(argv[2]) : 0;
    int timeout_ms = argc > 3 ? atoi(argv[3]) : 10000;
    int64_t deadline = lg_now_ns() + (int64_t)timeout_ms * LG_MS;
    while (lg_now_ns() < deadline) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = loopback(port);
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (rc == 0)
            return 0;
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    fprintf(stderr, "rtm-loadgen: nothing listens on 127.0.0.1:%d\n", port);
    return 1;
}

static int run(const char *mode, const struct lg_opts *o)
{
    if (strcmp(mode, "stalls") == 0)
        return lg_stalls(o);
    if (strcmp(mode, "rtm") == 0 || strcmp(mode, "rtm-memory") == 0) {
        if (o->pairs < 1 || o->window < 1 || o->count < 1 || o->users < 1)
            lg_die("--pairs, --window, --count and --users must be at least 1");
        lg_net_init();
        return strcmp(mode, "rtm") == 0 ? lg_rtm(o) : lg_rtm_memory(o);
    }
    if (strcmp(mode, "lifecycle") != 0 && strcmp(mode, "unrelated") != 0 &&
        strcmp(mode, "scale") != 0 && strcmp(mode, "presence") != 0 && strcmp(mode, "push") != 0)
        lg_die("unknown mode %s\n%s", mode, usage);
    bool needs_plain = strcmp(mode, "scale") != 0 && strcmp(mode, "push") != 0;
    if (!o->rtm.port || (needs_plain && !o->plain.port))
        lg_die("%s needs --rtm%s\n%s", mode, needs_plain ? " and --plain" : "", usage);
    if (strcmp(mode, "push") == 0 && !o->mock_port)
        lg_die("push needs --mock PORT");
    if (o->pairs < 1 || o->window < 1 || o->count < 1 || o->users < 1)
        lg_die("--pairs, --window, --count and --users must be at least 1");
    lg_net_init();
    if (strcmp(mode, "lifecycle") == 0)
        return lg_lifecycle(o);
    if (strcmp(mode, "unrelated") == 0)
        return lg_unrelated(o);
    if (strcmp(mode, "scale") == 0)
        return lg_scale(o);
    if (strcmp(mode, "presence") == 0)
        return lg_presence(o);
    return lg_push(o);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "free-port") == 0)
        return free_port();
    if (strcmp(argv[1], "wait-port") == 0)
        return wait_port(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct lg_opts o;
    defaults(&o, argv[1]);
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc)
            lg_die("%s needs a value", argv[i]);
        parse_opt(&o, argv[i], argv[i + 1]);
    }
    return run(argv[1], &o);
}
