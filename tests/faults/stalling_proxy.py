"""A TCP proxy on 127.0.0.1 that stalls: after a (seeded) random number of client bytes it stops
forwarding in both directions for `stall_seconds`, keeping the connection open (a congested or
half-dead network path), `stalls` times in all."""
import asyncio
import random
import threading
import time


class StallingProxy:
    def __init__(self, target_port: int, seed: int, min_bytes: int, max_bytes: int, stalls: int,
                 stall_seconds: float):
        self.target_port = target_port
        self.random = random.Random(seed)
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes
        self.stalls_left = stalls
        self.stall_seconds = stall_seconds
        self.stalls_done = 0
        self.stalled_seconds = 0.0
        self.connections = 0
        self.port = None
        self._budget = self.random.randint(min_bytes, max_bytes)
        self._resume_at = 0.0
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

    async def _hold(self):
        now = time.monotonic()
        if now < self._resume_at:
            await asyncio.sleep(self._resume_at - now)

    async def _handle(self, client_reader, client_writer):
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return

        async def pipe(reader, writer, counted):
            try:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    await self._hold()
                    if counted and self.stalls_left > 0:
                        self._budget -= len(data)
                        if self._budget <= 0:
                            self.stalls_left -= 1
                            self.stalls_done += 1
                            self.stalled_seconds += self.stall_seconds
                            self._budget = self.random.randint(self.min_bytes, self.max_bytes)
                            self._resume_at = time.monotonic() + self.stall_seconds
                            await self._hold()
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                for w in (client_writer, server_writer):
                    w.transport.abort()

        await asyncio.gather(pipe(client_reader, server_writer, True), pipe(server_reader, client_writer, False))
