"""A TCP proxy on 127.0.0.1 that stalls: after a (seeded) random number of client bytes it stops
forwarding in both directions for `stall_seconds`, keeping the connection open (a congested or
half-dead network path), `stalls` times in all."""
import asyncio
import time

from cutting_proxy import LoopbackProxy  # tests/e2e, on the path of the fault tests


class StallingProxy(LoopbackProxy):
    def __init__(self, target_port: int, seed: int, min_bytes: int, max_bytes: int, stalls: int,
                 stall_seconds: float):
        super().__init__(target_port, seed, min_bytes, max_bytes)
        self.stalls_left = stalls
        self.stall_seconds = stall_seconds
        self.stalls_done = 0
        self.stalled_seconds = 0.0
        self.connections = 0
        self._budget = self.random.randint(min_bytes, max_bytes)
        self._resume_at = 0.0

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
