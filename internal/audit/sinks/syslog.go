package sinks

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gatehouse/internal/audit"
)

// Syslog transports.
const (
	SyslogTCP = "tcp"
	SyslogTLS = "tls"
	SyslogUDP = "udp"
)

// Defaults of the syslog sink.
const (
	DefaultSyslogFacility = "local0"
	DefaultSyslogAppName  = "gatehouse"
	// cefMaxValue bounds one CEF extension value (bytes, before
	// escaping), so a message stays within a UDP datagram.
	cefMaxValue = 1023
)

// syslogFacilities are RFC 5424's facility codes by name.
var syslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14, "clock": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// SyslogConfig configures the syslog (CEF) sink.
type SyslogConfig struct {
	// Name identifies the sink (default "syslog").
	Name string
	// Network is "tcp", "tls" or "udp".
	Network string
	// Address is the receiver's host:port.
	Address string
	// Facility is a facility name: kern, user, …, auth, authpriv, audit,
	// local0 … local7 (default local0).
	Facility string
	// Hostname is the messages' HOSTNAME when a record names no replica
	// (default: this machine's host name).
	Hostname string
	// AppName is the messages' APP-NAME (default "gatehouse").
	AppName string
	// Timeout bounds connecting and writing one batch (default 10s).
	Timeout time.Duration
	// TLS (network "tls" only): CAFile is a PEM bundle trusted in place of
	// the system roots; CertFile and KeyFile a client certificate for
	// mutual TLS; ServerName overrides the name checked in the server's
	// certificate (default: Address's host).
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string
}

// Syslog sends each record as an RFC 5424 message whose MSG is a CEF
// event, over TCP or TLS (RFC 6587 octet-counting framing: "<length> <message>";
// RFC 5425 for TLS) or UDP (one message a datagram, RFC 5426):
//
//	<PRI>1 <time> <host> gatehouse - <kind> - CEF:0|Gatehouse|Gatehouse|<version>|<action>|<name>|<severity>|<extension>
//
// PRI is facility×8 + a syslog severity from the outcome (allowed 6
// informational, error/pending 5 notice, denied/would_deny 4 warning).
// The CEF header escapes "\" and "|" and the extension escapes "\", "="
// and line breaks (as \n and \r), as the CEF specification requires;
// extension values are cut to 1023 bytes. A connection is dialled on
// first use, checked before each batch and redialled after any error.
//
// Syslog has no acknowledgement: Send returning nil means the batch was
// written to the socket (TCP/TLS) or datagrams sent (UDP; a receiver
// that is down may go unnoticed). Use the webhook, Splunk or Azure sinks
// where delivery must be confirmed.
type Syslog struct {
	name     string
	network  string
	address  string
	facility int
	hostname string
	appName  string
	timeout  time.Duration
	tls      *tls.Config

	mu   sync.Mutex
	conn net.Conn
}

var _ audit.Sink = (*Syslog)(nil)

