"""The controller's TOML configuration, validated into typed objects with clear errors.

Example (see README, "Controller"):

    state = "/var/lib/masque-pifo/controller.sqlite"
    northbound = "127.0.0.1:50060"
    sched_mode = "sppifo"          # fifo | strict | sppifo | aifo | packs
    burst_pct = 10                 # AIFO/PACKS: k, the burst allowance, in percent
    queue_depth = 64               # AIFO/PACKS: packets per priority queue (the switch's)
    default_rank = 32768
    max_quic_mappings = 256        # forwarded-mode mappings per MASQUE client address
    session_grace_s = 5            # a proxy's session may be gone this long before the
                                   # controller removes what it installed

    [tls]                          # the northbound API (else plaintext, loopback only)
    cert = "server.pem"
    key = "server.key"
    ca = "clients-ca.pem"          # optional: require client certificates (mutual TLS)

    [[switch]]
    name = "s1"
    address = "127.0.0.1:9559"
    device_id = 0
    tls = { ca = "ca.pem", cert = "client.pem", key = "client.key" }  # else plaintext

    [fastpath]
    address = "10.0.2.1"           # the switch's fast-path endpoint
    proxy_addr = "10.0.2.10"       # the address targets see
    proxy_ports = [40000, 49999]   # allocated per flow
    miss = "slow-path"             # slow-path | cpu
    slow_path_port = 2
    slow_path_mac = "02:00:00:00:02:0a"

    [[route]]
    prefix = "10.0.1.0/24"
    port = 1
    src_mac = "02:aa:00:00:00:01"
    dst_mac = "02:00:00:00:01:0a"

    [[strict]]                      # rank range -> queue, for sched_mode = "strict"
    low = 0
    high = 8191
    queue = 7

    [[class]]
    name = "gold"
    min_rank = 0                   # the most urgent rank its clients may ask for
    rank = 1024                    # rank of streams that name this class

    [[client]]
    name = "alice"
    token_sha256 = "4d2c...e1"     # sha256 of the token (mp-controller --hash-token);
    address = "10.0.1.10"          # `token = "alice-secret"` works too, with a warning
    class = "gold"
    operator = false
    proxy = false                  # true: may install forwarded-mode QUIC mappings

Paths are relative to the config file. Only hashes of the tokens are kept in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clikit.tls import TlsError, TlsFiles
from p4src.pipeline import MAX_QUEUE_DEPTH, RANK_MAX

SCHED_MODES = ("fifo", "strict", "sppifo", "aifo", "packs")
MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def token_hash(token: str) -> str:
    """The form a token is kept in: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SwitchConf:
    name: str
    address: str
    device_id: int = 0
    election_id: int = 1
    tls: TlsFiles = field(default_factory=TlsFiles)  # P4Runtime client side


@dataclass(frozen=True)
class Route:
    prefix: str
    port: int
    src_mac: str
    dst_mac: str


@dataclass(frozen=True)
class FastPathConf:
    address: str
    proxy_addr: str
    proxy_ports: tuple[int, int] = (40000, 49999)
    miss: str = "slow-path"
    slow_path_port: int = 0
    slow_path_mac: str = "00:00:00:00:00:00"


@dataclass(frozen=True)
class StrictRange:
    low: int
    high: int
    queue: int


@dataclass(frozen=True)
class TrafficClass:
    name: str
    min_rank: int = 0
    rank: int = RANK_MAX // 2


@dataclass(frozen=True)
class ClientConf:
    name: str
    token_sha256: str
    address: str
    traffic_class: str
    operator: bool = False
    proxy: bool = False  # may install forwarded-mode QUIC mappings


@dataclass(frozen=True)
class ControllerConfig:
    switches: list[SwitchConf]
    fastpath: FastPathConf
    state: Path
    northbound: str = "127.0.0.1:50060"
    sched_mode: str = "fifo"
    burst_pct: int = 10
    queue_depth: int = 64
    max_quic_mappings: int = 256  # forwarded-mode mappings per MASQUE client address
    #: seconds a proxy session's stream may be gone before its rules are removed (the
    #: proxy may reconnect and resume it meanwhile)
    session_grace_s: float = 5.0
    default_rank: int = RANK_MAX // 2
    routes: list[Route] = field(default_factory=list)
    strict: list[StrictRange] = field(default_factory=list)
    classes: dict[str, TrafficClass] = field(default_factory=dict)
    clients: dict[str, ClientConf] = field(default_factory=dict)  # by token hash
    tls: TlsFiles = field(default_factory=TlsFiles)  # the northbound API (server side)
    #: clients whose token the config gives in clear (a warning at start)
    clear_tokens: tuple[str, ...] = ()

    def client_by_token(self, token: str) -> ClientConf | None:
        """The client a presented token names (compared by hash, in constant time)."""
        digest = token_hash(token)
        for known, client in self.clients.items():
            if hmac.compare_digest(known, digest):
                return client
        return None


