package nginxctl

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oakdns/oak/internal/poll"
)

// benchModel is 10,000 vhosts in 100 envs: the default env serves every
// host, and each of the 99 other envs owns its own backends for 10 of them
// and has one client address.
func benchModel(variant int) Model {
	m := syntheticModel(10000, 100, 10)
	// A variant moves one backend, so that two variants render two configs.
	m.Default[0].Backends[0].Port += uint16(variant)
	return m
}

// layouts are what the benchmarks compare: ours (geo + map to addr:port)
// and the baseline of one upstream block per route.
var layouts = []struct {
	name string
	opts func(RenderOptions) RenderOptions
}{
	{"maps", func(o RenderOptions) RenderOptions { return o }},
	{"upstream-per-vhost", func(o RenderOptions) RenderOptions { o.upstreamAlways = true; return o }},
}

// BenchmarkRender: render of 10,000 vhosts in 100 envs.
func BenchmarkRender(b *testing.B) {
	m := benchModel(0)
	for _, layout := range layouts {
		b.Run(layout.name, func(b *testing.B) {
			o := layout.opts(testOpts)
			var size int
			for b.Loop() {
				cfg, err := Render(&m, o)
				if err != nil {
					b.Fatal(err)
				}
				size = len(cfg.Text)
			}
			b.ReportMetric(float64(size), "bytes")
		})
	}
}

