"""Listens on $BINDGUARD_UPSTREAM (so bindguard run --guard starts serving), writes the name of
every SIGHUP, SIGUSR1, SIGUSR2 and SIGINT it gets to the file argv[1], exits 3 on SIGTERM."""
import os
import signal
import socket
import sys

log = sys.argv[1]


def record(sig, _frame):
    with open(log, "a") as f:
        f.write(signal.Signals(sig).name + "\n")


for s in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT):
    signal.signal(s, record)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.bind(os.environ["BINDGUARD_UPSTREAM"])
sock.listen(8)
with open(log, "a") as f:
    f.write("ready\n")
while True:
    signal.pause()