def _get(table: dict[str, Any], key: str, kind: type, where: str, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}: missing key {key!r}")
        return default
    value = table[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def _ipv4(text: str, where: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not an IPv4 address") from None


def _mac(text: str, where: str) -> str:
    if not MAC.match(text):
        raise ConfigError(f"{where}: {text!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    return text.lower()


def check_burst_pct(value: int, where: str) -> int:
    """AIFO's and PACKS's k in percent: 0..99."""
    if not 0 <= value <= 99:
        raise ConfigError(f"{where}: {value} is not a percentage in 0..99")
    return value


def check_queue_depth(value: int, where: str) -> int:
    """Packets per priority queue for AIFO/PACKS: 1..MAX_QUEUE_DEPTH (the P4 arithmetic's)."""
    if not 1 <= value <= MAX_QUEUE_DEPTH:
        raise ConfigError(f"{where}: {value} packets is outside 1..{MAX_QUEUE_DEPTH}")
    return value


def _rank(value: int, where: str) -> int:
    if not 0 <= value <= RANK_MAX:
        raise ConfigError(f"{where}: rank {value} outside 0..{RANK_MAX}")
    return value


def _tls(table: dict[str, Any], where: str, base: Path, server: bool) -> TlsFiles:
    known = {"cert", "key", "ca"} | (set() if server else {"server_name"})
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(known))})")

    def path(key: str) -> Path | None:
        value = _get(table, key, str, where, "")
        return None if not value else (base / value if not Path(value).is_absolute()
                                       else Path(value))

    try:
        return TlsFiles(path("cert"), path("key"), path("ca"),
                        _get(table, "server_name", str, where, "")).check(server)
    except TlsError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _token(c: dict[str, Any], where: str) -> tuple[str, bool]:
    """(sha256 hex, given in clear) of a client's token."""
    if ("token" in c) == ("token_sha256" in c):
        raise ConfigError(f"{where}: give token_sha256 (or token), exactly one")
    if "token" in c:
        return token_hash(_get(c, "token", str, where)), True
    digest = _get(c, "token_sha256", str, where).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigError(f"{where}.token_sha256: expected 64 hex digits")
    return digest, False


