"""A Flask app for bindguard run's tests: it answers with who it is and what it was told."""
import os

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/")
def whoami():
    return jsonify(
        pid=os.getpid(),
        ppid=os.getppid(),
        x_forwarded_for=request.headers.get("X-Forwarded-For"),
        x_real_ip=request.headers.get("X-Real-IP"),
        forwarded=request.headers.get("Forwarded"),
        remote_addr=request.remote_addr,
    )
