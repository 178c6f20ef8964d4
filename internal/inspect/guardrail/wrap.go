package guardrail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gatehouse/internal/inspect"
)

// FailMode says what a guardrail's failure (error, timeout, nonsense
// answer) means.
type FailMode string

// Fail modes.
const (
	// FailClosed denies the call, with a reason naming the guardrail. The
	// default: a guardrail that cannot be reached must not become a way
	// around it.
	FailClosed FailMode = "closed"
	// FailOpen allows the call and reports the failure.
	FailOpen FailMode = "open"
)

// Defaults for Settings.
const (
	DefaultTimeout          = 2 * time.Second
	DefaultMaxResponseBytes = 1 << 20
	maxReasonBytes          = 256
)

// Settings are the per-guardrail settings Wrap applies.
type Settings struct {
	// Timeout bounds one Check, including retries (default 2s).
	Timeout time.Duration
	// FailMode is FailClosed (default) or FailOpen.
	FailMode FailMode
	// Directions the guardrail applies to (default both); content going
	// the other way is allowed without asking it.
	Directions []Direction
	// MaxResponseBytes caps the bytes read from the guardrail's HTTP
	// responses (default 1 MiB); a longer response is an error.
	MaxResponseBytes int64
	// Logger receives a warning per failure (default slog.Default()).
	Logger *slog.Logger
	// OnFailure, when set, is told about every failure, whatever the fail
	// mode (for metrics and audit). err never contains the content or a
	// secret.
	OnFailure func(guardrail string, err error)
}

// Wrapped is a Guardrail with its Settings applied. Its Check never
// returns an error: failures become verdicts according to the fail mode
// and are reported through Settings.OnFailure and the logger.
type Wrapped struct {
	g        Guardrail
	timeout  time.Duration
	failOpen bool
	request  bool
	response bool
	maxResp  int64
	log      *slog.Logger
	report   func(string, error)
}

var _ Guardrail = (*Wrapped)(nil)

// Wrap validates s and applies it to g.
func Wrap(g Guardrail, s Settings) (*Wrapped, error) {
	w := &Wrapped{g: g, timeout: s.Timeout, maxResp: s.MaxResponseBytes, log: s.Logger, report: s.OnFailure}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("guardrail %q: "+format, append([]any{g.Name()}, a...)...)
	}
	switch s.FailMode {
	case "", FailClosed:
	case FailOpen:
		w.failOpen = true
	default:
		return nil, errf("fail mode %q: want closed or open", s.FailMode)
	}
	if w.timeout < 0 {
		return nil, errf("timeout must not be negative")
	}
	if w.timeout == 0 {
		w.timeout = DefaultTimeout
	}
	if w.maxResp < 0 {
		return nil, errf("max response bytes must not be negative")
	}
	if w.maxResp == 0 {
		w.maxResp = DefaultMaxResponseBytes
	}
	if len(s.Directions) == 0 {
		w.request, w.response = true, true
	}
	for _, d := range s.Directions {
		switch d {
		case DirectionRequest:
			w.request = true
		case DirectionResponse:
			w.response = true
		default:
			return nil, errf("direction %q: want request or response", d)
		}
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	return w, nil
}

// Name implements Guardrail.
func (w *Wrapped) Name() string { return w.g.Name() }

// Applies reports whether the guardrail checks content going in direction d.
func (w *Wrapped) Applies(d Direction) bool {
	return d == DirectionRequest && w.request || d == DirectionResponse && w.response
}

// Check implements Guardrail. It allows content going in a direction the
// guardrail does not apply to without calling it.
func (w *Wrapped) Check(ctx context.Context, r *Request) (Verdict, error) {
	v, _ := w.Decide(ctx, r)
	return v, nil
}

// Failure is a check that gave no verdict: the guardrail failed, timed
// out or answered nonsense. It never holds the content or a secret.
type Failure struct {
	Guardrail string
	// Kind is "timeout", "canceled", "bad response" or "error".
	Kind string
	err  error
}

func (f *Failure) Error() string { return f.err.Error() }
func (f *Failure) Unwrap() error { return f.err }

