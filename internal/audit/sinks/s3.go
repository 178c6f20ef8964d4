package sinks

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5" //nolint:gosec // Content-MD5 is the integrity check every S3-compatible store understands
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
)

// Server-side encryption modes of the S3 sink.
const (
	S3SSEAES256  = "AES256"       // keys managed by the store (SSE-S3)
	S3SSEKMS     = "aws:kms"      // AWS KMS (SSE-KMS)
	S3SSEKMSDSSE = "aws:kms:dsse" // AWS KMS, dual-layer
)

// Defaults of the S3 sink.
const (
	DefaultS3Timeout     = 60 * time.Second
	DefaultS3MaxAttempts = 3
)

// S3Config configures the S3 sink (AWS S3 or an S3-compatible store).
type S3Config struct {
	// Name identifies the sink (default "s3").
	Name string
	// Bucket receives the objects; it must exist.
	Bucket string
	// Prefix is prepended to object keys ("audit" gives
	// "audit/2026/03/04/05/…"); optional.
	Prefix string
	// Region is the bucket's region. Empty means the AWS default chain
	// (AWS_REGION, the shared config), else "us-east-1" with an Endpoint.
	Region string
	// Endpoint overrides the AWS endpoint, for S3-compatible stores
	// ("https://minio.internal:9000"); http is allowed.
	Endpoint string
	// PathStyle addresses buckets as endpoint/bucket/key rather than
	// bucket.endpoint/key, as most S3-compatible stores need.
	PathStyle bool

	// AccessKeyID, SecretAccessKey and SessionToken are static
	// credentials. Empty means the AWS default chain (environment, shared
	// files, web identity, container or instance role).
	AccessKeyID     string
	SecretAccessKey config.Secret
	SessionToken    config.Secret

	// SSE asks for server-side encryption: "" (the bucket's default),
	// "AES256", "aws:kms" or "aws:kms:dsse"; SSEKMSKeyID names the KMS key
	// for the latter two (empty: the account's default key).
	SSE         string
	SSEKMSKeyID string

	// TLS sets a private CA or a client certificate for an https
	// Endpoint; nil means the system roots.
	TLS *TLSFiles

	// Timeout bounds one Send, retries included (default 60s);
	// MaxAttempts is how many times one upload is tried within it
	// (default 3).
	Timeout     time.Duration
	MaxAttempts int
}

// S3 writes each batch as one gzip-compressed JSON Lines object (one
// canonical record JSON per line) named after the batch:
//
//	prefix/yyyy/mm/dd/hh/<first seq>-<last seq>-<first id>.jsonl.gz
//
// with the hour of the first record (UTC) and the sequence numbers
// zero-padded to 20 digits, so names sort in sequence order. The name
// depends only on the batch, so a batch sent again overwrites its object
// instead of adding a copy.
type S3 struct {
	name      string
	bucket    string
	prefix    string
	sse       s3types.ServerSideEncryption
	kmsKey    string
	timeout   time.Duration
	client    *s3.Client
	transport atomic.Pointer[http.Transport] // the client's, once built
}

var _ audit.Sink = (*S3)(nil)

