package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
)

// SASL mechanisms the Kafka sink speaks.
const (
	KafkaSASLPlain       = "PLAIN"
	KafkaSASLScramSHA256 = "SCRAM-SHA-256"
	KafkaSASLScramSHA512 = "SCRAM-SHA-512"
)

// Defaults of the Kafka sink.
const (
	DefaultKafkaTimeout     = 30 * time.Second
	DefaultKafkaDialTimeout = 10 * time.Second
	DefaultKafkaClientID    = "gatehouse"
)

// KafkaConfig configures the Kafka sink.
type KafkaConfig struct {
	// Name identifies the sink (default "kafka").
	Name string
	// Brokers are the seed brokers, "host:port".
	Brokers []string
	// Topic receives the records. Keys are record ids, so a compacted
	// topic keeps one copy of each record.
	Topic string
	// ClientID is sent to the brokers (default "gatehouse").
	ClientID string

	// SASLMechanism is "" (none), "PLAIN", "SCRAM-SHA-256" or
	// "SCRAM-SHA-512"; SASLUsername and SASLPassword go with it.
	SASLMechanism string
	SASLUsername  string
	SASLPassword  config.Secret

	// TLS, when set, makes the connections use TLS (with its CA and
	// client certificate, if any). nil means plaintext.
	TLS *TLSFiles

	// Compression is "" or "snappy" (the default), "none", "gzip", "lz4"
	// or "zstd".
	Compression string

	// Timeout bounds one Send (default 30s); DialTimeout one connection
	// attempt (default 10s).
	Timeout     time.Duration
	DialTimeout time.Duration

	// Logger, if set, receives the client's warnings and errors (message
	// and error only). nil discards them.
	Logger *slog.Logger
}

// Kafka produces each record to a topic: key = record id, value = the
// record's canonical JSON, headers kind, action and outcome. Writes are
// idempotent with acks from all in-sync replicas; each partition keeps the
// order of a batch (records are spread over partitions by key, so a topic
// with one partition keeps the order of the whole trail; consumers can also
// order on seq).
type Kafka struct {
	name    string
	topic   string
	timeout time.Duration
	client  *kgo.Client
	log     *kafkaLog
}

var _ audit.Sink = (*Kafka)(nil)

