package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/quic-go/masque-go"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"
	"github.com/yosida95/uritemplate/v3"
)

// outerQUICConfig is the QUIC configuration of the connection to the proxy: DATAGRAM frames,
// and 1350-byte packets so that a whole inner QUIC packet fits (as masque-go's own client).
func outerQUICConfig() *quic.Config {
	return &quic.Config{EnableDatagrams: true, InitialPacketSize: 1350,
		MaxIdleTimeout: 60 * time.Second}
}

// dialProxy opens the QUIC connection (ALPN h3) to the proxy.
func dialProxy(ctx context.Context, proxy string, tlsConf *tls.Config) (*quic.Conn, error) {
	conn, err := quic.DialAddr(ctx, proxy, tlsConf, outerQUICConfig())
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the proxy %s: %v", proxy, err)
	}
	return conn, nil
}

// refusal is a non-2xx answer to a CONNECT-UDP request, as the client saw it.
type refusal struct {
	Status      int
	ProxyStatus string
}

func (r *refusal) Error() string {
	return fmt.Sprintf("proxy refused the tunnel: %d (Proxy-Status: %s)", r.Status, r.ProxyStatus)
}

// opener opens tunnels over one QUIC connection to the proxy, in datagram mode (masque-go's
// client, unchanged) or in stream mode (DATAGRAM capsules on the request stream: this
// program's own code on quic-go's http3, since masque-go only sends QUIC DATAGRAM frames).
type opener struct {
	template *uritemplate.Template
	mode     string
	masque   *masque.ClientConn
	raw      *http3.ClientConn
}

func newOpener(conn *quic.Conn, template *uritemplate.Template, mode string) (*opener, error) {
	o := &opener{template: template, mode: mode}
	if mode == "stream" {
		o.raw = (&http3.Transport{EnableDatagrams: true}).NewClientConn(conn)
		return o, nil
	}
	var tr masque.Transport
	cc, err := tr.NewClientConn(conn)
	if err != nil {
		return nil, err
	}
	o.masque = cc
	return o, nil
}

// tunnelConn is one open tunnel: masque-go's *masque.Conn or this program's *capsuleConn.
type tunnelConn interface {
	net.PacketConn
	RemoteAddr() net.Addr
}

// open sends one CONNECT-UDP request for target; the tunnel and the response's Proxy-Status.
func (o *opener) open(ctx context.Context, target string) (tunnelConn, string, error) {
	if o.mode == "stream" {
		return o.openStream(ctx, target)
	}
	req, err := masque.NewRequest(ctx, o.template, target)
	if err != nil {
		return nil, "", err
	}
	conn, rsp, err := o.masque.Dial(req)
	if err != nil {
		if rsp != nil {
			return nil, "", &refusal{rsp.StatusCode, rsp.Header.Get("Proxy-Status")}
		}
		return nil, "", err
	}
	return conn, rsp.Header.Get("Proxy-Status"), nil
}

func (o *opener) openStream(ctx context.Context, target string) (tunnelConn, string, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, "", err
	}
	u, err := o.template.Expand(uritemplate.Values{
		"target_host": uritemplate.String(host), "target_port": uritemplate.String(port)})
	if err != nil {
		return nil, "", err
	}
	select {
	case <-o.raw.ReceivedSettings():
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	if !o.raw.Settings().EnableExtendedConnect {
		return nil, "", errors.New("the proxy did not enable extended CONNECT")
	}
	str, err := o.raw.OpenRequestStream(ctx)
	if err != nil {
		return nil, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodConnect, u, nil)
	if err != nil {
		return nil, "", err
	}
	req.Proto = "connect-udp"
	req.Host = req.URL.Host
	req.Header.Set(http3.CapsuleProtocolHeader, "?1")
	req.Header.Set("Masque-Mode", "stream") // mp-proxy's header: answer in capsules too
	if err := str.SendRequestHeader(req); err != nil {
		return nil, "", err
	}
	rsp, err := str.ReadResponse()
	if err != nil {
		return nil, "", err
	}
	if rsp.StatusCode < 200 || rsp.StatusCode > 299 {
		str.CancelRead(quic.StreamErrorCode(http3.ErrCodeNoError))
		str.Close()
		return nil, "", &refusal{rsp.StatusCode, rsp.Header.Get("Proxy-Status")}
	}
	return newCapsuleConn(str, target), rsp.Header.Get("Proxy-Status"), nil
}

// capsuleConn carries UDP payloads as DATAGRAM capsules (RFC 9297 section 3.5, context ID 0)
// on a CONNECT-UDP request stream; a net.PacketConn like masque-go's Conn.
type capsuleConn struct {
	str    *http3.RequestStream
	remote masqueAddr
	in     chan []byte
	wmx    sync.Mutex
	done   chan struct{}
	err    error

	dmx      sync.Mutex
	deadline time.Time
}

type masqueAddr string

func (a masqueAddr) Network() string { return "connect-udp" }
func (a masqueAddr) String() string  { return string(a) }

func newCapsuleConn(str *http3.RequestStream, target string) *capsuleConn {
	c := &capsuleConn{str: str, remote: masqueAddr(target), in: make(chan []byte, 1024),
		done: make(chan struct{})}
	go c.readLoop()
	return c
}

func (c *capsuleConn) readLoop() {
	defer close(c.done)
	r := quicvarint.NewReader(bufio.NewReaderSize(c.str, 64*1024))
	for {
		ct, value, err := http3.ParseCapsule(r)
		if err != nil {
			c.err = err
			return
		}
		body, err := io.ReadAll(value)
		if err != nil {
			c.err = err
			return
		}
		if ct != 0 {
			continue // unknown capsule types are ignored (RFC 9297 section 3.2)
		}
		contextID, n, err := quicvarint.Parse(body)
		if err != nil || contextID != 0 {
			continue
		}
		select {
		case c.in <- body[n:]:
		default: // a full queue drops, as a UDP socket would
		}
	}
}

func (c *capsuleConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.dmx.Lock()
	deadline := c.deadline
	c.dmx.Unlock()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case p := <-c.in:
		return copy(b, p), c.remote, nil
	case <-timeout:
		return 0, nil, os.ErrDeadlineExceeded
	case <-c.done:
		select {
		case p := <-c.in:
			return copy(b, p), c.remote, nil
		default:
		}
		return 0, nil, c.err
	}
}

func (c *capsuleConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	value := make([]byte, 0, len(p)+1)
	value = append(value, 0) // context ID 0: a UDP payload
	value = append(value, p...)
	c.wmx.Lock()
	defer c.wmx.Unlock()
	if err := http3.WriteCapsule(quicvarint.NewWriter(c.str), 0, value); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *capsuleConn) Close() error {
	c.str.CancelRead(quic.StreamErrorCode(http3.ErrCodeNoError))
	return c.str.Close()
}

func (c *capsuleConn) LocalAddr() net.Addr  { return masqueAddr("local") }
func (c *capsuleConn) RemoteAddr() net.Addr { return c.remote }
func (c *capsuleConn) SetDeadline(t time.Time) error {
	return c.SetReadDeadline(t)
}
func (c *capsuleConn) SetReadDeadline(t time.Time) error {
	c.dmx.Lock()
	c.deadline = t
	c.dmx.Unlock()
	return nil
}
func (c *capsuleConn) SetWriteDeadline(time.Time) error { return nil }
