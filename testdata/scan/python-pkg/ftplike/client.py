import asyncio


class Client:
    async def connect(self, host="0.0.0.0", port=21):
        # A client: opens a connection, binds nothing.
        self.reader, self.writer = await asyncio.open_connection(host, port)
