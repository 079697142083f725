// Command traceslices lists the longest slices of CPU time in a Go
// execution trace: each time a goroutine ran without a switch, how long,
// and where it stopped. On a server that runs on one core (GOMAXPROCS=1,
// as make bench-dns runs CoreDNS), a query that arrives during a long
// slice waits for its end, so the longest slices are what a latency
// percentile is made of.
//
//	go run ./test/traceslices [-top N] [-over DURATION] TRACE
//
// TRACE is what `benchdns -profile DIR` writes for each fixed-rate run
// (DIR/hosts-latency.trace, DIR/marathon-latency.trace and, under churn,
// DIR/marathon-churn-latency.trace).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

func main() {
	top := flag.Int("top", 20, "slices to list")
	over := flag.Duration("over", 300*time.Microsecond, "group the slices longer than this by where they stopped")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: traceslices [-top N] [-over DURATION] TRACE")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *top, *over, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "traceslices:", err)
		os.Exit(1)
	}
}

// slice is one stretch of a goroutine on a CPU.
type slice struct {
	took  time.Duration
	at    time.Duration // since the trace's first event
	where string        // the stack where the goroutine stopped running
}

func run(path string, top int, over time.Duration, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return err
	}
	started := map[trace.GoID]trace.Time{}
	var all []slice
	var first trace.Time
	for {
		ev, err := r.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if first == 0 {
			first = ev.Time()
		}
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		g := st.Resource.Goroutine()
		from, to := st.Goroutine()
		switch {
		case to == trace.GoRunning:
			started[g] = ev.Time()
		case from == trace.GoRunning:
			if t0, ok := started[g]; ok {
				all = append(all, slice{took: ev.Time().Sub(t0), at: t0.Sub(first), where: stack(ev.Stack())})
				delete(started, g)
			}
		}
	}
	slices.SortFunc(all, func(a, b slice) int { return int(b.took - a.took) })
	limits := []time.Duration{100 * time.Microsecond, 300 * time.Microsecond, time.Millisecond}
	counts := make([]int, len(limits))
	for _, s := range all {
		for i, lim := range limits {
			if s.took > lim {
				counts[i]++
			}
		}
	}
	fmt.Fprintf(out, "%d slices; longer than 100us: %d, 300us: %d, 1ms: %d\n", len(all), counts[0], counts[1], counts[2])
	// Where the slices past over stopped, most first.
	by := map[string]int{}
	for _, s := range all {
		if s.took > over {
			by[s.where]++
		}
	}
	wheres := slices.SortedFunc(maps.Keys(by), func(a, b string) int { return by[b] - by[a] })
	for _, w := range wheres {
		fmt.Fprintf(out, "  %4d past %v stopped in %s\n", by[w], over, w)
	}
	for _, s := range all[:min(top, len(all))] {
		fmt.Fprintf(out, "%8.3f ms at %7.3f s  %s\n", float64(s.took)/1e6, s.at.Seconds(), s.where)
	}
	return nil
}

// stack is the innermost frames of st, innermost first.
func stack(st trace.Stack) string {
	var frames []string
	for f := range st.Frames() {
		if len(frames) == 4 {
			break
		}
		frames = append(frames, f.Func)
	}
	if len(frames) == 0 {
		return "(no stack)"
	}
	return strings.Join(frames, " <- ")
}
