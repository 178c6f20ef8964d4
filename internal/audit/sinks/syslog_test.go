package sinks_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/audit/sinks"
)

// stSyslogRcv is a syslog receiver: TCP or TLS with RFC 6587 octet
// counting, or UDP with a message a datagram.
type stSyslogRcv struct {
	addr  string
	msgs  chan string
	conns chan net.Conn // accepted connections (stream receivers)
	errs  chan error    // framing errors
	close func()
}

func newSTSyslogStream(t *testing.T, tc *tls.Config) *stSyslogRcv {
	t.Helper()
	var ln net.Listener
	var err error
	if tc != nil {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tc)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	return stServeSyslog(t, ln)
}

func stServeSyslog(t *testing.T, ln net.Listener) *stSyslogRcv {
	r := &stSyslogRcv{addr: ln.Addr().String(), msgs: make(chan string, 100000), conns: make(chan net.Conn, 100), errs: make(chan error, 100)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			r.conns <- c
			wg.Add(1)
			go func() {
				defer wg.Done()
				br := bufio.NewReader(c)
				for {
					msg, err := stReadFrame(br)
					if err != nil {
						if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
							r.errs <- err
						}
						return
					}
					r.msgs <- msg
				}
			}()
		}
	}()
	r.close = func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
	t.Cleanup(r.close)
	return r
}

// stReadFrame reads one octet-counted frame: MSG-LEN SP SYSLOG-MSG.
func stReadFrame(br *bufio.Reader) (string, error) {
	lenStr, err := br.ReadString(' ')
	if err != nil {
		if lenStr == "" {
			return "", io.EOF
		}
		return "", err
	}
	lenStr = strings.TrimSuffix(lenStr, " ")
	n, err := strconv.Atoi(lenStr)
	if err != nil || n <= 0 || lenStr[0] == '0' {
		return "", fmt.Errorf("bad MSG-LEN %q", lenStr)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(br, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}

func newSTSyslogUDP(t *testing.T) *stSyslogRcv {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &stSyslogRcv{addr: pc.LocalAddr().String(), msgs: make(chan string, 10000), errs: make(chan error, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			r.msgs <- string(buf[:n])
		}
	}()
	r.close = func() { pc.Close(); <-done }
	t.Cleanup(r.close)
	return r
}

// next waits for n messages.
func (r *stSyslogRcv) next(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case m := <-r.msgs:
			out = append(out, m)
		case err := <-r.errs:
			t.Fatalf("receiver: %v", err)
		case <-timeout:
			t.Fatalf("received %d of %d messages", len(out), n)
		}
	}
	return out
}

// none checks that nothing more arrives for a moment.
func (r *stSyslogRcv) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-r.msgs:
		t.Errorf("unexpected message %.80q", m)
	case <-time.After(100 * time.Millisecond):
	}
}

// stSyslogMsg is a parsed RFC 5424 message carrying CEF.
type stSyslogMsg struct {
	pri                                 int
	timestamp, host, app, procID, msgID string
	cefHeader                           []string
	cefExt                              map[string]string
}

var st5424 = regexp.MustCompile(`^<([0-9]{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\]) (CEF:.*)$`)

func stParseSyslog(t *testing.T, s string) stSyslogMsg {
	t.Helper()
	if strings.ContainsAny(s, "\r\n") {
		t.Fatalf("raw line break in message %q", s)
	}
	m := st5424.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("not an RFC 5424 message with CEF: %q", s)
	}
	pri, _ := strconv.Atoi(m[1])
	hdr, ext, err := stParseCEF(m[8])
	if err != nil {
		t.Fatalf("%v in %q", err, m[8])
	}
	return stSyslogMsg{pri: pri, timestamp: m[2], host: m[3], app: m[4], procID: m[5], msgID: m[6], cefHeader: hdr, cefExt: ext}
}

