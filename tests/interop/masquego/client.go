package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

const clientAbout = `Opens --tunnels CONNECT-UDP tunnels to --target over one QUIC connection to --proxy with
quic-go/masque-go's client (datagram mode: HTTP Datagrams in QUIC DATAGRAM frames), or with
DATAGRAM capsules on the request stream (--mode stream: this program's code, masque-go has
no such mode; it also sends mp-proxy's "masque-mode: stream" header). Through each tunnel,
--count echo exchanges of --size bytes: plain UDP datagrams (--protocol udp, against a UDP
echo such as mp-target --udp), or streams of one inner QUIC connection (--protocol quic,
ALPN mp-echo, against mp-target --quic). Prints one JSON line per tunnel on stdout:
{"tunnel", "status", "proxy_status", "sent", "echoed", "lost", "rtt_ms", "closed", "error"}.
A refused tunnel shows the status and Proxy-Status the proxy answered. A lost UDP echo is
counted and the exchange goes on; a tunnel the proxy closes ends it ("closed"). Exit 1 if
any tunnel was refused, lost an echo or closed early.`

type tunnelReport struct {
	Tunnel      int       `json:"tunnel"`
	Target      string    `json:"target"`
	Mode        string    `json:"mode"`
	Status      int       `json:"status"`
	ProxyStatus string    `json:"proxy_status"`
	Sent        int       `json:"sent"`
	Echoed      int       `json:"echoed"`
	Lost        int       `json:"lost"`
	RTTms       []float64 `json:"rtt_ms"`
	Closed      string    `json:"closed"`
	Error       string    `json:"error"`
}

type exchange struct {
	protocol, pattern string
	count, size       int
	timeout, interval time.Duration
	hold              time.Duration
	innerPacketSize   int
}

// payload is exchange i's bytes: "seq" (4-byte index, then counting bytes), "zero" or "random".
func payload(pattern string, i, size int) []byte {
	b := make([]byte, size)
	switch pattern {
	case "zero":
	case "random":
		rand.Read(b)
	default:
		for j := range b {
			b[j] = byte(i + j)
		}
		if size >= 4 {
			binary.BigEndian.PutUint32(b, uint32(i))
		}
	}
	return b
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// udpExchange sends count payloads one at a time and waits for each echo.
func udpExchange(conn net.PacketConn, ex exchange, rep *tunnelReport) {
	buf := make([]byte, 65536)
	for i := 0; i < ex.count; i++ {
		want := payload(ex.pattern, i, ex.size)
		started := time.Now()
		if _, err := conn.WriteTo(want, nil); err != nil {
			rep.Closed = "send: " + err.Error()
			return
		}
		rep.Sent++
		conn.SetReadDeadline(started.Add(ex.timeout))
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				if isTimeout(err) {
					rep.Lost++
					break
				}
				rep.Closed = "receive: " + err.Error()
				return
			}
			if bytes.Equal(buf[:n], want) {
				rep.Echoed++
				rep.RTTms = append(rep.RTTms, float64(time.Since(started).Microseconds())/1000)
				break
			}
			// a late echo of an earlier exchange: keep waiting for this one
		}
		if ex.interval > 0 {
			time.Sleep(ex.interval)
		}
	}
}

// quicExchange runs an inner QUIC connection (ALPN mp-echo) through the tunnel: count
// streams, each sending a payload with FIN and reading the whole echo.
func quicExchange(ctx context.Context, conn tunnelConn, ex exchange, rep *tunnelReport) {
	tlsConf, _ := clientTLS("", "localhost", "mp-echo")
	conf := &quic.Config{InitialPacketSize: uint16(ex.innerPacketSize),
		DisablePathMTUDiscovery: true, HandshakeIdleTimeout: ex.timeout,
		MaxIdleTimeout: 30 * time.Second}
	hctx, cancel := context.WithTimeout(ctx, ex.timeout)
	defer cancel()
	inner, err := quic.Dial(hctx, conn, conn.RemoteAddr(), tlsConf, conf)
	if err != nil {
		rep.Error = "inner QUIC handshake: " + err.Error()
		return
	}
	defer inner.CloseWithError(0, "done")
	for i := 0; i < ex.count; i++ {
		want := payload(ex.pattern, i, ex.size)
		started := time.Now()
		sctx, scancel := context.WithTimeout(ctx, ex.timeout)
		str, err := inner.OpenStreamSync(sctx)
		scancel()
		if err != nil {
			rep.Error = "inner stream: " + err.Error()
			return
		}
		str.SetDeadline(started.Add(ex.timeout))
		rep.Sent++
		if _, err := str.Write(want); err != nil {
			rep.Error = "inner write: " + err.Error()
			return
		}
		str.Close()
		got, err := io.ReadAll(str)
		if err != nil || !bytes.Equal(got, want) {
			rep.Lost++
			if err != nil {
				rep.Error = "inner read: " + err.Error()
				return
			}
			continue
		}
		rep.Echoed++
		rep.RTTms = append(rep.RTTms, float64(time.Since(started).Microseconds())/1000)
		if ex.interval > 0 {
			time.Sleep(ex.interval)
		}
	}
}

