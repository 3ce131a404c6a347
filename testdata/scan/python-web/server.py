import argparse
import os
import socket
import socketserver
from http.server import HTTPServer, BaseHTTPRequestHandler

import uvicorn
from aiohttp import web

HOST = "0.0.0.0"
BLOCKED = ["0.0.0.0", "::"]  # a deny list is not a bind


def is_wildcard(addr):
    return addr == "0.0.0.0" or addr in BLOCKED  # a comparison is not a bind


def api(app):
    uvicorn.run(app, host=HOST, port=8000)


def api_local(app):
    uvicorn.run(app)  # 127.0.0.1:8000


def api_env(app):
    uvicorn.run(app, host=os.environ.get("API_HOST", "0.0.0.0"), port=int(os.getenv("API_PORT", "8001")))


def aio(app):
    web.run_app(app)  # no host: every interface, 8080


def aio_local(app):
    web.run_app(app, host="127.0.0.1", port=8081)


def raw(port=9000):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", port))
    t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    t.bind(("::", 9001))
    u = socket.socket(socket.AF_INET6)
    u.bind(("::1", 9002))  # loopback


def stdlib():
    HTTPServer(("", 8088), BaseHTTPRequestHandler).serve_forever()
    socketserver.TCPServer(("127.0.0.1", 8089), BaseHTTPRequestHandler)


def client():
    c = socket.create_connection(("0.0.0.0", 80))  # a dial target is not a bind
    return c


def main(host="0.0.0.0"):
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="0.0.0.0", help="address to bind")
    p.add_argument("--redis-host", default="0.0.0.0")  # a client's target
    p.add_argument("--port", type=int, default=8000)
    uvicorn.run("app:app", host=host, port=8002)