// NewSyslog validates cfg. It does not connect: the first Send does.
func NewSyslog(cfg SyslogConfig) (*Syslog, error) {
	if cfg.Name == "" {
		cfg.Name = "syslog"
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("audit sink %q (syslog): "+format, append([]any{cfg.Name}, a...)...)
	}
	network := strings.ToLower(cfg.Network)
	switch network {
	case SyslogTCP, SyslogTLS, SyslogUDP:
	case "":
		return nil, errf("network is required: tcp, tls or udp")
	default:
		return nil, errf("network %q: use tcp, tls or udp", cfg.Network)
	}
	host, port, err := net.SplitHostPort(cfg.Address)
	if err != nil || host == "" || port == "" {
		return nil, errf("address %q is not host:port", cfg.Address)
	}
	if cfg.Facility == "" {
		cfg.Facility = DefaultSyslogFacility
	}
	facility, ok := syslogFacilities[strings.ToLower(cfg.Facility)]
	if !ok {
		return nil, errf("facility %q: use kern, user, daemon, auth, authpriv, audit, local0 … local7 or another RFC 5424 name", cfg.Facility)
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.AppName == "" {
		cfg.AppName = DefaultSyslogAppName
	}
	if cfg.Timeout < 0 {
		return nil, errf("timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultSinkTimeout
	}
	s := &Syslog{
		name:     cfg.Name,
		network:  network,
		address:  cfg.Address,
		facility: facility,
		hostname: cfg.Hostname,
		appName:  cfg.AppName,
		timeout:  cfg.Timeout,
	}
	if network == SyslogTLS {
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		s.tls, err = TLSFiles{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, ServerName: cfg.ServerName}.load()
		if err != nil {
			return nil, errf("%w", err)
		}
		s.tls.ClientSessionCache = tls.NewLRUClientSessionCache(1) // quicker reconnects
	} else if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.ServerName != "" {
		return nil, errf("ca_file, cert_file, key_file and server_name need network tls")
	}
	return s, nil
}

// Name implements audit.Sink.
func (s *Syslog) Name() string { return s.name }

// Send writes the batch, one message a record.
func (s *Syslog) Send(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := s.send(ctx, recs); err != nil {
		return fmt.Errorf("syslog sink %q: %s %s: %w", s.name, s.network, s.address, err)
	}
	return nil
}

func (s *Syslog) send(ctx context.Context, recs []audit.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.conn != nil && s.network != SyslogUDP && !connAlive(s.conn) {
		s.dropConn()
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return err
		}
	}
	var frames []byte
	if s.network != SyslogUDP {
		var buf bytes.Buffer
		for i := range recs {
			msg := s.message(&recs[i])
			buf.WriteString(strconv.Itoa(len(msg)))
			buf.WriteByte(' ')
			buf.Write(msg)
		}
		frames = buf.Bytes()
	}

	// Timeout bounds the writes; a cancelled ctx interrupts them.
	conn := s.conn
	_ = conn.SetWriteDeadline(contextDeadline(ctx, s.timeout))
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	var err error
	if s.network == SyslogUDP {
		for i := range recs {
			if _, err = conn.Write(s.message(&recs[i])); err != nil {
				break
			}
		}
	} else {
		_, err = conn.Write(frames)
	}
	if err != nil {
		s.dropConn()
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return err
	}
	return nil
}

func (s *Syslog) dial(ctx context.Context) error {
	network := s.network
	if network == SyslogTLS {
		network = "tcp"
	}
	conn, err := dialContextTimeout(ctx, network, s.address, s.timeout)
	if err != nil {
		return err
	}
	if s.tls != nil {
		tc := tls.Client(conn, s.tls)
		hctx, cancel := context.WithDeadline(ctx, contextDeadline(ctx, s.timeout))
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return err
		}
		conn = tc
	}
	s.conn = conn
	return nil
}

// What a look at a socket found.
type peekResult int

const (
	peekUnknown peekResult = iota // cannot tell without reading
	peekEmpty                     // open, nothing to read
	peekData                      // bytes to read
	peekClosed                    // end of file or error
)

// aliveProbe is how long connAlive waits for a read when peeking is not
// enough.
const aliveProbe = 5 * time.Millisecond

// connAlive reports whether a stream connection to a syslog receiver
// still looks open, so a batch goes over a new connection rather than
// into one the receiver has closed (where the first write would succeed
// and be lost). A receiver never sends application data: anything to
// read means it has gone (end of file, a reset, a TLS close_notify),
// except TLS records crypto/tls handles itself, such as TLS 1.3 session
// tickets sent after the handshake. So: peek at the socket (no wait); if
// TLS bytes are waiting, or peeking is not possible, read through the
// connection with a short deadline, where a timeout means alive.
func connAlive(c net.Conn) bool {
	tc, isTLS := c.(*tls.Conn)
	raw := c
	if isTLS {
		raw = tc.NetConn()
	}
	switch peekConn(raw) {
	case peekEmpty:
		return true
	case peekClosed:
		return false
	case peekData:
		if !isTLS {
			return false
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(aliveProbe))
	var b [1]byte
	_, err := c.Read(b[:])
	_ = c.SetReadDeadline(time.Time{})
	return errors.Is(err, os.ErrDeadlineExceeded)
}

func (s *Syslog) dropConn() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// Close closes the connection.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropConn()
	return nil
}

