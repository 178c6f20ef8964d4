package sinks

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles configures the client side of a TLS connection for the Kafka,
// S3 and OTLP sinks (the HTTP and syslog sinks have its fields in their
// own config): a private CA, a client certificate for mutual TLS, or both.
// The zero value means the system roots and no client certificate.
type TLSFiles struct {
	// CAFile is a PEM bundle of CAs trusted in place of the system roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// mutual TLS; both or neither.
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
	// InsecureSkipVerify turns off certificate verification (tests only).
	InsecureSkipVerify bool
}

// load builds the tls.Config: TLS 1.2 or later, with the CA and client
// certificate if any. Errors name the files, never their contents.
func (t TLSFiles) load() (*tls.Config, error) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("cert_file and key_file must be set together")
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented as for tests
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			// LoadX509KeyPair's errors name files, never key material.
			return nil, fmt.Errorf("loading cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
