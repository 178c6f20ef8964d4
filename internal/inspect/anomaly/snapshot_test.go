package anomaly

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSnapshotRestore(t *testing.T) {
	m, _ := newMonitor(t, Config{})
	warm(m, "bot", 31)
	warm(m, "other", 3)
	data, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}

	restored, r := newMonitor(t, Config{})
	if err := restored.Restore(data); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bot", "other"} {
		want, _ := m.Agent(name)
		got, ok := restored.Agent(name)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("agent %s after restore:\n got %+v\nwant %+v", name, got, want)
		}
	}
	again, err := restored.Snapshot()
	if err != nil || string(again) != string(data) {
		t.Errorf("snapshot of the restored monitor differs:\n%s\n%s", again, data)
	}

	// The restored agent is past warm-up and knows its labels: a burst
	// alerts, a known label does not.
	burst := steady
	burst.calls = 200
	feed(restored, "bot", 40, burst)
	if got := metrics(r.take()); !slices.Equal(got, []Metric{Calls}) {
		t.Errorf("after restore, a burst raised %v, want [calls]", got)
	}
}

func TestSnapshotFormat(t *testing.T) {
	m, _ := newMonitor(t, Config{})
	m.Observe(Event{Agent: "bot", Team: "support", Tool: "t", BytesOut: 5, Labels: []string{"pii", "crm"}, Time: at(0, time.Second)})
	m.Tick(at(1, 0))
	data, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"window":"1m0s","agents":[{"agent":"bot","team":"support","last_seen":"2026-03-02T09:00:01Z","windows":1,` +
		`"baseline":{"bytes_out":5,"calls":1,"distinct_labels":2,"distinct_tools":1,"error_rate":0},"labels":["crm","pii"]}]}`
	if string(data) != want {
		t.Errorf("snapshot:\n got %s\nwant %s", data, want)
	}
}

func TestRestoreErrors(t *testing.T) {
	valid := func(edit func(*snapshot)) string {
		s := snapshot{Version: 1, Window: "1m0s", Agents: []AgentState{{Agent: "a", Baseline: map[Metric]float64{Calls: 3}}}}
		edit(&s)
		b, _ := json.Marshal(s)
		return string(b)
	}
	tests := []struct {
		name, data, want string
	}{
		{"not_json", `{`, "reading"},
		{"version", valid(func(s *snapshot) { s.Version = 2 }), "version"},
		{"window", valid(func(s *snapshot) { s.Window = "5m0s" }), "window"},
		{"no_name", valid(func(s *snapshot) { s.Agents[0].Agent = "" }), "no agent name"},
		{"unknown_metric", valid(func(s *snapshot) { s.Agents[0].Baseline["latency"] = 1 }), "latency"},
		{"negative_baseline", valid(func(s *snapshot) { s.Agents[0].Baseline[Calls] = -1 }), "calls"},
		{"negative_windows", valid(func(s *snapshot) { s.Agents[0].Windows = -1 }), "windows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newMonitor(t, Config{})
			err := m.Restore([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
			if m.Len() != 0 {
				t.Error("a refused snapshot was partly loaded")
			}
		})
	}
}

func TestRestoreRespectsCap(t *testing.T) {
	src, _ := newMonitor(t, Config{})
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		src.Observe(Event{Agent: name, Time: at(i, 0)})
	}
	data, _ := src.Snapshot()
	m, _ := newMonitor(t, Config{MaxAgents: 3})
	if err := m.Restore(data); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 3 {
		t.Errorf("%d agents after restoring 5 with a cap of 3", m.Len())
	}
}