// syslogSeverity is the RFC 5424 severity of an outcome.
func syslogSeverity(status string) int {
	switch status {
	case audit.OutcomeDenied, audit.OutcomeWouldDeny:
		return 4 // warning
	case audit.OutcomeError, audit.OutcomePending:
		return 5 // notice
	}
	return 6 // informational
}

// cefSeverity is the CEF severity (0–10) of an outcome.
func cefSeverity(status string) int {
	switch status {
	case audit.OutcomeDenied:
		return 6
	case audit.OutcomeWouldDeny:
		return 5
	case audit.OutcomeError, audit.OutcomePending:
		return 3
	}
	return 1
}

// message is the RFC 5424 message of r.
func (s *Syslog) message(r *audit.Record) []byte {
	host := r.Replica
	if host == "" {
		host = s.hostname
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 %s %s %s - %s - ",
		s.facility*8+syslogSeverity(r.Outcome.Status),
		r.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		syslogField(host, 255), syslogField(s.appName, 48), syslogField(r.Kind, 32))
	b.WriteString(CEF(*r))
	return b.Bytes()
}

// syslogField makes s an RFC 5424 header field: printable US-ASCII
// (others become '_'), at most max bytes, "-" (NILVALUE) when empty.
func syslogField(s string, max int) string {
	if s == "" {
		return "-"
	}
	b := []byte(s)
	if len(b) > max {
		b = b[:max]
	}
	for i, c := range b {
		if c < 33 || c > 126 {
			b[i] = '_'
		}
	}
	return string(b)
}

