import uvicorn

uvicorn.run("app:app", host="0.0.0.0", port=3000)  # runs in a container (scan rule): allowed
