/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Minimal CO-RE definitions of the kernel structures bindguard's BPF programs read. Only the
 * fields used are declared; preserve_access_index makes clang record every access as a BTF
 * relocation, which cilium/ebpf resolves against the running kernel's BTF at load time, so
 * the layout here need not match any kernel (and struct randomisation is honoured).
 * The UAPI context types (struct bpf_sock, struct bpf_sock_ops) come from <linux/bpf.h>.
 */
#ifndef BINDGUARD_H
#define BINDGUARD_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define AF_INET 2
#define AF_INET6 10
#define SOCK_DGRAM 2
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define TCP_ESTABLISHED 1
#define TCP_CLOSE 7
#define TCP_LISTEN 10
#define S_IFMT 0xf000
#define S_IFSOCK 0xc000
#define TASK_COMM_LEN 16
/* The kernel's MAX_PID_NS_LEVEL. */
#define MAX_PID_NS_LEVEL 32

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct pid_namespace {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct upid {
	int nr;
	struct pid_namespace *ns;
} __attribute__((preserve_access_index));

struct pid {
	unsigned int level;
	struct upid numbers[1];
} __attribute__((preserve_access_index));

struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct nsproxy {
	struct net *net_ns;
} __attribute__((preserve_access_index));

struct task_struct {
	int tgid;
	struct task_struct *group_leader;
	struct pid *thread_pid;
	char comm[TASK_COMM_LEN];
	struct css_set *cgroups;
	struct nsproxy *nsproxy;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct in6_addr {
	__u8 s6_addr[16];
} __attribute__((preserve_access_index));

struct sock_common {
	__be32 skc_rcv_saddr;
	__u16 skc_num;
	unsigned short skc_family;
	unsigned char skc_state;
	unsigned char skc_reuse : 4;
	unsigned char skc_reuseport : 1;
	unsigned char skc_ipv6only : 1;
	unsigned char skc_net_refcnt : 1;
	possible_net_t skc_net;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
	__u16 sk_type;
} __attribute__((preserve_access_index));

struct inet_sock {
	struct sock sk;
	__be16 inet_sport;
} __attribute__((preserve_access_index));

struct tcp_sock {
	struct sock sk; /* not the real layout: only used through bpf_skc_to_tcp_sock */
} __attribute__((preserve_access_index));

struct inode {
	unsigned short i_mode;
	unsigned long i_ino;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
} __attribute__((preserve_access_index));

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
} __attribute__((preserve_access_index));

/*
 * upid_at reads pid->numbers[level] (a flexible array the verifier cannot index directly) with
 * probe reads at CO-RE-relocated offsets. It returns the number and the namespace's inode, or 0.
 */
static __always_inline int upid_at(struct pid *pid, __u32 level, __u32 *ns_ino)
{
	struct upid *u = (struct upid *)((void *)pid + bpf_core_field_offset(struct pid, numbers) +
					 (__u64)level * bpf_core_type_size(struct upid));
	struct pid_namespace *ns = 0;
	int nr = 0;

	if (bpf_probe_read_kernel(&ns, sizeof(ns), (void *)u + bpf_core_field_offset(struct upid, ns)) ||
	    !ns)
		return 0;
	if (bpf_probe_read_kernel(&nr, sizeof(nr), (void *)u + bpf_core_field_offset(struct upid, nr)))
		return 0;
	*ns_ino = BPF_CORE_READ(ns, ns.inum);
	return nr;
}

/*
 * tgid_in_ns is the kernel's task_tgid_nr_ns(task, ns) for the pid namespace whose inode is
 * ns_ino: the number of the task's thread-group leader at the level where that namespace sits,
 * or 0 when the task is not visible in it (it lives in a namespace that is not a descendant).
 * The level is not known in advance (a reader in a container cannot learn its own depth), so
 * it walks the leader's levels from the top; tasks on a host are at level 0, in a container
 * at 1, so this is one or two steps in practice.
 */
static __always_inline __u32 tgid_in_ns(struct task_struct *task, __u32 ns_ino)
{
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	__u32 level, ino;
	int nr;

	if (!pid)
		return 0;
	level = BPF_CORE_READ(pid, level);
	for (__u32 i = 0; i < MAX_PID_NS_LEVEL; i++) {
		if (i > level)
			break;
		ino = 0;
		nr = upid_at(pid, i, &ino);
		if (nr > 0 && ino == ns_ino)
			return nr;
	}
	return 0;
}

/* The kernel's context behind struct bpf_sock_addr (cgroup/bind4, bind6): the socket. */
struct bpf_sock_addr_kern {
	struct sock *sk;
} __attribute__((preserve_access_index));

#endif
