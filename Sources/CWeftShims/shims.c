#define _GNU_SOURCE
#include "CWeftShims.h"
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

unsigned long weft_tunsetiff(void) { return TUNSETIFF; }
unsigned long weft_tunsetoffload(void) { return TUNSETOFFLOAD; }
unsigned long weft_tunsetvnethdrsz(void) { return TUNSETVNETHDRSZ; }

int weft_set_tcp_user_timeout(int fd, unsigned int millis) {
    return setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &millis, sizeof(millis));
}

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

#include <string.h>
#include <errno.h>

int weft_recv_batch(int fd, void *const *bufs, size_t *lens, struct sockaddr_in *addrs, int n, int flags) {
    struct mmsghdr msgs[WEFT_BATCH_MAX];
    struct iovec iovs[WEFT_BATCH_MAX];
    if (n > WEFT_BATCH_MAX) n = WEFT_BATCH_MAX;
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)n);
    for (int i = 0; i < n; i++) {
        iovs[i].iov_base = bufs[i];
        iovs[i].iov_len = lens[i];
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &addrs[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
    }
    int got = recvmmsg(fd, msgs, (unsigned int)n, flags, NULL);
    for (int i = 0; i < got; i++) {
        lens[i] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 0 : msgs[i].msg_len;
    }
    return got;
}

int weft_send_batch(int fd, void *const *bufs, const size_t *lens, const struct sockaddr_in *addrs, int n) {
    struct mmsghdr msgs[WEFT_BATCH_MAX];
    struct iovec iovs[WEFT_BATCH_MAX];
    if (n > WEFT_BATCH_MAX) n = WEFT_BATCH_MAX;
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)n);
    for (int i = 0; i < n; i++) {
        iovs[i].iov_base = bufs[i];
        iovs[i].iov_len = lens[i];
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = (void *)&addrs[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
    }
    return sendmmsg(fd, msgs, (unsigned int)n, 0);
}

int weft_set_dont_fragment(int fd) {
    int value = IP_PMTUDISC_DO;
    return setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &value, sizeof(value));
}

int weft_ip_mtu(int fd) {
    int mtu = 0;
    socklen_t len = sizeof(mtu);
    if (getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &len) != 0) return -1;
    return mtu;
}

int weft_tun_enable_tso(int fd) {
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6));
}
