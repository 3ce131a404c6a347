// SPDX-License-Identifier: GPL-2.0
/*
 * The live event source: TCP listeners opening and closing, UDP sockets binding and closing,
 * written to a ring buffer as struct event records. Every cgroup program here returns 1 (allow):
 * this is observation, never enforcement.
 *
 *   tp_btf/inet_sock_set_state  TCP  -> LISTEN (listen) and LISTEN -> CLOSE (close); global.
 *                                    A socket that called listen() without bind() has no port
 *                                    yet at this transition: it is remembered (pending) and
 *                                    reported by the sock_ops program below, which runs right
 *                                    after the kernel picked the port.
 *   sockops (TCP_LISTEN_CB)      TCP  the listen of a pending (autobound) socket, real port.
 *   cgroup/post_bind4, _bind6    UDP  bind (the port is the one bind chose, also for port 0).
 *   cgroup/sock_release          UDP  close of a UDP socket reported bound, or of any bound
 *                                    and unconnected one.
 *
 * The cgroup programs see sockets created in the cgroup they are attached to and below it.
 */
#include "bindguard.h"
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

enum kind {
	KIND_LISTEN = 1,
	KIND_CLOSE = 2,
	KIND_BIND = 3,
	KIND_UNBIND = 4,
};

#define FLAG_V6ONLY 1

/* One record in the ring buffer: 72 bytes, decoded by decodeEvent in Go. */
struct event {
	__u64 ts_ns;     /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u64 cgroup_id; /* cgroup2 id of the acting task */
	__u64 cookie;    /* socket cookie: the same for a socket's open and close */
	__u32 pid;       /* tgid in the reader's pid namespace, 0 if not visible there */
	__u32 netns;     /* network namespace inode of the socket */
	__u8 kind;
	__u8 family;
	__u8 protocol;
	__u8 flags;
	__u16 port; /* host byte order */
	__u16 pad;
	__u8 addr[16]; /* IPv4 in the first 4 bytes */
	char comm[TASK_COMM_LEN];
};

/* Set by Go before loading: the inode of bindguard's pid namespace. */
volatile const __u32 reader_pidns = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Records that did not fit into the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Cookies of TCP sockets that went to LISTEN before they had a port. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} pending SEC(".maps");

/* Cookies of UDP sockets reported bound: their release is reported even if they connected. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} udp_bound SEC(".maps");

static __always_inline struct event *reserve(void)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			*n += 1;
		return 0;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->pad = 0;
	e->flags = 0;
	return e;
}

/* fill_task fills in the acting task: pid in the reader's namespace, comm, cgroup. */
static __always_inline void fill_task(struct event *e)
{
	struct task_struct *task = bpf_get_current_task_btf();

	e->pid = tgid_in_ns(task, reader_pidns);
	e->cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	if (BPF_CORE_READ_STR_INTO(&e->comm, task, comm) < 0)
		e->comm[0] = 0;
}

/* fill_sock fills in the socket's address, port, family, v6only and network namespace. */
static __always_inline void fill_sock(struct event *e, struct sock *sk)
{
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->port = BPF_CORE_READ(sk, __sk_common.skc_num);
	/* A TCP listener's close unhashes it from its port (skc_num = 0) before the state
	 * change; inet_sport still holds the port. */
	if (!e->port)
		e->port = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	if (e->family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->addr, sk, __sk_common.skc_v6_rcv_saddr);
		if (BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_ipv6only))
			e->flags |= FLAG_V6ONLY;
	} else {
		BPF_CORE_READ_INTO((__be32 *)e->addr, sk, __sk_common.skc_rcv_saddr);
	}
	e->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline void emit(struct sock *sk, __u8 kind, __u8 protocol, __u64 cookie)
{
	struct event *e = reserve();
	if (!e)
		return;
	e->kind = kind;
	e->protocol = protocol;
	e->cookie = cookie;
	fill_sock(e, sk);
	fill_task(e);
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(bindguard_tcp_state, struct sock *sk, int oldstate, int newstate)
{
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (newstate == TCP_LISTEN) {
		__u64 cookie = bpf_get_socket_cookie(sk);
		if (BPF_CORE_READ(sk, __sk_common.skc_num) == 0) {
			__u8 one = 1;
			bpf_map_update_elem(&pending, &cookie, &one, BPF_ANY);
			return 0;
		}
		emit(sk, KIND_LISTEN, IPPROTO_TCP, cookie);
	} else if (oldstate == TCP_LISTEN && newstate == TCP_CLOSE) {
		__u64 cookie = bpf_get_socket_cookie(sk);
		bpf_map_delete_elem(&pending, &cookie);
		emit(sk, KIND_CLOSE, IPPROTO_TCP, cookie);
	}
	return 0;
}

SEC("sockops")
int bindguard_sockops(struct bpf_sock_ops *ctx)
{
	if (ctx->op != BPF_SOCK_OPS_TCP_LISTEN_CB)
		return 1;
	struct bpf_sock *bsk = ctx->sk;
	if (!bsk)
		return 1;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	if (!bpf_map_lookup_elem(&pending, &cookie))
		return 1;
	bpf_map_delete_elem(&pending, &cookie);
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return 1;
	emit((struct sock *)tp, KIND_LISTEN, IPPROTO_TCP, cookie);
	return 1;
}

/*
 * In the cgroup/sock programs the context is the kernel's struct sock itself, presented as
 * struct bpf_sock; what struct bpf_sock lacks (v6only, the network namespace) is read from the
 * struct sock with probe reads, which needs CAP_PERFMON.
 */
static __always_inline void udp_bind(struct bpf_sock *ctx)
{
	if (ctx->protocol != IPPROTO_UDP)
		return;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	__u8 one = 1;
	bpf_map_update_elem(&udp_bound, &cookie, &one, BPF_ANY);
	emit((struct sock *)ctx, KIND_BIND, IPPROTO_UDP, cookie);
}

SEC("cgroup/post_bind4")
int bindguard_post_bind4(struct bpf_sock *ctx)
{
	udp_bind(ctx);
	return 1;
}

SEC("cgroup/post_bind6")
int bindguard_post_bind6(struct bpf_sock *ctx)
{
	udp_bind(ctx);
	return 1;
}

SEC("cgroup/sock_release")
int bindguard_sock_release(struct bpf_sock *ctx)
{
	/* A UDP socket reported bound, or any bound and unconnected one (what the audit lists
	 * as listening, also when it existed before the watcher); not the many connected client
	 * sockets that were never reported. The context's src_port and state are readable only
	 * in post_bind: read the struct sock. */
	if (ctx->protocol != IPPROTO_UDP || ctx->type != SOCK_DGRAM)
		return 1;
	struct sock *sk = (struct sock *)ctx;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	int reported = bpf_map_delete_elem(&udp_bound, &cookie) == 0;
	if (!reported && (BPF_CORE_READ(sk, __sk_common.skc_num) == 0 ||
			  BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_CLOSE))
		return 1;
	emit(sk, KIND_UNBIND, IPPROTO_UDP, cookie);
	return 1;
}
