"""A fast SMTP sink for benchmarks and tests: asyncio protocol, no parsing beyond what SMTP needs.

aiosmtpd caps near 900 messages/s on this kind of machine, so a benchmark measured against it
measures aiosmtpd. This sink answers each command with a fixed reply, can hold the answer to
the end of DATA for `latency` seconds (as a relay does while it queues the message), and counts
what it received per recipient and per Message-ID, so a benchmark can check that nothing was
lost or sent twice, and how many connections and messages per second it saw at most (for the
throttling tests). It runs in a process of its own.

    process = FastSink(latency=0.02); ...; process.stats(); process.stop()
"""

import asyncio
import multiprocessing
import re
import socket
import time
from collections import Counter

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
END_OF_DATA = b"\r\n.\r\n"


class SinkProtocol(asyncio.Protocol):
    def __init__(self, sink: "SinkState"):
        self.sink = sink
        self.buffer = b""
        self.in_data = False
        self.recipients: list[bytes] = []

    def connection_made(self, transport):
        self.transport = transport
        self.sink.connections += 1
        self.sink.most_connections = max(self.sink.most_connections, self.sink.connections)
        transport.write(b"220 fast-sink ESMTP\r\n")

    def connection_lost(self, exc):
        self.sink.connections -= 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.in_data:
                end = self.buffer.find(END_OF_DATA)
                if end == -1:
                    return
                message, self.buffer = self.buffer[: end + 2], self.buffer[end + len(END_OF_DATA) :]
                self.in_data = False
                self.received(message)
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end == -1:
                return
            line, self.buffer = self.buffer[:line_end], self.buffer[line_end + 2 :]
            self.command(line)

    def command(self, line: bytes) -> None:
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            self.transport.write(b"250-fast-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        elif verb == b"MAIL":
            self.recipients = []
            self.transport.write(b"250 2.1.0 OK\r\n")
        elif verb == b"RCPT":
            self.recipients.append(line.split(b":", 1)[1].strip().strip(b"<>").lower())
            self.transport.write(b"250 2.1.5 OK\r\n")
        elif verb == b"DATA":
            self.in_data = True
            self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"QUIT":
            self.transport.write(b"221 2.0.0 Bye\r\n")
            self.transport.close()
        else:  # RSET, NOOP
            self.transport.write(b"250 2.0.0 OK\r\n")

    def received(self, message: bytes) -> None:
        found = MESSAGE_ID.search(message[:4096])
        self.sink.count(self.recipients, found.group(1) if found else b"")
        if self.sink.latency:
            asyncio.get_running_loop().call_later(self.sink.latency, self.accept)
        else:
            self.accept()

    def accept(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(b"250 2.0.0 Queued\r\n")


class SinkState:
    def __init__(self, latency: float):
        self.latency = latency
        self.messages = 0
        self.per_recipient: Counter = Counter()
        self.per_message_id: Counter = Counter()
        self.per_second: Counter = Counter()
        self.connections = self.most_connections = 0

    def count(self, recipients: list[bytes], message_id: bytes) -> None:
        self.messages += 1
        self.per_recipient.update(recipients)
        self.per_message_id[message_id] += 1
        self.per_second[int(time.time())] += 1

    def stats(self) -> dict:
        return {
            "messages": self.messages,
            "recipients": len(self.per_recipient),
            "repeated_recipients": sum(1 for count in self.per_recipient.values() if count > 1),
            "repeated_message_ids": sum(1 for count in self.per_message_id.values() if count > 1),
            "most_connections": self.most_connections,
            "busiest_second": max(self.per_second.values(), default=0),
            "seconds": len(self.per_second),
        }

    def reset(self) -> None:
        self.__init__(self.latency)


def _serve(port: int, latency: float, control) -> None:
    async def main():
        state = SinkState(latency)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SinkProtocol(state), "127.0.0.1", port, backlog=512)
        control.send("ready")
        while True:
            request = await loop.run_in_executor(None, control.recv)
            if request == "stats":
                control.send(state.stats())
            elif request == "reset":
                state.reset()
                control.send("ok")
            else:
                server.close()
                control.send("bye")
                return

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FastSink:
    """The sink in its own process, on a free port of 127.0.0.1."""

    def __init__(self, latency: float = 0.0):
        self.port = free_port()
        self.control, child_end = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=_serve, args=(self.port, latency, child_end), daemon=True)
        self.process.start()
        if not self.control.poll(30) or self.control.recv() != "ready":
            raise RuntimeError("the fast SMTP sink did not start")

    def _ask(self, request: str):
        self.control.send(request)
        return self.control.recv()

    def stats(self) -> dict:
        return self._ask("stats")

    def reset(self) -> None:
        self._ask("reset")

    def stop(self) -> None:
        try:
            self._ask("stop")
        finally:
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
