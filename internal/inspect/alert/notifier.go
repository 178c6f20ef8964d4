package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/internal/config"
	"gatehouse/internal/webhooksig"
)

// WebhookConfig is where alerts are POSTed. The zero value (no URL) means
// alerts are only logged.
type WebhookConfig struct {
	// URL receives the POSTs (http or https). It may carry a credential:
	// it is never logged.
	URL string
	// Secret is the HMAC-SHA256 key, at least webhooksig.MinKey bytes.
	Secret config.Secret
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
}

// DefaultTimeout bounds one webhook request when WebhookConfig.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// Drop reasons, as passed to Options.OnDrop.
const (
	DropQueueFull     = "queue_full"    // the queue was full when the alert was raised
	DropUndeliverable = "undeliverable" // the webhook refused or failed every attempt
	DropShutdown      = "shutdown"      // raised after Close, or still queued when Close gave up
)

// Options configure a Notifier. Zero values mean the defaults.
type Options struct {
	Logger  *slog.Logger
	Webhook WebhookConfig
	// QueueSize bounds the alerts waiting for the webhook (default 1024).
	QueueSize int
	// BatchSize bounds the alerts in one POST (default 100).
	BatchSize int
	// MaxAttempts is how many times a batch is sent before it is dropped
	// (default 6).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles from MinBackoff (defaults 500ms and 30s). A Retry-After
	// header (in seconds) is honoured up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// OnAlert, when set, sees every alert raised (metrics). It runs on the
	// caller of Notify and must be quick.
	OnAlert func(Alert)
	// OnDrop, when set, is told of alerts dropped before delivery, with a
	// Drop* reason (metrics).
	OnDrop func(reason string, n int)
	// Now is the clock alerts are stamped with (default time.Now).
	Now func() time.Time
}

// Notifier logs alerts and delivers them to the webhook. It is safe for
// concurrent use; Notify never blocks on the network.
type Notifier struct {
	o   Options
	log *slog.Logger

	hook  atomic.Pointer[target] // nil: log only
	queue chan Alert

	mu      sync.RWMutex // Notify (read) against Close (write)
	closed  bool
	closing chan struct{} // closed by Close: drain and stop
	abort   context.Context
	stop    context.CancelFunc // aborts deliveries when Close gives up
	done    chan struct{}      // closed when the sender returned

	delivered, dropped atomic.Uint64
	lastDropLog        atomic.Int64 // unix nanoseconds
}

// target is a validated webhook.
type target struct {
	cfg    WebhookConfig
	u      *url.URL
	client *http.Client
}

// New returns a Notifier and starts its sender. Close it to deliver what
// is queued and stop.
func New(o Options) (*Notifier, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	n := &Notifier{o: o, log: o.Logger, queue: make(chan Alert, o.QueueSize), closing: make(chan struct{}), done: make(chan struct{})}
	n.abort, n.stop = context.WithCancel(context.Background())
	if err := n.Configure(o.Webhook); err != nil {
		n.stop()
		return nil, err
	}
	go n.run()
	return n, nil
}

// CheckWebhook validates a webhook configuration. Errors never repeat the
// URL or the secret.
func CheckWebhook(w WebhookConfig) error {
	if w.URL == "" {
		if w.Secret != "" {
			return errors.New("alert webhook: a secret without a url")
		}
		return nil
	}
	u, err := url.Parse(w.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return errors.New("alert webhook: url must be an absolute http or https URL")
	}
	if len(w.Secret) < webhooksig.MinKey {
		return fmt.Errorf("alert webhook: secret must be at least %d bytes (use 32 random bytes)", webhooksig.MinKey)
	}
	if w.Timeout < 0 {
		return errors.New("alert webhook: timeout must not be negative")
	}
	return nil
}

// Configure replaces the webhook (a zero WebhookConfig: log only).
// Configuring the webhook in force again changes nothing. Alerts already
// queued go to the new webhook.
func (n *Notifier) Configure(w WebhookConfig) error {
	if err := CheckWebhook(w); err != nil {
		return err
	}
	if w.Timeout == 0 {
		w.Timeout = DefaultTimeout
	}
	old := n.hook.Load()
	if old != nil && old.cfg == w {
		return nil
	}
	var t *target
	if w.URL != "" {
		u, _ := url.Parse(w.URL)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = w.Timeout
		t = &target{cfg: w, u: u, client: &http.Client{
			Transport: tr,
			Timeout:   w.Timeout,
			// A redirect is an answer, not an invitation to post the
			// alerts somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
	}
	n.hook.Store(t)
	if old != nil {
		old.client.CloseIdleConnections()
	}
	return nil
}

// Notify logs the alert at warn level and, with a webhook, queues it for
// delivery; when the queue is full the alert is dropped and counted. It
// fills in the id, time and summary when they are empty.
func (n *Notifier) Notify(a Alert) {
	a.fill(n.o.Now())
	n.log.LogAttrs(context.Background(), slog.LevelWarn, a.Kind.logMessage(), a.logAttrs()...)
	if n.o.OnAlert != nil {
		n.o.OnAlert(a)
	}
	if n.hook.Load() == nil {
		return
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		n.drop(DropShutdown, 1)
		return
	}
	select {
	case n.queue <- a:
	default:
		n.drop(DropQueueFull, 1)
	}
}

// Delivered returns the number of alerts the webhook accepted.
func (n *Notifier) Delivered() uint64 { return n.delivered.Load() }

// Dropped returns the number of alerts dropped before delivery.
func (n *Notifier) Dropped() uint64 { return n.dropped.Load() }

func (n *Notifier) drop(reason string, count int) {
	n.dropped.Add(uint64(count))
	if n.o.OnDrop != nil {
		n.o.OnDrop(reason, count)
	}
	if reason != DropQueueFull {
		return
	}
	// A full queue drops alerts in bursts: say so once a minute at most.
	now := time.Now().UnixNano()
	if last := n.lastDropLog.Load(); now-last >= int64(time.Minute) && n.lastDropLog.CompareAndSwap(last, now) {
		n.log.Warn("alert queue full: alerts are dropped (they are still logged)", "queue_size", n.o.QueueSize)
	}
}

// Close stops taking alerts, delivers those queued and returns. When ctx
// ends first it abandons delivery (the rest is dropped and counted) and
// returns ctx's error.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.closing)
	}
	n.mu.Unlock()
	var err error
	select {
	case <-n.done:
	case <-ctx.Done():
		err = ctx.Err()
		n.stop()
		<-n.done
	}
	n.stop()
	if t := n.hook.Load(); t != nil {
		t.client.CloseIdleConnections()
	}
	return err
}

