package watcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
	"go.uber.org/goleak"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/marathonsim"
)

const defaultEnv = "integration"

// fastSim returns simulator options with no artificial delays and a quick
// SSE reconnect, so that tests wait on behaviour rather than on sleeps.
func fastSim() marathonsim.Options {
	return marathonsim.Options{
		StagingDelay:   -1,
		HealthDelay:    -1,
		RestartBackoff: time.Hour, // a killed task stays gone during a test
		SSERetry:       50 * time.Millisecond,
	}
}

// simServer is a simulator behind a real listener that can go away and
// come back on the same address.
type simServer struct {
	t   testing.TB
	sim *marathonsim.Server
	srv *httptest.Server
	url string
}

func startSim(t testing.TB, opts marathonsim.Options) *simServer {
	t.Helper()
	s := &simServer{t: t, sim: marathonsim.New(opts)}
	s.srv = httptest.NewServer(s.sim)
	s.url = s.srv.URL
	t.Cleanup(s.close)
	return s
}

// down closes the listener and every connection, like a master that died.
func (s *simServer) down() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// up serves the same simulator on the same address again.
func (s *simServer) up() {
	s.t.Helper()
	addr := strings.TrimPrefix(s.url, "http://")
	var ln net.Listener
	var err error
	for range 100 { // the port may linger for a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("relisten on %s: %v", addr, err)
	}
	s.srv = httptest.NewUnstartedServer(s.sim)
	s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
}

