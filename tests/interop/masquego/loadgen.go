package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"sync"
	"time"
)

const loadgenAbout = `Offers paced UDP load to --target (an echo, directly or through a tunnel forwarder or a
switch) for --duration at --rate packets/s of --size bytes, and counts the echoes that come
back on the same socket. Every packet carries a run id, a sequence number and its send time,
so late, duplicate and foreign packets are told apart. With --shim-flow N every packet is
wrapped in masque-pifo's 8-byte fast-path shim (version 1, flow N) and answers are unwrapped.
Prints one JSON line: offered and sent rates, echoes received, loss, carried rate, and the
round-trip time percentiles in microseconds.`

const (
	lgMagic  = 0x4d504c47 // "MPLG"
	lgHeader = 24         // magic, run id, sequence number, send time (ns since start)
	shimSize = 8
)

type loadReport struct {
	OfferedPPS  float64 `json:"offered_pps"`
	Size        int     `json:"size"`
	Duration    float64 `json:"duration_s"`
	Sent        int64   `json:"sent"`
	SentPPS     float64 `json:"sent_pps"`
	SendErrors  int64   `json:"send_errors"`
	Received    int64   `json:"received"`
	Duplicates  int64   `json:"duplicates"`
	Foreign     int64   `json:"foreign"`
	Loss        float64 `json:"loss"`
	CarriedPPS  float64 `json:"carried_pps"`
	CarriedMbps float64 `json:"carried_mbps"`
	RTTp50us    float64 `json:"rtt_p50_us"`
	RTTp90us    float64 `json:"rtt_p90_us"`
	RTTp99us    float64 `json:"rtt_p99_us"`
	RTTmaxus    float64 `json:"rtt_max_us"`
}

func percentile(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return float64(sorted[i]) / 1000
}

