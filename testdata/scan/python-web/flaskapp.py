from flask import Flask

app = Flask(__name__)

if __name__ == "__main__":
    app.run(host="0.0.0.0", port=5001)
    app.run()
    app.run(host="")  # Flask's "" is 127.0.0.1
    app.run(debug=True, host="::")
    # bindguard:allow py-server-run -- behind the site firewall, see ops/firewall.md
    app.run(host="0.0.0.0", port=5002)
