"""parse_known_args, a local parse function, and a --host option bound directly: one finding
at the bind (its origin the option), not a second one at the option."""
import argparse
import socket


def options():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="0.0.0.0", help="address to bind")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--admin", default="127.0.0.1")
    return p.parse_known_args()


def run():
    args, _rest = options()
    s = socket.socket()
    s.bind((args.host, args.port))
    a = socket.socket(socket.AF_INET6)
    a.bind((args.admin, 8081))
    return s, a


run()
