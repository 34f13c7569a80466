/*
 * Parsing /proc/self/fd link targets and /proc/net/tcp{,6} rows
 * (rtm_procnet.h). The kernel prints each 32-bit word of an address as hex
 * of its in-memory value (so byte order is the host's: 127.0.0.1 is
 * "0100007F" on x86), and the port as hex in host order.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rtm_procnet.h"

#define TCP_LISTEN 0x0A

bool rtm_procnet_socket_inode(const char *link, unsigned long *inode)
{
    static const char head[] = "socket:[";
    if (strncmp(link, head, sizeof(head) - 1) != 0)
        return false;
    const char *digits = link + sizeof(head) - 1;
    char *end;
    if (*digits < '0' || *digits > '9')
        return false;
    unsigned long v = strtoul(digits, &end, 10);
    if (end[0] != ']' || end[1] != '\0')
        return false;
    *inode = v;
    return true;
}

/* `len` hex digits (a multiple of 8) into `out`, word by word. */
static bool parse_addr(const char *hex, size_t len, uint8_t *out)
{
    for (size_t w = 0; w < len / 8; w++) {
        char word[9];
        memcpy(word, hex + 8 * w, 8);
        word[8] = '\0';
        char *end;
        uint32_t v = (uint32_t)strtoul(word, &end, 16);
        if (*end != '\0')
            return false;
        memcpy(out + 4 * w, &v, 4);
    }
    return true;
}

static void wildcard_to_loopback(struct rtm_procnet_socket *s)
{
    static const uint8_t any[16] = {0};
    if (s->family == AF_INET && memcmp(s->addr, any, 4) == 0) {
        uint32_t lo = htonl(INADDR_LOOPBACK);
        memcpy(s->addr, &lo, 4);
    } else if (s->family == AF_INET6 && memcmp(s->addr, any, 16) == 0) {
        memcpy(s->addr, &in6addr_loopback, 16);
    }
}

/* One row: "sl: LOCAL:PORT REMOTE:PORT ST ... UID TIMEOUT INODE ...". */
static bool parse_row(const char *line, int family, struct rtm_procnet_socket *out)
{
    char local[40];
    unsigned port, state;
    unsigned long inode;
    if (sscanf(line, " %*[0-9]: %39[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*u %*d %lu", local, &port,
               &state, &inode) != 4)
        return false;
    size_t want = family == AF_INET ? 8 : 32;
    if (strlen(local) != want || port == 0 || port > 0xffff || state != TCP_LISTEN)
        return false;
    memset(out, 0, sizeof(*out));
    out->family = family;
    out->port = (uint16_t)port;
    out->inode = inode;
    if (!parse_addr(local, want, out->addr))
        return false;
    wildcard_to_loopback(out);
    return true;
}

size_t rtm_procnet_listening(const char *text, int family, struct rtm_procnet_socket *out,
                             size_t *n, size_t max)
{
    size_t found = 0;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[512];
        if (len < sizeof(buf)) {
            memcpy(buf, line, len);
            buf[len] = '\0';
            struct rtm_procnet_socket s;
            if (parse_row(buf, family, &s)) {
                found++;
                if (*n < max)
                    out[(*n)++] = s;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return found;
}

static bool parse_port(const char *s, uint16_t *port)
{
    unsigned long v = 0;
    if (!*s || strlen(s) > 5)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

bool rtm_procnet_parse_address(const char *s, struct rtm_procnet_socket *out)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return false;
    const char *h = s;
    size_t len = (size_t)(colon - s);
    if (h[0] == '[') {
        if (len < 3 || h[len - 1] != ']')
            return false;
        h++;
        len -= 2;
    }
    char host[INET6_ADDRSTRLEN];
    if (len >= sizeof(host))
        return false;
    memcpy(host, h, len);
    host[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (!parse_port(colon + 1, &out->port))
        return false;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, host, out->addr) == 1)
        out->family = AF_INET6;
    return out->family != 0;
}

void rtm_procnet_name(const struct rtm_procnet_socket *s, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    inet_ntop(s->family, s->addr, host, sizeof(host));
    snprintf(buf, size, s->family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, (unsigned)s->port);
}
