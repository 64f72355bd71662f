"""Wire formats against RFC 9000 (varints), RFC 9297 (capsules, HTTP Datagrams) and
RFC 9298 (UDP proxying payload, URI Templates), byte for byte.

No CONNECT-UDP implementation can be installed here to interoperate with, so the
encodings are held to the RFCs' own definitions and examples instead.
"""

from __future__ import annotations

import pytest
from aioquic.h3.connection import H3Connection, Setting
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from hostagent.masque.h3 import MasqueH3Connection, outer_configuration
from hostagent.masque.wire import (
    CAPSULE_DATAGRAM,
    DEFAULT_TEMPLATE_PATH,
    CapsuleParser,
    TemplateMatcher,
    WireError,
    decode_h3_datagram,
    decode_udp_payload,
    decode_varint,
    encode_capsule,
    encode_datagram_capsule,
    encode_h3_datagram,
    encode_udp_payload,
    encode_varint,
    expand_template,
    parse_proxy_status,
    parse_target,
    proxy_status,
    sf_boolean,
    udp_path,
    validate_template,
)

# RFC 9000 appendix A.1: sample variable-length integer decodings.
RFC9000_VARINTS = [
    ("c2197c5eff14e88c", 151_288_809_941_952_652),
    ("9d7f3e7d", 494_878_333),
    ("7bbd", 15_293),
    ("25", 37),
]


@pytest.mark.parametrize(("hex_bytes", "value"), RFC9000_VARINTS)
def test_varints_of_rfc9000_appendix_a(hex_bytes: str, value: int) -> None:
    data = bytes.fromhex(hex_bytes)
    assert decode_varint(data) == (value, len(data))
    assert encode_varint(value) == data  # the samples are the shortest encodings
    assert decode_varint(bytes.fromhex("4025")) == (37, 2)  # two-byte 37 decodes too


def test_varint_limits() -> None:
    assert encode_varint(63) == b"\x3f"
    assert encode_varint(64) == b"\x40\x40"
    assert encode_varint(16383) == b"\x7f\xff"
    assert encode_varint(16384) == b"\x80\x00\x40\x00"
    assert encode_varint(2**62 - 1) == b"\xff" * 8
    with pytest.raises(WireError):
        encode_varint(2**62)
    with pytest.raises(WireError):
        decode_varint(b"\x80\x00")


def test_datagram_capsule_bytes() -> None:
    # RFC 9297 section 3.5: DATAGRAM Capsule { Type (i) = 0x00, Length (i), HTTP Datagram
    # Payload (..) }; RFC 9298 section 5: the payload is Context ID (i) = 0, then UDP data.
    assert encode_datagram_capsule(b"abc") == bytes([0x00, 0x04, 0x00]) + b"abc"
    assert encode_capsule(0x2A, b"") == b"\x2a\x00"
    big = b"x" * 300  # a two-byte length: 301 = 0x412d
    assert encode_datagram_capsule(big)[:4] == bytes([0x00, 0x41, 0x2D, 0x00])
    assert encode_udp_payload(b"", context_id=2) == b"\x02"
    assert decode_udp_payload(b"\x00hello") == (0, b"hello")
    assert decode_udp_payload(b"\x40\x40x") == (64, b"x")
    with pytest.raises(WireError):
        encode_udp_payload(b"x" * 65528)


def test_h3_datagram_quarter_stream_id() -> None:
    # RFC 9297 section 2.1: HTTP/3 Datagram { Quarter Stream ID (i), Payload (..) }
    assert encode_h3_datagram(0, b"\x00a") == b"\x00\x00a"
    assert encode_h3_datagram(4, b"\x00a") == b"\x01\x00a"
    assert encode_h3_datagram(4 * 64, b"") == b"\x40\x40"
    assert decode_h3_datagram(b"\x01\x00a") == (4, b"\x00a")
    with pytest.raises(WireError):
        encode_h3_datagram(2, b"")


def test_aioquic_sends_the_same_h3_datagram_bytes() -> None:
    quic = QuicConnection(configuration=outer_configuration(is_client=True))
    h3 = MasqueH3Connection(quic)
    h3.send_datagram(8, encode_udp_payload(b"payload"))
    assert quic._datagrams_pending[-1] == encode_h3_datagram(8, b"\x00payload")


def test_settings_h3_datagram_without_webtransport() -> None:
    sent = MasqueH3Connection(QuicConnection(
        configuration=outer_configuration(is_client=True))).sent_settings
    assert sent is not None
    assert sent[Setting.H3_DATAGRAM] == 1 and sent[0x33] == 1
    assert sent[Setting.ENABLE_CONNECT_PROTOCOL] == 1
    assert Setting.ENABLE_WEBTRANSPORT not in sent
    # plain aioquic leaves H3_DATAGRAM out; without DATAGRAM frames so does MasqueH3Connection
    plain = H3Connection(QuicConnection(configuration=QuicConfiguration(is_client=True)))
    assert Setting.H3_DATAGRAM not in (plain.sent_settings or {})
    no_frames = MasqueH3Connection(QuicConnection(
        configuration=outer_configuration(is_client=True, datagrams=False))).sent_settings
    assert Setting.H3_DATAGRAM not in (no_frames or {})