func runClient(args []string) int {
	fs := newFlags("client", clientAbout)
	proxy := fs.String("proxy", "", "the proxy's UDP `HOST:PORT` (required)")
	template := fs.String("template", "", "the proxy's URI Template (default https://PROXY"+defaultTemplatePath+")")
	var targets multiFlag
	fs.Var(&targets, "target", "target `HOST:PORT` (repeatable; required)")
	tunnels := fs.Int("tunnels", 1, "tunnels per target, all on one QUIC connection")
	mode := fs.String("mode", "datagram", "datagram (masque-go: QUIC DATAGRAM frames) or stream (DATAGRAM capsules)")
	protocol := fs.String("protocol", "udp", "udp (datagram echo) or quic (inner QUIC connection, ALPN mp-echo)")
	count := fs.Int("count", 5, "echo exchanges per tunnel")
	size := fs.Int("size", 100, "bytes per exchange")
	pattern := fs.String("pattern", "seq", "payload bytes: seq (index, then counting bytes), zero or random")
	timeout := fs.Duration("timeout", 5*time.Second, "wait this long for each echo (and each step)")
	interval := fs.Duration("interval", 0, "pause between exchanges")
	hold := fs.Duration("hold", 0, "keep the tunnels open this long after the exchanges")
	caFile := fs.String("ca", "", "verify the proxy's certificate against this PEM file (default: no verification)")
	innerSize := fs.Int("inner-packet-size", 1200, "QUIC packet size of the inner connection (--protocol quic; quic-go's default is 1280)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *proxy == "" || len(targets) == 0 {
		return usageError(fs, "give --proxy HOST:PORT and at least one --target HOST:PORT")
	}
	for _, hp := range append([]string{*proxy}, targets...) {
		if err := checkHostPort(hp); err != nil {
			return usageError(fs, "%v", err)
		}
	}
	if *mode != "datagram" && *mode != "stream" {
		return usageError(fs, "--mode must be datagram or stream, not %q", *mode)
	}
	if *protocol != "udp" && *protocol != "quic" {
		return usageError(fs, "--protocol must be udp or quic, not %q", *protocol)
	}
	if *pattern != "seq" && *pattern != "zero" && *pattern != "random" {
		return usageError(fs, "--pattern must be seq, zero or random, not %q", *pattern)
	}
	if *tunnels < 1 || *count < 0 || *size < 1 || *size > 65527 || *timeout <= 0 {
		return usageError(fs, "--tunnels >= 1, --count >= 0, 1 <= --size <= 65527, --timeout > 0")
	}
	if *innerSize < 1200 || *innerSize > 1452 {
		return usageError(fs, "--inner-packet-size must be within 1200..1452")
	}
	tmpl, err := templateFor(*template, *proxy)
	if err != nil {
		return usageError(fs, "--template: %v", err)
	}
	tlsConf, err := clientTLS(*caFile, "localhost", http3.NextProtoH3)
	if err != nil {
		return usageError(fs, "--ca: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	qconn, err := dialProxy(ctx, *proxy, tlsConf)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "masquego client: %v\n", err)
		return 1
	}
	defer qconn.CloseWithError(0, "")
	op, err := newOpener(qconn, tmpl, *mode)
	if err != nil {
		fmt.Fprintf(os.Stderr, "masquego client: %v\n", err)
		return 1
	}
	ex := exchange{protocol: *protocol, pattern: *pattern, count: *count, size: *size,
		timeout: *timeout, interval: *interval, hold: *hold, innerPacketSize: *innerSize}
	var wg sync.WaitGroup
	reports := make([]*tunnelReport, 0)
	var rmx sync.Mutex
	n := 0
	for _, target := range targets {
		for t := 0; t < *tunnels; t++ {
			rep := &tunnelReport{Tunnel: n, Target: target, Mode: *mode, RTTms: []float64{}}
			n++
			reports = append(reports, rep)
			wg.Add(1)
			go func() {
				defer wg.Done()
				runTunnelExchange(op, target, ex, rep)
				rmx.Lock()
				printJSON(rep)
				rmx.Unlock()
			}()
		}
	}
	wg.Wait()
	for _, rep := range reports {
		if rep.Status < 200 || rep.Status > 299 || rep.Lost > 0 || rep.Closed != "" || rep.Error != "" || rep.Echoed < ex.count {
			return 1
		}
	}
	return 0
}

func runTunnelExchange(op *opener, target string, ex exchange, rep *tunnelReport) {
	ctx, cancel := context.WithTimeout(context.Background(), ex.timeout)
	conn, ps, err := op.open(ctx, target)
	cancel()
	if err != nil {
		var ref *refusal
		if errors.As(err, &ref) {
			rep.Status, rep.ProxyStatus = ref.Status, ref.ProxyStatus
		}
		rep.Error = err.Error()
		return
	}
	rep.Status, rep.ProxyStatus = 200, ps
	defer conn.Close()
	if ex.protocol == "quic" {
		quicExchange(context.Background(), conn, ex, rep)
	} else {
		udpExchange(conn, ex, rep)
	}
	if ex.hold > 0 {
		time.Sleep(ex.hold)
	}
}
