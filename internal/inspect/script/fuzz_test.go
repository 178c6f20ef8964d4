package script

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// FuzzCall feeds arbitrary tool arguments (untrusted: they come from the
// agent) through a hook that walks and returns them: no panic, and every
// verdict is well formed.
func FuzzCall(f *testing.F) {
	f.Add([]byte(`{"path":"/tmp/a","n":1,"deep":{"a":[1,2,{"b":null}]}}`))
	f.Add([]byte(`{"s":"\u0000\ud800","big":1e308,"neg":-0}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`"text"`))
	h, err := Load(Script{Name: "fuzz", Source: `
		function walk(v, d) {
			if (d > 50) return 0;
			if (v && typeof v === "object") { var n = 0; for (var k in v) n += walk(v[k], d + 1); return n; }
			return 1;
		}
		function onToolCall(ctx) {
			var n = walk(ctx.args, 0);
			if (n % 3 === 0) return mutate(ctx.args);
			if (n % 3 === 1) return deny("leaves " + n);
			return allow();
		}`}, Options{Logger: discardLogger, Timeout: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, args []byte) {
		if !json.Valid(args) {
			return // the gateway only passes parsed JSON
		}
		v := h.OnToolCall(context.Background(), &Call{Tool: "x", Args: args})
		switch v.Action {
		case Allow, Deny:
		case Mutate:
			if !json.Valid(v.JSON) {
				t.Fatalf("mutate JSON %q is not valid", v.JSON)
			}
		default:
			t.Fatalf("verdict %+v", v)
		}
	})
}
