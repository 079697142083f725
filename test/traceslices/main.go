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
//
// It also follows each query goroutine (one that miekg/dns's UDP reader
// starts per packet) from its creation to its first run: how long queries
// waited while runnable, and, for the waits longer than -over, what had
// the core meanwhile. A query can wait through many short slices, when
// the scheduler does not get to poll the network (see the resync's pacer
// in watcher/decode.go), which the longest slices alone do not show.
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
	over := flag.Duration("over", 300*time.Microsecond, "group the slices longer than this by where they stopped, and say what ran while a query waited longer than this")
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
	took       time.Duration
	at         time.Duration // since the trace's first event
	start, end trace.Time
	where      string // the stack where the goroutine stopped running
	query      bool   // a query goroutine's
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
	queries := map[trace.GoID]trace.Time{} // query goroutine -> its creation, until its first run
	isQuery := map[trace.GoID]bool{}
	var waits []time.Duration
	var windows [][2]trace.Time // the waits longer than over
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
		case from == trace.GoNotExist && to == trace.GoRunnable:
			if strings.Contains(stack(ev.Stack()), "serveUDP") {
				queries[g], isQuery[g] = ev.Time(), true
			}
		case to == trace.GoRunning:
			started[g] = ev.Time()
			if t0, ok := queries[g]; ok {
				wait := ev.Time().Sub(t0)
				waits = append(waits, wait)
				if wait > over {
					windows = append(windows, [2]trace.Time{t0, ev.Time()})
				}
				delete(queries, g)
			}
		case from == trace.GoRunning:
			if t0, ok := started[g]; ok {
				all = append(all, slice{took: ev.Time().Sub(t0), at: t0.Sub(first), start: t0, end: ev.Time(), where: stack(ev.Stack()), query: isQuery[g]})
				delete(started, g)
			}
		}
		if to == trace.GoNotExist {
			delete(isQuery, g)
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
	reportWaits(out, waits, windows, all, over, top)
	return nil
}

// reportWaits prints how long query goroutines waited from creation to
// their first run, and what ran during the waits longer than over.
func reportWaits(out io.Writer, waits []time.Duration, windows [][2]trace.Time, all []slice, over time.Duration, top int) {
	if len(waits) == 0 {
		fmt.Fprintln(out, "no query goroutines (none started by miekg/dns's serveUDP)")
		return
	}
	slices.Sort(waits)
	at := func(p float64) time.Duration { return waits[int(float64(len(waits)-1)*p)] }
	r := func(p float64) time.Duration { return at(p).Round(time.Microsecond / 10) }
	fmt.Fprintf(out, "%d query goroutines, runnable from creation to first run: p50 %v, p99 %v, p99.9 %v, max %v\n",
		len(waits), r(0.5), r(0.99), r(0.999), r(1))
	// The waits overlap; merge them into windows.
	slices.SortFunc(windows, func(a, b [2]trace.Time) int { return int(a[0] - b[0]) })
	var merged [][2]trace.Time
	for _, w := range windows {
		if n := len(merged); n > 0 && w[0] <= merged[n-1][1] {
			merged[n-1][1] = max(merged[n-1][1], w[1])
			continue
		}
		merged = append(merged, w)
	}
	var span time.Duration
	for _, w := range merged {
		span += w[1].Sub(w[0])
	}
	by := map[string]time.Duration{}
	for _, s := range all {
		for _, w := range merged {
			if lo, hi := max(s.start, w[0]), min(s.end, w[1]); hi > lo {
				where := s.where
				if s.query {
					where = "(query goroutines)"
				}
				by[where] += hi.Sub(lo)
			}
		}
	}
	fmt.Fprintf(out, "%d waits past %v, in %d windows of %v in all; the CPU in them went to:\n", len(windows), over, len(merged), span.Round(time.Microsecond))
	wheres := slices.SortedFunc(maps.Keys(by), func(a, b string) int { return int(by[b] - by[a]) })
	for _, w := range wheres[:min(top, len(wheres))] {
		fmt.Fprintf(out, "%10v  %s\n", by[w].Round(time.Microsecond), w)
	}
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
