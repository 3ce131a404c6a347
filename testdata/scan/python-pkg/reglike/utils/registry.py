import socket

REGISTRY_PORT = 18811


class TCPRegistryServer:
    def __init__(self, host="0.0.0.0", port=REGISTRY_PORT, timeout=None):
        family, socktype, proto, _, sockaddr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
        sock = socket.socket(family, socktype, proto)
        sock.bind(sockaddr)
        sock.listen(10)
        self.sock = sock


class TCPRegistryClient:
    def __init__(self, ip, port=REGISTRY_PORT):
        self.ip, self.port = ip, port

    def discover(self, name):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.connect((self.ip, self.port))
        return sock


def serve_udp(host, port=REGISTRY_PORT):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, port))
    return s
