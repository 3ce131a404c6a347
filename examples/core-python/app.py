"""The seed's intelligent-core-service (service-binding-spec.md, section 2.1) without its own
client check: bindguard run binds it where the policy says and, with --guard, admits clients
by the policy (the seed's before_request hook trusted the leftmost X-Forwarded-For, which any
client can write). Behind --guard, X-Forwarded-For holds the one client bindguard resolved.
"""
from flask import Flask, jsonify, request

app = Flask(__name__)


def client():
    # Set by bindguard run --guard: the client it admitted, never what the client wrote.
    return request.headers.get("X-Forwarded-For", request.remote_addr)


@app.route("/health")
def health():
    return jsonify(status="healthy", service="intelligent-core-service", client=client())


@app.route("/api/portfolio")
def get_portfolio():
    return jsonify(portfolio=[{"symbol": "SAP", "shares": 10}, {"symbol": "SIE", "shares": 4}], client=client())


@app.route("/internal/metrics")
def internal_metrics():
    return jsonify(metrics={"requests": 1}, client=client())
