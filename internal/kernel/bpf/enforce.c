// SPDX-License-Identifier: GPL-2.0
/*
 * Enforcement: cgroup/bind4 and cgroup/bind6 refuse (return 0: the bind fails with EPERM) a
 * bind the policy forbids, and cgroup/post_bind4, _6 judge the port the kernel chose for a
 * bind to port 0. The maps are compiled from the policy by Go (kernel.CompileEnforcement) and
 * pinned, so one set of maps serves the programs attached to one cgroup and can be updated in
 * place.
 *
 * A bind is judged by (protocol, address, port), the address as 16 bytes with IPv4 held as
 * ::ffff:a.b.c.d (so bind4 on 0.0.0.0 and bind6 on ::ffff:0.0.0.0 are one key):
 *   1. a loopback address with port 0 is always allowed (Go's IPv6 probe, golang/go#77430);
 *   2. the port's entry in `ports` (protocol, port), if any, says which addresses are allowed:
 *      any, any loopback address, the exact addresses in `addrs`, the prefixes in `prefixes`;
 *      a dual-stack bind of :: also binds 0.0.0.0, so it needs both allowed;
 *   3. a port with no entry is denied only when it is inside a guarded range (`guard`);
 *   4. anything else is left alone.
 * Steps 2 and 3 are decided from `portbits` (one byte of flags per protocol and port); `ports`
 * and `guard` are looked up only for the rule of a denial.
 * A denial increments the rule's per-CPU counter and writes a record to `denials`; in dry-run
 * (config.mode) the record is written and the bind allowed.
 */
#include "bindguard.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_RULES 4096
#define MAX_GUARD 16

/* ports value flags */
#define P_ANY 1      /* any address */
#define P_LOOPBACK 2 /* any loopback address */
#define P_ADDRS 4    /* the exact addresses in addrs */
#define P_PREFIXES 8 /* the prefixes in prefixes */
#define P_REWRITE 16 /* rewrite mode: a wildcard bind becomes loopback */
#define P_RULE 32    /* portbits only: the port has an entry in ports */
#define P_GUARD 64   /* portbits only: no entry, inside a guarded range */

/* portbits: one byte of flags per (protocol, port), PORTBITS_CHUNK ports per entry */
#define PORTBITS_CHUNK 64
#define PORTBITS_ENTRIES (2 * 65536 / PORTBITS_CHUNK)

/*
 * portbits holds, for every (protocol, port), the flags of its `ports` entry with P_RULE, or
 * P_GUARD when it has none and a guarded range holds it, or 0: the verdict of an allowed bind
 * takes one array lookup (inlined by the verifier) instead of a hash lookup, and an undeclared
 * port no walk of the guarded ranges. `ports` and `guard` are read only to name the rule of a
 * denial. Index: (protocol == UDP) << 16 | port, divided by PORTBITS_CHUNK.
 */
struct port_bits {
	__u8 f[PORTBITS_CHUNK];
};

/* config modes */
#define MODE_DENY 0
#define MODE_DRYRUN 1
#define MODE_REWRITE 2

/* denial flags */
#define D_DRYRUN 1
#define D_V6ONLY 2
#define D_POSTBIND 4
#define D_REWRITTEN 8

#define EPERM 1
#define IPPROTO_MPTCP 262

struct port_key {
	__u8 protocol;
	__u8 pad;
	__u16 port; /* host order */
};

struct port_rule {
	__u32 rule; /* index into the rule table (counters, names) */
	__u32 flags;
};

struct addr_key {
	__u8 protocol;
	__u8 pad;
	__u16 port; /* host order */
	__u8 addr[16];
};

struct prefix_key {
	__u32 prefixlen; /* 32 + the address prefix length */
	__u8 protocol;
	__u8 pad;
	__u16 port; /* network order: the trie matches bytes in order */
	__u8 addr[16];
};

struct guard_range {
	__u16 lo, hi;
	__u8 protocol; /* 0: tcp and udp */
	__u8 used;
	__u16 pad;
	__u32 rule;
};

