package sinks_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"gatehouse/internal/audit"
	"gatehouse/internal/audit/sinks"
)

const s3TestBucket = "audit-trail"

// fakeS3 is an in-memory S3 server that records the headers of the
// uploads it gets, can be made to fail, and can be stopped and started
// again on the same address.
type fakeS3 struct {
	*testServer
	backend   *s3mem.Backend
	readerTLS *tls.Config // for client(), over TLS

	mu      sync.Mutex
	puts    []http.Header
	failing atomic.Bool
}

func newFakeS3(t *testing.T) *fakeS3 { return newFakeS3TLS(t, nil) }

// newFakeS3TLS serves over TLS when tc is set.
func newFakeS3TLS(t *testing.T, tc *tls.Config) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New()}
	if err := f.backend.CreateBucket(s3TestBucket); err != nil {
		t.Fatal(err)
	}
	h := gofakes3.New(f.backend).Server()
	f.testServer = startTestServer(t, tc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.failing.Load() {
			http.Error(w, "<Error><Code>ServiceUnavailable</Code></Error>", http.StatusServiceUnavailable)
			return
		}
		if r.Method == http.MethodPut {
			f.mu.Lock()
			f.puts = append(f.puts, r.Header.Clone())
			f.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	return f
}

func (f *fakeS3) putCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.puts)
}

func (f *fakeS3) lastPut() http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.puts) == 0 {
		return nil
	}
	return f.puts[len(f.puts)-1]
}

// client is an independent S3 client, a reader of the bucket.
func (f *fakeS3) client() *s3.Client {
	o := s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("reader", "reader-secret", ""),
	}
	if f.readerTLS != nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: f.readerTLS}}
	}
	return s3.New(o)
}

func (f *fakeS3) keys(t *testing.T) []string {
	t.Helper()
	out, err := f.client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(s3TestBucket)})
	if err != nil {
		t.Fatalf("listing: %v", err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// object fetches key and returns its uncompressed body and the response.
func (f *fakeS3) object(t *testing.T, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := f.client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(s3TestBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("getting %s: %v", key, err)
	}
	defer out.Body.Close()
	raw, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s is not gzip: %v", key, err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip %s: %v", key, err)
	}
	return body, out
}

