package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dunglas/httpsfv"
	"github.com/quic-go/masque-go"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/yosida95/uritemplate/v3"
)

const proxyAbout = `Serves CONNECT-UDP with quic-go/masque-go's Proxy (unchanged) behind quic-go's http3.Server
(SETTINGS_H3_DATAGRAM and SETTINGS_ENABLE_CONNECT_PROTOCOL on). masque-go has no access policy
and no tunnel limit; this program adds both in front of it, with RFC 9209 Proxy-Status:
403 destination_ip_prohibited outside --allow, 429 connection_limit_reached past
--max-tunnels, and 400/405/501 http_request_error for what masque.ParseProxyRequest refuses.
Prints "ready HOST:PORT TEMPLATE" on stderr when serving, one line per tunnel and refusal,
and the counters on SIGINT/SIGTERM.`

type connKey struct{}

type proxyServer struct {
	template   *uritemplate.Template
	allow      []*net.IPNet
	maxTunnels int
	proxy      masque.Proxy

	mx        sync.Mutex
	perConn   map[*quic.Conn]int
	refusals  map[int]int
	opened    atomic.Int64
	closed    atomic.Int64
	nextLabel atomic.Int64
}

// proxyStatus is an RFC 9209 Proxy-Status value naming this proxy, with error and details.
func proxyStatus(errType, details string) string {
	item := httpsfv.NewItem(httpsfv.Token("masquego"))
	item.Params.Add("error", httpsfv.Token(errType))
	if details != "" {
		item.Params.Add("details", details)
	}
	v, err := httpsfv.Marshal(item)
	if err != nil {
		return "masquego"
	}
	return v
}

func (s *proxyServer) refuse(w http.ResponseWriter, r *http.Request, status int, errType, details string) {
	w.Header().Set("Proxy-Status", proxyStatus(errType, details))
	w.WriteHeader(status)
	s.mx.Lock()
	s.refusals[status]++
	s.mx.Unlock()
	logf("request refused %s %s: %d %s (%s)", r.RemoteAddr, r.URL.Path, status, errType, details)
}

