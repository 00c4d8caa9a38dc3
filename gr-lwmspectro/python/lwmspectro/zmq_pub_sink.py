"""LWM ZMQ PUB Sink: each readout as one JSON message on a ZeroMQ PUB socket."""

from __future__ import annotations

import zmq

from lwmspectro.readout import to_json

from .common import ConfigError, ReadoutSink, zmq_endpoint

LABEL = "LWM ZMQ PUB Sink"
DEFAULT_ADDRESS = "tcp://127.0.0.1:5557"


class zmq_pub_sink(ReadoutSink):
    """Publishes every readout arriving on `readout` as a JSON text frame (one object per
    message, the same line `lwmspectro run --json` prints).

    address: the ZeroMQ endpoint to bind; localhost by default so that nothing is exposed
    to the network unless asked for (e.g. tcp://0.0.0.0:5557).
    """

    def __init__(self, address=DEFAULT_ADDRESS):
        ReadoutSink.__init__(self, "lwm_zmq_pub_sink")
        self.address = zmq_endpoint(address, LABEL, DEFAULT_ADDRESS, any_port=True)
        self._socket = None
        self._bind()
        self.sent = 0

    def _bind(self) -> None:
        # Bound at construction, so that a busy or malformed address fails when the flowgraph is built.
        socket = zmq.Context.instance().socket(zmq.PUB)
        socket.setsockopt(zmq.LINGER, 0)
        try:
            socket.bind(self.address)
        except zmq.ZMQError as err:
            socket.close()
            raise ConfigError(
                f"{LABEL}: cannot bind {self.address!r}: {err}; give a free endpoint such as "
                f"{DEFAULT_ADDRESS} (transport://host:port)"
            ) from err
        self._socket = socket

    def start(self):
        if self._socket is None:
            self._bind()
        return True

    @property
    def endpoint(self) -> str:
        """The bound endpoint (with the actual port when bound to a wildcard port)."""
        return self._socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def handle_readout(self, readout: dict, message) -> None:
        self._socket.send_string(to_json(readout))
        self.sent += 1

    def stop(self):
        """Release the port, so that another flowgraph (or a restart of this one) can bind it."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        return True
