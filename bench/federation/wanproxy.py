#!/usr/bin/python3
"""A userspace WAN link for bench/federation: TCP and UDP relays that delay what they carry.

    wanproxy.py LISTEN_IP:PORT=TARGET_IP:PORT [...]

Each route relays TCP connections and UDP datagrams from LISTEN to TARGET and back, holding
every TCP chunk and every datagram for the current one-way delay in each direction (so the
round trip through the relay grows by twice the delay). Order is kept: a direction has one
FIFO queue, drained by one sender, so a chunk never overtakes an earlier one, even when the
delay is changed mid-stream. `tc netem` would do this in the kernel, but it needs root and
the sch_netem module, which this machine does not have.

UDP keeps one upstream socket per client address (bound to the listen IP, port 0), so a
reply sent to the datagram's source comes back through the relay to the right client.

Control: one line per command on stdin, `delay <ms>` sets the one-way delay of every route
(answered by `delay <ms> ok` on stdout); EOF on stdin exits. `ready` is printed on stdout
once every route is bound. No data is ever dropped or reordered; queues are unbounded,
which is fine for a benchmark's traffic.
"""

import asyncio
import socket
import sys
import threading

DELAY = [0.0]  # one-way delay in seconds, shared by every route and both directions


def log(msg):
    print(f"wanproxy: {msg}", file=sys.stderr, flush=True)


def parse_addr(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


# --- TCP -------------------------------------------------------------------------------------


async def pipe(reader, writer):
    """Copies reader to writer, each chunk sent DELAY after it arrived, in order."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def sender():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + DELAY[0], data))
            if not data:
                break
        await task
    except (ConnectionError, OSError):
        task.cancel()


def nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def tcp_handler(target):
    async def handle(c_reader, c_writer):
        try:
            u_reader, u_writer = await asyncio.open_connection(*target)
        except OSError:
            c_writer.close()
            return
        nodelay(c_writer)
        nodelay(u_writer)
        await asyncio.gather(pipe(c_reader, u_writer), pipe(u_reader, c_writer),
                             return_exceptions=True)
        for w in (c_writer, u_writer):
            w.close()

    return handle


# --- UDP -------------------------------------------------------------------------------------


class UdpRoute(asyncio.DatagramProtocol):
    """The listening side of one UDP route; one upstream socket per client address."""

    def __init__(self, listen_ip, target):
        self.listen_ip = listen_ip
        self.target = target
        self.front = None
        self.upstream = {}  # client addr -> connected socket towards target
        self.loop = asyncio.get_event_loop()

    def connection_made(self, transport):
        self.front = transport

    def datagram_received(self, data, client):
        up = self.upstream.get(client)
        if up is None:
            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            up.setblocking(False)
            up.bind((self.listen_ip, 0))
            up.connect(self.target)
            self.loop.add_reader(up.fileno(), self.reply, up, client)
            self.upstream[client] = up
        self.loop.call_at(self.loop.time() + DELAY[0], self.send_up, up, data)

    @staticmethod
    def send_up(up, data):
        try:
            up.send(data)
        except OSError:
            pass  # target not listening yet: a lost datagram, as on a real WAN

    def reply(self, up, client):
        while True:
            try:
                data = up.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # ICMP refused from a target that is down
            self.loop.call_at(self.loop.time() + DELAY[0], self.front.sendto, data, client)


# --- main ------------------------------------------------------------------------------------


def read_control(loop, done):
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "delay":
            ms = float(parts[1])

            def set_delay(ms=ms):
                DELAY[0] = ms / 1000.0
                print(f"delay {parts[1]} ok", flush=True)

            loop.call_soon_threadsafe(set_delay)
        else:
            log(f"unknown command {line.strip()!r}")
    loop.call_soon_threadsafe(done.set_result, None)


async def main(routes):
    loop = asyncio.get_running_loop()
    servers = []
    for listen, target in routes:
        servers.append(await asyncio.start_server(tcp_handler(target), *listen))
        await loop.create_datagram_endpoint(lambda l=listen, t=target: UdpRoute(l[0], t),
                                            local_addr=listen)
        log(f"{listen[0]}:{listen[1]} -> {target[0]}:{target[1]} (tcp+udp)")
    done = loop.create_future()
    threading.Thread(target=read_control, args=(loop, done), daemon=True).start()
    print("ready", flush=True)
    await done
    for s in servers:
        s.close()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    try:
        pairs = [(parse_addr(a), parse_addr(b))
                 for a, _, b in (arg.partition("=") for arg in sys.argv[1:])]
    except ValueError:
        sys.exit(f"bad route in {sys.argv[1:]}: want LISTEN_IP:PORT=TARGET_IP:PORT")
    asyncio.run(main(pairs))