func runLoadgen(args []string) int {
	fs := newFlags("loadgen", loadgenAbout)
	target := fs.String("target", "", "where to send: UDP `HOST:PORT` (required)")
	bind := fs.String("bind", "", "local `HOST:PORT` to send from (default: any)")
	rate := fs.Float64("rate", 1000, "packets per second offered")
	duration := fs.Duration("duration", 2*time.Second, "how long to send")
	size := fs.Int("size", 1000, "UDP payload bytes per packet (shim included)")
	drain := fs.Duration("drain", time.Second, "wait this long after the last send for late echoes")
	shimFlow := fs.Int64("shim-flow", -1, "wrap every packet in the fast-path shim of this flow id (-1: no shim)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if err := checkHostPort(*target); err != nil {
		return usageError(fs, "--target: %v", err)
	}
	head := lgHeader
	if *shimFlow >= 0 {
		head += shimSize
	}
	if *rate <= 0 || *duration <= 0 || *size < head || *size > 65507 || *drain < 0 {
		return usageError(fs, "--rate > 0, --duration > 0, %d <= --size <= 65507, --drain >= 0", head)
	}
	if *shimFlow > 0xffffffff {
		return usageError(fs, "--shim-flow must fit 32 bits")
	}
	raddr, err := net.ResolveUDPAddr("udp", *target)
	if err != nil {
		return usageError(fs, "--target: %v", err)
	}
	var laddr *net.UDPAddr
	if *bind != "" {
		if laddr, err = net.ResolveUDPAddr("udp", *bind); err != nil {
			return usageError(fs, "--bind: %v", err)
		}
	}
	sock, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "masquego loadgen: %v\n", err)
		return 1
	}
	defer sock.Close()
	sock.SetReadBuffer(8 << 20)
	sock.SetWriteBuffer(8 << 20)

	total := int64(*rate * duration.Seconds())
	runID := rand.Uint32()
	seen := make([]bool, total+1)
	rtts := make([]int64, 0, total)
	var received, duplicates, foreign int64
	var mx sync.Mutex
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					return
				}
				continue // ICMP errors on a connected socket: keep reading
			}
			now := time.Since(start).Nanoseconds()
			p := buf[:n]
			if *shimFlow >= 0 {
				if n < shimSize || p[0] != 1 || int64(binary.BigEndian.Uint32(p[4:8])) != *shimFlow {
					foreign++
					continue
				}
				p = p[shimSize:]
			}
			if len(p) < lgHeader || binary.BigEndian.Uint32(p) != lgMagic || binary.BigEndian.Uint32(p[4:]) != runID {
				foreign++
				continue
			}
			seq := binary.BigEndian.Uint64(p[8:])
			sent := int64(binary.BigEndian.Uint64(p[16:]))
			mx.Lock()
			if seq >= uint64(len(seen)) {
				foreign++
			} else if seen[seq] {
				duplicates++
			} else {
				seen[seq] = true
				received++
				rtts = append(rtts, now-sent)
			}
			mx.Unlock()
		}
	}()

	pkt := make([]byte, *size)
	body := pkt
	if *shimFlow >= 0 {
		pkt[0] = 1
		binary.BigEndian.PutUint32(pkt[4:8], uint32(*shimFlow))
		body = pkt[shimSize:]
	}
	binary.BigEndian.PutUint32(body, lgMagic)
	binary.BigEndian.PutUint32(body[4:], runID)
	var sent, sendErrors int64
	interval := time.Duration(float64(time.Second) / *rate)
	for sent < total {
		due := int64(time.Since(start)/interval) + 1
		if due > total {
			due = total
		}
		for ; sent < due; sent++ {
			binary.BigEndian.PutUint64(body[8:], uint64(sent))
			binary.BigEndian.PutUint64(body[16:], uint64(time.Since(start).Nanoseconds()))
			if _, err := sock.Write(pkt); err != nil {
				sendErrors++
			}
		}
		if sent < total {
			next := start.Add(time.Duration(sent) * interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	}
	sendTime := time.Since(start).Seconds()
	// wait for the echoes: until all came back or --drain passed without news
	deadline := time.Now().Add(*drain)
	for time.Now().Before(deadline) {
		mx.Lock()
		all := received >= sent-sendErrors
		mx.Unlock()
		if all {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	sock.SetReadDeadline(time.Now())
	<-done
	mx.Lock()
	defer mx.Unlock()
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	rep := loadReport{OfferedPPS: *rate, Size: *size, Duration: sendTime, Sent: sent,
		SentPPS: float64(sent) / sendTime, SendErrors: sendErrors, Received: received,
		Duplicates: duplicates, Foreign: foreign,
		CarriedPPS: float64(received) / sendTime,
		RTTp50us:   percentile(rtts, 0.5), RTTp90us: percentile(rtts, 0.9),
		RTTp99us: percentile(rtts, 0.99), RTTmaxus: percentile(rtts, 1)}
	rep.CarriedMbps = rep.CarriedPPS * float64(*size) * 8 / 1e6
	if sent > 0 {
		rep.Loss = 1 - float64(received)/float64(sent)
	}
	printJSON(rep)
	return 0
}

const echoAbout = `A UDP echo server: every datagram goes back to its sender. Prints "ready HOST:PORT" on
stderr, and the number of datagrams echoed on SIGINT/SIGTERM.`

func runEcho(args []string) int {
	fs := newFlags("echo", echoAbout)
	listen := fs.String("listen", "127.0.0.1:0", "UDP `HOST:PORT` to serve on (port 0: any free port)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if err := checkHostPort(*listen); err != nil {
		return usageError(fs, "--listen: %v", err)
	}
	addr, err := net.ResolveUDPAddr("udp", *listen)
	if err != nil {
		return usageError(fs, "--listen: %v", err)
	}
	sock, err := net.ListenUDP("udp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "masquego echo: cannot listen on %s: %v\n", *listen, err)
		return 1
	}
	sock.SetReadBuffer(8 << 20)
	sock.SetWriteBuffer(8 << 20)
	var echoed int64
	var mx sync.Mutex
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := sock.ReadFromUDP(buf)
			if err != nil {
				return
			}
			sock.WriteToUDP(buf[:n], from)
			mx.Lock()
			echoed++
			mx.Unlock()
		}
	}()
	logf("ready %s", sock.LocalAddr())
	<-onSignal()
	sock.Close()
	mx.Lock()
	logf("counters: echoed %d", echoed)
	mx.Unlock()
	return 0
}