def parse(data: dict[str, Any], base: Path = Path(".")) -> ControllerConfig:
    """Validate a parsed TOML document."""
    known = {"state", "northbound", "sched_mode", "burst_pct", "queue_depth", "default_rank",
             "max_quic_mappings", "session_grace_s", "switch", "fastpath", "route", "strict",
             "class", "client", "tls"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown top-level key(s): {', '.join(unknown)}")
    switches = []
    for i, s in enumerate(_get(data, "switch", list, "config")):
        where = f"switch[{i}]"
        switches.append(SwitchConf(_get(s, "name", str, where), _get(s, "address", str, where),
                                   _get(s, "device_id", int, where, 0),
                                   _get(s, "election_id", int, where, 1),
                                   _tls(_get(s, "tls", dict, where, {}), f"{where}.tls", base,
                                        server=False)))
    if not switches:
        raise ConfigError("config: at least one [[switch]] is needed")
    if len({s.name for s in switches}) != len(switches):
        raise ConfigError("switch: names must be unique")
    fp = _get(data, "fastpath", dict, "config")
    ports = _get(fp, "proxy_ports", list, "fastpath", [40000, 49999])
    if (len(ports) != 2 or not all(isinstance(p, int) for p in ports)
            or not 0 < ports[0] <= ports[1] < 65536):
        raise ConfigError("fastpath.proxy_ports: expected [first, last] within 1..65535")
    miss = _get(fp, "miss", str, "fastpath", "slow-path")
    if miss not in ("slow-path", "cpu"):
        raise ConfigError(f"fastpath.miss: {miss!r} is not 'slow-path' or 'cpu'")
    fastpath = FastPathConf(
        _ipv4(_get(fp, "address", str, "fastpath"), "fastpath.address"),
        _ipv4(_get(fp, "proxy_addr", str, "fastpath"), "fastpath.proxy_addr"),
        (ports[0], ports[1]), miss,
        _get(fp, "slow_path_port", int, "fastpath", 0),
        _mac(_get(fp, "slow_path_mac", str, "fastpath", "00:00:00:00:00:00"),
             "fastpath.slow_path_mac"))
    routes = []
    for i, r in enumerate(_get(data, "route", list, "config", [])):
        where = f"route[{i}]"
        prefix = _get(r, "prefix", str, where)
        try:
            ipaddress.IPv4Network(prefix)
        except ValueError as exc:
            raise ConfigError(f"{where}.prefix: {exc}") from None
        routes.append(Route(prefix, _get(r, "port", int, where),
                            _mac(_get(r, "src_mac", str, where), f"{where}.src_mac"),
                            _mac(_get(r, "dst_mac", str, where), f"{where}.dst_mac")))
    strict = []
    for i, r in enumerate(_get(data, "strict", list, "config", [])):
        where = f"strict[{i}]"
        low, high = _get(r, "low", int, where), _get(r, "high", int, where)
        queue = _get(r, "queue", int, where)
        if not 0 <= low <= high <= RANK_MAX or not 0 <= queue <= 7:
            raise ConfigError(f"{where}: need 0 <= low <= high <= {RANK_MAX}, queue 0..7")
        strict.append(StrictRange(low, high, queue))
    classes = {}
    for i, c in enumerate(_get(data, "class", list, "config", [])):
        where = f"class[{i}]"
        cls = TrafficClass(_get(c, "name", str, where),
                           _rank(_get(c, "min_rank", int, where, 0), f"{where}.min_rank"),
                           _rank(_get(c, "rank", int, where, RANK_MAX // 2), f"{where}.rank"))
        classes[cls.name] = cls
    clients = {}
    clear = []
    for i, c in enumerate(_get(data, "client", list, "config", [])):
        where = f"client[{i}]"
        digest, in_clear = _token(c, where)
        client = ClientConf(_get(c, "name", str, where), digest,
                            _ipv4(_get(c, "address", str, where), f"{where}.address"),
                            _get(c, "class", str, where), _get(c, "operator", bool, where, False),
                            _get(c, "proxy", bool, where, False))
        if client.traffic_class not in classes:
            raise ConfigError(f"{where}.class: unknown class {client.traffic_class!r}")
        if digest in clients:
            raise ConfigError(f"{where}.token: used by another client")
        clients[digest] = client
        if in_clear:
            clear.append(client.name)
    mode = _get(data, "sched_mode", str, "config", "fifo")
    if mode not in SCHED_MODES:
        raise ConfigError(f"sched_mode: {mode!r} is not one of {', '.join(SCHED_MODES)}")
    burst_pct = check_burst_pct(_get(data, "burst_pct", int, "config", 10), "burst_pct")
    queue_depth = check_queue_depth(_get(data, "queue_depth", int, "config", 64), "queue_depth")
    max_mappings = _get(data, "max_quic_mappings", int, "config", 256)
    if max_mappings < 0:
        raise ConfigError(f"max_quic_mappings: {max_mappings} is negative")
    grace = data.get("session_grace_s", 5.0)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace <= 3600:
        raise ConfigError(f"session_grace_s: {grace!r} is not between 0 and 3600 seconds")
    state = Path(_get(data, "state", str, "config", "controller.sqlite"))
    return ControllerConfig(
        switches=switches, fastpath=fastpath,
        state=state if state.is_absolute() else base / state,
        northbound=_get(data, "northbound", str, "config", "127.0.0.1:50060"),
        sched_mode=mode, burst_pct=burst_pct, queue_depth=queue_depth,
        max_quic_mappings=max_mappings, session_grace_s=float(grace),
        default_rank=_rank(_get(data, "default_rank", int, "config", RANK_MAX // 2),
                           "default_rank"),
        routes=routes, strict=strict, classes=classes, clients=clients,
        tls=_tls(_get(data, "tls", dict, "config", {}), "tls", base, server=True),
        clear_tokens=tuple(clear))


def load(path: Path) -> ControllerConfig:
    """Read and validate a TOML file; ConfigError names the problem."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse(data, path.parent)
