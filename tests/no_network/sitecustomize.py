"""Loaded by every Python process the tests start (PYTHONPATH), and by the test process itself:
opening an internet socket fails, and every attempt is recorded in $COPE_TEST_NET_LOG so a test
fails even when the code under test swallows the error. Local (AF_UNIX) sockets stay allowed:
asyncio, which the app runs on, uses a socketpair for its own wake-ups."""

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


class GuardedSocket(socket.socket):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None and (family == -1 or socket.AddressFamily(family) in NETWORK_FAMILIES):
            _refuse(f"socket({family}, {type})")
        super().__init__(family, type, proto, fileno)


def _getaddrinfo(host, *args, **kwargs):
    _refuse(f"getaddrinfo({host!r})")


socket.socket = GuardedSocket
socket.getaddrinfo = _getaddrinfo
socket.create_connection = lambda address, *a, **k: _refuse(f"create_connection({address!r})")
