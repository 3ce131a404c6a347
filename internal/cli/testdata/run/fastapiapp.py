"""A FastAPI app for bindguard run's tests: it answers with who it is and what it was told."""
import os

from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/")
async def whoami(request: Request):
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "x_forwarded_for": request.headers.get("x-forwarded-for"),
        "x_real_ip": request.headers.get("x-real-ip"),
        "forwarded": request.headers.get("forwarded"),
        "remote_addr": request.client.host if request.client else None,
    }
