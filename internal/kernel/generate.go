package kernel

// The BPF programs are C sources in bpf/, compiled by bpf2go (Debian's clang) into the
// committed *_bpfel.o objects and their Go loaders; `make generate` reruns this and
// `make generate-check` fails when the committed files differ from a fresh build.

//go:generate go tool bpf2go -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror" owners bpf/owners.c -- -I./bpf -I./bpf/include
//go:generate go tool bpf2go -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror" live bpf/live.c -- -I./bpf -I./bpf/include
//go:generate go tool bpf2go -tags linux -target bpfel -cflags "-O2 -g -Wall -Werror" enforce bpf/enforce.c -- -I./bpf -I./bpf/include
