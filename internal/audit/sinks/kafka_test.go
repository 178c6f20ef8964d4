package sinks_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"gatehouse/internal/audit"
	"gatehouse/internal/audit/sinks"
	"gatehouse/internal/config"
)

const kafkaTestTopic = "gatehouse-audit"

func newKafkaCluster(t *testing.T, partitions int32, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, kafkaTestTopic)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newKafkaSink(t *testing.T, cfg sinks.KafkaConfig) *sinks.Kafka {
	t.Helper()
	k, err := sinks.NewKafka(cfg)
	if err != nil {
		t.Fatalf("NewKafka: %v", err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// consumeKafka reads the topic from the start until it holds n records
// (or fails the test after 10s), as any consumer of the trail would.
func consumeKafka(t *testing.T, c *kfake.Cluster, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumeTopics(kafkaTestTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timing out", len(got), n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		got = append(got, fs.Records()...)
	}
	return got
}

func kafkaHeader(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// checkKafkaRecords checks that got holds want, key by key, and that each
// partition holds its records in the order they were sent.
func checkKafkaRecords(t *testing.T, got []*kgo.Record, want []audit.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	byID := make(map[string]audit.Record, len(want))
	order := make(map[string]int, len(want))
	for i, r := range want {
		byID[r.ID] = r
		order[r.ID] = i
	}
	last := map[int32]int{}
	for _, g := range got {
		w, ok := byID[string(g.Key)]
		if !ok {
			t.Fatalf("unexpected key %q", g.Key)
		}
		if !bytes.Equal(g.Value, mustJSON(t, w)) {
			t.Errorf("record %s: value\n%s\nwant\n%s", w.ID, g.Value, mustJSON(t, w))
		}
		if kafkaHeader(g, "kind") != w.Kind || kafkaHeader(g, "action") != w.Action || kafkaHeader(g, "outcome") != w.Outcome.Status {
			t.Errorf("record %s: headers %v", w.ID, g.Headers)
		}
		if prev, ok := last[g.Partition]; ok && order[w.ID] <= prev {
			t.Errorf("partition %d: record %s (#%d) after #%d", g.Partition, w.ID, order[w.ID], prev)
		}
		last[g.Partition] = order[w.ID]
		delete(byID, w.ID)
	}
}

func TestNewKafkaValidation(t *testing.T) {
	const password = "hunter2-secret"
	ok := sinks.KafkaConfig{Brokers: []string{"127.0.0.1:9092"}, Topic: "audit"}
	tests := []struct {
		name    string
		mutate  func(*sinks.KafkaConfig)
		wantErr string // "" means valid
	}{
		{"valid", func(*sinks.KafkaConfig) {}, ""},
		{"valid scram", func(c *sinks.KafkaConfig) {
			c.SASLMechanism, c.SASLUsername, c.SASLPassword = "scram-sha-512", "u", password
		}, ""},
		{"no brokers", func(c *sinks.KafkaConfig) { c.Brokers = nil }, "at least one broker"},
		{"broker without port", func(c *sinks.KafkaConfig) { c.Brokers = []string{"kafka.internal"} }, "not host:port"},
		{"no topic", func(c *sinks.KafkaConfig) { c.Topic = " " }, "topic is required"},
		{"bad topic", func(c *sinks.KafkaConfig) { c.Topic = "audit/trail" }, `topic "audit/trail"`},
		{"credentials without mechanism", func(c *sinks.KafkaConfig) { c.SASLUsername, c.SASLPassword = "u", password }, "sasl_mechanism is not"},
		{"mechanism without password", func(c *sinks.KafkaConfig) { c.SASLMechanism, c.SASLUsername = "PLAIN", "u" }, "needs sasl_username and sasl_password"},
		{"unknown mechanism", func(c *sinks.KafkaConfig) {
			c.SASLMechanism, c.SASLUsername, c.SASLPassword = "GSSAPI", "u", password
		}, `sasl_mechanism "GSSAPI"`},
		{"bad compression", func(c *sinks.KafkaConfig) { c.Compression = "brotli" }, `compression "brotli"`},
		{"negative timeout", func(c *sinks.KafkaConfig) { c.Timeout = -time.Second }, "must not be negative"},
		{"cert without key", func(c *sinks.KafkaConfig) { c.TLS = &sinks.TLSFiles{CertFile: "c.pem"} }, "cert_file and key_file"},
		{"missing CA file", func(c *sinks.KafkaConfig) { c.TLS = &sinks.TLSFiles{CAFile: "/nonexistent/ca.pem"} }, "ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			k, err := sinks.NewKafka(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				_ = k.Close()
				return
			}
			if err == nil {
				_ = k.Close()
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error reveals the password: %q", err)
			}
		})
	}
}

func TestKafkaSend(t *testing.T) {
	pki := newTestPKI(t)
	base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name       string
		partitions int32
		cluster    []kfake.Opt
		sink       func(*sinks.KafkaConfig)
		consumer   []kgo.Opt
	}{
		{name: "plaintext, one partition", partitions: 1},
		{name: "plaintext, partitioned by key", partitions: 4},
		{
			name: "sasl plain", partitions: 1,
			cluster: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser(sinks.KafkaSASLPlain, "gh", "pw-plain")},
			sink: func(c *sinks.KafkaConfig) {
				c.SASLMechanism, c.SASLUsername, c.SASLPassword = "plain", "gh", "pw-plain"
			},
			consumer: []kgo.Opt{kgo.SASL(plain.Auth{User: "gh", Pass: "pw-plain"}.AsMechanism())},
		},
		{
			name: "sasl scram-sha-256", partitions: 1,
			cluster: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser(sinks.KafkaSASLScramSHA256, "gh", "pw-256")},
			sink: func(c *sinks.KafkaConfig) {
				c.SASLMechanism, c.SASLUsername, c.SASLPassword = sinks.KafkaSASLScramSHA256, "gh", "pw-256"
			},
			consumer: []kgo.Opt{kgo.SASL(scram.Auth{User: "gh", Pass: "pw-256"}.AsSha256Mechanism())},
		},
		{
			name: "sasl scram-sha-512 over mutual tls", partitions: 2,
			cluster: []kfake.Opt{
				kfake.EnableSASL(), kfake.Superuser(sinks.KafkaSASLScramSHA512, "gh", "pw-512"),
				kfake.TLS(pki.serverTLS()),
			},
			sink: func(c *sinks.KafkaConfig) {
				c.SASLMechanism, c.SASLUsername, c.SASLPassword = sinks.KafkaSASLScramSHA512, "gh", "pw-512"
				c.TLS = &sinks.TLSFiles{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}
				c.Compression = "zstd"
			},
			consumer: []kgo.Opt{
				kgo.SASL(scram.Auth{User: "gh", Pass: "pw-512"}.AsSha512Mechanism()),
				kgo.DialTLSConfig(pki.clientTLS(t)),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newKafkaCluster(t, tt.partitions, tt.cluster...)
			cfg := sinks.KafkaConfig{Name: "trail", Brokers: c.ListenAddrs(), Topic: kafkaTestTopic, Timeout: 10 * time.Second}
			if tt.sink != nil {
				tt.sink(&cfg)
			}
			k := newKafkaSink(t, cfg)
			if k.Name() != "trail" {
				t.Errorf("Name() = %q", k.Name())
			}
			first := sampleAuditRecords(7, 1, base)
			second := sampleAuditRecords(5, 8, base.Add(time.Minute))
			for _, batch := range [][]audit.Record{first, second, nil} {
				if err := k.Send(context.Background(), batch); err != nil {
					t.Fatalf("Send: %v", err)
				}
			}
			checkKafkaRecords(t, consumeKafka(t, c, len(first)+len(second), tt.consumer...), append(first, second...))
		})
	}
}

