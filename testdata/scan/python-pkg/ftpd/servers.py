from .loop import Acceptor


class FTPServer(Acceptor):
    def __init__(self, address_or_socket, handler):
        if callable(getattr(address_or_socket, "listen", None)):
            self.socket = address_or_socket
        else:
            self.bind_af_unspecified(address_or_socket)
        self.handler = handler
