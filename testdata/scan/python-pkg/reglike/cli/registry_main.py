import sys

from reglike.utils.registry import TCPRegistryServer, TCPRegistryClient
from ..utils import registry
from ..utils.registry import serve_udp as udp


def main():
    if sys.argv[1:] == ["tcp"]:
        server = TCPRegistryServer(port=18812)
    elif sys.argv[1:] == ["local"]:
        server = TCPRegistryServer("127.0.0.1")
    else:
        server = registry.TCPRegistryServer(timeout=3)
    client = TCPRegistryClient("0.0.0.0")
    client.discover("x")
    udp("", 18813)
    udp(sys.argv[2])
    return server
