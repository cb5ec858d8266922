"""The abusers of scenario j ("abuse mix", SPEC §10): idle keep-alive
connections and slow-header clients held open against one port while wrk
measures the good traffic on it.

- An idle connection sends one request, reads its answer and then sends
  nothing (a kept-alive connection, closed by the gateway's idleTimeout).
- A slow-header client sends a request line and then one header line a
  second, never ending its head (closed by the gateway's header timeout,
  10 s for ccgate).

A connection the gateway closes is opened again at once, so that the
numbers asked for stay held for the whole run. One thread drives them
all with a selector.
"""

import selectors
import socket
import threading
import time

IDLE_REQUEST = b"GET /idle HTTP/1.1\r\nHost: abuse\r\n\r\n"
SLOW_START = b"GET /slow HTTP/1.1\r\nHost: abuse\r\n"
SLOW_LINE = b"X-Slow: 1\r\n"


class Abuse:
    def __init__(self, port, idle=2000, slow=100):
        self.port, self.idle, self.slow = port, idle, slow
        self.sel = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.reopened = {"idle": 0, "slow": 0}
        self.answered = 0  # idle connections whose one request was answered
        self.failed = None
        self.thread = None

    def open(self, kind):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.setblocking(False)
        s.send(IDLE_REQUEST if kind == "idle" else SLOW_START)
        self.sel.register(s, selectors.EVENT_READ, kind)
        return s

    def held(self):
        """Connections open now, by kind."""
        counts = {"idle": 0, "slow": 0}
        for key in list(self.sel.get_map().values()):
            counts[key.data] += 1
        return counts

    def run(self):
        try:
            # The slow ones first: opening thousands of idle ones takes a
            # few seconds, and the slow ones should meet ccgate's 10 s
            # header timeout during the measured run.
            for _ in range(self.slow):
                self.open("slow")
            for _ in range(self.idle):
                self.open("idle")
            next_line = time.monotonic() + 1
            while not self.stop.is_set():
                for key, _ in self.sel.select(timeout=0.1):
                    s, kind = key.fileobj, key.data
                    try:
                        data = s.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if data:
                        if kind == "idle":
                            self.answered += data.count(b"HTTP/1.1 ")
                            if self.answered >= self.idle:
                                self.ready.set()
                        continue
                    # Closed by the gateway: open another one.
                    self.sel.unregister(s)
                    s.close()
                    self.reopened[kind] += 1
                    self.open(kind)
                if time.monotonic() >= next_line:
                    next_line += 1
                    for key in list(self.sel.get_map().values()):
                        if key.data == "slow":
                            try:
                                key.fileobj.send(SLOW_LINE)
                            except OSError:
                                pass
        except OSError as e:
            self.failed = f"abusers: {e}"
            self.ready.set()

    def __enter__(self):
        self.thread = threading.Thread(target=self.run, name="abuse", daemon=True)
        self.thread.start()
        if not self.ready.wait(30) or self.failed:
            self.__exit__()
            raise OSError(self.failed or f"abusers: only {self.answered} of {self.idle} idle "
                          "connections were answered within 30 s")
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread:
            self.thread.join(10)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()
        return False