func TestKafkaWrongPassword(t *testing.T) {
	c := newKafkaCluster(t, 1, kfake.EnableSASL(), kfake.Superuser(sinks.KafkaSASLScramSHA256, "gh", "right"))
	k := newKafkaSink(t, sinks.KafkaConfig{
		Brokers: c.ListenAddrs(), Topic: kafkaTestTopic, Timeout: 3 * time.Second,
		SASLMechanism: sinks.KafkaSASLScramSHA256, SASLUsername: "gh", SASLPassword: config.Secret("wrong-pass-xyz"),
	})
	err := k.Send(context.Background(), sampleAuditRecords(2, 1, time.Now()))
	if err == nil {
		t.Fatal("Send succeeded with a wrong password")
	}
	t.Logf("Send error: %v", err)
	if strings.Contains(err.Error(), "wrong-pass-xyz") {
		t.Errorf("error reveals the password: %v", err)
	}
}

// TestKafkaBrokerUnavailable makes the broker fail in several ways: Send
// must return an error within its timeout, and the same batch sent again
// once the broker is back must arrive, in order (at least once: the failed
// attempt may have left copies, with the same keys).
func TestKafkaBrokerUnavailable(t *testing.T) {
	base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name string
		// breakBroker makes the cluster fail produce requests and returns
		// the function that repairs it.
		breakBroker func(c *kfake.Cluster) (repair func())
	}{
		{"connections dropped", func(c *kfake.Cluster) func() {
			var down atomic.Bool
			down.Store(true)
			c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
				if !down.Load() {
					return nil, nil, false
				}
				c.KeepControl()
				return nil, errors.New("broker down"), true // closes the connection
			})
			return func() { down.Store(false) }
		}},
		{"retriable produce error (not enough replicas)", func(c *kfake.Cluster) func() {
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1}).Remove
		}},
		{"fatal produce error (topic authorization)", func(c *kfake.Cluster) func() {
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.TopicAuthorizationFailed, Count: -1}).Remove
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newKafkaCluster(t, 1)
			const timeout = 2 * time.Second
			k := newKafkaSink(t, sinks.KafkaConfig{Brokers: c.ListenAddrs(), Topic: kafkaTestTopic, Timeout: timeout})

			ok := sampleAuditRecords(3, 1, base)
			if err := k.Send(context.Background(), ok); err != nil {
				t.Fatalf("Send before the failure: %v", err)
			}

			repair := tt.breakBroker(c)
			batch := sampleAuditRecords(4, 4, base.Add(time.Minute))
			start := time.Now()
			err := k.Send(context.Background(), batch)
			if err == nil {
				t.Fatal("Send succeeded while the broker was failing")
			}
			if d := time.Since(start); d > timeout+1500*time.Millisecond {
				t.Errorf("Send took %v, timeout %v", d, timeout)
			}
			t.Logf("Send error after %v: %v", time.Since(start), err)

			repair()
			start = time.Now()
			defer func() { t.Logf("recovered in %v", time.Since(start)) }()
			var sendErr error
			for range 5 { // the sink's owner retries with backoff
				if sendErr = k.Send(context.Background(), batch); sendErr == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if sendErr != nil {
				t.Fatalf("Send after repair: %v", sendErr)
			}
			after := sampleAuditRecords(2, 8, base.Add(2*time.Minute))
			if err := k.Send(context.Background(), after); err != nil {
				t.Fatalf("Send after repair: %v", err)
			}

			// Read everything; dedupe on the key as a receiver does.
			want := append(append(ok, batch...), after...)
			got := consumeKafkaAll(t, c)
			seen := map[string]bool{}
			var dedup []*kgo.Record
			for _, r := range got {
				if !seen[string(r.Key)] {
					seen[string(r.Key)] = true
					dedup = append(dedup, r)
				}
			}
			checkKafkaRecords(t, dedup, want)
		})
	}
}

// consumeKafkaAll reads the single-partition topic up to its end.
func consumeKafkaAll(t *testing.T, c *kfake.Cluster) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	end, err := kgoEndOffset(cl)
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	return consumeKafka(t, c, int(end))
}

func kgoEndOffset(cl *kgo.Client) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = kafkaTestTopic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = 0
	rp.Timestamp = -1 // latest
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return 0, err
	}
	return p.Offset, nil
}
