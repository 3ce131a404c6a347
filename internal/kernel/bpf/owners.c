// SPDX-License-Identifier: GPL-2.0
/*
 * The owner scan: a task_file iterator that walks every open file of every process and writes
 * out only the sockets, as 16-byte records {tgid, fd, inode}. The first record of a session is
 * a header {reader's tgid, 0xffffffff, 0}. Tgids are numbered as the reader's (bindguard's) pid
 * namespace numbers them, the kernel's task_tgid_nr_ns(): tasks not visible there are skipped,
 * so the scan works inside a container.
 */
#include "bindguard.h"

char LICENSE[] SEC("license") = "GPL"; /* bpf_seq_write is GPL-only */

struct record {
	__u32 tgid;
	__u32 fd;
	__u64 inode;
};

/* The reader's pid namespace (its level and inode), found on the session's first object. */
__u32 reader_level;
__u32 reader_ns;
/* The last task seen and its tgid in the reader's namespace (files come grouped by task). */
struct task_struct *last_task;
__u32 last_tgid;

static __always_inline __u32 tgid_at_level(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	__u32 ino = 0;
	int nr;

	if (!pid || BPF_CORE_READ(pid, level) < reader_level)
		return 0;
	nr = upid_at(pid, reader_level, &ino);
	if (nr <= 0 || ino != reader_ns)
		return 0;
	return nr;
}

SEC("iter/task_file")
int bindguard_socks(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct record r = {};

	if (ctx->meta->seq_num == 0) {
		struct task_struct *me = bpf_get_current_task_btf();
		struct pid *pid = BPF_CORE_READ(me, thread_pid);
		__u32 ino = 0;

		if (!pid)
			return 0;
		reader_level = BPF_CORE_READ(pid, level);
		if (!upid_at(pid, reader_level, &ino))
			return 0;
		reader_ns = ino;
		last_task = 0;
		/* the header: the reader's own tgid as its namespace numbers it */
		r.tgid = tgid_at_level(me);
		r.fd = 0xffffffff;
		bpf_seq_write(seq, &r, sizeof(r));
	}
	if (!file || !task)
		return 0;
	struct inode *inode = file->f_inode;
	if (!inode || (inode->i_mode & S_IFMT) != S_IFSOCK)
		return 0;
	if (task != last_task) {
		last_task = task;
		last_tgid = tgid_at_level(task);
	}
	if (!last_tgid)
		return 0;
	r.tgid = last_tgid;
	r.fd = ctx->fd;
	r.inode = inode->i_ino;
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}