func (s *proxyServer) allowed(ip net.IP) bool {
	if len(s.allow) == 0 {
		return true
	}
	for _, n := range s.allow {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func (s *proxyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := masque.ParseProxyRequest(r, s.template)
	if err != nil {
		status := http.StatusBadRequest
		var perr *masque.ProxyRequestParseError
		if errors.As(err, &perr) {
			status = perr.HTTPStatus
		}
		s.refuse(w, r, status, "http_request_error", err.Error())
		return
	}
	addr, err := net.ResolveUDPAddr("udp", req.Target)
	if err != nil {
		s.refuse(w, r, http.StatusBadGateway, "dns_error", err.Error())
		return
	}
	if !s.allowed(addr.IP) {
		s.refuse(w, r, http.StatusForbidden, "destination_ip_prohibited",
			fmt.Sprintf("%s is outside the allowed networks", addr.IP))
		return
	}
	conn, _ := r.Context().Value(connKey{}).(*quic.Conn)
	s.mx.Lock()
	if s.maxTunnels > 0 && s.perConn[conn] >= s.maxTunnels {
		s.mx.Unlock()
		s.refuse(w, r, http.StatusTooManyRequests, "connection_limit_reached",
			fmt.Sprintf("at most %d tunnels per client connection", s.maxTunnels))
		return
	}
	s.perConn[conn]++
	s.mx.Unlock()
	defer func() {
		s.mx.Lock()
		if s.perConn[conn]--; s.perConn[conn] <= 0 {
			delete(s.perConn, conn)
		}
		s.mx.Unlock()
	}()
	label := s.nextLabel.Add(1)
	s.opened.Add(1)
	logf("tunnel open #%d %s -> %s (open %d)", label, r.RemoteAddr, req.Target,
		s.opened.Load()-s.closed.Load())
	started := time.Now()
	// masque-go's Proxy as it is: it writes the 200 (with Proxy-Status next-hop) and relays
	// until the request stream or the socket ends.
	err = s.proxy.Proxy(w, req)
	s.closed.Add(1)
	logf("tunnel close #%d %s -> %s after %.1f s (%v) (open %d)", label, r.RemoteAddr, req.Target,
		time.Since(started).Seconds(), err, s.opened.Load()-s.closed.Load())
}

func (s *proxyServer) counters() string {
	s.mx.Lock()
	defer s.mx.Unlock()
	codes := make([]int, 0, len(s.refusals))
	for c := range s.refusals {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d: %d", c, s.refusals[c]))
	}
	return fmt.Sprintf("counters: tunnels opened %d, closed %d; refused by status: {%s}",
		s.opened.Load(), s.closed.Load(), strings.Join(parts, ", "))
}

func runProxy(args []string) int {
	fs := newFlags("proxy", proxyAbout)
	listen := fs.String("listen", "127.0.0.1:4433", "UDP `HOST:PORT` to serve HTTP/3 on (port 0: any free port)")
	certFile := fs.String("cert", "", "TLS certificate `PEM` file (with --key; default: self-signed)")
	keyFile := fs.String("key", "", "TLS private key `PEM` file (with --cert)")
	template := fs.String("template", "", "URI Template served (default https://LISTEN"+defaultTemplatePath+
		" with the bound address); its host:port must equal the clients' :authority")
	var allow multiFlag
	fs.Var(&allow, "allow", "relay only to this `CIDR` (repeatable; default: anything, as masque-go)")
	maxTunnels := fs.Int("max-tunnels", 0, "open tunnels per client QUIC connection, more get 429 (0: no limit)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if err := checkHostPort(*listen); err != nil {
		return usageError(fs, "--listen: %v", err)
	}
	if *maxTunnels < 0 {
		return usageError(fs, "--max-tunnels must be >= 0")
	}
	s := &proxyServer{maxTunnels: *maxTunnels, perConn: map[*quic.Conn]int{}, refusals: map[int]int{}}
	for _, cidr := range allow {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			if ip := net.ParseIP(cidr); ip != nil {
				bits := 8 * len(ip.To16())
				if ip.To4() != nil {
					ip, bits = ip.To4(), 32
				}
				n = &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}
			} else {
				return usageError(fs, "--allow: %q is not a CIDR", cidr)
			}
		}
		s.allow = append(s.allow, n)
	}
	host, _, _ := net.SplitHostPort(*listen)
	cert, err := serverCertificate(*certFile, *keyFile, host)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	udpAddr, err := net.ResolveUDPAddr("udp", *listen)
	if err != nil {
		return usageError(fs, "--listen: %v", err)
	}
	pconn, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		logf("masquego proxy: cannot listen on %s: %v", *listen, err)
		return 1
	}
	bound := pconn.LocalAddr().String()
	if s.template, err = templateFor(*template, bound); err != nil {
		pconn.Close()
		return usageError(fs, "--template: %v", err)
	}
	server := &http3.Server{
		TLSConfig:       http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
		EnableDatagrams: true,
		// room for a whole 1200-byte inner QUIC packet in one DATAGRAM frame from the start,
		// as masque-go's own client sets for its connection to the proxy
		QUICConfig: &quic.Config{EnableDatagrams: true, InitialPacketSize: 1350,
			MaxIncomingStreams: 4096},
		Handler: s,
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	served := make(chan error, 1)
	go func() { served <- server.Serve(pconn) }()
	allowText := allow.String()
	if allowText == "" {
		allowText = "anything"
	}
	logf("ready %s %s (allow %s, max tunnels per connection %d)", bound, s.template.Raw(), allowText, *maxTunnels)
	stop := onSignal()
	code := 0
	select {
	case <-stop:
	case err := <-served:
		logf("masquego proxy: serving failed: %v", err)
		code = 1
	}
	s.proxy.Close()
	server.Close()
	pconn.Close()
	logf("%s", s.counters())
	return code
}
