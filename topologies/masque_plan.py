"""The MASQUE topology's plan: which host sits on which switch port with which addresses,
the ports and tokens its daemons use, the mp-controller config that ties the switch, the
controller and the proxy together, and how a daemon is started (its console script).

Every gRPC link runs mutual TLS with a PKI made for the run in the work folder (pki/):
the controller config and `tls_args` name its files.

Nothing here starts anything; `masque_topology.MasqueTopology` builds the network from it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from hostagent.certs import RunPki

SWITCH_NAME = "mps1"
MGMT_ROOT_IF, MGMT_PROXY_IF = "mpmn-mgmt", "proxy-mgmt"
MGMT_ROOT, MGMT_PROXY = "192.168.252.1", "192.168.252.2"
CLIENT_PORT, PROXY_PORT = 1, 2
MAX_TARGETS = 8
FASTPATH_ADDR = "10.0.2.1"
PROXY_PORTS = (40000, 40999)
PROXY_EPHEMERAL = "50000 60999"  # the proxy's own sockets stay out of PROXY_PORTS
QUIC_PORT, UDP_PORT = 4433, 4434
PROXY_TOKEN, OPS_TOKEN = "proxy-token", "mininet-ops"
CONTROLLER_ELECTION_ID, READER_ELECTION_ID = 10, 1

CONFIG = """
state = "state.sqlite"
northbound = "{northbound}"
sched_mode = "sppifo"
default_rank = 30000

[tls]
cert = "pki/server.pem"
key = "pki/server.key"
ca = "pki/ca.pem"

[[switch]]
name = "{switch}"
address = "{grpc}"
election_id = {election}
tls = {{ ca = "pki/ca.pem", cert = "pki/client.pem", key = "pki/client.key" }}

[fastpath]
address = "{fastpath}"
proxy_addr = "{proxy}"
proxy_ports = [{low}, {high}]
miss = "slow-path"
slow_path_port = {proxy_port}
slow_path_mac = "{proxy_mac}"

{routes}
[[class]]
name = "ops"
min_rank = 0
rank = 4096

[[client]]
name = "proxy"
token = "{proxy_token}"
address = "{mgmt_proxy}"
class = "ops"
operator = true
proxy = true

[[client]]
name = "operator"
token = "{ops_token}"
address = "{mgmt_root}"
class = "ops"
operator = true
"""

COMMANDS = {"mp-client": "hostagent.masque.client_cli", "mp-proxy": "hostagent.masque.proxy_cli",
            "mp-target": "hostagent.masque.target_cli", "mp-ctl": "controller.ctl",
            "mp-controller": "controller.daemon"}


def tool(name: str) -> list[str]:
    """argv of console script `name` from this interpreter's venv, else `python -m` its module."""
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, "-m", COMMANDS[name]]


@dataclass(frozen=True)
class HostPlan:
    """One host of the topology on switch port `port`: 10.0.<port>.10/24, gateway .1."""

    name: str
    port: int

    @property
    def ip(self) -> str:
        """The host's address."""
        return f"10.0.{self.port}.10"

    @property
    def subnet(self) -> str:
        """The host's /24, routed to its port."""
        return f"10.0.{self.port}.0/24"

    @property
    def gateway(self) -> str:
        """A made-up next hop (.1): only its static ARP entry at the switch's MAC matters."""
        return f"10.0.{self.port}.1"

    @property
    def mac(self) -> str:
        """The host's MAC, the route's destination MAC."""
        return f"02:00:00:00:{self.port:02x}:0a"

    @property
    def switch_mac(self) -> str:
        """The switch's MAC on this port (the route's source MAC)."""
        return f"02:aa:00:00:00:{self.port:02x}"


def tls_args(pki: RunPki) -> list[str]:
    """The --tls-* options of a client of the run's gRPC servers (mutual TLS)."""
    return ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert),
            "--tls-key", str(pki.client_key)]


def tls_environment(prefix: str, pki: RunPki) -> dict[str, str]:
    """The same as ${prefix}_TLS_CA/_CERT/_KEY, for the shells of the hosts."""
    return {f"{prefix}_TLS_CA": str(pki.ca), f"{prefix}_TLS_CERT": str(pki.client_cert),
            f"{prefix}_TLS_KEY": str(pki.client_key)}


def plan_hosts(targets: int) -> list[HostPlan]:
    """client on port 1, proxy on port 2, t1..tN on ports 3..N+2."""
    return ([HostPlan("client", CLIENT_PORT), HostPlan("proxy", PROXY_PORT)]
            + [HostPlan(f"t{i}", PROXY_PORT + i) for i in range(1, targets + 1)])


def controller_config(hosts: list[HostPlan], grpc_addr: str, northbound: str) -> str:
    """The mp-controller TOML: routes to every host, the fast path, the proxy as operator."""
    routes = "".join(f'[[route]]\nprefix = "{h.subnet}"\nport = {h.port}\n'
                     f'src_mac = "{h.switch_mac}"\ndst_mac = "{h.mac}"\n\n' for h in hosts)
    proxy = next(h for h in hosts if h.name == "proxy")
    return CONFIG.format(northbound=northbound, switch=SWITCH_NAME, grpc=grpc_addr,
                         election=CONTROLLER_ELECTION_ID, fastpath=FASTPATH_ADDR, proxy=proxy.ip,
                         low=PROXY_PORTS[0], high=PROXY_PORTS[1], proxy_port=proxy.port,
                         proxy_mac=proxy.mac, routes=routes, proxy_token=PROXY_TOKEN,
                         mgmt_proxy=MGMT_PROXY, ops_token=OPS_TOKEN, mgmt_root=MGMT_ROOT)
