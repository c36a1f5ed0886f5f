// The IPv6 family's names for the shim's per-family templates (shim_family.inc, shim_writer.inc):
// its libiptc, entry and header types, flags, labels and socket options.
#ifndef NATSYNC_FAMILY_IPV6_H
#define NATSYNC_FAMILY_IPV6_H

#define _GNU_SOURCE
#include <netinet/in.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <libiptc/libip6tc.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter_ipv6/ip6t_REJECT.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "shim_internal.h"

_Static_assert(sizeof(struct ip6t_entry) == 168, "ip6t_entry");

#define FAMILY 6
#define FAM(name) natsync6_##name
#define TC(name) ip6tc_##name
#define ENTRY struct ip6t_entry
#define HDR ipv6
#define INV_SRCIP IP6T_INV_SRCIP
#define INV_DSTIP IP6T_INV_DSTIP
#define INV_VIA_IN IP6T_INV_VIA_IN
#define INV_VIA_OUT IP6T_INV_VIA_OUT
#define F_GOTO IP6T_F_GOTO
#define F_KNOWN (IP6T_F_GOTO | IP6T_F_PROTO)
#define LABEL_ACCEPT IP6TC_LABEL_ACCEPT
#define LABEL_DROP IP6TC_LABEL_DROP
#define LABEL_RETURN IP6TC_LABEL_RETURN
#define ADDRESS_SIZE 16
#define REJECT_INFO struct ip6t_reject_info
#define MASQUERADE_INFO struct nf_nat_range
#define SOCKET_FAMILY AF_INET6
#define SOCKET_LEVEL IPPROTO_IPV6
#define SO_GET_INFO IP6T_SO_GET_INFO
#define GETINFO struct ip6t_getinfo
#define SO_GET_ENTRIES IP6T_SO_GET_ENTRIES
#define SO_SET_REPLACE IP6T_SO_SET_REPLACE
#define GET_ENTRIES struct ip6t_get_entries
#define SO_SET_ADD_COUNTERS IP6T_SO_SET_ADD_COUNTERS
#define REPLACE struct ip6t_replace

#endif
