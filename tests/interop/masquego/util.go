package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/yosida95/uritemplate/v3"
)

// defaultTemplatePath is RFC 9298's default URI Template path (also mp-proxy's).
const defaultTemplatePath = "/.well-known/masque/udp/{target_host}/{target_port}/"

// templateFor is the URI Template of a proxy at authority (host:port): `template` when
// given, else https://authority + the default path.
func templateFor(template, authority string) (*uritemplate.Template, error) {
	if template == "" {
		template = "https://" + authority + defaultTemplatePath
	}
	t, err := uritemplate.New(template)
	if err != nil {
		return nil, fmt.Errorf("bad URI Template %q: %v", template, err)
	}
	names := strings.Join(t.Varnames(), ",")
	if !strings.Contains(names, "target_host") || !strings.Contains(names, "target_port") {
		return nil, fmt.Errorf("URI Template %q lacks {target_host} or {target_port}", template)
	}
	return t, nil
}

// checkHostPort reports whether s is HOST:PORT with a numeric port.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT", s)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if _, err := net.LookupPort("udp", port); err != nil {
		return fmt.Errorf("%q: bad port", s)
	}
	return nil
}

// onSignal returns a channel closed on SIGINT or SIGTERM.
func onSignal() <-chan struct{} {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { <-ch; close(done) }()
	return done
}

var stdoutMx sync.Mutex

// printJSON writes one JSON line to stdout.
func printJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	stdoutMx.Lock()
	defer stdoutMx.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

// logf writes one line to stderr.
func logf(format string, args ...any) {
	stdoutMx.Lock()
	defer stdoutMx.Unlock()
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, err)
	}
	return b, nil
}
