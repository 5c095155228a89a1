#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/genetlink.h>
// rtnetlink payloads used by WeftNetlink: IFLA_* / IFLA_INFO_*, IFA_*, VETH_INFO_PEER.
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/veth.h>
// Open vSwitch kernel datapath (generic netlink families ovs_datapath/vport/flow/packet).
#include <linux/openvswitch.h>