// Decide is Check that also returns the failure behind a verdict the fail
// mode made (nil when the guardrail answered). The failure was logged and
// reported already.
func (w *Wrapped) Decide(ctx context.Context, r *Request) (Verdict, *Failure) {
	if !w.Applies(r.Direction) {
		return Verdict{Action: Allow}, nil
	}
	cctx, cancel := context.WithTimeout(withResponseLimit(ctx, w.maxResp), w.timeout)
	v, err := w.checkBounded(cctx, r)
	timedOut := err != nil && cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil
	cancel()
	if err == nil {
		v, err = w.clean(v, r)
	}
	if err == nil {
		return v, nil
	}
	f := &Failure{Guardrail: w.Name(), Kind: "error"}
	switch {
	case errors.Is(err, errBadVerdict):
		f.Kind = "bad response"
		f.err = fmt.Errorf("guardrail %q: %w", w.Name(), err)
	case timedOut:
		f.Kind = "timeout"
		f.err = fmt.Errorf("guardrail %q: timed out after %s: %w", w.Name(), w.timeout, err)
	case ctx.Err() != nil:
		f.Kind = "canceled"
		f.err = fmt.Errorf("guardrail %q: %w", w.Name(), err)
	default:
		f.err = fmt.Errorf("guardrail %q: %w", w.Name(), err)
	}
	w.log.LogAttrs(ctx, slog.LevelWarn, "guardrail failed",
		slog.String("guardrail", w.Name()), slog.Bool("fail_open", w.failOpen), slog.String("error", f.Error()))
	if w.report != nil {
		w.report(w.Name(), f)
	}
	if w.failOpen {
		return Verdict{Action: Allow}, f
	}
	return Verdict{Action: Deny, Reason: fmt.Sprintf("guardrail %s failed: %s", w.Name(), f.Kind)}, f
}

var errBadVerdict = errors.New("bad verdict")

type checkResult struct {
	v   Verdict
	err error
}

// checkBounded returns when the adapter does or when ctx is done, whichever
// comes first: a step that ignores ctx (an OAuth token refresh, say) must
// not hold the call past the timeout. The adapter's goroutine finishes on
// its own, bounded by its HTTP client's backstop timeout.
func (w *Wrapped) checkBounded(ctx context.Context, r *Request) (Verdict, error) {
	done := make(chan checkResult, 1)
	rc := *r // the caller may reuse r once Check has returned
	go func() {
		v, err := w.g.Check(ctx, &rc)
		done <- checkResult{v, err}
	}()
	select {
	case res := <-done:
		return res.v, res.err
	case <-ctx.Done():
		return Verdict{}, ctx.Err()
	}
}

// clean checks an adapter's verdict and bounds what it carries back.
func (w *Wrapped) clean(v Verdict, r *Request) (Verdict, error) {
	switch v.Action {
	case Allow:
		return Verdict{Action: Allow, Findings: validFindings(v.Findings, len(r.Text))}, nil
	case Deny:
		v.Reason = inspect.Printable(v.Reason, maxReasonBytes)
		if v.Reason == "" {
			v.Reason = "denied by guardrail " + w.Name()
		}
		v.JSON, v.Text = nil, ""
	case Mutate:
		switch {
		case v.JSON != nil && v.Text != "":
			return Verdict{}, fmt.Errorf("%w: mutate with both json and text", errBadVerdict)
		case v.JSON != nil:
			if !json.Valid(v.JSON) {
				return Verdict{}, fmt.Errorf("%w: mutate json is not valid JSON", errBadVerdict)
			}
		case v.Text == "" && r.Text != "":
			return Verdict{}, fmt.Errorf("%w: mutate without json or text", errBadVerdict)
		}
		v.Reason = inspect.Printable(v.Reason, maxReasonBytes)
	default:
		return Verdict{}, fmt.Errorf("%w: unknown action %.32q", errBadVerdict, v.Action)
	}
	v.Findings = validFindings(v.Findings, len(r.Text))
	return v, nil
}

// validFindings drops findings whose offsets do not fit the text and
// keeps their provider-supplied category and type to name characters:
// findings go into logs and audit records, which must not carry content.
func validFindings(fs []inspect.Finding, n int) []inspect.Finding {
	out := fs[:0:0]
	for _, f := range fs {
		if f.Start >= 0 && f.Start <= f.End && f.End <= n {
			f.Category, f.Type = inspect.Category(cleanName(string(f.Category))), cleanName(f.Type)
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
