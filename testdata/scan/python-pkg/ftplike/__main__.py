import argparse
import asyncio

import ftplike

parser = argparse.ArgumentParser(prog="python -m ftplike")
parser.add_argument("--host", default=None)
parser.add_argument("--port", type=int, default=2121)
args = parser.parse_args()


async def main():
    server = ftplike.Server([])
    await server.run(args.host, args.port)
    local = ftplike.Server([])
    await local.run("127.0.0.1", 2122)
    c = ftplike.Client()
    await c.connect()


asyncio.run(main())
