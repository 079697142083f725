package watcher

import (
	"testing"
	"time"
)

// TestStreamDownFor: the failover clock runs only while a stream that was
// up is down, and stops when it is up again.
func TestStreamDownFor(t *testing.T) {
	var b statusBook
	later := func() time.Time { return time.Now().Add(time.Minute) }
	steps := []struct {
		name      string
		do        func()
		ticks     bool // the clock runs: asked a minute on, down for a minute
		connected bool // Status().Connected
	}{
		{"never connected", func() {}, false, false},
		{"a first connect fails", func() { b.stream(false) }, false, false},
		{"up", func() { b.stream(true) }, false, true},
		{"down", func() { b.stream(false) }, true, false},
		{"a reconnect fails: still counting from the first drop", func() { b.stream(false) }, true, false},
		{"up again, on another master", func() { b.stream(true) }, false, true},
	}
	for _, step := range steps {
		step.do()
		if got := b.streamDownFor(later()); (got >= time.Minute-time.Second) != step.ticks {
			t.Errorf("%s: down for %v, clock running %v", step.name, got, step.ticks)
		}
		if got := b.read(nil).Connected; got != step.connected {
			t.Errorf("%s: Connected %v, want %v", step.name, got, step.connected)
		}
	}
}
