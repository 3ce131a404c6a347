"""Library shapes: the caller's host is not a finding; a Server class the scanner does not know
is read by its host keyword."""
import argparse
import socket

from dnslib.server import DNSServer
from rpyc.utils.registry import UDPRegistryServer


class Port:
    interface = ""  # twisted's class default: the instance's comes from the constructor

    def __init__(self, port, interface=""):
        self.port = port
        self.interface = interface  # a method's parameter: its callers'

    def startListening(self):
        s = socket.socket()
        s.bind((self.interface, self.port))


def bind_unspecified(addr):
    host, port = addr
    if host == "":
        host = None  # normalising the caller's host: still the caller's
    for res in socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE):
        af, socktype, proto, canonname, sa = res
        socket.socket(af, socktype, proto).bind(sa)


def broadcast(bind=None):
    host = bind[0] or ""  # the caller's host, "" only when it passes none
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind((host, 9091))


def main(ipv6=False):
    p = argparse.ArgumentParser()
    p.add_argument("--address", "-a", default="", help="Listen address (default:all)")
    p.add_argument("--port", "-p", type=int, default=53)
    args = p.parse_args()
    DNSServer(None, port=args.port, address=args.address)
    DNSServer(None, port=args.port, address=args.address, tcp=True)
    UDPRegistryServer(host="::" if ipv6 else "0.0.0.0", port=18811)
    UDPRegistryServer(host="::1" if ipv6 else "0.0.0.0", port=18812)  # not every interface either way
    DNSServer(None, address=None)  # the library's default: unknown here
    self_run = Runner()
    self_run.run("")  # not a host: run("") with no port and no Flask


class Config:
    _bind = ["127.0.0.1:8000"]  # hypercorn: a leading underscore, loopback (allowed)
    _listen = ["0.0.0.0:8001"]
