"""scapy layer for the fast-path shim, built from the one Python definition of it."""

from __future__ import annotations

from scapy.fields import ByteField, IntField, ShortField
from scapy.layers.inet import UDP
from scapy.packet import Packet, bind_layers

from hostagent import shim


class MpShim(Packet):
    name = "MASQUE fast-path shim"
    fields_desc = [
        ByteField("version", shim.SHIM_VERSION),
        ByteField("flags", 0),
        ShortField("reserved", 0),
        IntField("flow_id", 0),
    ]


assert len(MpShim()) == shim.SHIM_SIZE
bind_layers(UDP, MpShim, dport=shim.FASTPATH_PORT)
