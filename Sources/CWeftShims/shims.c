#define _GNU_SOURCE
#include "CWeftShims.h"
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

int weft_setns_net(int fd) { return setns(fd, CLONE_NEWNET); }

int weft_tun_set_iff_tap(int fd, const char *name, int vnet_hdr, char *out_name) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    if (strlen(name) >= IFNAMSIZ) { errno = ENAMETOOLONG; return -1; }
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) return -1;
    memcpy(out_name, ifr.ifr_name, IFNAMSIZ);
    out_name[IFNAMSIZ - 1] = 0;
    return 0;
}

int weft_tun_enable_tso(int fd) {
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6));
}

/// One buffer and one address per message; shared by the batch send and receive. Addresses are
/// sockaddr_in6-sized slots holding either family (the socket's own, UnderlayAddress.swift).
static int prepare(struct mmsghdr *msgs, struct iovec *iovs, void *const *bufs, const size_t *lens,
                   const struct sockaddr_in6 *addrs, int n) {
    if (n > WEFT_BATCH_MAX) n = WEFT_BATCH_MAX;
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)n);
    for (int i = 0; i < n; i++) {
        iovs[i].iov_base = bufs[i];
        iovs[i].iov_len = lens[i];
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = (void *)&addrs[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in6);
    }
    return n;
}

int weft_send_batch(int fd, void *const *bufs, const size_t *lens, const struct sockaddr_in6 *addrs, int n) {
    struct mmsghdr msgs[WEFT_BATCH_MAX];
    struct iovec iovs[WEFT_BATCH_MAX];
    n = prepare(msgs, iovs, bufs, lens, addrs, n);
    return sendmmsg(fd, msgs, (unsigned int)n, 0);
}

int weft_recv_batch_gro(int fd, void *const *bufs, size_t *lens, struct sockaddr_in6 *addrs, unsigned short *segments, int n, int flags) {
    struct mmsghdr msgs[WEFT_BATCH_MAX];
    struct iovec iovs[WEFT_BATCH_MAX];
    char controls[WEFT_BATCH_MAX][CMSG_SPACE(sizeof(int))];
    n = prepare(msgs, iovs, bufs, lens, addrs, n);
    for (int i = 0; i < n; i++) {
        msgs[i].msg_hdr.msg_control = controls[i];
        msgs[i].msg_hdr.msg_controllen = sizeof(controls[i]);
    }
    int got = recvmmsg(fd, msgs, (unsigned int)n, flags, NULL);
    for (int i = 0; i < got; i++) {
        lens[i] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 0 : msgs[i].msg_len;
        segments[i] = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm; cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm)) {
            if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
                int size = 0;
                memcpy(&size, CMSG_DATA(cm), sizeof(size));
                segments[i] = (unsigned short)size;
            }
        }
    }
    return got;
}

int weft_set_dont_fragment(int fd, int ipv6) {
    int value = IP_PMTUDISC_DO;
    if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &value, sizeof(value)) < 0) return -1;
    if (!ipv6) return 0;
    value = IPV6_PMTUDISC_DO;
    return setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &value, sizeof(value));
}

int weft_set_dual_stack(int fd) {
    int zero = 0;
    return setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
}

int weft_enable_udp_gro(int fd) {
    int one = 1;
    return setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
}

int weft_udp_gso_supported(int fd) {
    int value = 0;
    socklen_t len = sizeof(value);
    return getsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, &len) == 0;
}

int weft_send_gso(int fd, const void *buf, size_t len, unsigned short segment, const struct sockaddr_in6 *addr) {
    struct iovec iov = { (void *)buf, len };
    char control[CMSG_SPACE(sizeof(unsigned short))];
    memset(control, 0, sizeof(control));
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_name = (void *)addr;
    msg.msg_namelen = sizeof(struct sockaddr_in6);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(unsigned short));
    memcpy(CMSG_DATA(cm), &segment, sizeof(segment));
    return (int)sendmsg(fd, &msg, MSG_DONTWAIT);
}

int weft_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, name, 0, 0, 0);
}