// stParseCEF parses a CEF event as a SIEM does: seven header fields
// separated by unescaped pipes (\| and \\ escapes), then key=value pairs
// where a key starts after a space and ends at an unescaped '=', values
// unescape \\, \=, \n and \r.
func stParseCEF(s string) ([]string, map[string]string, error) {
	var hdr []string
	var cur strings.Builder
	i := 0
	for ; i < len(s) && len(hdr) < 7; i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s) && (s[i+1] == '\\' || s[i+1] == '|'):
			cur.WriteByte(s[i+1])
			i++
		case c == '\\':
			return nil, nil, fmt.Errorf("bad escape in header at %d", i)
		case c == '|':
			hdr = append(hdr, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if len(hdr) != 7 {
		return nil, nil, fmt.Errorf("%d header fields", len(hdr))
	}
	ext := s[i:]
	// Unescaped '=' positions.
	var eqs []int
	for j := 0; j < len(ext); j++ {
		if ext[j] == '\\' {
			j++
			continue
		}
		if ext[j] == '=' {
			eqs = append(eqs, j)
		}
	}
	keyStart := func(eq int) int {
		k := eq
		for k > 0 && (ext[k-1] >= 'a' && ext[k-1] <= 'z' || ext[k-1] >= 'A' && ext[k-1] <= 'Z' || ext[k-1] >= '0' && ext[k-1] <= '9') {
			k--
		}
		return k
	}
	out := map[string]string{}
	for n, eq := range eqs {
		ks := keyStart(eq)
		if ks == eq || (ks > 0 && ext[ks-1] != ' ') {
			return nil, nil, fmt.Errorf("unescaped '=' inside a value at %d", eq)
		}
		end := len(ext)
		if n+1 < len(eqs) {
			end = keyStart(eqs[n+1]) - 1 // the space before the next key
		}
		raw := ext[eq+1 : end]
		var v strings.Builder
		for j := 0; j < len(raw); j++ {
			if raw[j] != '\\' {
				v.WriteByte(raw[j])
				continue
			}
			if j+1 == len(raw) {
				return nil, nil, errors.New("dangling backslash")
			}
			j++
			switch raw[j] {
			case '\\', '=':
				v.WriteByte(raw[j])
			case 'n':
				v.WriteByte('\n')
			case 'r':
				v.WriteByte('\r')
			default:
				return nil, nil, fmt.Errorf("bad escape \\%c", raw[j])
			}
		}
		out[ext[ks:eq]] = v.String()
	}
	return hdr, out, nil
}

// stTrickyRecord has every character CEF must escape.
func stTrickyRecord() audit.Record {
	r := stRecords(2)[1] // denied
	r.Target.Tool = `pipe|tool\x`
	r.Outcome.Reason = "a\\b|c=d\nsecond line x=y"
	r.Outcome.Error = "multi\r\nline\rcr"
	r.Outcome.ErrorCode = -32001
	r.Actor.Team = "a b=c"
	return r
}

