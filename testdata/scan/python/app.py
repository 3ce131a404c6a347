from flask import Flask

app = Flask(__name__)
ALLOWED = ["0.0.0.0"]

if __name__ == "__main__":
    app.run(host="")  # Flask's "" is 127.0.0.1