func jsonLines(t *testing.T, recs []audit.Record) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, r := range recs {
		b.Write(mustJSON(t, r))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func s3TestConfig(f *fakeS3) sinks.S3Config {
	return sinks.S3Config{
		Name:            "archive",
		Bucket:          s3TestBucket,
		Endpoint:        f.URL,
		PathStyle:       true,
		Region:          "eu-west-1",
		AccessKeyID:     "AKIATEST",
		SecretAccessKey: "s3-secret-value",
		Timeout:         5 * time.Second,
		MaxAttempts:     1,
	}
}

func newS3Sink(t *testing.T, cfg sinks.S3Config) *sinks.S3 {
	t.Helper()
	s, err := sinks.NewS3(cfg)
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestNewS3Validation(t *testing.T) {
	const secret = "very-secret-key"
	ok := sinks.S3Config{Bucket: "b", Endpoint: "http://127.0.0.1:9000", PathStyle: true, AccessKeyID: "AK", SecretAccessKey: secret}
	tests := []struct {
		name    string
		mutate  func(*sinks.S3Config)
		wantErr string
	}{
		{"valid", func(*sinks.S3Config) {}, ""},
		{"valid kms", func(c *sinks.S3Config) { c.SSE, c.SSEKMSKeyID = sinks.S3SSEKMS, "alias/audit" }, ""},
		{"valid prefix with slashes", func(c *sinks.S3Config) { c.Prefix = "/audit/gatehouse/" }, ""},
		{"no bucket", func(c *sinks.S3Config) { c.Bucket = "" }, "bucket is required"},
		{"bucket with slash", func(c *sinks.S3Config) { c.Bucket = "b/audit" }, "put folders in prefix"},
		{"unclean prefix", func(c *sinks.S3Config) { c.Prefix = "audit/../x" }, "clean path"},
		{"bad sse", func(c *sinks.S3Config) { c.SSE = "rot13" }, `sse "rot13"`},
		{"kms key without kms", func(c *sinks.S3Config) { c.SSE, c.SSEKMSKeyID = sinks.S3SSEAES256, "k" }, "sse_kms_key_id needs"},
		{"secret without key id", func(c *sinks.S3Config) { c.AccessKeyID = "" }, "set together"},
		{"session token alone", func(c *sinks.S3Config) { c.AccessKeyID, c.SecretAccessKey, c.SessionToken = "", "", secret }, "session_token needs"},
		{"endpoint without scheme", func(c *sinks.S3Config) { c.Endpoint = "minio:9000" }, "http(s)://host"},
		{"endpoint with credentials", func(c *sinks.S3Config) { c.Endpoint = "https://ak:" + secret + "@minio:9000" }, "credentials do not belong in the URL"},
		{"endpoint with query", func(c *sinks.S3Config) { c.Endpoint = "https://minio:9000/?token=" + secret }, "no query"},
		{"tls with http endpoint", func(c *sinks.S3Config) { c.TLS = &sinks.TLSFiles{} }, "plain http"},
		{"negative timeout", func(c *sinks.S3Config) { c.Timeout = -1 }, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			s, err := sinks.NewS3(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				_ = s.Close()
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error reveals the secret: %q", err)
			}
		})
	}
}

func TestS3Send(t *testing.T) {
	base := time.Date(2026, 3, 4, 5, 59, 58, 0, time.UTC) // the batch crosses an hour: the first record names it
	tests := []struct {
		name     string
		mutate   func(*sinks.S3Config)
		wantKeys []string
		wantSSE  string
		wantKMS  string
	}{
		{
			name: "no prefix",
			wantKeys: []string{
				"2026/03/04/05/00000000000000000001-00000000000000000004-aud_01J00000000000000000000001.jsonl.gz",
				"2026/03/04/06/00000000000000000005-00000000000000000006-aud_01J00000000000000000000005.jsonl.gz",
			},
		},
		{
			name:   "prefix, sse-s3",
			mutate: func(c *sinks.S3Config) { c.Prefix, c.SSE = "/gatehouse/prod/", sinks.S3SSEAES256 },
			wantKeys: []string{
				"gatehouse/prod/2026/03/04/05/00000000000000000001-00000000000000000004-aud_01J00000000000000000000001.jsonl.gz",
				"gatehouse/prod/2026/03/04/06/00000000000000000005-00000000000000000006-aud_01J00000000000000000000005.jsonl.gz",
			},
			wantSSE: "AES256",
		},
		{
			name:   "sse-kms with a key",
			mutate: func(c *sinks.S3Config) { c.Prefix, c.SSE, c.SSEKMSKeyID = "a", sinks.S3SSEKMS, "alias/audit" },
			wantKeys: []string{
				"a/2026/03/04/05/00000000000000000001-00000000000000000004-aud_01J00000000000000000000001.jsonl.gz",
				"a/2026/03/04/06/00000000000000000005-00000000000000000006-aud_01J00000000000000000000005.jsonl.gz",
			},
			wantSSE: "aws:kms",
			wantKMS: "alias/audit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeS3(t)
			cfg := s3TestConfig(f)
			if tt.mutate != nil {
				tt.mutate(&cfg)
			}
			s := newS3Sink(t, cfg)
			if s.Name() != "archive" {
				t.Errorf("Name() = %q", s.Name())
			}
			first := sampleAuditRecords(4, 1, base)
			second := sampleAuditRecords(2, 5, base.Add(time.Hour))
			for _, batch := range [][]audit.Record{first, second, nil} {
				if err := s.Send(context.Background(), batch); err != nil {
					t.Fatalf("Send: %v", err)
				}
				if len(batch) == 0 {
					continue
				}
				h := f.lastPut()
				if got := h.Get("X-Amz-Server-Side-Encryption"); got != tt.wantSSE {
					t.Errorf("SSE header %q, want %q", got, tt.wantSSE)
				}
				if got := h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != tt.wantKMS {
					t.Errorf("KMS key header %q, want %q", got, tt.wantKMS)
				}
				if h.Get("Content-Md5") == "" {
					t.Error("no Content-MD5")
				}
			}

			keys := f.keys(t)
			if !slices.Equal(keys, tt.wantKeys) {
				t.Fatalf("keys\n%q\nwant\n%q", keys, tt.wantKeys)
			}
			for i, batch := range [][]audit.Record{first, second} {
				body, out := f.object(t, keys[i])
				if want := jsonLines(t, batch); !bytes.Equal(body, want) {
					t.Errorf("%s holds\n%s\nwant\n%s", keys[i], body, want)
				}
				if ct := aws.ToString(out.ContentType); ct != "application/x-ndjson" {
					t.Errorf("%s: Content-Type %q", keys[i], ct)
				}
				if ce := aws.ToString(out.ContentEncoding); ce != "gzip" {
					t.Errorf("%s: Content-Encoding %q", keys[i], ce)
				}
			}
		})
	}
}

