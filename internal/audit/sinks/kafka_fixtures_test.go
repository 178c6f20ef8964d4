package sinks_test

// Fixtures shared by the Kafka, S3 and OTLP sink tests.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/audit/sinks"
	"gatehouse/internal/config"
)

// sampleAuditRecords returns n records with sequence numbers from firstSeq,
// a second apart from base, alternating outcomes.
func sampleAuditRecords(n int, firstSeq int64, base time.Time) []audit.Record {
	outcomes := []string{audit.OutcomeAllowed, audit.OutcomeDenied, audit.OutcomeError, audit.OutcomeWouldDeny}
	recs := make([]audit.Record, n)
	for i := range recs {
		seq := firstSeq + int64(i)
		recs[i] = audit.Record{
			ID:     fmt.Sprintf("aud_01J%023d", seq),
			Seq:    seq,
			Time:   base.Add(time.Duration(i) * time.Second).UTC().Truncate(time.Millisecond),
			Kind:   audit.KindMCPRequest,
			Action: "tools/call",
			Actor: audit.Actor{
				Kind: "agent", ID: "agent:agt_1", AgentID: "agt_1", AgentName: "triage-bot",
				User: "alice", Chain: []string{"user:alice", "agent:agt_1"}, Source: "127.0.0.1",
			},
			Target:     audit.Target{Server: "github", Tool: fmt.Sprintf("tool_%d", i)},
			Outcome:    audit.Outcome{Status: outcomes[i%len(outcomes)], Rule: "r1"},
			Context:    audit.Context{SessionID: "s1", RequestID: fmt.Sprint(seq), TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
			Args:       json.RawMessage(`{"q":"x"}`),
			Masking:    "masked",
			DurationMS: 1.5,
			Replica:    "gw-1",
			PrevHash:   fmt.Sprintf("%064d", seq-1),
			Hash:       fmt.Sprintf("%064d", seq),
		}
	}
	return recs
}

// mustJSON is the canonical JSON of r.
func mustJSON(t *testing.T, r audit.Record) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testPKI is a self-signed CA that issued a server certificate for
// 127.0.0.1 and a client certificate, all written as PEM files.
type testPKI struct {
	CAFile, ClientCert, ClientKey string
	Server                        tls.Certificate
	CAPool                        *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gatehouse test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	srvCert, srvKey := issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	cliCert, cliKey := issue(3, "gatehouse", x509.ExtKeyUsageClientAuth, nil)
	server, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testPKI{
		CAFile:     write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		ClientCert: write("client.pem", cliCert),
		ClientKey:  write("client-key.pem", cliKey),
		Server:     server,
		CAPool:     pool,
	}
}

// serverTLS is a server config that requires a client certificate from
// the test CA.
func (p testPKI) serverTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.Server},
		ClientCAs:    p.CAPool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
}

// clientTLS trusts the test CA and presents the client certificate.
func (p testPKI) clientTLS(t *testing.T) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: p.CAPool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// testServer is an HTTP(S) server on the loopback that can be stopped and
// started again on the same address, to play a receiver that goes away.
type testServer struct {
	URL     string
	addr    string
	tls     *tls.Config
	handler http.Handler

	mu  sync.Mutex
	srv *http.Server
}

// startTestServer serves h, over TLS when tc is set, until the test ends.
func startTestServer(t *testing.T, tc *tls.Config, h http.Handler) *testServer {
	t.Helper()
	s := &testServer{addr: "127.0.0.1:0", tls: tc, handler: h}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

// start listens again on the server's address.
func (s *testServer) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the old socket may take a moment to go
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	scheme := "http"
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
		scheme = "https"
	}
	s.URL = scheme + "://" + s.addr
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // refused handshakes are expected
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every connection.
func (s *testServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Formatting a Kafka, S3 or OTLP sink, with any verb, never shows its
// credentials.
func TestKafkaS3OTLPDoNotFormatSecrets(t *testing.T) {
	const secret = "s3cr3t-value-9876543210"
	kafka, err := sinks.NewKafka(sinks.KafkaConfig{Brokers: []string{"127.0.0.1:9092"}, Topic: "a",
		SASLMechanism: sinks.KafkaSASLScramSHA512, SASLUsername: "u", SASLPassword: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.Close()
	s3, err := sinks.NewS3(sinks.S3Config{Bucket: "b", Endpoint: "https://minio.example:9000", PathStyle: true,
		AccessKeyID: "AK", SecretAccessKey: secret, SessionToken: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	otlp, err := sinks.NewOTLP(sinks.OTLPConfig{Endpoint: "https://otel.example:4318",
		Headers: map[string]config.Secret{"Authorization": "Bearer " + secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer otlp.Close()
	type holder struct{ Exported, unexported any }
	for _, s := range []any{kafka, s3, otlp} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d"} {
			if out := fmt.Sprintf(verb, s) + fmt.Sprintf(verb, holder{s, s}); strings.Contains(out, secret) {
				t.Errorf("%T formatted with %s shows the secret: %s", s, verb, out)
			}
		}
	}
}