// NewS3 validates cfg and creates the client. It does not contact the
// store: the first Send does.
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Name == "" {
		cfg.Name = "s3"
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("audit sink %q (s3): "+format, append([]any{cfg.Name}, a...)...)
	}
	if cfg.Bucket == "" {
		return nil, errf("bucket is required")
	}
	if strings.ContainsAny(cfg.Bucket, "/ ") {
		return nil, errf("bucket %q: a bucket name has no slash or space (put folders in prefix)", cfg.Bucket)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" && (path.Clean(prefix) != prefix || strings.HasPrefix(prefix, "..") || strings.Contains(prefix, "//")) {
		return nil, errf("prefix %q: use a clean path such as \"audit/gatehouse\"", cfg.Prefix)
	}
	if cfg.Timeout < 0 {
		return nil, errf("timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultS3Timeout
	}
	if cfg.MaxAttempts < 0 {
		return nil, errf("max_attempts must not be negative")
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultS3MaxAttempts
	}

	var sse s3types.ServerSideEncryption
	switch cfg.SSE {
	case "":
		if cfg.SSEKMSKeyID != "" {
			return nil, errf("sse_kms_key_id needs sse %q or %q", S3SSEKMS, S3SSEKMSDSSE)
		}
	case S3SSEAES256:
		if cfg.SSEKMSKeyID != "" {
			return nil, errf("sse_kms_key_id needs sse %q or %q, not %q", S3SSEKMS, S3SSEKMSDSSE, cfg.SSE)
		}
		sse = s3types.ServerSideEncryptionAes256
	case S3SSEKMS:
		sse = s3types.ServerSideEncryptionAwsKms
	case S3SSEKMSDSSE:
		sse = s3types.ServerSideEncryptionAwsKmsDsse
	default:
		return nil, errf("sse %q: use %q, %q or %q", cfg.SSE, S3SSEAES256, S3SSEKMS, S3SSEKMSDSSE)
	}

	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, errf("access_key_id and secret_access_key must be set together")
	}
	if cfg.SessionToken != "" && cfg.AccessKeyID == "" {
		return nil, errf("session_token needs access_key_id and secret_access_key")
	}

	var endpoint *url.URL
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		switch {
		case err != nil:
			return nil, errf("endpoint is not a URL")
		case u.User != nil:
			return nil, errf("endpoint: credentials do not belong in the URL (use access_key_id/secret_access_key)")
		case u.RawQuery != "" || u.Fragment != "":
			return nil, errf("endpoint: no query or fragment (credentials go in access_key_id/secret_access_key)")
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
			return nil, errf("endpoint %q: use http(s)://host[:port]", cfg.Endpoint)
		}
		endpoint = u
	}
	if cfg.TLS != nil && endpoint != nil && endpoint.Scheme == "http" {
		return nil, errf("tls is set but endpoint %q is plain http", cfg.Endpoint)
	}

	// A BuildableClient, not a plain http.Client: the default chain may
	// add a CA bundle (AWS_CA_BUNDLE) to its transport.
	sink := &S3{}
	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = 10 * time.Second }).
		WithTransportOptions(func(t *http.Transport) { sink.transport.Store(t) })
	if cfg.TLS != nil {
		tc, err := cfg.TLS.load()
		if err != nil {
			return nil, errf("tls: %w", err)
		}
		// The SDK adds the certificates of AWS_CA_BUNDLE, when set, to
		// these roots.
		httpClient = httpClient.WithTransportOptions(func(t *http.Transport) { t.TLSClientConfig = tc })
	}

	loadOpts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(httpClient),
		awsconfig.WithRetryMaxAttempts(cfg.MaxAttempts),
	}
	if cfg.Region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(cfg.Region))
	} else if endpoint != nil {
		loadOpts = append(loadOpts, awsconfig.WithDefaultRegion("us-east-1"))
	}
	if cfg.AccessKeyID != "" {
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			cfg.AccessKeyID, cfg.SecretAccessKey.Reveal(), cfg.SessionToken.Reveal())))
	}
	if endpoint != nil {
		// Stores other than AWS often reject the newer default
		// checksums; Content-MD5 (set on every upload) still checks
		// integrity.
		loadOpts = append(loadOpts,
			awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
			awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		// The shared config files may be malformed; their errors name
		// files and profiles, not credentials.
		return nil, errf("loading AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errf("region is required (or set AWS_REGION)")
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if endpoint != nil {
			o.BaseEndpoint = aws.String(strings.TrimSuffix(endpoint.String(), "/"))
		}
		o.UsePathStyle = cfg.PathStyle
	})
	sink.name, sink.bucket, sink.prefix = cfg.Name, cfg.Bucket, prefix
	sink.sse, sink.kmsKey = sse, cfg.SSEKMSKeyID
	sink.timeout, sink.client = cfg.Timeout, client
	return sink, nil
}

// Name implements audit.Sink.
func (s *S3) Name() string { return s.name }

// ObjectKey is the key a batch (not empty) is stored under.
func (s *S3) ObjectKey(recs []audit.Record) string {
	first, last := recs[0], recs[len(recs)-1]
	name := fmt.Sprintf("%020d-%020d-%s.jsonl.gz", first.Seq, last.Seq, safeKeyPart(first.ID))
	key := first.Time.UTC().Format("2006/01/02/15") + "/" + name
	if s.prefix != "" {
		key = s.prefix + "/" + key
	}
	return key
}

// safeKeyPart keeps the characters that need no escaping in an object key.
func safeKeyPart(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			return r
		}
		return '_'
	}, s)
}

// Send uploads the batch as one object and returns once the store has it.
func (s *S3) Send(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	body, err := encodeJSONLinesGzip(recs)
	if err != nil {
		return fmt.Errorf("s3 sink %q: %w", s.name, err)
	}
	sum := md5.Sum(body) //nolint:gosec // see import
	key := s.ObjectKey(recs)
	in := &s3.PutObjectInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(key),
		Body:            bytes.NewReader(body),
		ContentLength:   aws.Int64(int64(len(body))),
		ContentMD5:      aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ContentType:     aws.String("application/x-ndjson"),
		ContentEncoding: aws.String("gzip"),
		Metadata: map[string]string{
			"gatehouse-first-seq": strconv.FormatInt(recs[0].Seq, 10),
			"gatehouse-last-seq":  strconv.FormatInt(recs[len(recs)-1].Seq, 10),
			"gatehouse-records":   strconv.Itoa(len(recs)),
		},
		ServerSideEncryption: s.sse,
	}
	if s.kmsKey != "" {
		in.SSEKMSKeyId = aws.String(s.kmsKey)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("s3 sink %q: putting s3://%s/%s: %w", s.name, s.bucket, key, err)
	}
	return nil
}

// encodeJSONLinesGzip is the object body: one canonical record JSON per
// line, gzip-compressed. The gzip header carries no time or name, so the
// same batch always gives the same bytes.
func encodeJSONLinesGzip(recs []audit.Record) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for i := range recs {
		line, err := json.Marshal(&recs[i])
		if err != nil {
			return nil, fmt.Errorf("encoding record %s: %w", recs[i].ID, err)
		}
		if _, err := zw.Write(append(line, '\n')); err != nil {
			return nil, fmt.Errorf("compressing batch: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing batch: %w", err)
	}
	return buf.Bytes(), nil
}

// Close releases idle connections.
func (s *S3) Close() error {
	if t := s.transport.Load(); t != nil {
		t.CloseIdleConnections()
	}
	return nil
}
