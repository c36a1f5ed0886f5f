// The IPv4 family's names for the shim's per-family templates (shim_family.inc, shim_writer.inc):
// its libiptc, entry and header types, flags, labels and socket options.
#ifndef NATSYNC_FAMILY_IPV4_H
#define NATSYNC_FAMILY_IPV4_H

#define _GNU_SOURCE
#include <netinet/in.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <libiptc/libiptc.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter_ipv4/ipt_REJECT.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "shim_internal.h"

// The sizes the encoder relies on (libiptc-notes.md), checked at build time.
_Static_assert(sizeof(struct ipt_entry) == 112, "ipt_entry");
_Static_assert(sizeof(struct xt_entry_target) == 32, "xt_entry_target");
_Static_assert(sizeof(struct xt_standard_target) == 40, "xt_standard_target");
_Static_assert(sizeof(struct nf_nat_range2) == 44, "nf_nat_range2");

#define FAMILY 4
#define FAM(name) natsync4_##name
#define TC(name) iptc_##name
#define ENTRY struct ipt_entry
#define HDR ip
#define INV_SRCIP IPT_INV_SRCIP
#define INV_DSTIP IPT_INV_DSTIP
#define INV_VIA_IN IPT_INV_VIA_IN
#define INV_VIA_OUT IPT_INV_VIA_OUT
#define F_GOTO IPT_F_GOTO
#define F_KNOWN IPT_F_GOTO
#define LABEL_ACCEPT IPTC_LABEL_ACCEPT
#define LABEL_DROP IPTC_LABEL_DROP
#define LABEL_RETURN IPTC_LABEL_RETURN
#define ADDRESS_SIZE 4
#define REJECT_INFO struct ipt_reject_info
#define MASQUERADE_INFO struct nf_nat_ipv4_multi_range_compat
#define SOCKET_FAMILY AF_INET
#define SOCKET_LEVEL IPPROTO_IP
#define SO_GET_INFO IPT_SO_GET_INFO
#define GETINFO struct ipt_getinfo
#define SO_GET_ENTRIES IPT_SO_GET_ENTRIES
#define SO_SET_REPLACE IPT_SO_SET_REPLACE
#define GET_ENTRIES struct ipt_get_entries
#define SO_SET_ADD_COUNTERS IPT_SO_SET_ADD_COUNTERS
#define REPLACE struct ipt_replace

#endif
