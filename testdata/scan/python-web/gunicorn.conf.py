import os

bind = ["0.0.0.0:8000", "unix:/run/app.sock", "127.0.0.1:8001"]
workers = int(os.environ.get("WORKERS", "4"))
