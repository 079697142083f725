package main

import (
	"math"
	"slices"
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

func TestRoundRatios(t *testing.T) {
	run := func(server string, round int, qps float64) measurement {
		return measurement{server: server, round: round, res: result{qps: qps}}
	}
	r := &report{runs: []measurement{
		run("hosts", 1, 100), run("marathon", 1, 99),
		run("hosts", 2, 100), run("marathon", 2, 102),
		run("hosts", 0, 10), run("marathon", 0, 30), // the latency runs
		run("hosts+churn", 1, 100), run("marathon+churn", 1, 80),
		run("hosts"+afterChurn, 1, 200), run("marathon"+afterChurn, 1, 194),
	}}
	for _, tc := range []struct {
		suffix string
		want   []float64
	}{
		{"", []float64{0.99, 1.02}},
		{afterChurn, []float64{0.97}},
	} {
		if got := r.roundRatios(tc.suffix); !slices.Equal(got, tc.want) {
			t.Errorf("roundRatios(%q) = %v, want %v", tc.suffix, got, tc.want)
		}
	}
	var after *figure
	for _, f := range r.figures() {
		if strings.Contains(f.name, "after the churn") {
			after = &f
		}
	}
	if after == nil || after.value != 0.97 || !strings.Contains(after.note, "1.005 before the churn") {
		t.Errorf("after-churn figure %+v, want 0.97 and the median before, 1.005", after)
	}
}
