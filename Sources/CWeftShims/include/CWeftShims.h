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
#endif
