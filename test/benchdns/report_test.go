package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestVerdict(t *testing.T) {
	tests := []struct {
		f    figure
		want string
	}{
		{figure{value: 0.998, aim: 1.0}, "BELOW GOAL"},
		{figure{value: 1.0, aim: 1.0}, "met"},
		{figure{value: 0.5}, "no goal"},
		{figure{value: 2.0, aim: 2.0, atMost: true}, "met"},
		{figure{value: 2.01, aim: 2.0, atMost: true}, "ABOVE GOAL"},
		{figure{value: 0.4, aim: 2.0, atMost: true}, "met"},
	}
	for _, tc := range tests {
		if got := verdict(tc.f); got != tc.want {
			t.Errorf("verdict(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestFollowFigures(t *testing.T) {
	churn := &churnResult{done: 2000, elapsed: 2 * time.Second} // 1,000 changes/s
	r := &report{runs: []measurement{
		{server: "hosts", round: 1, wall: 5 * time.Second, followCPU: 50 * time.Millisecond},
		{server: "marathon", round: 1, wall: 5 * time.Second, followCPU: time.Second}, // marathon's own run: not following
		{server: "hosts", round: 2, wall: 5 * time.Second, followCPU: 50 * time.Millisecond},
		{server: "hosts+churn", round: 1, wall: 5 * time.Second, followCPU: time.Second, churn: churn},
		{server: "hosts+churn", round: 0, wall: 5 * time.Second, followCPU: 5 * time.Second, churn: churn}, // a latency run
	}}
	figs := r.followFigures()
	if len(figs) != 2 {
		t.Fatalf("%d figures, want 2: %+v", len(figs), figs)
	}
	for i, want := range []struct {
		value float64
		note  string
	}{
		{0.01, "100ms of CPU in 10s"},
		{0.2, "; 200 µs per change"},
	} {
		if math.Abs(figs[i].value-want.value) > 1e-9 || !strings.Contains(figs[i].note, want.note) {
			t.Errorf("figure %d = %.4f %q, want %.4f and %q", i, figs[i].value, figs[i].note, want.value, want.note)
		}
	}
}
