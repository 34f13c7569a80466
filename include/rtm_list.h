/*
 * Intrusive circular doubly linked list: the link lives in the element, so
 * joining a list never allocates and leaving one is O(1).
 */
#ifndef RTM_LIST_H
#define RTM_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct rtm_list {
    struct rtm_list *prev;
    struct rtm_list *next;
};

#define rtm_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void rtm_list_init(struct rtm_list *head)
{
    head->prev = head;
    head->next = head;
}

static inline bool rtm_list_empty(const struct rtm_list *head)
{
    return head->next == head;
}

static inline void rtm_list_add_tail(struct rtm_list *head, struct rtm_list *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

/* Unlinks `node` and leaves it pointing at itself, so a second remove or an
 * rtm_list_linked() check is safe. */
static inline void rtm_list_remove(struct rtm_list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    rtm_list_init(node);
}

static inline bool rtm_list_linked(const struct rtm_list *node)
{
    return node->next != node;
}

#endif