struct config {
	__u32 mode;
	__u32 pad;
};

/* One denial record: 64 bytes, decoded by decodeDenial in Go. */
struct denial {
	__u64 ts_ns;
	__u64 cgroup_id;
	__u32 pid;
	__u32 rule;
	__u16 port; /* host order */
	__u8 protocol;
	__u8 family;
	__u8 flags;
	__u8 errno_;
	__u16 pad;
	__u8 addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	char comm[TASK_COMM_LEN];
};

volatile const __u32 reader_pidns = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_RULES);
	__type(key, struct port_key);
	__type(value, struct port_rule);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PORTBITS_ENTRIES);
	__type(key, __u32);
	__type(value, struct port_bits);
} portbits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_RULES);
	__type(key, struct addr_key);
	__type(value, __u32);
} addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct prefix_key);
	__type(value, __u32);
} prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_GUARD);
	__type(key, __u32);
	__type(value, struct guard_range);
} guard SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

/* Denials (and would-be denials in dry-run) per rule. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* The rule table's names, for status and the denial records (written by Go, read by Go). */
struct rule_name {
	char name[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, __u32);
	__type(value, struct rule_name);
} rule_names SEC(".maps");

/* Records that did not fit into the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} denials SEC(".maps");

/* Sockets whose bind asked for port 0 (not on loopback): post_bind judges the chosen port. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u8);
} port0 SEC(".maps");

struct bind {
	__u8 addr[16];
	__u16 port;
	__u8 protocol;
	__u8 family;
	__u8 v6only;
};

static __always_inline int is_loopback(const __u8 *a)
{
	/* ::ffff:127.0.0.0/104 or ::1 */
	__u64 hi = *(const __u64 *)a;
	__u32 w2 = *(const __u32 *)(a + 8), w3 = *(const __u32 *)(a + 12);
	if (hi != 0)
		return 0;
	if (w2 == bpf_htonl(0xffff))
		return a[12] == 127;
	return w2 == 0 && w3 == bpf_htonl(1);
}

static __always_inline int is_any6(const __u8 *a)
{
	return *(const __u64 *)a == 0 && *(const __u64 *)(a + 8) == 0;
}

static __always_inline int is_any4(const __u8 *a)
{
	return *(const __u64 *)a == 0 && *(const __u32 *)(a + 8) == bpf_htonl(0xffff) && *(const __u32 *)(a + 12) == 0;
}

/* addr_allowed: whether the port rule allows one address. */
static __always_inline int addr_allowed(__u32 flags, const struct bind *b, const __u8 *addr)
{
	if (flags & P_ANY)
		return 1;
	if ((flags & P_LOOPBACK) && is_loopback(addr))
		return 1;
	if (flags & P_ADDRS) {
		struct addr_key k = {.protocol = b->protocol, .port = b->port};
		__builtin_memcpy(k.addr, addr, 16);
		if (bpf_map_lookup_elem(&addrs, &k))
			return 1;
	}
	if (flags & P_PREFIXES) {
		struct prefix_key k = {.prefixlen = 32 + 128, .protocol = b->protocol, .port = bpf_htons(b->port)};
		__builtin_memcpy(k.addr, addr, 16);
		if (bpf_map_lookup_elem(&prefixes, &k))
			return 1;
	}
	return 0;
}

static __always_inline void record(struct bind *b, __u32 rule, __u8 flags)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &rule);
	if (n)
		*n += 1;
	struct denial *d = bpf_ringbuf_reserve(&denials, sizeof(*d), 0);
	if (!d) {
		__u32 zero = 0;
		__u64 *l = bpf_map_lookup_elem(&lost, &zero);
		if (l)
			*l += 1;
		return;
	}
	struct task_struct *task = bpf_get_current_task_btf();
	d->ts_ns = bpf_ktime_get_ns();
	d->cgroup_id = bpf_get_current_cgroup_id();
	d->pid = tgid_in_ns(task, reader_pidns);
	d->rule = rule;
	d->port = b->port;
	d->protocol = b->protocol;
	d->family = b->family;
	d->flags = flags | (b->v6only ? D_V6ONLY : 0);
	d->errno_ = (flags & (D_DRYRUN | D_REWRITTEN)) ? 0 : EPERM;
	d->pad = 0;
	__builtin_memcpy(d->addr, b->addr, 16);
	if (bpf_get_current_comm(d->comm, sizeof(d->comm)))
		d->comm[0] = 0;
	bpf_ringbuf_submit(d, 0);
}

