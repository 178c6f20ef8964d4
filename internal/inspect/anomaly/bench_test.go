package anomaly

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// benchAgents is the number of agents the benchmarks spread calls over.
const benchAgents = 1000

func benchEvents() []Event {
	labels := []string{"crm"}
	evs := make([]Event, benchAgents)
	for i := range evs {
		evs[i] = Event{Agent: fmt.Sprintf("agent-%04d", i), Team: fmt.Sprintf("team-%d", i%20),
			Tool: fmt.Sprintf("tool-%d", i%7), BytesOut: 1500, Labels: labels}
	}
	return evs
}

// BenchmarkObserve is one Observe on one goroutine, 1000 agents, 1 ms of
// synthetic time per call (a window rolls every 60000 calls).
func BenchmarkObserve(b *testing.B) {
	m, _ := newMonitor(b, Config{})
	evs := benchEvents()
	for i, ev := range evs { // steady state: agents and their keys exist
		ev.Time = t0
		m.Observe(ev)
		evs[i] = ev
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ev := evs[i%benchAgents]
		ev.Time = t0.Add(time.Duration(i) * time.Millisecond)
		m.Observe(ev)
	}
}

// BenchmarkObserveParallel is Observe from GOMAXPROCS goroutines at once.
func BenchmarkObserveParallel(b *testing.B) {
	m, _ := newMonitor(b, Config{})
	evs := benchEvents()
	for _, ev := range evs {
		ev.Time = t0
		m.Observe(ev)
	}
	var clock atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(clock.Add(7919))
		for pb.Next() {
			i++
			ev := evs[i%benchAgents]
			ev.Time = t0.Add(time.Duration(i) * time.Millisecond)
			m.Observe(ev)
		}
	})
}

// BenchmarkTick is one Tick over 1000 agents whose windows all close.
func BenchmarkTick(b *testing.B) {
	m, _ := newMonitor(b, Config{})
	evs := benchEvents()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		for _, ev := range evs {
			ev.Time = at(2*i, 0)
			m.Observe(ev)
		}
		b.StartTimer()
		m.Tick(at(2*i+1, 0))
	}
}
