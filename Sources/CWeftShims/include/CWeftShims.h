// Helpers for what Swift cannot import from Glibc: GNU-only calls (setns, sendmmsg/recvmmsg),
// the _IOW-style ioctls of the TUN/TAP driver, and UDP segmentation control messages.
// Kept small on purpose: each function does one system call's worth of work.
#ifndef CWEFT_SHIMS_H
#define CWEFT_SHIMS_H
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>

/// setns(fd, CLONE_NEWNET) for the calling thread only (setns is GNU-only in Glibc). -1 + errno on error.
int weft_setns_net(int fd);
/// TUNSETIFF with IFF_TAP|IFF_NO_PI (| IFF_VNET_HDR when vnet_hdr != 0) on an open /dev/net/tun fd.
/// `name` may be empty (the kernel picks tapN). The name the kernel chose is copied to
/// `out_name` (at least 16 bytes, NUL-terminated). Returns 0, or -1 with errno set.
int weft_tun_set_iff_tap(int fd, const char *name, int vnet_hdr, char *out_name);
/// TUNSETOFFLOAD with TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6: the kernel may hand the TAP reader TCP
/// super-frames of up to 64 KiB with partial checksums. 0, or -1 with errno.
int weft_tun_enable_tso(int fd);

/// Largest batch the socket helpers take; their mmsghdr/iovec arrays live on the C stack.
#define WEFT_BATCH_MAX 64

/// Socket addresses are sockaddr_in6-sized slots holding either family: the dual-stack socket's
/// sockaddr_in6 (IPv4 peers as ::ffff:a.b.c.d), or an IPv4-only socket's sockaddr_in in the first
/// 16 bytes (the kernel takes the longer length for both).
/// sendmmsg of `n` datagrams (n <= WEFT_BATCH_MAX); returns how many were sent, or -1 with errno.
int weft_send_batch(int fd, void *const *bufs, const size_t *lens, const struct sockaddr_in6 *addrs, int n);
/// recvmmsg of up to `n` messages (n <= WEFT_BATCH_MAX) into caller-owned buffers. `lens[i]`
/// holds buffer i's capacity on entry and the message's length on return (0 when truncated);
/// `addrs[i]` its source; `segments[i]` its UDP_GRO segment size (0: a single datagram).
/// Returns the count, or -1 with errno.
int weft_recv_batch_gro(int fd, void *const *bufs, size_t *lens, struct sockaddr_in6 *addrs, unsigned short *segments, int n, int flags);
/// IP_MTU_DISCOVER = IP_PMTUDISC_DO (set DF, never fragment locally), and on an IPv6 socket
/// (`ipv6` != 0) IPV6_MTU_DISCOVER = IPV6_PMTUDISC_DO too: 0 or -1.
int weft_set_dont_fragment(int fd, int ipv6);
/// IPV6_V6ONLY off: an AF_INET6 socket also carries IPv4 (as ::ffff:a.b.c.d). 0 or -1.
int weft_set_dual_stack(int fd);
/// UDP_GRO on: a receive may return several datagrams of one GSO train joined.
int weft_enable_udp_gro(int fd);
/// Whether UDP_SEGMENT (send-side GSO) is available on this socket.
int weft_udp_gso_supported(int fd);
/// One sendmsg of `len` bytes cut by the kernel into datagrams of `segment` bytes (the last may
/// be shorter). Returns bytes sent or -1 with errno (EIO: the device cannot offload checksums).
int weft_send_gso(int fd, const void *buf, size_t len, unsigned short segment, const struct sockaddr_in6 *addr);
/// Names the calling thread for the kernel (ps -L, top -H, perf): prctl(PR_SET_NAME), at most
/// 15 bytes kept. Returns 0 or -1 with errno.
int weft_set_thread_name(const char *name);
#endif
