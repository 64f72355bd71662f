package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go/http3"
)

const tunnelAbout = `A UDP forwarder for benchmarks: datagrams arriving on --listen go through one CONNECT-UDP
tunnel to --target via --proxy; what comes back goes to the last local sender. Datagram mode
is quic-go/masque-go's client (unchanged); --mode stream carries DATAGRAM capsules on the
request stream (this program's code) and asks mp-proxy for it with "masque-mode: stream".
Prints "ready HOST:PORT" on stderr once the tunnel is open, and its counters on SIGINT/SIGTERM.
Exit 1 if the proxy refuses the tunnel or closes it.`

func runTunnel(args []string) int {
	fs := newFlags("tunnel", tunnelAbout)
	proxy := fs.String("proxy", "", "the proxy's UDP `HOST:PORT` (required)")
	template := fs.String("template", "", "the proxy's URI Template (default https://PROXY"+defaultTemplatePath+")")
	target := fs.String("target", "", "target `HOST:PORT` (required)")
	listen := fs.String("listen", "127.0.0.1:0", "local UDP `HOST:PORT` to forward from (port 0: any free port)")
	mode := fs.String("mode", "datagram", "datagram (masque-go) or stream (DATAGRAM capsules)")
	caFile := fs.String("ca", "", "verify the proxy's certificate against this PEM file (default: no verification)")
	timeout := fs.Duration("timeout", 10*time.Second, "time to connect and open the tunnel")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *proxy == "" || *target == "" {
		return usageError(fs, "give --proxy HOST:PORT and --target HOST:PORT")
	}
	for _, hp := range []string{*proxy, *target, *listen} {
		if err := checkHostPort(hp); err != nil {
			return usageError(fs, "%v", err)
		}
	}
	if *mode != "datagram" && *mode != "stream" {
		return usageError(fs, "--mode must be datagram or stream, not %q", *mode)
	}
	tmpl, err := templateFor(*template, *proxy)
	if err != nil {
		return usageError(fs, "--template: %v", err)
	}
	tlsConf, err := clientTLS(*caFile, "localhost", http3.NextProtoH3)
	if err != nil {
		return usageError(fs, "--ca: %v", err)
	}
	laddr, err := net.ResolveUDPAddr("udp", *listen)
	if err != nil {
		return usageError(fs, "--listen: %v", err)
	}
	local, err := net.ListenUDP("udp", laddr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "masquego tunnel: cannot listen on %s: %v\n", *listen, err)
		return 1
	}
	defer local.Close()
	// The kernel's default socket buffers: a forwarder that cannot push faster than the proxy
	// takes then loses packets, as a network would, instead of queueing seconds of them
	// (rmem_max may allow megabytes).
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	qconn, err := dialProxy(ctx, *proxy, tlsConf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "masquego tunnel: %v\n", err)
		return 1
	}
	defer qconn.CloseWithError(0, "")
	op, err := newOpener(qconn, tmpl, *mode)
	if err != nil {
		fmt.Fprintf(os.Stderr, "masquego tunnel: %v\n", err)
		return 1
	}
	conn, _, err := op.open(ctx, *target)
	if err != nil {
		fmt.Fprintf(os.Stderr, "masquego tunnel: %v\n", err)
		return 1
	}
	var up, down, upErrors atomic.Int64
	var peer atomic.Pointer[net.UDPAddr]
	closed := make(chan error, 2)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := local.ReadFromUDP(buf)
			if err != nil {
				closed <- err
				return
			}
			peer.Store(from)
			if _, err := conn.WriteTo(buf[:n], nil); err != nil {
				upErrors.Add(1)
				closed <- fmt.Errorf("tunnel send: %v", err)
				return
			}
			up.Add(1)
		}
	}()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				closed <- fmt.Errorf("tunnel receive: %v", err)
				return
			}
			if to := peer.Load(); to != nil {
				local.WriteToUDP(buf[:n], to)
				down.Add(1)
			}
		}
	}()
	logf("ready %s (tunnel to %s via %s, mode %s)", local.LocalAddr(), *target, *proxy, *mode)
	code := 0
	select {
	case <-onSignal():
	case err := <-closed:
		logf("masquego tunnel: %v", err)
		code = 1
	}
	conn.Close()
	logf("counters: up %d, down %d, send errors %d", up.Load(), down.Load(), upErrors.Load())
	return code
}
