/*
 * Unit tests for plugin/push/procnet.c (rtm_procnet.h): the parsers the registry
 * loader uses to find the broker's own listening sockets, fed with text as
 * Linux writes it on a little-endian machine (x86_64, arm64).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "rtm_procnet.h"

#define TCP_HEAD                                                                                   \
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "  \
    "inode\n"

/* A broker listening on 0.0.0.0:1883 and 127.0.0.1:8883, with one client
 * connected, and another process's listener on 127.0.0.1:1884. */
static const char tcp[] =
    TCP_HEAD "   0: 00000000:075B 00000000:0000 0A 00000000:00000000 00:00000000 00000000   "
             "108        0 21234 1 0000000000000000 100 0 0 10 0\n"
             "   1: 0100007F:22B3 00000000:0000 0A 00000000:00000000 00:00000000 00000000   108  "
             "      0 21240 1 0000000000000000 100 0 0 10 0\n"
             "   2: 0100007F:075B 0100007F:B4FC 01 00000000:00000000 02:000A7B2F 00000000   108  "
             "      0 21301 2 0000000000000000 20 4 30 10 -1\n"
             "   3: 0100007F:075C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0  "
             "      0 19999 1 0000000000000000 100 0 0 10 0\n";

static const char tcp6[] =
    "  sl  local_address                         remote_address                        st "
    "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000000000000:075B 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000   108        0 21235 1 0000000000000000 100 0 0 10 "
    "0\n"
    "   1: 00000000000000000000000001000000:22B4 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000   108        0 21236 1 0000000000000000 100 0 0 10 "
    "0\n";

static const char *name_of(const struct rtm_procnet_socket *s)
{
    static char buf[64];
    rtm_procnet_name(s, buf, sizeof(buf));
    return buf;
}

static void test_socket_inode(void **state)
{
    (void)state;
    unsigned long inode = 0;
    assert_true(rtm_procnet_socket_inode("socket:[21234]", &inode));
    assert_int_equal(inode, 21234);
    assert_false(rtm_procnet_socket_inode("pipe:[21234]", &inode));
    assert_false(rtm_procnet_socket_inode("anon_inode:[eventpoll]", &inode));
    assert_false(rtm_procnet_socket_inode("/var/lib/mosquitto/mosquitto.db", &inode));
    assert_false(rtm_procnet_socket_inode("socket:[]", &inode));
    assert_false(rtm_procnet_socket_inode("socket:[12x]", &inode));
    assert_false(rtm_procnet_socket_inode("socket:[12]x", &inode));
}

/* Only LISTEN rows, every process's; the wildcard becomes 127.0.0.1. */
static void test_tcp(void **state)
{
    (void)state;
    struct rtm_procnet_socket out[8];
    size_t n = 0;
    assert_int_equal(rtm_procnet_listening(tcp, AF_INET, out, &n, 8), 3);
    assert_int_equal(n, 3);
    assert_string_equal(name_of(&out[0]), "127.0.0.1:1883");
    assert_int_equal(out[0].inode, 21234);
    assert_int_equal(out[0].family, AF_INET);
    assert_string_equal(name_of(&out[1]), "127.0.0.1:8883");
    assert_int_equal(out[1].inode, 21240);
    assert_string_equal(name_of(&out[2]), "127.0.0.1:1884");
    assert_int_equal(out[2].inode, 19999);
}

/* :: becomes ::1; ::1 stays. Appends after what is there. */
static void test_tcp6_appends(void **state)
{
    (void)state;
    struct rtm_procnet_socket out[8];
    size_t n = 0;
    rtm_procnet_listening(tcp, AF_INET, out, &n, 8);
    assert_int_equal(rtm_procnet_listening(tcp6, AF_INET6, out, &n, 8), 2);
    assert_int_equal(n, 5);
    assert_string_equal(name_of(&out[3]), "[::1]:1883");
    assert_int_equal(out[3].inode, 21235);
    assert_int_equal(out[3].family, AF_INET6);
    assert_string_equal(name_of(&out[4]), "[::1]:8884");
    assert_int_equal(out[4].inode, 21236);
}

/* A full array still counts every row; nothing is written past max. */
static void test_max(void **state)
{
    (void)state;
    struct rtm_procnet_socket out[2];
    size_t n = 0;
    assert_int_equal(rtm_procnet_listening(tcp, AF_INET, out, &n, 1), 3);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(rtm_procnet_listening(tcp, AF_INET, out, &n, 0), 3);
    assert_int_equal(n, 0);
}

/* Text of the wrong family, truncated or garbled rows, and empty text. */
static void test_malformed(void **state)
{
    (void)state;
    struct rtm_procnet_socket out[4];
    size_t n = 0;
    assert_int_equal(rtm_procnet_listening(tcp6, AF_INET, out, &n, 4), 0);
    assert_int_equal(rtm_procnet_listening(tcp, AF_INET6, out, &n, 4), 0);
    assert_int_equal(rtm_procnet_listening("", AF_INET, out, &n, 4), 0);
    assert_int_equal(rtm_procnet_listening(TCP_HEAD, AF_INET, out, &n, 4), 0);
    static const char bad[] =
        "   0: 00000000:075B 00000000:0000 0A\n"                  /* truncated */
        "   1: 0000000G:075B 00000000:0000 0A 0:0 0:0 0 1 0 5\n"  /* not hex */
        "   2: 00000000:0000 00000000:0000 0A 0:0 0:0 0 1 0 5\n"  /* port 0 */
        "   3: 000000000:075B 00000000:0000 0A 0:0 0:0 0 1 0 5\n" /* 9 digits */
        "   4: 00000000:1075B 00000000:0000 0A 0:0 0:0 0 1 0 5\n" /* port > 0xffff */
        "   5: 0100007F:075B 00000000:0000 0A 0:0 0:0 0 1 0 77";  /* fine, no \n */
    assert_int_equal(rtm_procnet_listening(bad, AF_INET, out, &n, 4), 1);
    assert_int_equal(n, 1);
    assert_string_equal(name_of(&out[0]), "127.0.0.1:1883");
    assert_int_equal(out[0].inode, 77);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socket_inode), cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_tcp6_appends), cmocka_unit_test(test_max),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
