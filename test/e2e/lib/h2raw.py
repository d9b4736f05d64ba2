"""h2raw.py - a hand-driven HTTP/2 client connection (python3-h2) for the tests that must send
frames the server has to judge (grpc_transport.py, connection_progress.py): streams opened and
fed by hand, the events digested into per-stream outcomes, GOAWAY and PING acks noted.
"""
import socket
import time

import h2.config
import h2.connection
import h2.events


class RawH2:
    """One connection to 127.0.0.1:`port`, from 127.0.0.x `source`. ack_data=False leaves
    received DATA unacknowledged (no WINDOW_UPDATE is ever sent back), for tests that count
    the frames a client sends."""

    def __init__(self, port, source="127.0.0.1", timeout=5.0, ack_data=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        self.ack_data = ack_data
        self.streams = {}           # id -> {"headers", "trailers", "data", "ended", "reset"}
        self.goaway = None          # the GOAWAY's error code
        self.goaway_data = b""
        self.eof = False
        self.received = 0           # bytes read from the server
        self.ping_acked = False
        self.flush()

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def open_stream(self, sid):
        self.streams[sid] = {"headers": {}, "trailers": {}, "data": b"", "ended": False, "reset": None}

    def pump(self, timeout):
        """Reads once (up to `timeout` s) and digests the events; False on EOF/timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.received += len(data)
        for ev in self.h2.receive_data(data):
            self._event(ev)
        try:
            self.flush()
        except OSError:
            self.eof = True
        return True

    def _event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived) and st is not None:
            st["headers"] = dict(ev.headers)
        elif isinstance(ev, h2.events.TrailersReceived) and st is not None:
            st["trailers"] = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            if self.ack_data:
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if st is not None:
                st["data"] += ev.data
        elif isinstance(ev, h2.events.StreamEnded) and st is not None:
            st["ended"] = True
        elif isinstance(ev, h2.events.StreamReset) and st is not None:
            st["reset"] = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev.error_code
            self.goaway_data = ev.additional_data or b""
        elif isinstance(ev, h2.events.PingAckReceived):
            self.ping_acked = True

    def wait(self, sid, timeout):
        """The stream's outcome once it ended (or was reset), or as it stands at the timeout or
        the connection's end."""
        deadline = time.monotonic() + timeout
        st = self.streams[sid]
        while not (st["ended"] or st["reset"] is not None) and time.monotonic() < deadline and not self.eof:
            self.pump(max(0.01, deadline - time.monotonic()))
        return st

    def close(self):
        self.sock.close()