// BenchmarkSanitize: the validation stage of the same model.
func BenchmarkSanitize(b *testing.B) {
	m := benchModel(0)
	for b.Loop() {
		clean, _, err := m.Sanitize(Domains{"example.com"})
		if err == nil {
			err = clean.Validate()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNginxReload: nginx -t on the 10,000-vhost config, the time from
// the reload signal to the new generation served (new workers), to the
// old workers closed, and the master's RSS after, per layout.
func BenchmarkNginxReload(b *testing.B) {
	for _, layout := range layouts {
		b.Run(layout.name, func(b *testing.B) {
			tn := startNginx(b)
			tn.opts = layout.opts(tn.opts)
			configs := make([]Config, 2)
			for i := range configs {
				m := benchModel(i)
				cfg, err := Render(&m, tn.opts)
				if err != nil {
					b.Fatal(err)
				}
				configs[i] = cfg
			}
			if _, _, err := tn.applier.Apply(context.Background(), configs[1]); err != nil {
				b.Fatal(err)
			}
			var check, served, settled time.Duration
			i := 0
			for b.Loop() {
				i++
				c, s, st := timedReload(b, tn, configs[i%2])
				check, served, settled = check+c, served+s, settled+st
			}
			n := float64(i)
			b.ReportMetric(check.Seconds()*1e3/n, "check-ms")
			b.ReportMetric(served.Seconds()*1e3/n, "reload-to-new-ms")
			b.ReportMetric(settled.Seconds()*1e3/n, "reload-to-old-closed-ms")
			b.ReportMetric(float64(masterRSS(b, tn.nginx))/(1<<20), "master-MiB")
		})
	}
}

// timedReload applies cfg stage by stage, timing nginx -t, the signal to
// the new generation served, and the signal to the old workers closed.
func timedReload(b *testing.B, tn *testNginx, cfg Config) (check, served, settled time.Duration) {
	n := tn.nginx
	if err := os.WriteFile(n.path(candidateFile), cfg.Text, 0o644); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := n.Check(context.Background()); err != nil {
		b.Fatal(err)
	}
	check = time.Since(start)
	if err := os.Rename(n.path(candidateFile), n.path(routesFile)); err != nil {
		b.Fatal(err)
	}
	pid, err := n.Pid()
	if err != nil {
		b.Fatal(err)
	}
	old := accepting(children(pid))
	start = time.Now()
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		b.Fatal(err)
	}
	for {
		if gen, err := tn.applier.Served(context.Background()); err == nil && gen == cfg.Generation {
			break
		}
	}
	served = time.Since(start)
	for len(accepting(old)) > 0 {
		time.Sleep(time.Millisecond)
	}
	return check, served, time.Since(start)
}

func masterRSS(b *testing.B, n *Nginx) int64 {
	pid, err := n.Pid()
	if err != nil {
		b.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// controllerBench runs a Controller with a real Nginx and a fakeSource on
// the wall clock.
func controllerBench(b *testing.B, waitMin, waitMax time.Duration) (*Controller, *fakeSource, *testNginx) {
	tn := startNginx(b)
	src := &fakeSource{}
	log := slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctl, err := New(Options{Source: src, Applier: tn.applier, Render: tn.opts, WaitMin: waitMin, WaitMax: waitMax, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ctl.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return ctl, src, tn
}

// waitServed polls Nginx's control listener until it serves gen.
func waitServed(b *testing.B, tn *testNginx, gen string) {
	err := poll.Until(context.Background(), "generation "+gen, time.Minute, time.Millisecond, func() error {
		served, err := tn.applier.Served(context.Background())
		if err == nil && served != gen {
			err = fmt.Errorf("serves %s", served)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

func generationOf(b *testing.B, tn *testNginx, m Model) string {
	cfg, err := Render(&m, tn.opts)
	if err != nil {
		b.Fatal(err)
	}
	return cfg.Generation
}

// BenchmarkNginxBurst: 1,000 changes in 2 s through the controller with
// the default window (1 s / 5 s); reports the reloads and the time from the
// last change to its config served. Run with -benchtime=1x.
func BenchmarkNginxBurst(b *testing.B) {
	ctl, src, tn := controllerBench(b, DefaultWaitMin, DefaultWaitMax)
	src.set(modelN(0))
	waitSettled(b, ctl, generationOf(b, tn, modelN(0)))
	var reloads, lastToServed float64
	rounds := 0
	for b.Loop() {
		before := reloadCount(ctl)
		time.Sleep(2 * DefaultWaitMin) // a quiet period before the burst
		start := time.Now()
		for i := range 1000 {
			src.set(modelN(1 + rounds*1000 + i))
			time.Sleep(time.Until(start.Add(time.Duration(i+1) * 2 * time.Millisecond)))
		}
		last := time.Now()
		gen := generationOf(b, tn, modelN(rounds*1000+1000))
		waitServed(b, tn, gen)
		lastToServed += time.Since(last).Seconds()
		waitSettled(b, ctl, gen)
		reloads += reloadCount(ctl) - before
		rounds++
	}
	b.ReportMetric(reloads/float64(rounds), "reloads/burst")
	b.ReportMetric(lastToServed*1e3/float64(rounds), "last-change-to-served-ms")
}

func reloadCount(ctl *Controller) float64 {
	families, _ := ctl.metrics.registry.Gather()
	for _, f := range families {
		if f.GetName() == "oak_nginx_reloads_total" {
			for _, m := range f.GetMetric() {
				if m.GetLabel()[0].GetValue() == "ok" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// waitSettled waits until the controller has recorded gen as applied
// (an apply returns once the old workers have closed).
func waitSettled(b *testing.B, ctl *Controller, gen string) {
	err := poll.Until(context.Background(), "the apply to finish", time.Minute, time.Millisecond, func() error {
		if v := ctl.View(""); v.Generation != gen {
			return fmt.Errorf("generation %s", v.Generation)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkNginxIsolatedChange: one change after a quiet period longer
// than wait-min, through the controller, until Nginx serves it; reports
// the p50 and p99 over the iterations (run with e.g. -benchtime=50x).
func BenchmarkNginxIsolatedChange(b *testing.B) {
	const waitMin = 250 * time.Millisecond
	_, src, tn := controllerBench(b, waitMin, 4*waitMin)
	src.set(modelN(0))
	waitServed(b, tn, generationOf(b, tn, modelN(0)))
	var latencies []time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		time.Sleep(waitMin + 50*time.Millisecond)
		i++
		gen := generationOf(b, tn, modelN(i))
		b.StartTimer()
		start := time.Now()
		src.set(modelN(i))
		waitServed(b, tn, gen)
		latencies = append(latencies, time.Since(start))
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Seconds() * 1e3
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(waitMin.Milliseconds()), "wait-min-ms")
}

// BenchmarkNginxReloadsUnderLoad: 20 reloads while 4 clients send
// requests on kept-alive connections; reports failed requests.
func BenchmarkNginxReloadsUnderLoad(b *testing.B) {
	tn := startNginx(b)
	// Two backends, so that every apply changes the config.
	one, other := startBackend(b, "127.0.1.10", "app1"), startBackend(b, "127.0.1.11", "app1")
	models := []Model{
		{DefaultEnv: "integration", Default: []Route{{Host: "app1.example.com", Env: "integration", Backends: []Backend{one}}}},
		{DefaultEnv: "integration", Default: []Route{{Host: "app1.example.com", Env: "integration", Backends: []Backend{other}}}},
	}
	var reloads int
	var requests, failures atomic.Int64
	for b.Loop() {
		tn.apply(b, models[0])
		var stop atomic.Bool
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				c := client("127.0.0.1")
				c.Transport.(*http.Transport).DisableKeepAlives = false
				for !stop.Load() {
					status, _, err := get(c, tn.opts.Listen, "app1.example.com")
					requests.Add(1)
					if err != nil || status != 200 {
						failures.Add(1)
					}
				}
			})
		}
		for i := range 20 {
			before := generationOf(b, tn, models[i%2])
			if tn.apply(b, models[(i+1)%2]).Generation != before {
				reloads++
			}
		}
		stop.Store(true)
		wg.Wait()
	}
	b.ReportMetric(float64(reloads), "reloads")
	b.ReportMetric(float64(requests.Load()), "requests")
	b.ReportMetric(float64(failures.Load()), "failed")
}

// BenchmarkStatusPage: the status page of 10,000 names (each also a
// vhost) in 100 envs, per query, against /v1/views of one env (the
// baseline: the JSON API over the same state). "cold" is the first
// request after a sync, which lists the snapshot's names and clients.
func BenchmarkStatusPage(b *testing.B) {
	ctl := statusController(b, syntheticSnapshot(b, 10000, 100), nil)
	mux := http.NewServeMux()
	ctl.Register(mux)
	for _, c := range []struct {
		name, target string
		cold         bool
	}{
		{"v1-views-baseline", "/v1/views?env=feature-001", false},
		{"first-page-cold", "/", true},
		{"first-page", "/", false},
		{"last-page", "/?page=400&cols=10", false},
		{"filtered", "/?q=app0999&env=feature-0*", false},
		{"detail", "/?name=app05001.example.com", false},
	} {
		b.Run(c.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				if c.cold {
					st := *ctl.state.Load()
					st.index = sync.OnceValue(func() *statusIndex { return newStatusIndex(st.snapshot) })
					ctl.state.Store(&st)
				}
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.target, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d", c.target, rec.Code)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes")
		})
	}
}
