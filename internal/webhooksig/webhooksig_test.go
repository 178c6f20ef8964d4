package webhooksig

import (
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	key := []byte("webhook-test-key-0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"action":"allow"}`)
	ts := "1800000000"
	sig := Sign(key, ts, body)
	if err := Verify(key, ts, sig, body, now, time.Minute); err != nil {
		t.Errorf("valid request: %v", err)
	}
	for name, c := range map[string]struct {
		ts, sig string
		body    []byte
		now     time.Time
	}{
		"tampered_body": {ts, sig, []byte(`{"action":"deny"}`), now},
		"replayed_late": {ts, sig, body, now.Add(time.Hour)},
		"bad_timestamp": {"soon", sig, body, now},
		"other_key":     {ts, Sign([]byte("another-key-0123456789"), ts, body), body, now},
	} {
		if err := Verify(key, c.ts, c.sig, c.body, c.now, time.Minute); err == nil {
			t.Errorf("%s: verified, want an error", name)
		}
	}
}
