"""http.server's shape: an argparse option without a default flows into a server's bind
through two calls and getaddrinfo(AI_PASSIVE)."""
import argparse
import socket
import socketserver
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _best_family(*address):
    infos = socket.getaddrinfo(*address, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, type, proto, canonname, sockaddr = next(iter(infos))
    return family, sockaddr


def serve(Server=ThreadingHTTPServer, port=8000, bind=None):
    Server.address_family, addr = _best_family(bind, port)
    with Server(addr, BaseHTTPRequestHandler) as httpd:
        host, port = httpd.socket.getsockname()[:2]  # assigned after the bind: not its port
        httpd.serve_forever()


class DualStackServer(ThreadingHTTPServer):
    pass


def listen_udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, port))
    return s


def connect_first(host, port):
    # A client's resolution (no AI_PASSIVE): None is loopback, so the bind below is allowed.
    for res in socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM):
        af, socktype, proto, canonname, sa = res
        s = socket.socket(af, socktype, proto)
        s.bind(sa)
        return s


def twice(host):
    # Called from two places: the host is not one value, no finding here.
    return socketserver.TCPServer((host, 7000), BaseHTTPRequestHandler)


def never_called(host=None, port=7001):
    # Library code: the caller is elsewhere; None is not static here.
    return socketserver.TCPServer((host, port), BaseHTTPRequestHandler)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-b", "--bind", metavar="ADDRESS", help="default: all interfaces")
    parser.add_argument("--udp-listen", dest="uhost", default="0.0.0.0")
    parser.add_argument("--peer", default="0.0.0.0")  # compared below, never bound
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--unset")  # no default: None in a tuple is a TypeError, not a bind
    parser.add_argument("port", type=int, nargs="?", default=8000)
    args = parser.parse_args()
    if args.peer == "0.0.0.0":
        print("peer unset")
    listen_udp(args.uhost, 9000)
    socket.socket().bind((args.unset, 9001))
    twice("0.0.0.0")
    twice("127.0.0.1")
    connect_first(None, 80)
    serve(Server=DualStackServer, port=args.port, bind=args.bind)


if __name__ == "__main__":
    main()
