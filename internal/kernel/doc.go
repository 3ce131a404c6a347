// Package kernel owns every BPF program, map and link of bindguard: the owner scan (a
// task_file iterator that lists the sockets every process holds, with pids as bindguard's own
// pid namespace numbers them) and the live event source (TCP listeners opening and closing,
// UDP sockets binding and closing, read from a ring buffer). The programs are C sources in
// bpf/, compiled with bpf2go into committed objects (CO-RE: relocated against the running
// kernel's BTF at load time), so building bindguard needs no compiler. See docs/kernel.md.
//
// Everything that touches the kernel is Linux-only (files named _linux.go); on other systems
// the package holds only this documentation.
package kernel
