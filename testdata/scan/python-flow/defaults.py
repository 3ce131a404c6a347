"""Defaults that decide the address: a dict's .get, getattr's, prometheus_client's addr; and a
free-port probe, which binds every interface but never listens."""
import configparser
import socket
from wsgiref.simple_server import make_server

from prometheus_client import start_http_server


def wsgiref_runner(app, global_conf, **kw):
    # pyramid's pserve runner: the paste.deploy config's host, else every interface.
    host = kw.get("host", "0.0.0.0")
    port = int(kw.get("port", 8080))
    make_server(host, port, app)


def from_options(app, opts):
    make_server(getattr(opts, "listen", ""), 8081, app)


def from_ini(app, path):
    cfg = configparser.ConfigParser()
    cfg.read(path)
    # Trap: "host" is the option's name, not a default; the value is the file's.
    make_server(cfg.get("server", "host"), 8082, app)
    make_server(cfg.get("server", "host", fallback="0.0.0.0"), 8083, app)


def metrics():
    start_http_server(9100)
    start_http_server(9101, addr="127.0.0.1")  # loopback: allowed


def free_port():
    # Trap: bound to learn a free port, closed without listening.
    s = socket.socket()
    s.bind(("", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening_on_any_port():
    s = socket.socket()
    s.bind(("", 0))
    s.listen(5)
    return s.getsockname()[1], s


def kept_port(server):
    s = socket.socket()
    s.bind(("", 0))
    server.sock = s  # kept: listened on elsewhere
    return s.getsockname()[1]
