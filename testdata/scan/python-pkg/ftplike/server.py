import asyncio

__all__ = ("Server",)


class Server:
    def __init__(self, users=None):
        self.users = users

    async def start(self, host=None, port=0, **kwargs):
        self.server = await asyncio.start_server(
            self.dispatcher,
            host,
            port,
            **kwargs,
        )

    async def run(self, host=None, port=0, **kwargs):
        await self.start(host=host, port=port, **kwargs)

    async def dispatcher(self, reader, writer):
        pass
