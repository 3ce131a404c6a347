import socket

s = socket.socket()
s.bind(("0.0.0.0", 6379))  # redis is localhost_only: reported, critical
t = socket.socket()
t.bind(("127.0.0.1", 6379))  # allowed
