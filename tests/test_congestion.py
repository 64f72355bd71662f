"""hostagent.congestion: quic-go's NewReno as an aioquic controller, chosen by name at
both MASQUE ends."""

from __future__ import annotations

import subprocess
import sys

import pytest
from aioquic.quic.congestion.base import create_congestion_control
from aioquic.quic.congestion.reno import RenoCongestionControl
from aioquic.quic.packet import QuicPacketType
from aioquic.quic.packet_builder import QuicSentPacket

from hostagent import congestion
from hostagent.masque.h3 import outer_configuration
from hostagent.masque.proxy import MasqueProxy, ProxySettings
from tests.masque.helpers import LOOPBACK, environment, run

MDS = 1200


def packet(number: int, sent_time: float, size: int = MDS) -> QuicSentPacket:
    return QuicSentPacket(epoch=3, in_flight=True, is_ack_eliciting=True,
                          is_crypto_packet=False, packet_number=number,
                          packet_type=QuicPacketType.ONE_RTT, sent_bytes=size,
                          sent_time=sent_time)


def controller() -> congestion.QuicGoRenoCongestionControl:
    cc = create_congestion_control(congestion.QUIC_GO_RENO, max_datagram_size=MDS)
    assert isinstance(cc, congestion.QuicGoRenoCongestionControl)
    return cc


def test_starts_at_quic_gos_32_packets_where_aiquic_reno_starts_at_10() -> None:
    assert controller().congestion_window == 32 * MDS
    assert RenoCongestionControl(max_datagram_size=MDS).congestion_window == 10 * MDS


def test_a_loss_leaves_seven_tenths_once_per_recovery_period() -> None:
    cc = controller()
    sent = [packet(n, sent_time=0.1 * (n + 1)) for n in range(6)]
    for p in sent:
        cc.on_packet_sent(packet=p)
    cc.on_packets_lost(now=1.0, packets=[sent[0]])
    assert cc.congestion_window == int(32 * MDS * 0.7) and cc.ssthresh == cc.congestion_window
    after_first = cc.congestion_window
    cc.on_packets_lost(now=1.1, packets=[sent[1]])  # sent before recovery began: same event
    assert cc.congestion_window == after_first
    late = packet(7, sent_time=1.2)
    cc.on_packet_sent(packet=late)
    cc.on_packets_lost(now=1.5, packets=[late])  # sent after: a new event
    assert cc.congestion_window == int(after_first * 0.7)
    assert cc.bytes_in_flight == 4 * MDS  # 7 sent, 3 lost


def test_the_window_never_falls_below_two_packets() -> None:
    cc = controller()
    for n in range(20):
        p = packet(n, sent_time=n + 0.1)
        cc.on_packet_sent(packet=p)
        cc.on_packets_lost(now=n + 0.5, packets=[p])
    assert cc.congestion_window == 2 * MDS


def test_growth_is_aioquics_newreno() -> None:
    cc = controller()
    p = packet(0, sent_time=0.01)
    cc.on_packet_sent(packet=p)
    cc.on_packet_acked(now=0.1, packet=p)  # slow start: + the acknowledged bytes
    assert cc.congestion_window == 33 * MDS and cc.bytes_in_flight == 0


def test_names_are_checked_before_a_connection_starts() -> None:
    assert {"reno", congestion.QUIC_GO_RENO} <= set(congestion.available())
    assert outer_configuration(True, congestion_control="quic-go-reno") \
        .congestion_control_algorithm == "quic-go-reno"
    with pytest.raises(ValueError, match="unknown congestion control 'vegas'; choose from reno"):
        outer_configuration(True, congestion_control="vegas")
    with pytest.raises(ValueError, match="unknown congestion control"):
        MasqueProxy(ProxySettings(congestion_control="vegas"))


@pytest.mark.parametrize("module", ["hostagent.masque.proxy_cli", "hostagent.masque.client_cli",
                                    "hostagent.masque.workload"])
def test_an_unknown_name_is_a_usage_error(module: str) -> None:
    args = {"hostagent.masque.proxy_cli": [],
            "hostagent.masque.client_cli": ["127.0.0.1:1"],
            "hostagent.masque.workload": ["--proxy", "127.0.0.1:1", "--target", "127.0.0.1:2"]}
    out = subprocess.run([sys.executable, "-m", module, *args[module],
                          "--congestion-control", "vegas"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "invalid choice: 'vegas'" in out.stderr and "quic-go-reno" in out.stderr


@pytest.mark.timeout(60)
def test_both_outer_ends_run_the_named_controller_and_tunnels_work() -> None:
    async def main() -> None:
        async with environment(congestion_control="quic-go-reno") as env, \
                env.client(congestion_control="quic-go-reno") as client:
            tunnel = await client.open_udp(LOOPBACK, env.quic_port, mode="stream")
            inner = await tunnel.quic(timeout=10)
            assert await inner.request(b"x" * 20_000, timeout=10) == b"x" * 20_000
            ends = [client.connection, *(p._quic for p in env.proxy.connections)]
            assert len(ends) == 2
            for end in ends:
                assert isinstance(end._loss._cc, congestion.QuicGoRenoCongestionControl)
            inner.close()
        async with environment() as env, env.client() as client:  # default: aioquic's
            assert type(client.connection._loss._cc) is RenoCongestionControl

    run(main())