// NewKafka validates cfg and creates the producer. It does not connect:
// the first Send does.
func NewKafka(cfg KafkaConfig) (*Kafka, error) {
	if cfg.Name == "" {
		cfg.Name = "kafka"
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("audit sink %q (kafka): "+format, append([]any{cfg.Name}, a...)...)
	}
	if len(cfg.Brokers) == 0 {
		return nil, errf("brokers: at least one broker is required")
	}
	for _, b := range cfg.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return nil, errf("brokers: %q is not host:port", b)
		}
	}
	if strings.TrimSpace(cfg.Topic) == "" {
		return nil, errf("topic is required")
	}
	if !validKafkaTopic(cfg.Topic) {
		return nil, errf("topic %q: use up to 249 letters, digits, '.', '_' or '-' (not \".\" or \"..\")", cfg.Topic)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultKafkaClientID
	}
	if cfg.Timeout < 0 || cfg.DialTimeout < 0 {
		return nil, errf("timeout and dial_timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultKafkaTimeout
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultKafkaDialTimeout
	}

	klog := &kafkaLog{out: cfg.Logger, sink: cfg.Name}
	opts := []kgo.Opt{
		kgo.WithLogger(klog),
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.DialTimeout(cfg.DialTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes (the default) need it
		// Send is bounded by Timeout: let a record in flight be failed
		// when it runs out. A failed batch is sent again whole and
		// receivers deduplicate on the key, so a duplicate this may
		// cause is harmless, a Send that never returns is not.
		kgo.AllowIdempotentProduceCancellation(),
		kgo.RecordDeliveryTimeout(cfg.Timeout),
		kgo.ProduceRequestTimeout(cfg.Timeout),
		kgo.RetryTimeout(cfg.Timeout),
		// A record's deadline is only checked between tries: shorter
		// backoffs than the default (up to 5s) keep Send close to
		// Timeout when the brokers keep failing.
		kgo.RetryBackoffFn(kafkaBackoff),
		// A retriable produce error waits for fresh metadata, which is
		// fetched at most every MetadataMinAge (default 5s).
		kgo.MetadataMinAge(500 * time.Millisecond),
	}

	switch strings.ToLower(cfg.Compression) {
	case "", "snappy":
		// the franz-go default: snappy, falling back to none
	case "none":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	case "gzip":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	case "lz4":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	default:
		return nil, errf("compression %q: use none, gzip, snappy, lz4 or zstd", cfg.Compression)
	}

	mech, err := kafkaSASL(cfg)
	if err != nil {
		return nil, errf("%w", err)
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}

	if cfg.TLS != nil {
		tc, err := cfg.TLS.load()
		if err != nil {
			return nil, errf("tls: %w", err)
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}

	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, errf("%w", err)
	}
	return &Kafka{name: cfg.Name, topic: cfg.Topic, timeout: cfg.Timeout, client: client, log: klog}, nil
}

func kafkaSASL(cfg KafkaConfig) (sasl.Mechanism, error) {
	mechanism := strings.ToUpper(strings.TrimSpace(cfg.SASLMechanism))
	if mechanism == "" {
		if cfg.SASLUsername != "" || cfg.SASLPassword != "" {
			return nil, errors.New("sasl_username/sasl_password are set but sasl_mechanism is not (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return nil, nil
	}
	if cfg.SASLUsername == "" || cfg.SASLPassword == "" {
		return nil, fmt.Errorf("sasl_mechanism %s needs sasl_username and sasl_password", mechanism)
	}
	user, pass := cfg.SASLUsername, cfg.SASLPassword.Reveal()
	switch mechanism {
	case KafkaSASLPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case KafkaSASLScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case KafkaSASLScramSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("sasl_mechanism %q: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", cfg.SASLMechanism)
}

// kafkaBackoff waits 100ms, doubling up to 1s, plus up to 20% jitter.
func kafkaBackoff(fails int) time.Duration {
	d := time.Second
	if fails < 4 {
		d = 100 * time.Millisecond << max(fails, 0)
	}
	return d + rand.N(d/5+1)
}

// validKafkaTopic applies Kafka's rules for topic names.
func validKafkaTopic(t string) bool {
	if t == "." || t == ".." || len(t) > 249 {
		return false
	}
	for _, c := range t {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Name implements audit.Sink.
func (k *Kafka) Name() string { return k.name }

// Send produces the batch and waits until every record is acknowledged by
// all in-sync replicas, or fails. Any failed record fails the whole Send.
func (k *Kafka) Send(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	krs := make([]*kgo.Record, len(recs))
	for i := range recs {
		r := &recs[i]
		value, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("kafka sink %q: encoding record %s: %w", k.name, r.ID, err)
		}
		// The Kafka timestamp is left to the producer (now), not set
		// to r.Time: brokers may refuse old timestamps and time-based
		// retention would drop a backlog delivered late. The record's
		// time is in the value.
		krs[i] = &kgo.Record{
			Topic: k.topic,
			Key:   []byte(r.ID),
			Value: value,
			Headers: []kgo.RecordHeader{
				{Key: "kind", Value: []byte(r.Kind)},
				{Key: "action", Value: []byte(r.Action)},
				{Key: "outcome", Value: []byte(r.Outcome.Status)},
			},
		}
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	k.log.last.Store(nil)
	results := k.client.ProduceSync(ctx, krs...)
	var failed int
	var first error
	for _, res := range results {
		if res.Err != nil {
			if first == nil {
				first = res.Err
			}
			failed++
		}
	}
	if failed > 0 {
		err := fmt.Errorf("kafka sink %q: %d of %d records not acknowledged: %w", k.name, failed, len(recs), first)
		if last := k.log.last.Load(); last != nil {
			err = fmt.Errorf("%w (last client error: %s)", err, *last)
		}
		return err
	}
	return nil
}

// Close flushes nothing (Send is synchronous) and closes the connections.
func (k *Kafka) Close() error {
	k.client.Close()
	return nil
}

// kafkaLog keeps the client's last warning or error, to explain a Send
// that only timed out (a refused SASL login, a TLS mismatch, a broker that
// cannot be dialled), and passes them on to a logger. It keeps only the
// message and the "err" value: franz-go's errors never hold credentials.
type kafkaLog struct {
	out  *slog.Logger
	sink string
	last atomic.Pointer[string]
}

func (l *kafkaLog) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l *kafkaLog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level > kgo.LogLevelWarn || level == kgo.LogLevelNone {
		return
	}
	var err any
	for i := 0; i+1 < len(keyvals); i += 2 {
		if keyvals[i] == "err" {
			err = keyvals[i+1]
		}
	}
	line := msg
	if err != nil {
		line = fmt.Sprintf("%s: %v", msg, err)
	}
	l.last.Store(&line)
	if l.out != nil {
		lvl := slog.LevelWarn
		if level == kgo.LogLevelError {
			lvl = slog.LevelError
		}
		l.out.Log(context.Background(), lvl, "kafka audit sink: "+msg, "sink", l.sink, "err", err)
	}
}
