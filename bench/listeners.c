/* listeners: the load generator for bench/audit-vs-peers.sh.
 *
 *   listeners N_SOCKETS N_PROCS N_IDLE FILES_PER_IDLE [N_UDP]
 *
 * Forks N_PROCS children that together hold N_SOCKETS listening TCP sockets (on 127.0.0.1,
 * 127.0.0.2, ... ports 20000-59999) and N_UDP bound UDP sockets (same addresses and ports),
 * and N_IDLE children that each hold FILES_PER_IDLE open
 * files, prints "ready" once all are set up, and on end of standard input kills its children
 * (by pid) and exits. Run it inside a network namespace of its own. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int listen_on(long i, int type) {
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)(20000 + i % 40000));
	sa.sin_addr.s_addr = htonl(0x7f000001u + (unsigned)(i / 40000));
	int fd = socket(AF_INET, type, 0);
	if (fd < 0) return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return -1;
	if (type == SOCK_STREAM && listen(fd, 1) < 0) return -1;
	return fd;
}

int main(int argc, char **argv) {
	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: listeners N_SOCKETS N_PROCS N_IDLE FILES_PER_IDLE [N_UDP]\n");
		return 2;
	}
	long n = atol(argv[1]), procs = atol(argv[2]), idle = atol(argv[3]), files = atol(argv[4]);
	long udp = argc == 6 ? atol(argv[5]) : 0;
	if (n < 0 || procs < 1 || idle < 0 || files < 0 || udp < 0) return 2;
	struct rlimit rl = {65536 * 4, 65536 * 4};
	setrlimit(RLIMIT_NOFILE, &rl);
	int ready[2];
	if (pipe(ready) < 0) return 1;
	long total = procs + idle;
	pid_t parent = getpid(); /* 1 when it runs as a pid namespace's init */
	pid_t *kids = calloc((size_t)total, sizeof(pid_t));
	for (long p = 0; p < total; p++) {
		pid_t pid = fork();
		if (pid < 0) { perror("fork"); return 1; }
		if (pid == 0) {
			/* Die with the parent, however it ends: no child outlives a benchmark. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent) _exit(1);
			close(ready[0]);
			if (p < procs) {
				for (long i = p; i < n; i += procs)
					if (listen_on(i, SOCK_STREAM) < 0) { perror("listen"); _exit(1); }
				for (long i = p; i < udp; i += procs)
					if (listen_on(i, SOCK_DGRAM) < 0) { perror("bind udp"); _exit(1); }
			} else {
				for (long f = 0; f < files; f++)
					if (open("/dev/null", O_RDONLY) < 0) { perror("open"); _exit(1); }
			}
			if (write(ready[1], "x", 1) != 1) _exit(1);
			for (;;) pause();
		}
		kids[p] = pid;
	}
	close(ready[1]);
	char c;
	for (long got = 0; got < total; got++)
		if (read(ready[0], &c, 1) != 1) { fprintf(stderr, "a child failed\n"); break; }
	printf("ready\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0) {}
	for (long p = 0; p < total; p++) kill(kids[p], SIGKILL);
	while (wait(NULL) > 0) {}
	return 0;
}
