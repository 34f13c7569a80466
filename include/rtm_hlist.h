/*
 * Intrusive doubly linked list with a one-pointer head: the head holds only
 * the first node, and each node points at the pointer that points at it
 * (`pprev`: the head's `first`, or the previous node's `next`). Removal is
 * O(1) without knowing the list, and a head costs 8 bytes instead of the 16
 * of a struct rtm_list, which counts in records there are millions of.
 *
 * Nodes join at the head, so a walk from `first` goes newest first; one
 * that must go oldest first starts at rtm_hlist_last() (O(n)) and steps
 * back with rtm_hlist_prev() (O(1)).
 */
#ifndef RTM_HLIST_H
#define RTM_HLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "rtm_list.h" /* rtm_container_of */

struct rtm_hlist_node {
    struct rtm_hlist_node *next; /* first member: rtm_hlist_prev() relies on it */
    struct rtm_hlist_node **pprev;
};

struct rtm_hlist {
    struct rtm_hlist_node *first;
};

/* A zeroed head is an empty list, and a zeroed node is an unlinked one. */
static inline void rtm_hlist_init(struct rtm_hlist *head)
{
    head->first = NULL;
}

static inline bool rtm_hlist_empty(const struct rtm_hlist *head)
{
    return head->first == NULL;
}

static inline bool rtm_hlist_linked(const struct rtm_hlist_node *node)
{
    return node->pprev != NULL;
}

static inline void rtm_hlist_add_head(struct rtm_hlist *head, struct rtm_hlist_node *node)
{
    node->next = head->first;
    if (node->next)
        node->next->pprev = &node->next;
    head->first = node;
    node->pprev = &head->first;
}

/* Unlinks `node` and leaves it unlinked, so a second remove is a no-op. */
static inline void rtm_hlist_remove(struct rtm_hlist_node *node)
{
    if (!node->pprev)
        return;
    *node->pprev = node->next;
    if (node->next)
        node->next->pprev = node->pprev;
    node->next = NULL;
    node->pprev = NULL;
}

/* The oldest node (the one added first), or NULL when empty. O(n). */
static inline struct rtm_hlist_node *rtm_hlist_last(const struct rtm_hlist *head)
{
    struct rtm_hlist_node *n = head->first;
    while (n && n->next)
        n = n->next;
    return n;
}

/* The node before `node` (the next newer one), or NULL when `node` is the
 * first. `pprev` points at the previous node's `next`, its first member. */
static inline struct rtm_hlist_node *rtm_hlist_prev(const struct rtm_hlist *head,
                                                    const struct rtm_hlist_node *node)
{
    if (node->pprev == &head->first)
        return NULL;
    return rtm_container_of(node->pprev, struct rtm_hlist_node, next);
}

#endif
