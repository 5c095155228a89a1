#include "CWeftShims.h"
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
