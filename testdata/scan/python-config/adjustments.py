import os


class _str_marker(str):
    pass


class _int_marker(int):
    pass


class Adjustments:
    """A server's tunables, as class attributes (waitress)."""

    # hostname or IP address to listen on
    host = _str_marker("0.0.0.0")

    port = _int_marker(8080)

    listen = [f"{host}:{port}"]  # the same default again, interpolated: not a second finding

    upstream_host = "0.0.0.0"  # not a listen attribute
    trusted_proxy = None

    def check(self):
        if self.host == "0.0.0.0":  # a comparison is not a bind
            return True
        return False


class ServerSettings(object):
    bind_address: str = "::"
    listen = ["0.0.0.0:9000", "127.0.0.1:9001"]
    address = ""  # left to a default elsewhere: ambiguous, no finding
    if os.environ.get("PUBLIC"):
        host = "0.0.0.0"
    else:
        host = "127.0.0.1"


class LocalOptions:
    host = "127.0.0.1"
    port = 7000


class Firewall:
    ALLOWED = ["0.0.0.0"]  # an allow-list in a class that is not configuration
    host = "0.0.0.0"  # nor is this class server configuration


class ClientConfig:
    url = "http://0.0.0.0:8080/"  # a client URL
    server_url = "0.0.0.0:8080"
