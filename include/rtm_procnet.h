/*
 * Finding the broker's own listening TCP sockets on Linux, as text: the
 * registry loader reads /proc/self/fd (each socket fd links to
 * "socket:[INODE]") and /proc/self/net/tcp and tcp6 (one row per socket:
 * local address, state, inode), and these pure functions parse what it
 * read, so they can be tested with sample text. A listening socket bound to
 * every address (0.0.0.0, ::) is reached on the loopback address of its
 * family.
 */
#ifndef RTM_PROCNET_H
#define RTM_PROCNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A listening socket: where to connect to reach it. */
struct rtm_procnet_socket {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network byte order; 4 bytes for AF_INET */
    uint16_t port;    /* host byte order */
    unsigned long inode;
};

/* The inode of a /proc/self/fd link target "socket:[INODE]"; false for
 * anything else (files, pipes, "anon_inode:..."). */
bool rtm_procnet_socket_inode(const char *link, unsigned long *inode);

/* Appends the LISTEN rows (st 0A) of /proc/net/tcp (`family` AF_INET) or
 * /proc/net/tcp6 (AF_INET6) text to out[*n .. max), skipping malformed
 * lines; wildcard addresses become loopback ones. Returns how many rows it
 * found, which may exceed what fitted. */
size_t rtm_procnet_listening(const char *text, int family, struct rtm_procnet_socket *out,
                             size_t *n, size_t max);

/* Parses an explicit "IP:port" ("127.0.0.1:1883", "[::1]:1883", "::1:1883",
 * or "localhost:1883", which means 127.0.0.1) into `out` (inode 0). No name
 * lookups: the address must be one of this machine's. */
bool rtm_procnet_parse_address(const char *s, struct rtm_procnet_socket *out);

/* "127.0.0.1:1883" or "[::1]:1883" into buf. */
void rtm_procnet_name(const struct rtm_procnet_socket *s, char *buf, size_t size);

#endif
