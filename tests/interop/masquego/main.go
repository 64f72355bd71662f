// Command masquego runs quic-go/masque-go's CONNECT-UDP (RFC 9298) proxy and client from the
// command line, so that masque-pifo's mp-proxy and mp-client can be tested against an
// independent implementation, and measured beside it.
//
// Subcommands (each has --help):
//
//	proxy    masque-go's Proxy behind quic-go's http3.Server, with an allow-list and a
//	         per-connection tunnel limit (this program's; masque-go has neither)
//	client   masque-go's client: N tunnels on one QUIC connection, an echo exchange
//	         (plain UDP, or an inner QUIC connection) through each; one JSON line per tunnel
//	tunnel   a UDP forwarder: what arrives on a local UDP socket goes through one tunnel
//	         (masque-go's client, or DATAGRAM capsules with --mode stream) and back
//	loadgen  paced UDP load with sequence numbers and timestamps; counts the echoes
//	echo     a UDP echo server
//
// Nothing here changes masque-go: the proxy is masque.Proxy as it is, the client is
// masque.ClientConn as it is. Only --mode stream (which masque-go does not offer) is this
// program's own code, on quic-go's http3 package.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

const usageText = `usage: masquego COMMAND [flags]

Runs quic-go/masque-go (RFC 9298 CONNECT-UDP) for masque-pifo's interop tests and benchmarks.

commands:
  proxy    serve CONNECT-UDP with masque-go's proxy (allow-list, tunnel limit, Proxy-Status)
  client   open tunnels with masque-go's client and run an echo exchange through each
  tunnel   forward a local UDP socket through one CONNECT-UDP tunnel (benchmark client)
  loadgen  offer paced UDP load and count what comes back (benchmark generator)
  echo     UDP echo server (benchmark target)

"masquego COMMAND --help" lists a command's flags. Exit status: 0 success, 1 failure
(a refused tunnel, a lost echo), 2 bad command line.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usageText)
		os.Exit(2)
	}
	commands := map[string]func([]string) int{
		"proxy": runProxy, "client": runClient, "tunnel": runTunnel,
		"loadgen": runLoadgen, "echo": runEcho,
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		fmt.Print(usageText)
		os.Exit(0)
	}
	run, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "masquego: unknown command %q (proxy, client, tunnel, loadgen, echo; --help)\n", name)
		os.Exit(2)
	}
	os.Exit(run(os.Args[2:]))
}

// newFlags is a FlagSet whose --help prints `about` and the flags to stdout.
func newFlags(name, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("masquego "+name, flag.ContinueOnError)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: masquego %s [flags]\n\n%s\n\nflags:\n", name, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; the exit code to return at once (0 for --help, 2 for an error), or -1.
func parseFlags(fs *flag.FlagSet, args []string) int {
	fs.SetOutput(os.Stdout)
	errOut := &strings.Builder{}
	fs.SetOutput(errOut)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stdout)
		fs.Usage()
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v (--help lists the flags)\n", fs.Name(), err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: unexpected argument %q (--help lists the flags)\n", fs.Name(), fs.Arg(0))
		return 2
	}
	return -1
}

// usageError prints one line and returns the bad-command-line exit code.
func usageError(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "%s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	return 2
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