// CEF renders r as a CEF:0 event:
//
//	CEF:0|Gatehouse|Gatehouse|<ProductVersion>|<Action>|<name>|<severity>|<extension>
//
// name is "<action> <server>/<tool|prompt|resource|object>: <status>"
// (as OCSF's message); severity: allowed 1, error/pending 3, would_deny
// 5, denied 6. Extension keys, present when the field is set:
//
//	rt                       Time (epoch ms)
//	externalId               ID
//	cat                      Kind
//	act                      Outcome.Status
//	outcome                  success / failure (OCSF status)
//	reason                   Outcome.Reason
//	msg                      Outcome.Error
//	suid                     Actor.ID
//	suser                    OCSF actor.user.name (agent or user name)
//	src                      Actor.Source (when an IP address)
//	requestClientApplication Actor.ClientName
//	destinationServiceName   Target.Server
//	dvchost                  Replica
//	in, out                  BytesIn, BytesOut
//	cs1 (cs1Label=rule)      Outcome.Rule
//	cs2 (cs2Label=tool|prompt|resource|object)  the target's name
//	cs3 (cs3Label=sessionId) Context.SessionID
//	cs4 (cs4Label=agent)     Actor.AgentName
//	cs5 (cs5Label=team)      Actor.Team
//	cs6 (cs6Label=requestId) Context.RequestID
//	cn1 (cn1Label=seq)       Seq
//	cn2 (cn2Label=errorCode) Outcome.ErrorCode
//	cfp1 (cfp1Label=durationMs), cfp2 (cfp2Label=upstreamMs)  DurationMS, UpstreamMS
//	flexString1 (flexString1Label=hash), flexString2 (flexString2Label=prevHash)
func CEF(r audit.Record) string {
	var b strings.Builder
	b.WriteString("CEF:0|")
	for _, h := range []string{ocsfVendorName, ocsfProductName, ProductVersion, r.Action, ocsfMessage(r)} {
		b.WriteString(cefHeader(h))
		b.WriteByte('|')
	}
	b.WriteString(strconv.Itoa(cefSeverity(r.Outcome.Status)))
	b.WriteByte('|')

	first := true
	kv := func(k, v string) {
		if v == "" {
			return
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(cefValue(v))
	}
	num := func(k string, v int64) {
		if v != 0 {
			kv(k, strconv.FormatInt(v, 10))
		}
	}
	labelled := func(k, label, v string) {
		if v != "" {
			kv(k+"Label", label)
			kv(k, v)
		}
	}
	kv("rt", strconv.FormatInt(r.Time.UnixMilli(), 10))
	kv("externalId", r.ID)
	kv("cat", r.Kind)
	kv("act", r.Outcome.Status)
	switch ocsfStatus(r.Outcome) {
	case ocsfStatusSuccess:
		kv("outcome", "success")
	case ocsfStatusFailure:
		kv("outcome", "failure")
	}
	kv("reason", r.Outcome.Reason)
	kv("msg", r.Outcome.Error)
	kv("suid", r.Actor.ID)
	kv("suser", ocsfActorName(r.Actor))
	if net.ParseIP(r.Actor.Source) != nil {
		kv("src", r.Actor.Source)
	}
	kv("requestClientApplication", r.Actor.ClientName)
	kv("destinationServiceName", r.Target.Server)
	kv("dvchost", r.Replica)
	num("in", r.BytesIn)
	num("out", r.BytesOut)
	labelled("cs1", "rule", r.Outcome.Rule)
	if name, kind := ocsfTargetName(r.Target); name != "" {
		labelled("cs2", kind, name)
	}
	labelled("cs3", "sessionId", r.Context.SessionID)
	labelled("cs4", "agent", r.Actor.AgentName)
	labelled("cs5", "team", r.Actor.Team)
	labelled("cs6", "requestId", r.Context.RequestID)
	if r.Seq != 0 {
		labelled("cn1", "seq", strconv.FormatInt(r.Seq, 10))
	}
	if r.Outcome.ErrorCode != 0 {
		labelled("cn2", "errorCode", strconv.Itoa(r.Outcome.ErrorCode))
	}
	if r.DurationMS != 0 {
		labelled("cfp1", "durationMs", strconv.FormatFloat(r.DurationMS, 'f', -1, 64))
	}
	if r.UpstreamMS != 0 {
		labelled("cfp2", "upstreamMs", strconv.FormatFloat(r.UpstreamMS, 'f', -1, 64))
	}
	labelled("flexString1", "hash", r.Hash)
	labelled("flexString2", "prevHash", r.PrevHash)
	return b.String()
}

// cefHeader escapes a CEF header field: "\" and "|" get a backslash;
// line breaks, not allowed in the header, become spaces.
func cefHeader(s string) string {
	s = cefCut(s)
	if !strings.ContainsAny(s, "\\|\r\n") && utf8.ValidString(s) {
		return s // the common case: nothing to escape or replace
	}
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '\\', '|':
			b.WriteByte('\\')
			b.WriteRune(c)
		case '\r', '\n':
			b.WriteByte(' ')
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// cefValue escapes a CEF extension value: "\" and "=" get a backslash,
// line breaks become the two characters \n (or \r). "|" needs no escape
// in the extension.
func cefValue(s string) string {
	s = cefCut(s)
	if !strings.ContainsAny(s, "\\=\r\n") && utf8.ValidString(s) {
		return s // the common case: nothing to escape or replace
	}
	var b strings.Builder
	s = strings.ReplaceAll(s, "\r\n", "\n")
	for _, c := range s {
		switch c {
		case '\\', '=':
			b.WriteByte('\\')
			b.WriteRune(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// cefCut bounds s to cefMaxValue bytes without splitting a character.
func cefCut(s string) string {
	if len(s) <= cefMaxValue {
		return s
	}
	cut := cefMaxValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
