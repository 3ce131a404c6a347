import socket


def test_bind():
    s = socket.socket()
    s.bind(("0.0.0.0", 0))  # test code
