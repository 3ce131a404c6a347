"""parse_known_args, a local parse function, and a --host option bound directly: one finding
at the bind (its origin the option), not a second one at the option."""
import argparse
import socket
from http.server import HTTPServer


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


def optparse_main():
    import optparse
    from wsgiref.simple_server import make_server

    parser = optparse.OptionParser()
    parser.add_option("-H", "--host", default="localhost", help="hostname to bind server on")
    parser.add_option("-i", "--interface", default=None, metavar="ADDRESS")
    parser.add_option("-p", "--port", type="int", default=8080)
    options, args = parser.parse_args()
    make_server(options.host, options.port, None)  # loopback: allowed, and no finding at the option
    make_server(options.interface, 8081, None)  # None: not an address for wsgiref


def serve_on(port, server_class):
    # The port and the class come through the call; the host is this line's own: reported here.
    server_class(("0.0.0.0", port), None)


serve_on(8090, HTTPServer)