func TestSyslogTransports(t *testing.T) {
	cert, client := newSTCert(t), newSTCert(t)
	tests := []struct {
		network string
		rcv     func(t *testing.T) *stSyslogRcv
		cfg     sinks.SyslogConfig
	}{
		{"tcp", func(t *testing.T) *stSyslogRcv { return newSTSyslogStream(t, nil) }, sinks.SyslogConfig{}},
		{"tls", func(t *testing.T) *stSyslogRcv {
			return newSTSyslogStream(t, &tls.Config{Certificates: []tls.Certificate{cert.TLS}})
		}, sinks.SyslogConfig{CAFile: cert.CAFile}},
		{"tls", func(t *testing.T) *stSyslogRcv { // mutual: session tickets come after the handshake
			return newSTSyslogStream(t, &tls.Config{Certificates: []tls.Certificate{cert.TLS},
				ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: client.Pool})
		}, sinks.SyslogConfig{CAFile: cert.CAFile, CertFile: client.CertFile, KeyFile: client.KeyFile}},
		{"udp", newSTSyslogUDP, sinks.SyslogConfig{Facility: "audit"}},
	}
	for _, tt := range tests {
		t.Run(tt.network, func(t *testing.T) {
			rcv := tt.rcv(t)
			cfg := tt.cfg
			cfg.Network, cfg.Address, cfg.Hostname = tt.network, rcv.addr, "gw-host"
			s, err := sinks.NewSyslog(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			recs := stRecords(5)
			recs[4].Replica = ""
			recs = append(recs, stTrickyRecord())
			if err := s.Send(context.Background(), recs[:2]); err != nil {
				t.Fatal(err)
			}
			if err := s.Send(context.Background(), recs[2:]); err != nil {
				t.Fatal(err)
			}
			facility := 16
			if tt.network == "udp" {
				facility = 13
			}
			sev := map[string]int{"allowed": 6, "denied": 4, "would_deny": 4, "error": 5, "pending": 5}
			cefSev := map[string]string{"allowed": "1", "denied": "6", "would_deny": "5", "error": "3", "pending": "3"}
			for i, raw := range rcv.next(t, len(recs)) {
				r := recs[i]
				m := stParseSyslog(t, raw)
				if m.pri != facility*8+sev[r.Outcome.Status] {
					t.Errorf("%d: PRI %d for %s", i, m.pri, r.Outcome.Status)
				}
				if m.timestamp != r.Time.UTC().Format("2006-01-02T15:04:05.000Z") {
					t.Errorf("%d: timestamp %s", i, m.timestamp)
				}
				wantHost := "gw-1"
				if r.Replica == "" {
					wantHost = "gw-host"
				}
				if m.host != wantHost || m.app != "gatehouse" || m.procID != "-" || m.msgID != "mcp.request" {
					t.Errorf("%d: header %s %s %s %s", i, m.host, m.app, m.procID, m.msgID)
				}
				wantHdr := []string{"CEF:0", "Gatehouse", "Gatehouse", sinks.ProductVersion, "tools/call",
					"tools/call github/" + r.Target.Tool + ": " + r.Outcome.Status, cefSev[r.Outcome.Status]}
				if strings.Join(m.cefHeader, "\x00") != strings.Join(wantHdr, "\x00") {
					t.Errorf("%d: CEF header %q, want %q", i, m.cefHeader, wantHdr)
				}
				want := map[string]string{
					"rt": strconv.FormatInt(r.Time.UnixMilli(), 10), "externalId": r.ID, "cat": "mcp.request",
					"act": r.Outcome.Status, "reason": r.Outcome.Reason, "suid": "agent:agt_7", "suser": "triage-bot",
					"src": "192.0.2.10", "requestClientApplication": "claude-code", "destinationServiceName": "github",
					"in": "120", "out": "321", "cs1Label": "rule", "cs1": "org.deny-prod", "cs2Label": "tool",
					"cs2": r.Target.Tool, "cs3Label": "sessionId", "cs3": "ses_1", "cs4Label": "agent", "cs4": "triage-bot",
					"cs5Label": "team", "cs5": r.Actor.Team, "cs6Label": "requestId", "cs6": r.Context.RequestID,
					"cn1Label": "seq", "cn1": strconv.FormatInt(r.Seq, 10), "cfp1Label": "durationMs", "cfp1": "12.625",
					"cfp2Label": "upstreamMs", "cfp2": "10.5", "flexString1Label": "hash", "flexString1": r.Hash,
					"flexString2Label": "prevHash", "flexString2": r.PrevHash,
				}
				if r.Outcome.Error != "" {
					want["msg"] = "multi\nline\rcr"
					want["cn2Label"], want["cn2"] = "errorCode", "-32001"
				}
				if r.Replica != "" {
					want["dvchost"] = r.Replica
				}
				for k, w := range want {
					if got, ok := m.cefExt[k]; !ok || got != w {
						t.Errorf("%d: %s = %q, want %q", i, k, got, w)
					}
				}
			}
			// The escaping itself, on the wire.
			last := recs[len(recs)-1]
			if raw := rcv.msgsSeen(t, s, last); !strings.Contains(raw, `reason=a\\b|c\=d\nsecond line x\=y`) ||
				!strings.Contains(raw, `|tools/call github/pipe\|tool\\x: denied|`) || !strings.Contains(raw, `cs5=a b\=c`) {
				t.Errorf("escaping on the wire: %s", raw)
			}
			// One connection carried every batch.
			if rcv.conns != nil && len(rcv.conns) != 1 {
				t.Errorf("%d connections for 3 batches, want 1", len(rcv.conns))
			}
		})
	}
}

// msgsSeen sends r again and returns the raw message.
func (r *stSyslogRcv) msgsSeen(t *testing.T, s *sinks.Syslog, rec audit.Record) string {
	t.Helper()
	if err := s.Send(context.Background(), []audit.Record{rec}); err != nil {
		t.Fatal(err)
	}
	return r.next(t, 1)[0]
}

func TestSyslogEmptyBatchIsNoOp(t *testing.T) {
	rcv := newSTSyslogStream(t, nil)
	s, err := sinks.NewSyslog(sinks.SyslogConfig{Network: "tcp", Address: rcv.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Send(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rcv.conns:
		t.Error("an empty batch connected")
	case <-time.After(100 * time.Millisecond):
	}
}

// A receiver that closes the connection gets the next batch over a new
// one; a receiver that is down fails the Send, and once back up gets the
// resent batch.
func TestSyslogReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	rcv := stServeSyslog(t, ln)
	s, err := sinks.NewSyslog(sinks.SyslogConfig{Network: "tcp", Address: addr, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := stRecords(6)
	ctx := context.Background()
	if err := s.Send(ctx, recs[:2]); err != nil {
		t.Fatal(err)
	}
	rcv.next(t, 2)
	first := <-rcv.conns
	first.Close() // the receiver drops the connection
	time.Sleep(50 * time.Millisecond)
	if err := s.Send(ctx, recs[2:4]); err != nil {
		t.Fatal(err)
	}
	for i, m := range rcv.next(t, 2) {
		if got := stParseSyslog(t, m).cefExt["externalId"]; got != recs[2+i].ID {
			t.Errorf("after reconnecting got %s, want %s", got, recs[2+i].ID)
		}
	}
	select {
	case <-rcv.conns:
	default:
		t.Error("no new connection")
	}

	// Down: the Send fails, quickly.
	rcv.close()
	start := time.Now()
	err = s.Send(ctx, recs[4:])
	if err == nil {
		// The write may land in the socket buffer before the reset:
		// the next one cannot.
		err = s.Send(ctx, recs[4:])
	}
	if err == nil {
		t.Fatal("Send to a receiver that is down succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send took %v", d)
	}
	// Back up on the same address: the resent batch arrives.
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("cannot listen on %s again: %v", addr, err)
	}
	rcv2 := stServeSyslog(t, ln2)
	if err := s.Send(ctx, recs[4:]); err != nil {
		t.Fatal(err)
	}
	for i, m := range rcv2.next(t, 2) {
		if got := stParseSyslog(t, m).cefExt["externalId"]; got != recs[4+i].ID {
			t.Errorf("after the receiver came back got %s, want %s", got, recs[4+i].ID)
		}
	}
}

func TestSyslogDownOrWrongCA(t *testing.T) {
	// A port with nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	cert, other := newSTCert(t), newSTCert(t)
	tlsRcv := newSTSyslogStream(t, &tls.Config{Certificates: []tls.Certificate{cert.TLS}})
	tests := []struct {
		name string
		cfg  sinks.SyslogConfig
		want string
	}{
		{"tcp down", sinks.SyslogConfig{Network: "tcp", Address: closed}, "connection refused"},
		{"tls down", sinks.SyslogConfig{Network: "tls", Address: closed, CAFile: cert.CAFile}, "connection refused"},
		{"tls wrong CA", sinks.SyslogConfig{Network: "tls", Address: tlsRcv.addr, CAFile: other.CAFile}, "certificate"},
		{"tls wrong name", sinks.SyslogConfig{Network: "tls", Address: tlsRcv.addr, CAFile: cert.CAFile, ServerName: "syslog.example.com"}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Timeout = time.Second
			s, err := sinks.NewSyslog(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			start := time.Now()
			err = s.Send(context.Background(), stRecords(1))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one about %q", err, tt.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Send took %v", d)
			}
		})
	}
}

// A receiver that stops reading cannot block a Send past its timeout or
// its context.
func TestSyslogStalledReceiver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never read
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	// Enough data to fill the socket buffers many times over.
	recs := stRecords(8000)
	long := strings.Repeat("x", 2000)
	for i := range recs {
		recs[i].Outcome.Reason, recs[i].Outcome.Error = long, long
	}
	tests := []struct {
		name    string
		timeout time.Duration
		ctx     time.Duration
	}{
		{"timeout", 300 * time.Millisecond, time.Minute},
		{"context", time.Minute, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sinks.NewSyslog(sinks.SyslogConfig{Network: "tcp", Address: ln.Addr().String(), Timeout: tt.timeout})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), tt.ctx)
			defer cancel()
			start := time.Now()
			if err := s.Send(ctx, recs); err == nil {
				t.Fatal("Send to a stalled receiver succeeded")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Send took %v", d)
			}
		})
	}
}

func TestSyslogConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  sinks.SyslogConfig
		want string
	}{
		{"no network", sinks.SyslogConfig{Address: "h:514"}, "network is required"},
		{"bad network", sinks.SyslogConfig{Network: "sctp", Address: "h:514"}, `network "sctp"`},
		{"no address", sinks.SyslogConfig{Network: "tcp"}, "not host:port"},
		{"no port", sinks.SyslogConfig{Network: "udp", Address: "h"}, "not host:port"},
		{"bad facility", sinks.SyslogConfig{Network: "tcp", Address: "h:514", Facility: "local9"}, `facility "local9"`},
		{"tls options without tls", sinks.SyslogConfig{Network: "tcp", Address: "h:514", CAFile: "/ca.pem"}, "need network tls"},
		{"missing ca file", sinks.SyslogConfig{Network: "tls", Address: "h:6514", CAFile: "/nonexistent/ca.pem"}, "ca_file"},
		{"cert without key", sinks.SyslogConfig{Network: "tls", Address: "h:6514", CertFile: "/c.pem"}, "cert_file and key_file"},
		{"negative timeout", sinks.SyslogConfig{Network: "tcp", Address: "h:514", Timeout: -1}, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sinks.NewSyslog(tt.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `audit sink "syslog" (syslog)`) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestCEFCutsLongValues(t *testing.T) {
	r := stRecords(1)[0]
	r.Outcome.Reason = strings.Repeat("é", 1000) // 2000 bytes
	_, ext, err := stParseCEF(sinks.CEF(r))
	if err != nil {
		t.Fatal(err)
	}
	if got := ext["reason"]; len(got) > 1023 || !strings.HasPrefix(r.Outcome.Reason, got) || len(got) < 1020 {
		t.Errorf("reason cut to %d bytes", len(got))
	}
}
