package marathonsim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stormApps is a GET /v2/apps?embed=apps.tasks body of n apps with one
// running task each, as the watcher and DNS benchmarks load.
func stormApps(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"apps":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"/app%d","instances":1,"cpus":0.1,"mem":32,"version":"2017-07-19T17:34:41.967Z",`+
			`"labels":{"OAK_NAMES":"app%d.example.com"},"portDefinitions":[{"port":%d,"protocol":"tcp","name":"http"}],"tasks":[`+
			`{"id":"app%d.t0","appId":"/app%d","slaveId":"s1","host":"127.0.0.1","state":"TASK_RUNNING",`+
			`"startedAt":"2017-07-19T17:35:15.654Z","version":"2017-07-19T17:34:41.967Z","ports":[31000],`+
			`"ipAddresses":[{"ipAddress":"10.%d.%d.%d","protocol":"IPv4"}]}]}`,
			i, i, 10000+i%50000, i, i, 100+i>>16, i>>8&255, i&255)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// discardWriter is an http.ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// BenchmarkStorm measures how many app changes per second the simulator
// sustains: concurrent PUT /v2/apps/{id}?force=true label changes (each a
// config change, so a RestartApplication deployment with its events and a
// task replacement) straight into the handler, while one event stream
// client reads every event over HTTP. The time includes settling every
// deployment and the reader getting its last event. "stream-B/change" is
// the event stream volume per change.
func BenchmarkStorm(b *testing.B) {
	cases := []struct {
		apps int
		plan string
	}{
		{20, PlanGroupsFull},
		{10000, PlanGroupsFull},
		{10000, PlanGroupsAffected},
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("apps=%d/plan=%s", c.apps, c.plan), func(b *testing.B) {
			benchStorm(b, c.apps, c.plan)
		})
	}
}

func benchStorm(b *testing.B, apps int, plan string) {
	const workers = 16
	opts := Options{
		StagingDelay: -1, HealthDelay: -1, RestartBackoff: time.Hour,
		TaskCIDR:   netip.MustParsePrefix("10.200.0.0/16"),
		PlanGroups: plan,
		Apps:       stormApps(apps),
		// The reader shares the CPUs with the workers; a deep buffer keeps
		// it connected through bursts. It must still catch up: every
		// deployment's last event is waited for.
		EventBuffer: 1 << 16,
	}
	sim := New(opts)
	srv := httptest.NewServer(sim)
	defer func() {
		sim.Close()
		srv.CloseClientConnections()
		srv.Close()
	}()

	// One stream reader, as a watcher: it must keep up or be dropped.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := srv.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	// Every PUT starts one deployment, which ends with deployment_success
	// or, forced over by the next change of its app, deployment_failed.
	var streamed, ended atomic.Int64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer resp.Body.Close()
		lines := bufio.NewScanner(resp.Body)
		lines.Buffer(nil, 256<<20)
		for lines.Scan() {
			line := lines.Bytes()
			streamed.Add(int64(len(line)) + 1)
			if bytes.Equal(line, []byte("event: deployment_success")) || bytes.Equal(line, []byte("event: deployment_failed")) {
				ended.Add(1)
			}
		}
	}()
	for sim.Streams() == 0 {
		time.Sleep(time.Millisecond)
	}

	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			w := &discardWriter{header: http.Header{}}
			for {
				k := next.Add(1) - 1
				if k >= int64(b.N) {
					return
				}
				app := k % int64(apps)
				body := fmt.Sprintf(`{"labels":{"OAK_NAMES":"c%d.app%d.example.com"}}`, k, app)
				r := httptest.NewRequest(http.MethodPut, fmt.Sprintf("/v2/apps/app%d?force=true", app), strings.NewReader(body))
				w.status = 0
				clear(w.header)
				sim.ServeHTTP(w, r)
				if w.status != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sim.Settle(ctx); err != nil {
		b.Fatalf("settle: %v", err)
	}
	for ended.Load() < int64(b.N) && sim.Streams() == 1 && ctx.Err() == nil {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d PUTs failed", n)
	}
	if sim.Streams() != 1 {
		b.Fatal("the event stream reader fell behind and was dropped")
	}
	sim.Close()
	<-readerDone
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "changes/s")
	b.ReportMetric(float64(streamed.Load())/float64(b.N), "stream-B/change")
}

// BenchmarkLoadApps measures LoadApps of 10,000 apps with a task each, as
// marathon-sim -apps does at start.
func BenchmarkLoadApps(b *testing.B) {
	body := stormApps(10000)
	sim := New(Options{})
	defer sim.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := sim.LoadApps(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListApps measures GET /v2/apps?embed=apps.tasks of 10,000 apps
// with a task each (a watcher's full resync), through the handler.
func BenchmarkListApps(b *testing.B) {
	sim := New(Options{Apps: stormApps(10000)})
	defer sim.Close()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		sim.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v2/apps?embed=apps.tasks", nil))
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
		b.SetBytes(int64(w.Body.Len()))
	}
}