func (s *simServer) close() {
	s.sim.Close()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// driver plays the operator: plain HTTP calls to the simulator's API.
type driver struct {
	t      testing.TB
	url    string
	client *http.Client
}

func newDriver(t testing.TB, url string) *driver {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &driver{t: t, url: url, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (d *driver) call(method, path string, body any) []byte {
	d.t.Helper()
	status, out := d.try(method, path, body)
	if status/100 != 2 {
		d.t.Fatalf("%s %s: %d %s", method, path, status, out)
	}
	return out
}

// try is call that returns the answer's status instead of failing on it.
func (d *driver) try(method, path string, body any) (int, []byte) {
	d.t.Helper()
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			d.t.Fatal(err)
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.url+path, reader)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Oak-Driver", "1") // not counted as the watcher's
	resp, err := d.client.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (d *driver) apps() []catalog.App {
	d.t.Helper()
	var list marathon.Applications
	if err := json.Unmarshal(d.call(http.MethodGet, "/v2/apps?embed=apps.tasks", nil), &list); err != nil {
		d.t.Fatal(err)
	}
	return appsOf(list.Apps)
}

func (d *driver) app(id string) marathon.Application {
	d.t.Helper()
	var wrapper struct {
		App marathon.Application `json:"app"`
	}
	if err := json.Unmarshal(d.call(http.MethodGet, "/v2/apps"+id, nil), &wrapper); err != nil {
		d.t.Fatal(err)
	}
	return wrapper.App
}

func appDef(id string, instances int, names string, health bool) map[string]any {
	def := map[string]any{
		"id": id, "instances": instances, "cpus": 0.1, "mem": 32, "cmd": "sleep 1000",
		"labels": map[string]string{"OAK_NAMES": names},
	}
	if health {
		def["healthChecks"] = []map[string]any{{"protocol": "HTTP", "path": "/", "portIndex": 0}}
	}
	return def
}

// appsJSON is a /v2/apps?embed=apps.tasks body of n apps with tasks tasks
// each, for Options.Apps.
func appsJSON(n, tasks int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"apps":[`)
	ip := 0
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"/app%d","instances":%d,"cpus":0.1,"mem":32,"version":"2017-07-19T17:34:41.967Z",`+
			`"labels":{"OAK_NAMES":"app%d.example.com"},"portDefinitions":[{"port":%d,"protocol":"tcp","name":"http"}],"tasks":[`,
			i, tasks, i, 10000+i%50000)
		for j := range tasks {
			if j > 0 {
				b.WriteByte(',')
			}
			ip++
			fmt.Fprintf(&b, `{"id":"app%d.t%d","appId":"/app%d","slaveId":"s1","host":"127.0.0.1","state":"TASK_RUNNING",`+
				`"startedAt":"2017-07-19T17:35:15.654Z","version":"2017-07-19T17:34:41.967Z","ports":[%d],`+
				`"ipAddresses":[{"ipAddress":"10.%d.%d.%d","protocol":"IPv4"}]}`,
				i, j, i, 31000+j, 100+ip>>16, ip>>8&255, ip&255)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// syncedWatcher starts a simulator with opts, a driver for it, and a
// watcher of it (tweaked) that has made its first sync.
func syncedWatcher(t testing.TB, opts marathonsim.Options, tweak func(*Config)) (*simServer, *driver, *Watcher) {
	t.Helper()
	s := startSim(t, opts)
	d := newDriver(t, s.url)
	w := newWatcher(t, []string{s.url}, tweak)
	runWatcher(t, w)
	waitFor(t, "initial sync", w.Ready)
	return s, d, w
}

// runWatcher starts w.Run and returns a function that stops it and waits.
func runWatcher(t testing.TB, w *Watcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newWatcher(t testing.TB, urls []string, tweak func(*Config)) *Watcher {
	t.Helper()
	cfg := Config{Endpoints: urls, Policy: testPolicy(t), Resync: time.Hour, RetryMin: 20 * time.Millisecond, RetryMax: 500 * time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func served(s *catalog.Snapshot, name string) []string {
	if s == nil {
		return nil
	}
	a := s.Resolve(defaultEnv, name)
	if a.Service == nil {
		return nil
	}
	var out []string
	for _, addr := range a.Service.Addrs {
		out = append(out, addr.String())
	}
	return out
}

// diffSnapshots compares two snapshots through their public API: stats,
// envs, rejections, and every name the apps claim, in every env.
func diffSnapshots(got, want *catalog.Snapshot, apps []catalog.App) string {
	if got == nil || want == nil {
		return fmt.Sprintf("nil snapshot: got %v want %v", got != nil, want != nil)
	}
	var diffs []string
	if g, w := got.Stats(), want.Stats(); g != w {
		diffs = append(diffs, fmt.Sprintf("stats %+v, want %+v", g, w))
	}
	if g, w := got.Envs(), want.Envs(); !slices.Equal(g, w) {
		diffs = append(diffs, fmt.Sprintf("envs %v, want %v", g, w))
	}
	if g, w := got.Rejected(), want.Rejected(); !reflect.DeepEqual(g, w) {
		diffs = append(diffs, fmt.Sprintf("rejected %v, want %v", g, w))
	}
	envs := append(want.Envs(), defaultEnv)
	for _, a := range apps {
		for name := range strings.SplitSeq(a.Labels["OAK_NAMES"], ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			for _, env := range envs {
				g, w := got.Resolve(env, name), want.Resolve(env, name)
				if !reflect.DeepEqual(g, w) {
					diffs = append(diffs, fmt.Sprintf("%s in %s: %+v, want %+v", name, env, g.Service, w.Service))
				}
			}
		}
	}
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("... %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}

// waitConverged waits until the watcher's snapshot equals a snapshot built
// from the simulator's full app list.
func waitConverged(t testing.TB, w *Watcher, d *driver, policy *catalog.Policy) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		apps := d.apps()
		diff := diffSnapshots(w.Snapshot(), catalog.Build(policy, apps), apps)
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watcher never converged on the simulator's state: %s", diff)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNewValidates(t *testing.T) {
	p := testPolicy(t)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no policy", Config{Endpoints: []string{"http://m:8080"}}},
		{"no endpoint", Config{Policy: p}},
		{"no scheme", Config{Policy: p, Endpoints: []string{"m:8080"}}},
		{"bad scheme", Config{Policy: p, Endpoints: []string{"ftp://m"}}},
		{"comma in one entry", Config{Policy: p, Endpoints: []string{"http://a:1,http://b:2"}}},
		{"user without password", Config{Policy: p, Endpoints: []string{"http://m"}, User: "u"}},
		{"negative resync", Config{Policy: p, Endpoints: []string{"http://m"}, Resync: -time.Second}},
		{"negative stream idle", Config{Policy: p, Endpoints: []string{"http://m"}, StreamIdle: -time.Second}},
		{"negative batch size", Config{Policy: p, Endpoints: []string{"http://m"}, MaxPartial: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
	if _, err := New(Config{Policy: p, Endpoints: []string{"http://a:1/", "https://b:2"}}); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherFollowsChanges(t *testing.T) {
	opts := fastSim()
	opts.Apps = appsJSON(3, 2)
	s := startSim(t, opts)
	d := newDriver(t, s.url)
	w := newWatcher(t, []string{s.url}, nil)
	if w.Snapshot() != nil || w.Ready() {
		t.Fatal("snapshot before Run")
	}
	runWatcher(t, w)

	// Initial sync.
	waitFor(t, "initial sync", w.Ready)
	if st := w.Snapshot().Stats(); st.Apps != 3 || st.Tasks != 6 {
		t.Fatalf("initial stats %+v, want 3 apps 6 tasks", st)
	}
	waitFor(t, "stream connected", func() bool { return w.Status().Connected })

	// Create.
	d.call(http.MethodPost, "/v2/apps", appDef("/shop/web", 2, "web.example.com", true))
	waitFor(t, "create", func() bool { return len(served(w.Snapshot(), "web.example.com")) == 2 })

	// Scale.
	d.call(http.MethodPut, "/v2/apps/shop/web?force=true", map[string]any{"instances": 3})
	waitFor(t, "scale up", func() bool { return len(served(w.Snapshot(), "web.example.com")) == 3 })

	// Health flip.
	app := d.app("/shop/web")
	sick := app.Tasks[0]
	sickIP := sick.IPAddresses[0].IPAddress
	if err := s.sim.SetTaskHealth(sick.ID, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "unhealthy task dropped", func() bool {
		addrs := served(w.Snapshot(), "web.example.com")
		return len(addrs) == 2 && !slices.Contains(addrs, sickIP)
	})
	if err := s.sim.SetTaskHealth(sick.ID, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "healthy again", func() bool { return slices.Contains(served(w.Snapshot(), "web.example.com"), sickIP) })

	// Task kill (the replacement waits for RestartBackoff, an hour).
	victim := d.app("/shop/web").Tasks[1]
	if err := s.sim.KillTask(victim.ID, ""); err != nil {
		t.Fatal(err)
	}
	victimIP := victim.IPAddresses[0].IPAddress
	waitFor(t, "killed task dropped", func() bool {
		addrs := served(w.Snapshot(), "web.example.com")
		return len(addrs) == 2 && !slices.Contains(addrs, victimIP)
	})

	// Update labels.
	d.call(http.MethodPut, "/v2/apps/app0?force=true", map[string]any{"labels": map[string]string{"OAK_NAMES": "renamed.example.com"}})
	waitFor(t, "label update", func() bool {
		s := w.Snapshot()
		return len(served(s, "renamed.example.com")) > 0 && s.Resolve(defaultEnv, "app0.example.com").Kind == catalog.Unknown
	})

	// Delete.
	d.call(http.MethodDelete, "/v2/apps/shop/web?force=true", nil)
	waitFor(t, "delete", func() bool { return w.Snapshot().Resolve(defaultEnv, "web.example.com").Kind == catalog.Unknown })

	waitConverged(t, w, d, testPolicy(t))
	st := w.Status()
	if st.LastError != nil || st.Syncs < 2 || st.Apps != 3 {
		t.Fatalf("status %+v", st)
	}
}

func TestWatcherResyncOnDemandAndPeriodic(t *testing.T) {
	opts := fastSim()
	opts.Apps = appsJSON(2, 1)
	s, d, w := syncedWatcher(t, opts, func(c *Config) { c.Resync = 50 * time.Millisecond })

	// Changes whose events are lost are found by the periodic resync.
	s.sim.DropEvents(1 << 30)
	d.call(http.MethodPost, "/v2/apps", appDef("/quiet", 1, "quiet.example.com", false))
	waitFor(t, "periodic resync", func() bool { return len(served(w.Snapshot(), "quiet.example.com")) == 1 })

	syncs := w.Status().Syncs
	w.Resync()
	waitFor(t, "resync on demand", func() bool { return w.Status().Syncs > syncs })
	s.sim.DropEvents(0)
}

// TestWatcherStreamDropMidBurst drops the event stream in the middle of
// 1,000 changes, and loses events besides; the reconnect's full resync must
// leave the watcher equal to the simulator. The periodic resync is off
// (an hour), so nothing else can repair the view.
func TestWatcherStreamDropMidBurst(t *testing.T) {
	const apps, changes = 20, 1000
	opts := fastSim()
	opts.Apps = appsJSON(apps, 1)
	s, d, w := syncedWatcher(t, opts, nil)
	waitFor(t, "stream connected", func() bool { return w.Status().Connected })

	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				id := fmt.Sprintf("/app%d", i%apps)
				switch i % 4 {
				case 0, 1:
					d.call(http.MethodPut, "/v2/apps"+id+"?force=true", map[string]any{
						"labels": map[string]string{"OAK_NAMES": fmt.Sprintf("v%d.app%d.example.com", i, i%apps)},
					})
				case 2:
					d.call(http.MethodPut, "/v2/apps"+id+"?force=true", map[string]any{"instances": 1 + i%3})
				case 3: // create or delete one of ten extra apps
					extra := fmt.Sprintf("/burst/b%d", i/4%10)
					if i/40%2 == 0 {
						d.call(http.MethodPut, "/v2/apps"+extra+"?force=true", appDef(extra, 1, fmt.Sprintf("b%d.example.com", i/4%10), false))
					} else if status, out := d.try(http.MethodDelete, "/v2/apps"+extra+"?force=true", nil); status/100 != 2 && status != http.StatusNotFound {
						// 404: a slower worker has not created it yet (the
						// workers race), which the convergence check covers.
						t.Errorf("DELETE %s: %d %s", extra, status, out)
					}
				}
			}
		})
	}
	for i := range changes {
		if i == changes/2 {
			s.sim.DropStreams()
			s.sim.DropEvents(50) // and lose some events outright
		}
		work <- i
	}
	close(work)
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.sim.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, w, d, testPolicy(t))
	if st := w.Status(); st.Reconnects == 0 {
		t.Errorf("no reconnect seen: %+v", st)
	}
}

// TestWatcherKeepsViewOn5xx: while every REST call (and /ping) answers 503,
// the last view stays published unchanged, the failure is reported, and the
// watcher recovers once Marathon answers again, change included.
func TestWatcherKeepsViewOn5xx(t *testing.T) {
	opts := fastSim()
	opts.Apps = appsJSON(5, 2)
	s, d, w := syncedWatcher(t, opts, nil)

	d.call(http.MethodPost, "/v2/apps", appDef("/during", 1, "during.example.com", false))
	waitFor(t, "create seen", func() bool { return len(served(w.Snapshot(), "during.example.com")) == 1 })
	stats := w.Snapshot().Stats()

	s.sim.FailREST(marathonsim.RESTFault{Count: 1 << 30, Status: http.StatusServiceUnavailable, IncludePing: true})
	w.Resync()
	waitFor(t, "failures reported", func() bool { st := w.Status(); return st.Failures >= 1 && st.LastError != nil })
	// A sync that began before the fault may still have published an equal
	// view; from the first failure on, nothing may be published.
	during := w.Snapshot()
	failures := w.Status().Failures
	waitFor(t, "more failures", func() bool { return w.Status().Failures >= failures+2 })
	st := w.Status()
	if st.Connected {
		t.Error("Connected while REST fails")
	}
	if got := w.Snapshot(); got != during || got.Stats() != stats || got.Stats().Apps == 0 {
		t.Fatalf("view changed during 5xx: %+v, want %+v (published anew: %v)", got.Stats(), stats, got != during)
	}

	s.sim.FailREST(marathonsim.RESTFault{}) // Marathon is back
	d.call(http.MethodDelete, "/v2/apps/during?force=true", nil)
	waitFor(t, "recovery", func() bool { st := w.Status(); return st.LastError == nil && st.Connected })
	waitConverged(t, w, d, testPolicy(t))
}

// TestWatcherKeepsViewOnOutage: the master goes away (connections cut,
// port refusing) and comes back on the same address.
func TestWatcherKeepsViewOnOutage(t *testing.T) {
	opts := fastSim()
	opts.Apps = appsJSON(5, 2)
	s, d, w := syncedWatcher(t, opts, nil)
	waitFor(t, "stream connected", func() bool { return w.Status().Connected })
	// The resync that the stream's attach event asks for may still publish
	// an equal snapshot, so compare contents, not pointers.
	stats := w.Snapshot().Stats()

	s.down()
	w.Resync()
	waitFor(t, "outage reported", func() bool { st := w.Status(); return st.LastError != nil && !st.Connected })
	during := w.Snapshot()
	failures := w.Status().Failures
	waitFor(t, "more failures", func() bool { return w.Status().Failures >= failures+2 })
	if got := w.Snapshot(); got != during || got.Stats() != stats || got.Stats().Apps != 5 {
		t.Fatalf("view changed during the outage: %+v, want %+v (published anew: %v)", got.Stats(), stats, got != during)
	}

	s.up()
	d.call(http.MethodPost, "/v2/apps", appDef("/after", 1, "after.example.com", false))
	waitFor(t, "recovery", func() bool {
		st := w.Status()
		return st.LastError == nil && st.Connected && len(served(w.Snapshot(), "after.example.com")) == 1
	})
	if st := w.Status(); st.Reconnects == 0 {
		t.Errorf("no reconnect counted: %+v", st)
	}
	waitConverged(t, w, d, testPolicy(t))
}

// TestWatcherHAAndAuth: two masters, the first answering 503 to REST,
// with basic auth; go-marathon fails over and the watcher syncs.
func TestWatcherHAAndAuth(t *testing.T) {
	opts := fastSim()
	opts.Apps = appsJSON(2, 1)
	opts.User, opts.Password = "oak", "secret"
	first := startSim(t, opts)
	second := startSim(t, opts)
	first.sim.FailREST(marathonsim.RESTFault{Count: 1})
	w := newWatcher(t, []string{first.url, second.url}, func(c *Config) { c.User, c.Password = "oak", "secret" })
	runWatcher(t, w)
	waitFor(t, "initial sync", w.Ready)
	if got := w.Snapshot().Stats().Apps; got != 2 {
		t.Fatalf("apps = %d", got)
	}
}

// TestWatcherStreamFailover: the master whose event stream the watcher
// follows dies for good. go-marathon v0.7.1 would keep reconnecting the
// stream to it; after StreamFailover the watcher streams from the other
// master, so a change there arrives as an event (the periodic resync is an
// hour away). With failover off the same change would never be seen.
func TestWatcherStreamFailover(t *testing.T) {
	opts := fastSim()
	opts.Apps = appsJSON(2, 1)
	first := startSim(t, opts)
	second := startSim(t, opts)
	w := newWatcher(t, []string{first.url, second.url}, func(c *Config) { c.StreamFailover = 300 * time.Millisecond })
	runWatcher(t, w)
	waitFor(t, "initial sync", w.Ready)
	waitFor(t, "stream connected", func() bool { return w.Status().Connected })

	first.down()
	waitFor(t, "stream down", func() bool { return !w.Status().Connected })
	waitFor(t, "stream connected to the other master", func() bool { return w.Status().Connected })

	d := newDriver(t, second.url)
	d.call(http.MethodPost, "/v2/apps", appDef("/after-failover", 1, "failover.example.com", false))
	waitFor(t, "the change, from the event stream", func() bool {
		return len(served(w.Snapshot(), "failover.example.com")) == 1
	})
}

// TestWatcherDCOSToken: REST and the event stream both go under /marathon
// with the token (go-marathon forgets the prefix on the stream).
func TestWatcherDCOSToken(t *testing.T) {
	opts := fastSim()
	opts.Apps = appsJSON(2, 1)
	opts.Token = "tok"
	sim := marathonsim.New(opts)
	var prefixedStream atomic.Bool
	var streamTypes atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/marathon/v2/events" {
			prefixedStream.Store(true)
			streamTypes.Store(r.URL.Query()["event_type"])
		}
		sim.ServeHTTP(rw, r)
	}))
	t.Cleanup(func() {
		sim.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	w := newWatcher(t, []string{srv.URL}, func(c *Config) { c.Token = "tok" })
	runWatcher(t, w)
	waitFor(t, "initial sync", w.Ready)
	waitFor(t, "stream connected", func() bool { return w.Status().Connected })
	if !prefixedStream.Load() {
		t.Error("event stream not requested under /marathon")
	}
	// Marathon filters the stream on the server side.
	if got, _ := streamTypes.Load().([]string); !slices.Equal(got, streamEventTypes) {
		t.Errorf("event stream asked for event_type=%q, want %q", got, streamEventTypes)
	}
}

func TestWatcherUnreachableAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // refusing
	w := newWatcher(t, []string{url}, nil)
	stop := runWatcher(t, w)
	waitFor(t, "failure reported", func() bool { return w.Status().Failures >= 2 })
	if w.Ready() || w.Snapshot() != nil {
		t.Fatal("ready without Marathon")
	}
	stop()
	if err := w.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
	// go-marathon's /ping loop for the member it marked down has no exit
	// but a 200; the stopped transport gives it one, so it ends too.
	if err := findLeaks(); err != nil {
		t.Fatal(err)
	}
}

// TestWatcherStopsCleanly checks, for one watcher, that stopping it leaves
// no goroutine behind.
func TestWatcherStopsCleanly(t *testing.T) {
	opts := fastSim()
	opts.Apps = appsJSON(5, 2)
	s := startSim(t, opts)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	w := newWatcher(t, []string{s.url}, nil)
	stop := runWatcher(t, w)
	waitFor(t, "initial sync", w.Ready)
	waitFor(t, "stream connected", func() bool { return w.Status().Connected })
	s.sim.DropStreams()
	waitFor(t, "reconnected", func() bool { return w.Status().Reconnects > 0 })
	d := newDriver(t, s.url)
	d.call(http.MethodPost, "/v2/apps", appDef("/x", 1, "x.example.com", false))
	waitFor(t, "event applied", func() bool { return len(served(w.Snapshot(), "x.example.com")) == 1 })
	stop()
	s.close()
	d.client.CloseIdleConnections()
}

// mutedStreams puts the simulator behind a handler whose event streams
// can be silenced without being closed: the connection of a master whose
// host died, or that a partition cut, which TCP keeps open for minutes.
type mutedStreams struct {
	sim *marathonsim.Server
	mu  sync.Mutex
	on  []*atomic.Bool // one per event stream served so far
}

func (m *mutedStreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v2/events" {
		m.sim.ServeHTTP(w, r)
		return
	}
	muted := new(atomic.Bool)
	m.mu.Lock()
	m.on = append(m.on, muted)
	m.mu.Unlock()
	m.sim.ServeHTTP(&mutedWriter{ResponseWriter: w, muted: muted}, r)
}

// silence mutes every stream served so far; later ones are not.
func (m *mutedStreams) silence() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, muted := range m.on {
		muted.Store(true)
	}
}

type mutedWriter struct {
	http.ResponseWriter
	muted *atomic.Bool
}

func (w *mutedWriter) Write(p []byte) (int, error) {
	if w.muted.Load() {
		return len(p), nil // lost on the way
	}
	return w.ResponseWriter.Write(p)
}

func (w *mutedWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

func (w *mutedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestWatcherDropsSilentStream: while Marathon's heartbeats arrive the
// stream is kept, however long no event comes; once nothing arrives for
// StreamIdle the watcher takes the connection for dead, reconnects, and
// its full resync recovers a change whose event was lost meanwhile.
func TestWatcherDropsSilentStream(t *testing.T) {
	opts := fastSim()
	opts.Apps = appsJSON(3, 1)
	opts.Heartbeat = 20 * time.Millisecond
	front := &mutedStreams{sim: marathonsim.New(opts)}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	d := newDriver(t, srv.URL)
	w := newWatcher(t, []string{srv.URL}, func(c *Config) { c.StreamIdle = time.Second })
	runWatcher(t, w)
	waitFor(t, "stream connected", func() bool { return w.Ready() && w.Status().Connected })

	time.Sleep(3 * time.Second) // three idle periods without an event, 150 heartbeats
	if st := w.Status(); st.Reconnects != 0 || !st.Connected {
		t.Fatalf("a stream with heartbeats was dropped: %+v", st)
	}

	front.silence()
	d.call(http.MethodPut, "/v2/apps/app1?force=true", map[string]any{
		"labels": map[string]string{"OAK_NAMES": "moved.app1.example.com"},
	})
	waitFor(t, "reconnect after the silence", func() bool { return w.Status().Reconnects > 0 })
	waitConverged(t, w, d, testPolicy(t))
	if got := served(w.Snapshot(), "moved.app1.example.com"); len(got) == 0 {
		t.Errorf("the change made while the stream was silent is not served")
	}
}
