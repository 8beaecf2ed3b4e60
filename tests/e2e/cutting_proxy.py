"""A TCP proxy on 127.0.0.1 that cuts every connection after a (seeded) random number of bytes
from the client, to test that reconnects lose and duplicate nothing."""
import asyncio
import random
import threading


class LoopbackProxy:
    """The shared part of the test proxies: an asyncio server on 127.0.0.1 (ephemeral port) run by
    its own thread; subclasses implement `_handle(client_reader, client_writer)`."""

    def __init__(self, target_port: int, seed: int, min_bytes: int, max_bytes: int):
        self.target_port = target_port
        self.random = random.Random(seed)
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes
        self.port = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()


class CuttingProxy(LoopbackProxy):
    def __init__(self, target_port: int, seed: int, min_bytes: int, max_bytes: int, cuts: int):
        super().__init__(target_port, seed, min_bytes, max_bytes)
        self.cuts_left = cuts
        self.cuts_done = 0

    async def _handle(self, client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        budget = None
        if self.cuts_left > 0:
            self.cuts_left -= 1
            budget = self.random.randint(self.min_bytes, self.max_bytes)

        async def pipe(reader, writer, limited):
            nonlocal budget
            try:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    if limited and budget is not None:
                        if len(data) >= budget:
                            writer.write(data[:budget])
                            self.cuts_done += 1
                            raise ConnectionResetError("cut")
                        budget -= len(data)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                for w in (client_writer, server_writer):
                    w.transport.abort()

        await asyncio.gather(pipe(client_reader, server_writer, True), pipe(server_reader, client_writer, False))
