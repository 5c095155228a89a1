// Helpers for what Swift cannot import from Glibc: GNU-only socket batching calls and the
// _IOW-style ioctl numbers of the TUN/TAP driver. Kept tiny on purpose.
#ifndef CWEFT_SHIMS_H
#define CWEFT_SHIMS_H
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/// TUNSETIFF and friends are function-like macros in <linux/if_tun.h>; these return their values.
unsigned long weft_tunsetiff(void);
unsigned long weft_tunsetoffload(void);
unsigned long weft_tunsetvnethdrsz(void);
/// TCP_USER_TIMEOUT, SO_REUSEPORT-independent helpers: the remote address of a connected socket.
int weft_set_tcp_user_timeout(int fd, unsigned int millis);
/// setns(fd, CLONE_NEWNET) for the calling thread only (setns is GNU-only in Glibc). -1 + errno on error.
int weft_setns_net(int fd);
/// TUNSETIFF with IFF_TAP|IFF_NO_PI (| IFF_VNET_HDR when vnet_hdr != 0) on an open /dev/net/tun fd.
/// `name` may be empty (the kernel picks tapN). The name the kernel chose is copied to
/// `out_name` (at least 16 bytes, NUL-terminated). Returns 0, or -1 with errno set.
int weft_tun_set_iff_tap(int fd, const char *name, int vnet_hdr, char *out_name);
#endif
