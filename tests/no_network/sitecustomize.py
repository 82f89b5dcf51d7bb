"""Loaded by every Python process the tests start (PYTHONPATH), and by the test process itself:
reaching beyond this machine fails, and every attempt is recorded in $COPE_TEST_NET_LOG so a test
fails even when the code under test swallows the error. Local (AF_UNIX) sockets stay allowed:
asyncio, which the app runs on, uses a socketpair for its own wake-ups; so does the loopback
interface, which a local Ray instance (`cope eval --ray`) talks over."""

import os
import socket
import traceback

NETWORK_FAMILIES = {socket.AF_INET, socket.AF_INET6}


class NetworkBlocked(OSError):
    pass


def _refuse(what: str):
    log = os.environ.get("COPE_TEST_NET_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"--- pid {os.getpid()}: {what}\n{''.join(traceback.format_stack(limit=12))}")
    raise NetworkBlocked(f"network access blocked in the cope-local tests: {what}")


LOOPBACK = {"127.0.0.1", "::1", "localhost", "", "0.0.0.0", "::"}  # "", 0.0.0.0, ::: binding, not reaching


def _local(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    return host is None or (isinstance(host, str) and (host in LOOPBACK or host.startswith("127.")))


class GuardedSocket(socket.socket):
    def _check(self, address, what: str):
        if self.family in NETWORK_FAMILIES and not _local(address):
            _refuse(f"{what}({address!r})")

    def connect(self, address):
        self._check(address, "connect")
        return super().connect(address)

    def connect_ex(self, address):
        self._check(address, "connect_ex")
        return super().connect_ex(address)

    def sendto(self, data, *args):
        self._check(args[-1], "sendto")
        return super().sendto(data, *args)


def _checked(real, what: str):
    """`real`, refused for any address beyond this machine."""
    def call(address, *args, **kwargs):
        if not _local(address):
            _refuse(f"{what}({address!r})")
        return real(address, *args, **kwargs)
    return call


socket.socket = GuardedSocket
socket.getaddrinfo = _checked(socket.getaddrinfo, "getaddrinfo")
socket.create_connection = _checked(socket.create_connection, "create_connection")
