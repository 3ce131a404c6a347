import socket


class Acceptor:
    def bind_af_unspecified(self, addr):
        host, port = addr
        if host == "":
            host = None
        info = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
        for res in info:
            af, socktype, proto, canonname, sa = res
            self.socket = socket.socket(af, socktype)
            self.bind(sa)
            break
