"""A byte-for-byte TCP relay that puts Dovecot's STARTTLS IMAP port "across the network".

Why it exists: Dovecot's login processes treat a connection whose remote address equals its
local address as already secured (``login-common/client-common.c``: ``secured = ssl ||
trusted || net_ip_compare(remote_ip, local_ip)``). Every lab client connects from 127.0.0.1 to
127.0.0.1, so Dovecot would never announce ``LOGINDISABLED`` and would accept a cleartext
``LOGIN`` whatever ``disable_plaintext_auth`` says: the lab could not show the difference
between a good IMAP port and the ``imap-plaintext-login`` fault.

So Dovecot listens on another loopback address (``BACKEND_HOST``), and this relay accepts the
lab's IMAP port on 127.0.0.1 and connects onwards from 127.0.0.1: Dovecot sees remote
127.0.0.1, local 127.0.0.2, exactly as a real operator's IMAP port sees a remote client. The
relay copies bytes and nothing else (STARTTLS, the TLS handshake and IMAP all pass through
untouched), so every check still talks to the real Dovecot.

Run as ``python -m lab.looprelay LISTEN_PORT BACKEND_HOST BACKEND_PORT --follow PID``: the
relay exits when process PID (Dovecot's master) is gone, so it never outlives the daemon it
fronts and never holds the IMAP port for nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib

from lab.ports import HOST
from lab.process import pid_alive

BACKEND_HOST = "127.0.0.2"      # any 127/8 address other than HOST: Linux routes all of lo
CONNECT_TIMEOUT = 5.0
# A relayed connection with no byte either way for this long is dropped. IMAP clients renew
# IDLE every 29 min at most (RFC 2177) and Dovecot itself logs idle clients out after 30 min.
IDLE_TIMEOUT = 31 * 60.0
CHUNK = 65536
FOLLOW_INTERVAL = 0.5


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                activity: asyncio.Event) -> None:
    """Copy one direction until EOF, then half-close so the other side sees the end."""
    try:
        while data := await reader.read(CHUNK):
            activity.set()
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                 backend: tuple[str, int]) -> None:
    try:
        server_reader, server_writer = await asyncio.wait_for(
            asyncio.open_connection(*backend), CONNECT_TIMEOUT)
    except (TimeoutError, OSError):
        client_writer.close()
        return
    activity = asyncio.Event()
    pumps = [asyncio.create_task(_pump(client_reader, server_writer, activity)),
             asyncio.create_task(_pump(server_reader, client_writer, activity))]
    try:
        while not all(p.done() for p in pumps):
            activity.clear()
            done, _ = await asyncio.wait(pumps, timeout=IDLE_TIMEOUT,
                                         return_when=asyncio.ALL_COMPLETED)
            if len(done) < len(pumps) and not activity.is_set():
                break
    finally:
        for task in pumps:
            task.cancel()
        for writer in (client_writer, server_writer):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def serve(listen_port: int, backend: tuple[str, int], follow: int) -> None:
    server = await asyncio.start_server(lambda r, w: _relay(r, w, backend), HOST, listen_port,
                                        reuse_address=True)
    async with server:
        while pid_alive(follow):
            await asyncio.sleep(FOLLOW_INTERVAL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.looprelay", description=__doc__)
    parser.add_argument("listen_port", type=int)
    parser.add_argument("backend_host")
    parser.add_argument("backend_port", type=int)
    parser.add_argument("--follow", type=int, required=True, metavar="PID",
                        help="exit when this process is gone")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.listen_port, (args.backend_host, args.backend_port), args.follow))


if __name__ == "__main__":
    main()