def test_capsule_parser_any_chunking_and_unknown_types() -> None:
    stream = (encode_datagram_capsule(b"one") + encode_capsule(0x1234, b"ignored")
              + encode_datagram_capsule(b"x" * 500) + encode_capsule(0x00, b"\x00"))
    for chunk in (1, 2, 7, len(stream)):
        parser = CapsuleParser()
        got = []
        for i in range(0, len(stream), chunk):
            got += parser.feed(stream[i:i + chunk])
        assert got == [(CAPSULE_DATAGRAM, b"\x00one"), (0x1234, b"ignored"),
                       (CAPSULE_DATAGRAM, b"\x00" + b"x" * 500), (CAPSULE_DATAGRAM, b"\x00")]
        assert parser.pending == 0
    parser = CapsuleParser()
    assert parser.feed(b"\x00\x05\x00ab") == []
    assert parser.pending == 5
    with pytest.raises(WireError):
        CapsuleParser(max_length=100).feed(encode_capsule(0, b"y" * 101))


# RFC 9298 section 2, "URI Template Examples", expanded for 192.0.2.6:443.
RFC9298_TEMPLATES = [
    ("https://masque.example.org/.well-known/masque/udp/{target_host}/{target_port}/",
     "https://masque.example.org/.well-known/masque/udp/192.0.2.6/443/"),
    ("https://proxy.example.org:4443/masque?h={target_host}&p={target_port}",
     "https://proxy.example.org:4443/masque?h=192.0.2.6&p=443"),
    ("https://proxy.example.org:4443/masque{?target_host,target_port}",
     "https://proxy.example.org:4443/masque?target_host=192.0.2.6&target_port=443"),
]


@pytest.mark.parametrize(("template", "expanded"), RFC9298_TEMPLATES)
def test_rfc9298_template_examples(template: str, expanded: str) -> None:
    validate_template(template)
    assert expand_template(template, {"target_host": "192.0.2.6", "target_port": 443}) == expanded


def test_ipv6_target_is_percent_encoded_and_decoded() -> None:
    # RFC 9298 section 3: "2001:db8::42" is encoded in the URI as "2001%3Adb8%3A%3A42".
    path = udp_path("2001:db8::42", 443)
    assert path == "/.well-known/masque/udp/2001%3Adb8%3A%3A42/443/"
    found = TemplateMatcher().match(path)
    assert found == {"target_host": "2001%3Adb8%3A%3A42", "target_port": "443"}
    target = parse_target(found["target_host"], found["target_port"])
    assert (target.host, target.port, target.address.version) == ("2001:db8::42", 443, 6)
    assert udp_path("192.0.2.6", 443) == "/.well-known/masque/udp/192.0.2.6/443/"
    assert udp_path("example.org", 53) == "/.well-known/masque/udp/example.org/53/"


def test_template_requirements_of_rfc9298_section_2() -> None:
    for bad in ("/relative/{target_host}/{target_port}/",
                "https://p.example/{+target_host}/{target_port}/",
                "https://p.example/x{#target_host,target_port}",
                "https://p.example/x{/target_host,target_port}",
                "https://p.example/only/{target_host}/",
                "https://{target_host}.example/{target_port}/",
                "https://p.example/ü/{target_host}/{target_port}/"):
        with pytest.raises(WireError):
            validate_template(bad)


def test_matcher_for_query_templates() -> None:
    matcher = TemplateMatcher("/masque{?target_host,target_port}")
    assert matcher.match("/masque?target_host=192.0.2.6&target_port=443") == {
        "target_host": "192.0.2.6", "target_port": "443"}
    assert matcher.match("/masque?target_port=443") is None
    plain = TemplateMatcher("/masque?h={target_host}&p={target_port}")
    assert plain.match("/masque?h=example.org&p=53") == {"target_host": "example.org",
                                                          "target_port": "53"}
    assert TemplateMatcher().match("/.well-known/masque/udp/a/b/c/") is None
    assert TemplateMatcher().match(DEFAULT_TEMPLATE_PATH) is not None  # braces are text
    with pytest.raises(WireError):
        TemplateMatcher("/masque/{target_host}/")


@pytest.mark.parametrize(("host", "port"), [
    ("192.0.2.6", "0"), ("192.0.2.6", "70000"), ("192.0.2.6", "-1"), ("192.0.2.6", "44x"),
    ("192.0.2.6", ""), ("", "443"), ("not%20a%20host", "443"), ("fe80%3A%3A1%25eth0", "443"),
    ("2001%3Adb8%3A%3Azz", "443"), ("300.1.2.3", "443"), ("-bad-.example", "443"),
    ("%C3%BC.example", "443"),
])
def test_bad_targets(host: str, port: str) -> None:
    with pytest.raises(WireError):
        parse_target(host, port)


def test_good_targets() -> None:
    assert parse_target("192.0.2.6", "443").address is not None
    assert parse_target("%5B2001%3Adb8%3A%3A1%5D", "1").host == "2001:db8::1"  # brackets
    name = parse_target("Example.ORG.", "65535")
    assert (name.host, name.port, name.address) == ("example.org", 65535, None)


def test_proxy_status_and_booleans() -> None:
    # RFC 9209: Proxy-Status: <proxy>; error=<type>; details="<string>"
    value = proxy_status("destination_ip_prohibited", 'say "no"')
    assert value == 'mp-proxy; error=destination_ip_prohibited; details="say \\"no\\""'
    assert parse_proxy_status(value) == {"error": "destination_ip_prohibited",
                                         "details": 'say "no"'}
    assert sf_boolean(b"?1") and sf_boolean("?1;x=1")
    assert not sf_boolean(b"?0") and not sf_boolean(None) and not sf_boolean("1")