// run sends batches until Close, then drains the queue.
func (n *Notifier) run() {
	defer close(n.done)
	batch := make([]Alert, 0, n.o.BatchSize)
	for {
		batch = batch[:0]
		select {
		case a := <-n.queue:
			batch = append(batch, a)
		case <-n.closing:
			for {
				batch = n.take(batch[:0])
				if len(batch) == 0 {
					return
				}
				n.deliver(batch)
			}
		}
		n.deliver(n.take(batch))
	}
}

// take appends queued alerts to batch, up to the batch size, without
// waiting.
func (n *Notifier) take(batch []Alert) []Alert {
	for len(batch) < n.o.BatchSize {
		select {
		case a := <-n.queue:
			batch = append(batch, a)
		default:
			return batch
		}
	}
	return batch
}

// deliver POSTs one batch, retrying with backoff, and drops it after the
// last attempt.
func (n *Notifier) deliver(batch []Alert) {
	t := n.hook.Load()
	if t == nil {
		return // the webhook was turned off: the alerts were logged
	}
	body, err := json.Marshal(struct {
		Alerts []Alert `json:"alerts"`
	}{batch})
	if err != nil {
		n.log.Error("alerts: encoding a batch", "error", err)
		n.drop(DropUndeliverable, len(batch))
		return
	}
	backoff := n.o.MinBackoff
	for attempt := 1; ; attempt++ {
		wait, retry, err := n.post(t, body)
		if err == nil {
			n.delivered.Add(uint64(len(batch)))
			return
		}
		if n.abort.Err() != nil {
			n.drop(DropShutdown, len(batch))
			return
		}
		if !retry || attempt >= n.o.MaxAttempts {
			n.log.Warn("alerts: webhook delivery failed; batch dropped", "host", t.u.Host, "alerts", len(batch), "attempts", attempt, "error", err)
			n.drop(DropUndeliverable, len(batch))
			return
		}
		if wait <= 0 {
			wait = backoff
		}
		wait = min(wait, n.o.MaxBackoff)
		n.log.Debug("alerts: webhook delivery failed; retrying", "host", t.u.Host, "attempt", attempt, "in", wait, "error", err)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-n.abort.Done():
			timer.Stop()
			n.drop(DropShutdown, len(batch))
			return
		}
		backoff = min(backoff*2, n.o.MaxBackoff)
		if cur := n.hook.Load(); cur != t {
			if cur == nil {
				return
			}
			t = cur // reconfigured meanwhile: send to the new webhook
		}
	}
}

// post sends the body once, signed with a fresh timestamp. It reports
// whether a failure is worth retrying and how long the receiver asked to
// wait (Retry-After), if it did.
func (n *Notifier) post(t *target, body []byte) (wait time.Duration, retry bool, err error) {
	ctx, cancel := context.WithTimeout(n.abort, t.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, false, errors.New("building the request failed")
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatehouse-alerts")
	req.Header.Set(webhooksig.TimestampHeader, ts)
	req.Header.Set(webhooksig.SignatureHeader, webhooksig.Sign([]byte(t.cfg.Secret.Reveal()), ts, body))
	resp, err := t.client.Do(req)
	if err != nil {
		// The error may quote the URL: keep only its kind.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return 0, false, nil
	}
	err = fmt.Errorf("the webhook answered HTTP %d", resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		return wait, true, err
	}
	return 0, false, err // refused (bad signature, gone): sending again will not help
}

// WebhookFromConfig returns the webhook of the configuration's
// inspect.alerts section (the zero WebhookConfig when there is none).
func WebhookFromConfig(c config.InspectAlerts) WebhookConfig {
	w := c.Webhook
	if w == nil {
		return WebhookConfig{}
	}
	return WebhookConfig{URL: w.URL.Reveal(), Secret: w.Secret, Timeout: w.Timeout.Std()}
}
