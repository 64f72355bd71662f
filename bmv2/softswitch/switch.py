"""The built-in target assembled: engine + P4Runtime server + ports."""

from __future__ import annotations

import logging

import grpc
from finsy.proto import p4i, p4r

from bmv2.softswitch.engine import Engine
from bmv2.softswitch.p4info_index import P4InfoIndex
from bmv2.softswitch.p4runtime_server import Pipeline, SwitchState, serve
from bmv2.softswitch.ports import PortSet

log = logging.getLogger("mp-switch")


class SoftSwitch:
    """A running software switch: ports attached, P4Runtime served."""

    def __init__(self, device_id: int, ports: dict[int, str], cpu_port: int | None,
                 priority_queues: int, queue_depth: int = 64,
                 rates: dict[int, int] | None = None) -> None:
        self.ports = PortSet(ports, priority_queues, queue_depth, rates)
        self.state = SwitchState(device_id, cpu_port, self.ports.enqueue)
        self.server: grpc.Server | None = None

    def load_json(self, bmv2_json: bytes) -> None:
        """Run a program from the start (as BMv2 with a JSON argument); P4Runtime writes
        need a P4Info, so a controller still pushes the pipeline."""
        config = p4r.ForwardingPipelineConfig(p4_device_config=bmv2_json)
        self.state.pipeline = Pipeline(config, P4InfoIndex(p4i.P4Info()), Engine(bmv2_json))

    def start(self, grpc_addr: str, credentials: grpc.ServerCredentials | None = None) -> None:
        """Serve P4Runtime on `grpc_addr` (TLS with `credentials`) and start the ports."""
        self.server = serve(self.state, grpc_addr, credentials=credentials)
        self.ports.start(self.state.process)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=1).wait(2)
        self.ports.stop()
