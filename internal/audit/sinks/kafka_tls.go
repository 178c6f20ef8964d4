package sinks

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSFiles configures the client side of a TLS connection for the Kafka,
// S3 and OTLP sinks: a private CA, a client certificate for mutual TLS, or
// both. The zero value means the system roots and no client certificate.
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

// isZero reports whether nothing was configured.
func (t TLSFiles) isZero() bool { return t == TLSFiles{} }

// validate checks the fields without reading the files.
func (t TLSFiles) validate(field string) error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("%s: cert_file and key_file must be set together", field)
	}
	return nil
}

// load builds the tls.Config. Errors name the file, never its contents.
func (t TLSFiles) load(field string) (*tls.Config, error) {
	if err := t.validate(field); err != nil {
		return nil, err
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented as for tests
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: reading ca_file: %w", field, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: ca_file %s holds no PEM certificate", field, t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			// LoadX509KeyPair's errors name files, never key material.
			return nil, fmt.Errorf("%s: loading cert_file/key_file: %w", field, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