// TestS3Resend checks that a batch sent again lands on the same object
// (the name and the bytes are the same), where a longer batch starting at
// the same record gets an object of its own.
func TestS3Resend(t *testing.T) {
	f := newFakeS3(t)
	s := newS3Sink(t, s3TestConfig(f))
	batch := sampleAuditRecords(3, 10, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	for range 3 {
		if err := s.Send(context.Background(), batch); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	keys := f.keys(t)
	if len(keys) != 1 || keys[0] != s.ObjectKey(batch) {
		t.Fatalf("keys %q, want just %q", keys, s.ObjectKey(batch))
	}
	body, _ := f.object(t, keys[0])
	if !bytes.Equal(body, jsonLines(t, batch)) {
		t.Errorf("object holds\n%s", body)
	}
	f.mu.Lock()
	puts := f.puts
	f.mu.Unlock()
	if len(puts) != 3 || puts[0].Get("Content-Md5") != puts[2].Get("Content-Md5") {
		t.Errorf("the resends were not byte-identical: %d puts", len(puts))
	}
}

// TestS3Unavailable: a store that fails or is gone makes Send fail; once
// it is back, the same batch goes through.
func TestS3Unavailable(t *testing.T) {
	batch := sampleAuditRecords(2, 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	tests := []struct {
		name string
		// breakIt makes the store fail and returns what repairs it.
		breakIt func(t *testing.T, f *fakeS3) (repair func())
	}{
		{"server answers 503", func(_ *testing.T, f *fakeS3) func() {
			f.failing.Store(true)
			return func() { f.failing.Store(false) }
		}},
		{"server down", func(t *testing.T, f *fakeS3) func() {
			f.stop()
			return func() { f.start(t) }
		}},
		{"bucket missing", func(t *testing.T, f *fakeS3) func() {
			if err := f.backend.ForceDeleteBucket(s3TestBucket); err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := f.backend.CreateBucket(s3TestBucket); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeS3(t)
			cfg := s3TestConfig(f)
			cfg.MaxAttempts = 2
			s := newS3Sink(t, cfg)
			if err := s.Send(context.Background(), sampleAuditRecords(1, 0, time.Now())); err != nil {
				t.Fatalf("Send before the failure: %v", err) // also opens a connection to break
			}

			repair := tt.breakIt(t, f)
			start := time.Now()
			err := s.Send(context.Background(), batch)
			if err == nil {
				t.Fatal("Send succeeded against a failing store")
			}
			if d := time.Since(start); d > cfg.Timeout+time.Second {
				t.Errorf("Send took %v", d)
			}
			if strings.Contains(err.Error(), "s3-secret-value") {
				t.Errorf("error reveals the secret key: %v", err)
			}
			t.Logf("Send error: %v", err)

			repair()
			if err := s.Send(context.Background(), batch); err != nil {
				t.Fatalf("Send after repair: %v", err)
			}
			body, _ := f.object(t, s.ObjectKey(batch))
			if !bytes.Equal(body, jsonLines(t, batch)) {
				t.Errorf("object holds\n%s", body)
			}
		})
	}
}

func TestS3TLS(t *testing.T) {
	pki := newTestPKI(t)
	f := newFakeS3TLS(t, pki.serverTLS())
	f.readerTLS = pki.clientTLS(t)
	batch := sampleAuditRecords(2, 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	// Refused handshakes: the client's own verification error names the
	// certificate; a server refusing a client without one may, under TLS
	// 1.3, only show the client a closed connection (the alert comes after
	// the client's handshake ends), so that case checks that nothing was
	// stored instead of the wording.
	tests := []struct {
		name    string
		tls     *sinks.TLSFiles
		wantErr string
	}{
		{"private CA and client certificate", &sinks.TLSFiles{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}, ""},
		{"server not trusted", nil, "certificate"},
		{"no client certificate", &sinks.TLSFiles{CAFile: pki.CAFile}, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s3TestConfig(f)
			cfg.TLS = tt.tls
			s := newS3Sink(t, cfg)
			before := f.putCount()
			err := s.Send(context.Background(), batch)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				body, _ := f.object(t, s.ObjectKey(batch))
				if !bytes.Equal(body, jsonLines(t, batch)) {
					t.Errorf("object holds\n%s", body)
				}
				return
			}
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if tt.wantErr != "refused" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Send error %v, want one about %q", err, tt.wantErr)
			}
			if n := f.putCount(); n != before {
				t.Fatalf("the server stored %d object(s) for a refused client", n-before)
			}
		})
	}
}

func TestNewS3Region(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_PROFILE", "")
	cfg := sinks.S3Config{Bucket: "b", AccessKeyID: "AK", SecretAccessKey: "SK"}
	if _, err := sinks.NewS3(cfg); err == nil || !strings.Contains(err.Error(), "region is required") {
		t.Errorf("AWS without a region: %v", err)
	}
	t.Setenv("AWS_REGION", "eu-central-1")
	s, err := sinks.NewS3(cfg)
	if err != nil {
		t.Fatalf("region from AWS_REGION: %v", err)
	}
	_ = s.Close()
}