/* Verdicts of judge. */
#define V_ALLOW 1
#define V_DENY 0
#define V_REWRITE 2

/*
 * judge decides one bind; *rule is the rule that refused it. Port 0 is judged by post_bind
 * (the caller handles it).
 */
static __always_inline int judge(struct bind *b, __u32 *rule)
{
	__u32 k = (b->protocol == IPPROTO_UDP ? 65536 : 0) | b->port;
	__u32 idx = k / PORTBITS_CHUNK;
	struct port_bits *pb = bpf_map_lookup_elem(&portbits, &idx);
	if (!pb)
		return V_ALLOW; /* cannot happen: idx < PORTBITS_ENTRIES */
	__u32 f = pb->f[k % PORTBITS_CHUNK];
	if (f & P_RULE) {
		int v = V_ALLOW;
		if (!addr_allowed(f, b, b->addr)) {
			v = (f & P_REWRITE) && (is_any6(b->addr) || is_any4(b->addr)) ? V_REWRITE : V_DENY;
		} else if (b->family == AF_INET6 && !b->v6only && is_any6(b->addr)) {
			/* A dual-stack :: also takes 0.0.0.0. */
			__u8 any4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
			if (!addr_allowed(f, b, any4))
				v = V_DENY;
		}
		if (v != V_ALLOW) {
			struct port_key pk = {.protocol = b->protocol, .port = b->port};
			struct port_rule *pr = bpf_map_lookup_elem(&ports, &pk);
			if (pr)
				*rule = pr->rule;
		}
		return v;
	}
	if (!(f & P_GUARD))
		return V_ALLOW;
	for (__u32 i = 0; i < MAX_GUARD; i++) {
		__u32 gi = i;
		struct guard_range *g = bpf_map_lookup_elem(&guard, &gi);
		if (!g || !g->used)
			break;
		if (b->port >= g->lo && b->port <= g->hi && (!g->protocol || g->protocol == b->protocol)) {
			*rule = g->rule;
			break;
		}
	}
	return V_DENY;
}

static __always_inline __u32 mode(void)
{
	__u32 zero = 0;
	struct config *c = bpf_map_lookup_elem(&config, &zero);
	return c ? c->mode : MODE_DENY;
}

/* verdict applies the mode to a judgement and records a denial; it returns 1 to allow. */
static __always_inline int verdict(struct bind *b, int v, __u32 rule, __u8 flags)
{
	if (v == V_ALLOW)
		return 1;
	if (mode() == MODE_DRYRUN) {
		record(b, rule, flags | D_DRYRUN);
		return 1;
	}
	record(b, rule, flags);
	return 0;
}

/* v6only reads sk->sk_ipv6only (bpf_getsockopt cannot read IPV6_V6ONLY in these hooks). */
static __always_inline __u8 v6only(void *ctx)
{
	struct sock *sk = BPF_CORE_READ((struct bpf_sock_addr_kern *)ctx, sk);
	if (!sk)
		return 0;
	return BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_ipv6only);
}

