package watcher

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/marathonsim"
)

// countingHandler counts the REST requests the watcher makes.
type countingHandler struct {
	next     http.Handler
	requests atomic.Int64
}

func (h *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v2/events" && r.Header.Get("X-Oak-Driver") == "" {
		h.requests.Add(1)
	}
	h.next.ServeHTTP(w, r)
}

// pendingChange is a label change not yet seen in a snapshot.
type pendingChange struct {
	name  string
	start time.Time // the PUT was sent
	done  time.Time // the PUT was answered; zero until then
}

// BenchmarkChangeToSnapshot measures the time from issuing a change on the
// simulator (start of the PUT; "after-answer": from the PUT's response, 0
// when the snapshot was first) to the first snapshot that shows it, during
// a storm of label changes paced at 1,000 per second (the achieved rate is
// reported: the simulator, not the watcher, may be the limit). A change
// overtaken by a later change of the same app counts as shown when the
// later one is.
// pace hands change numbers 0..n-1 to the workers' queues at one per
// millisecond (1,000/s), all changes of one app to the same worker, then
// closes the queues. Change k is due k ms after the start: a late hand-off
// is caught up at once rather than lost, as a ticker's dropped ticks would
// be.
func pace(n, apps int, queues []chan int) {
	start := time.Now()
	for k := range n {
		if d := time.Until(start.Add(time.Duration(k) * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
		queues[k%apps%len(queues)] <- k
	}
	for _, q := range queues {
		close(q)
	}
}

// benchWatcher serves a simulator with opts, counting the watcher's
// requests, and runs a synced watcher (no periodic resync) against it until
// the benchmark ends. The driver plays the operator.
func benchWatcher(b *testing.B, opts marathonsim.Options) (*marathonsim.Server, *driver, *Watcher, *countingHandler) {
	b.Helper()
	sim := marathonsim.New(opts)
	counter := &countingHandler{next: sim}
	srv := httptest.NewServer(counter)
	b.Cleanup(func() {
		sim.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	d := newDriver(b, srv.URL)
	w := newWatcher(b, []string{srv.URL}, func(c *Config) { c.Resync = 0 })
	runWatcher(b, w)
	waitFor(b, "initial sync", w.Ready)
	waitFor(b, "stream connected", func() bool { return w.Status().Connected })
	return sim, d, w, counter
}

func BenchmarkChangeToSnapshot(b *testing.B) {
	const apps, workers = 20, 16
	changes := max(b.N, 1000)
	opts := fastSim()
	opts.Apps = appsJSON(apps, 1)
	_, d, w, counter := benchWatcher(b, opts)

	var mu sync.Mutex
	pending := make([][]pendingChange, apps) // per app, in issue order
	var latencies, fromAnswer []time.Duration
	observe := func(s *catalog.Snapshot, now time.Time) {
		mu.Lock()
		defer mu.Unlock()
		for app, list := range pending {
			// The newest shown change settles it and all older ones.
			for i := len(list) - 1; i >= 0; i-- {
				if s.Resolve(defaultEnv, list[i].name).Kind != catalog.Unknown {
					for _, c := range list[:i+1] {
						latencies = append(latencies, now.Sub(c.start))
						if c.done.IsZero() || c.done.After(now) {
							fromAnswer = append(fromAnswer, 0) // shown before the PUT returned
						} else {
							fromAnswer = append(fromAnswer, now.Sub(c.done))
						}
					}
					pending[app] = list[i+1:]
					break
				}
			}
		}
	}
	outstanding := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, list := range pending {
			n += len(list)
		}
		return n
	}

	observerDone := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(observerDone)
		for {
			changed := w.Changed()
			select {
			case <-ctx.Done():
				return
			case <-changed:
				observe(w.Snapshot(), time.Now())
			}
		}
	}()

	requestsBefore := counter.requests.Load()
	syncsBefore := w.Status().Syncs
	// Each app's changes go through one worker, so they reach the
	// simulator in order.
	queues := make([]chan int, workers)
	var wg sync.WaitGroup
	for q := range queues {
		queues[q] = make(chan int, 64)
		wg.Go(func() {
			for k := range queues[q] {
				app := k % apps
				name := fmt.Sprintf("c%d.app%d.example.com", k, app)
				mu.Lock()
				pending[app] = append(pending[app], pendingChange{name: name, start: time.Now()})
				mu.Unlock()
				d.call(http.MethodPut, fmt.Sprintf("/v2/apps/app%d?force=true", app),
					map[string]any{"labels": map[string]string{"OAK_NAMES": name}})
				answered := time.Now()
				mu.Lock()
				for i := range pending[app] {
					if pending[app][i].name == name {
						pending[app][i].done = answered
					}
				}
				mu.Unlock()
			}
		})
	}
	b.ResetTimer()
	start := time.Now()
	pace(changes, apps, queues)
	wg.Wait()
	issued := time.Since(start)
	waitFor(b, "every change shown", func() bool { return outstanding() == 0 })
	b.StopTimer()
	cancel()
	<-observerDone

	slices.Sort(latencies)
	slices.Sort(fromAnswer)
	pct := func(l []time.Duration, p float64) float64 {
		return float64(l[int(p*float64(len(l)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(latencies, 0.50), "p50-ms")
	b.ReportMetric(pct(latencies, 0.99), "p99-ms")
	b.ReportMetric(pct(latencies, 1), "max-ms")
	b.ReportMetric(pct(fromAnswer, 0.50), "p50-after-answer-ms")
	b.ReportMetric(pct(fromAnswer, 0.99), "p99-after-answer-ms")
	b.ReportMetric(float64(changes)/issued.Seconds(), "changes/s")
	b.ReportMetric(float64(counter.requests.Load()-requestsBefore)/float64(changes), "rest-req/change")
	b.ReportMetric(float64(w.Status().Syncs-syncsBefore)/float64(changes), "snapshots/change")
	b.ReportMetric(float64(time.Since(start))/float64(changes), "ns/op")
}

// BenchmarkFullResync measures one full resync of 10,000 apps and 30,000
// tasks from the simulator: GET, streaming decode, catalog.Build or Apply,
// publish. The simulator runs in the same process, so its time and memory
// are part of the figures: "sim-get-only" is the same GET by a plain HTTP
// client (simulator + transfer), and "build-only" is catalog.Build of the
// same apps. cpu-ms/op is the process's CPU time (user + system) per op.
func BenchmarkFullResync(b *testing.B) {
	const apps, tasks = 10000, 3
	body := appsJSON(apps, tasks)
	opts := fastSim()
	opts.Apps = body
	opts.TaskCIDR = netipPrefix("10.96.0.0/11")
	sim := marathonsim.New(opts)
	srv := httptest.NewServer(sim)
	defer func() {
		sim.Close()
		srv.CloseClientConnections()
		srv.Close()
	}()

	// The first full sync builds the snapshot; later ones (the periodic
	// resync, a reconnect) apply the apps that changed to the current one.
	// "rest+sync" is a list where nothing changed (every element has the
	// fingerprint it had); "rest+sync-decode-all" forgets the fingerprints
	// first, so every app is decoded and compared, as for elements
	// without one.
	for _, tc := range []struct {
		name             string
		first, forgetRaw bool
	}{{"rest+build", true, false}, {"rest+sync", false, false}, {"rest+sync-decode-all", false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			w := newWatcher(b, []string{srv.URL}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			s, err := w.newSession(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				cancel()
				s.transport.close()
			}()
			if err := w.fullSync(s); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				if tc.first {
					w.snapshot.Store(nil)
				}
				if tc.forgetRaw {
					w.known.prints.clear()
				}
				if err := w.fullSync(s); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			st := w.Snapshot().Stats()
			if st.Apps != apps || st.Tasks != apps*tasks {
				b.Fatalf("stats %+v", st)
			}
			b.ReportMetric(float64(st.Apps), "apps")
			b.ReportMetric(float64(st.Tasks), "tasks")
		})
	}

	b.Run("sim-get-only", func(b *testing.B) {
		d := newDriver(b, srv.URL)
		b.ReportAllocs()
		cpu0 := cpuTime(b)
		for b.Loop() {
			d.call(http.MethodGet, "/v2/apps?embed=apps.tasks", nil)
		}
		b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	})

	b.Run("build-only", func(b *testing.B) {
		list, err := parseApps(bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		policy := testPolicy(b)
		b.ReportAllocs()
		for b.Loop() {
			catalog.Build(policy, list)
		}
	})
}

// BenchmarkTaskChurn measures the REST requests the watcher makes per task
// change during a churn of task crashes (and their replacements) paced at
// 1,000 per second over apps without health checks, whose status updates
// are applied without a refetch. Every crash is two or three status
// updates: TASK_FAILED, then the replacement's TASK_STAGING and
// TASK_RUNNING. At the end the view must equal the simulator's.
func BenchmarkTaskChurn(b *testing.B) {
	const apps, workers = 200, 16
	kills := max(b.N, 1000)
	opts := fastSim()
	opts.Apps = appsJSON(apps, 2)
	opts.RestartBackoff = time.Millisecond
	sim, d, w, counter := benchWatcher(b, opts)

	requestsBefore := counter.requests.Load()
	syncsBefore := w.Status().Syncs
	queues := make([]chan int, workers)
	var wg sync.WaitGroup
	var killed atomic.Int64
	for q := range queues {
		queues[q] = make(chan int, 64)
		wg.Go(func() {
			for k := range queues[q] {
				app := d.app(fmt.Sprintf("/app%d", k%apps))
				if len(app.Tasks) == 0 {
					continue // the replacement is not there yet
				}
				if sim.KillTask(app.Tasks[0].ID, "") == nil {
					killed.Add(1)
				}
			}
		})
	}
	b.ResetTimer()
	start := time.Now()
	pace(kills, apps, queues)
	wg.Wait()
	issued := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sim.Settle(ctx); err != nil {
		b.Fatal(err)
	}
	waitConverged(b, w, d, testPolicy(b))
	b.StopTimer()

	n := float64(killed.Load())
	b.ReportMetric(n/issued.Seconds(), "kills/s")
	b.ReportMetric(float64(counter.requests.Load()-requestsBefore)/n, "rest-req/kill")
	b.ReportMetric(float64(w.Status().Syncs-syncsBefore)/n, "snapshots/kill")
}

// BenchmarkResyncDelay measures what a full resync of 10,000 apps does to
// other goroutines on a single-core server (GOMAXPROCS=1, as bench-dns
// runs CoreDNS): a child process writes its clock into a pipe every 200 µs,
// and a goroutine here, woken by the network poller as a DNS query
// goroutine is by its packet, records how late each stamp is read while
// resyncs run back to back. The list comes from a static body, so no
// simulator shares the core. "unchanged" lists the same bytes each time;
// "volatile" alternates two lists that differ in a field oak does not read
// in every task (as health check timestamps do in Marathon's); "decode-all"
// forgets the fingerprints, so every app is decoded and compared;
// "changed" alternates two lists that differ in a task's host port of
// every tenth app, so each resync applies 1,000 changed apps, as under
// churn a list differs from the apps that events changed, and
// "changed-one-apply" is the same with the changes in one Apply, as
// before follow applied them in chunks; "idle" sleeps 20 ms instead of
// resyncing: the lateness of the machine itself.
func BenchmarkResyncDelay(b *testing.B) {
	var bodies [3][]byte
	bodies[0] = appsJSON(10000, 3)
	bodies[1] = bytes.ReplaceAll(bodies[0], []byte(`"startedAt":"2017-07-19T17:35:15.654Z"`), []byte(`"startedAt":"2017-07-19T17:35:16.654Z"`))
	tenth := regexp.MustCompile(`("appId":"/app[0-9]*0","slaveId":"s1","host":"127.0.0.1","state":"TASK_RUNNING","startedAt":"[^"]*","version":"[^"]*","ports":\[)31000`)
	bodies[2] = tenth.ReplaceAll(bodies[0], []byte("${1}31999"))
	var lists atomic.Int64
	var alternate atomic.Int64 // the body that alternates with bodies[0], 0 for none
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		body := bodies[0]
		if other := alternate.Load(); other != 0 && lists.Add(1)%2 == 1 {
			body = bodies[other]
		}
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	for _, name := range []string{"idle", "unchanged", "volatile", "decode-all", "changed", "changed-one-apply"} {
		b.Run(name, func(b *testing.B) {
			switch name {
			case "volatile":
				alternate.Store(1)
			case "changed", "changed-one-apply":
				alternate.Store(2)
			default:
				alternate.Store(0)
			}
			w := newWatcher(b, []string{srv.URL}, nil)
			if name == "changed-one-apply" {
				w.known.chunk = math.MaxInt
			}
			s := testSession(b, w)
			if err := w.fullSync(s); err != nil {
				b.Fatal(err)
			}
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			late := clockReader(b)
			for b.Loop() {
				switch name {
				case "idle":
					time.Sleep(20 * time.Millisecond)
					continue
				case "decode-all":
					w.known.prints.clear()
				}
				if err := w.fullSync(s); err != nil {
					b.Fatal(err)
				}
			}
			stamps := late()
			pct := func(p float64) float64 {
				return float64(stamps[int(p*float64(len(stamps)-1))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.5), "p50-late-ms")
			b.ReportMetric(pct(0.99), "p99-late-ms")
			b.ReportMetric(pct(1), "max-late-ms")
		})
	}
}

// clockWriterEnv makes the test binary a clock writer (see TestMain).
const clockWriterEnv = "OAK_WATCHER_CLOCK_WRITER"

// writeClock writes the wall clock (UnixNano, 8 bytes) to stdout every
// 200 µs until stdout is closed.
func writeClock() {
	var stamp [8]byte
	for {
		binary.BigEndian.PutUint64(stamp[:], uint64(time.Now().UnixNano()))
		if _, err := os.Stdout.Write(stamp[:]); err != nil {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// clockReader starts a clock writer and a goroutine that reads its stamps;
// the function it returns stops both and gives how late each stamp was
// read, sorted.
func clockReader(b *testing.B) func() []time.Duration {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), clockWriterEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var late []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		var stamp [8]byte
		for {
			if _, err := io.ReadFull(out, stamp[:]); err != nil {
				return
			}
			late = append(late, time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(stamp[:])))))
		}
	}()
	return func() []time.Duration {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		if len(late) == 0 {
			b.Fatal("no clock stamps read")
		}
		slices.Sort(late)
		return late
	}
}

// cpuTime is the process's user and system CPU time so far (the simulator's
// included, as it runs in the process).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLiveHeap: what the watcher and its snapshot keep for 10,000
// apps of one task each, listed twice (a build, then a resync), measured
// after runtime.GC: the heap the collector marks on the core that serves
// queries. "known" is the watcher's share (its known apps and their
// fingerprints), the rest the snapshot's. Then five times 30 forced
// collections on one P, as the server runs: mark-cpu-ms is the least of
// the five means of the mark phase's CPU per collection (other load on
// the machine only adds to it), gc-min-ms the shortest whole collection,
// scan-MiB the heap scanned (see markCost). "after-kills" measures the
// same after 10,000 task kills and their replacements, applied from events
// as under churn (see killer).
func BenchmarkLiveHeap(b *testing.B) {
	const apps = 10000
	body := appsJSON(apps, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	defer srv.Close()
	for _, kills := range []int{0, apps} {
		name := "fresh"
		if kills > 0 {
			name = "after-kills"
		}
		b.Run(name, func(b *testing.B) { liveHeap(b, srv.URL, apps, kills) })
	}
}

func liveHeap(b *testing.B, url string, apps, kills int) {
	// The timer runs throughout, so that b.Loop stops after a few rounds.
	for b.Loop() {
		base, baseObjects := liveNow()
		w := newWatcher(b, []string{url}, nil)
		s := testSession(b, w)
		for range 2 {
			if err := w.fullSync(s); err != nil {
				b.Fatal(err)
			}
		}
		if kills > 0 {
			k := newKiller(b, w, s, apps)
			k.prepare(kills)
			k.run()
		}
		all, allObjects := liveNow()
		markMs, gcMs, scanMiB := markCost(30)
		for range 4 {
			m, g, _ := markCost(30)
			markMs, gcMs = min(markMs, m), min(gcMs, g)
		}
		b.ReportMetric(markMs, "mark-cpu-ms")
		b.ReportMetric(gcMs, "gc-min-ms")
		b.ReportMetric(scanMiB, "scan-MiB")
		w.known = newKnownApps()
		snap, snapObjects := liveNow()
		b.ReportMetric((all-base)/(1<<20), "live-MiB")
		b.ReportMetric(allObjects-baseObjects, "live-objects")
		b.ReportMetric((all-snap)/(1<<20), "known-MiB")
		b.ReportMetric(allObjects-snapObjects, "known-objects")
		runtime.KeepAlive(w)
	}
}

// markCost runs n collections on one P and returns the mark phase's CPU per
// collection (runtime/metrics' mean), the shortest wall time of a whole
// collection (mark and sweep; the least disturbed by other load), both in
// milliseconds, and the heap the last one scanned, in MiB.
func markCost(n int) (markMs, minMs, scanMiB float64) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	samples := []metrics.Sample{
		{Name: "/cpu/classes/gc/mark/assist:cpu-seconds"},
		{Name: "/cpu/classes/gc/mark/dedicated:cpu-seconds"},
		{Name: "/cpu/classes/gc/mark/idle:cpu-seconds"},
		{Name: "/gc/scan/heap:bytes"},
	}
	mark := func() float64 {
		metrics.Read(samples)
		return samples[0].Value.Float64() + samples[1].Value.Float64() + samples[2].Value.Float64()
	}
	before := mark()
	shortest := time.Duration(1 << 62)
	for range n {
		start := time.Now()
		runtime.GC()
		shortest = min(shortest, time.Since(start))
	}
	markMs = (mark() - before) / float64(n) * 1000
	return markMs, float64(shortest) / float64(time.Millisecond), float64(samples[3].Value.Uint64()) / (1 << 20)
}

// BenchmarkTaskBatch measures the watcher's own work for one task kill,
// the sync loop's share of BenchmarkTaskChurn without the simulator and the
// driver that share that benchmark's process: of 10,000 known apps of one
// task, batches of 16 apps lose their task (TASK_KILLED) and then run a
// replacement on a new address (TASK_RUNNING), as Marathon replaces a
// killed task. Each status event is decoded from its bytes as the stream
// does, queued, planned, applied to the snapshot and published. An op is
// one kill: two events and two batches' share.
func BenchmarkTaskBatch(b *testing.B) {
	const apps = 10000
	body := appsJSON(apps, 1)
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	w := newWatcher(b, []string{srv.URL}, nil)
	s := testSession(b, w)
	if err := w.fullSync(s); err != nil {
		b.Fatal(err)
	}
	k := newKiller(b, w, s, apps)
	k.prepare(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	k.run()
	b.StopTimer()
	snap := w.Snapshot()
	if st := snap.Stats(); st.Apps != apps || st.Tasks != apps {
		b.Fatalf("after the kills: %+v, want %d apps each running one task", st, apps)
	}
	if n := requests.Load(); n != 1 {
		b.Fatalf("%d REST requests; the list, and none for task updates of known apps", n)
	}
}

// killer kills tasks of appsJSON(apps, 1)'s apps through the watcher as
// BenchmarkTaskBatch describes: status events decoded from their bytes,
// queued, and synced in batches of 16 kills and then 16 replacements.
type killer struct {
	b       testing.TB
	w       *Watcher
	s       *session
	apps    int
	current []string // app i's running task
	done    int      // kills prepared so far
	kills   [][]byte
	runs    [][]byte
}

func newKiller(b testing.TB, w *Watcher, s *session, apps int) *killer {
	k := &killer{b: b, w: w, s: s, apps: apps, current: make([]string, apps)}
	for i := range k.current {
		k.current[i] = fmt.Sprintf("app%d.t0", i)
	}
	return k
}

// prepare makes the events of the next n kills beforehand: the
// simulator's bytes are not the watcher's work.
func (k *killer) prepare(n int) {
	const version = "2017-07-19T17:34:41.967Z" // appsJSON's
	event := func(app int, task, state string, ip int) []byte {
		return []byte(statusEvent(fmt.Sprintf("/app%d", app), task, state, version, fmt.Sprintf("10.200.%d.%d", ip>>8&255, ip&255)))
	}
	k.kills, k.runs = make([][]byte, 0, n), make([][]byte, 0, n)
	for ; n > 0; n-- {
		app := (k.done * 7919) % k.apps // spread over the cluster
		next := fmt.Sprintf("app%d.r%d", app, k.done)
		k.kills = append(k.kills, event(app, k.current[app], "TASK_KILLED", 0))
		k.runs = append(k.runs, event(app, next, "TASK_RUNNING", k.done))
		k.current[app] = next
		k.done++
	}
}

// run applies the prepared kills, then lets their events go.
func (k *killer) run() {
	defer func() { k.kills, k.runs = nil, nil }()
	const batch = 16
	queue := func(data []byte) {
		e, err := decodeStatusUpdate(data)
		if err != nil {
			k.b.Fatal(err)
		}
		u, ok := e.taskUpdate()
		if !ok {
			k.b.Fatalf("update does not parse: %s", data)
		}
		k.w.pending.update(u)
	}
	step := func() {
		if err := k.w.step(k.s); err != nil {
			k.b.Fatal(err)
		}
	}
	for start := 0; start < len(k.kills); start += batch {
		end := min(start+batch, len(k.kills))
		for _, data := range k.kills[start:end] {
			queue(data)
		}
		step()
		for _, data := range k.runs[start:end] {
			queue(data)
		}
		step()
	}
}

// BenchmarkResyncAfterKills measures a full resync of 10,000 apps (three
// tasks each) after events have killed one task of 4,000 of them and run
// its replacement, as ~1,000 kills per second do between two resyncs 5 s
// apart; the list then shows what the events did, with other fields
// changed too (a new startedAt). "retask" is the watcher as it is: the
// events' apps keep a fingerprint made from their new tasks. "forget" is
// the same run with those fingerprints dropped, as the watcher did before:
// each of the 4,000 elements is decoded. Reported per resync: the CPU of
// the resync (decode, comparison and apply; the events are not timed) and
// the elements decoded.
func BenchmarkResyncAfterKills(b *testing.B) {
	const apps, tasks, killed = 10000, 3, 4000
	// Task k of app i: in round r, the apps i < killed run tasks r to r+2
	// (each round kills the first and runs the next), the others 0 to 2.
	task := func(i, k int) (id, ip string) {
		return fmt.Sprintf("app%d.t%d", i, k), fmt.Sprintf("10.%d.%d.%d", 64+i/256, i%256, k%250+1)
	}
	list := func(round int) []byte {
		var buf bytes.Buffer
		buf.WriteString(`{"apps":[`)
		for i := range apps {
			if i > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, `{"id":"/app%d","instances":%d,"version":"%s","labels":{"OAK_NAMES":"app%d.example.com"},`+
				`"portDefinitions":[{"port":%d,"protocol":"tcp","name":"http"}],"tasks":[`, i, tasks, v1, i, 10000+i)
			first := 0
			if i < killed {
				first = round
			}
			for k := first; k < first+tasks; k++ {
				if k > first {
					buf.WriteByte(',')
				}
				id, ip := task(i, k)
				fmt.Fprintf(&buf, `{"id":"%s","host":"agent1","state":"TASK_RUNNING","startedAt":"%d","ports":[31000],`+
					`"ipAddresses":[{"ipAddress":"%s","protocol":"IPv4"}]}`, id, round, ip)
			}
			buf.WriteString(`]}`)
		}
		buf.WriteString(`]}`)
		return buf.Bytes()
	}
	// kills are the events that take round-1's list to round's.
	kills := func(round int) []taskUpdate {
		var out []taskUpdate
		for i := range killed {
			oldID, oldIP := task(i, round-1)
			nextID, nextIP := task(i, round+tasks-1)
			for _, body := range []string{
				statusEvent(fmt.Sprintf("/app%d", i), oldID, "TASK_KILLED", v1, oldIP),
				statusEvent(fmt.Sprintf("/app%d", i), nextID, "TASK_RUNNING", v1, nextIP),
			} {
				e, err := decodeStatusUpdate([]byte(body))
				if err != nil {
					b.Fatal(err)
				}
				u, ok := e.taskUpdate()
				if !ok {
					b.Fatalf("event does not parse: %s", body)
				}
				out = append(out, u)
			}
		}
		return out
	}
	for _, mode := range []string{"retask", "forget"} {
		b.Run(mode, func(b *testing.B) {
			policy := testPolicy(b)
			k := newKnownApps()
			first, err := decodeApps(bytes.NewReader(list(0)), k.prints)
			if err != nil {
				b.Fatal(err)
			}
			snap := k.follow(nil, policy, first)
			var cpu time.Duration
			decoded, round := 0, 0
			for b.Loop() {
				b.StopTimer()
				round++
				body := list(round)
				refetch, changed := k.plan(nil, kills(round))
				if len(refetch) != 0 || len(changed) != killed {
					b.Fatalf("refetch %d, changed %d", len(refetch), len(changed))
				}
				snap = snap.Apply(changed, nil)
				k.commit(nil, changed, nil, nil)
				if mode == "forget" {
					for i := range changed {
						k.prints.forget(changed[i].ID)
					}
				}
				runtime.GC()
				b.StartTimer()

				cpu0 := cpuTime(b)
				next, err := decodeApps(bytes.NewReader(body), k.prints)
				if err != nil {
					b.Fatal(err)
				}
				if after := k.follow(snap, policy, next); after != nil {
					b.Fatal("the list differs from the events")
				}
				cpu += cpuTime(b) - cpu0
				for i := range next {
					if next[i].app != nil {
						decoded++
					}
				}
			}
			b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(decoded)/float64(b.N), "decoded/op")
		})
	}
}
