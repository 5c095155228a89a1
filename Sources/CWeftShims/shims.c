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