static __always_inline int on_bind(struct bpf_sock_addr *ctx, struct bind *b)
{
	__u32 proto = ctx->protocol;
	if (proto == IPPROTO_MPTCP)
		proto = IPPROTO_TCP; /* an MPTCP listener takes the TCP port */
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 1;
	b->protocol = proto;
	b->port = bpf_ntohs(ctx->user_port);
	if (b->port == 0) {
		if (is_loopback(b->addr))
			return 1; /* always allowed: Go's IPv6 probe and ephemeral loopback binds */
		/* Judge the chosen port in post_bind. */
		__u8 *m = bpf_sk_storage_get(&port0, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (m)
			*m = 1;
		return 1;
	}
	__u32 rule = 0;
	int v = judge(b, &rule);
	/* bind6 reads v6only (two probe reads) only for ::, where the verdict needs it; a record
	 * of another address gets it here. */
	if (v != V_ALLOW && b->family == AF_INET6 && !is_any6(b->addr))
		b->v6only = v6only(ctx);
	if (v == V_REWRITE) {
		if (mode() == MODE_REWRITE) {
			record(b, rule, D_REWRITTEN);
			if (b->family == AF_INET) {
				ctx->user_ip4 = bpf_htonl(0x7f000001);
			} else if (is_any6(b->addr)) {
				ctx->user_ip6[0] = 0;
				ctx->user_ip6[1] = 0;
				ctx->user_ip6[2] = 0;
				ctx->user_ip6[3] = bpf_htonl(1);
			} else {
				ctx->user_ip6[3] = bpf_htonl(0x7f000001);
			}
			return 1;
		}
		v = V_DENY;
	}
	return verdict(b, v, rule, 0);
}

/* set_mapped4 holds an IPv4 address (network order) as ::ffff:a.b.c.d, so one key covers
 * both families' hooks. */
static __always_inline void set_mapped4(struct bind *b, __u32 a)
{
	b->addr[10] = 0xff;
	b->addr[11] = 0xff;
	__builtin_memcpy(b->addr + 12, &a, 4);
}

SEC("cgroup/bind4")
int bindguard_enforce_bind4(struct bpf_sock_addr *ctx)
{
	struct bind b = {.family = AF_INET};
	set_mapped4(&b, ctx->user_ip4);
	return on_bind(ctx, &b);
}

SEC("cgroup/bind6")
int bindguard_enforce_bind6(struct bpf_sock_addr *ctx)
{
	struct bind b = {.family = AF_INET6};
	__u32 w[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};
	__builtin_memcpy(b.addr, w, 16);
	if (is_any6(b.addr))
		b.v6only = v6only(ctx);
	return on_bind(ctx, &b);
}

/* take_mark: whether bind marked the socket (a bind to port 0 off loopback); it clears it. */
static __always_inline int take_mark(struct bpf_sock *ctx)
{
	__u8 *m = bpf_sk_storage_get(&port0, ctx, 0, 0);
	if (!m || !*m)
		return 0;
	*m = 0;
	return 1;
}

/* post_bind: a bind to port 0 (off loopback) is judged on the port the kernel chose; every
 * other bind returns after take_mark, before reading anything else. */
static __always_inline int on_post_bind(struct bpf_sock *ctx, struct bind *b)
{
	__u32 proto = ctx->protocol;
	if (proto == IPPROTO_MPTCP)
		proto = IPPROTO_TCP;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 1;
	b->protocol = proto;
	b->port = ctx->src_port;
	__u32 rule = 0;
	int v = judge(b, &rule);
	if (v == V_REWRITE)
		v = V_DENY; /* the address is bound already */
	return verdict(b, v, rule, D_POSTBIND);
}

SEC("cgroup/post_bind4")
int bindguard_enforce_post_bind4(struct bpf_sock *ctx)
{
	if (!take_mark(ctx))
		return 1;
	struct bind b = {.family = AF_INET};
	set_mapped4(&b, ctx->src_ip4);
	return on_post_bind(ctx, &b);
}

SEC("cgroup/post_bind6")
int bindguard_enforce_post_bind6(struct bpf_sock *ctx)
{
	if (!take_mark(ctx))
		return 1;
	struct bind b = {.family = AF_INET6};
	__u32 w[4] = {ctx->src_ip6[0], ctx->src_ip6[1], ctx->src_ip6[2], ctx->src_ip6[3]};
	__builtin_memcpy(b.addr, w, 16);
	b.v6only = BPF_CORE_READ_BITFIELD_PROBED((struct sock *)ctx, __sk_common.skc_ipv6only);
	return on_post_bind(ctx, &b);
}
