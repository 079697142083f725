package nginxctl

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/internal/poll"
	"github.com/oakdns/oak/internal/ports"
	"github.com/oakdns/oak/internal/testutil"
	"github.com/oakdns/oak/watcher"
)

// testNginx is a real Nginx started by a test in a private prefix under
// t.TempDir(), on free loopback ports.
type testNginx struct {
	nginx   *Nginx
	applier *Applier
	opts    RenderOptions
}

// startNginx starts Nginx under supervision until the test ends and waits
// until it serves the "waiting" config.
func startNginx(t testing.TB) *testNginx {
	t.Helper()
	bin := testutil.RequireTool(t, "nginx")
	n, err := NewNginx(bin, t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	opts := RenderOptions{
		Listen:  fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Control: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(freePort(t))),
	}
	if err := n.Prepare(opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = n.Supervise(ctx, slog.New(slog.DiscardHandler), 10*time.Second, nil)
	}()
	t.Cleanup(func() { cancel(); <-done })
	tn := &testNginx{nginx: n, applier: NewApplier(n, SignalReloader{n}, opts.Control, 10*time.Second), opts: opts}
	waitFor(t, "nginx to serve the waiting config", func() error {
		gen, err := tn.applier.Served(context.Background())
		if err == nil && gen != waitingGeneration {
			err = fmt.Errorf("generation %q", gen)
		}
		return err
	})
	return tn
}

// apply renders m with the nginx's options and applies it, failing the test
// on an error.
func (tn *testNginx) apply(t testing.TB, m Model) Config {
	t.Helper()
	m, rejected, err := m.Sanitize(nil)
	if err != nil || len(rejected) > 0 {
		t.Fatalf("Sanitize: %v %v", rejected, err)
	}
	cfg, err := Render(&m, tn.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tn.applier.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func freePort(t testing.TB) int {
	t.Helper()
	port, err := ports.Free()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// startBackend serves HTTP on addr (a 127.0.0.N address) and answers every
// request with name and the env Nginx passed on.
func startBackend(t testing.TB, addr, name string) Backend {
	t.Helper()
	l, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s env=%s host=%s", name, r.Header.Get("X-Oak-Env"), r.Host)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	ap := netip.MustParseAddrPort(l.Addr().String())
	return Backend{Addr: ap.Addr(), Port: ap.Port()}
}

// client returns an HTTP client whose connections come from from.
func client(from string) *http.Client { return testutil.ClientFrom(from) }

// get asks Nginx at listen for host from the source address from and
// returns the status and body.
func get(c *http.Client, listen, host string, header ...string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+listen+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

func waitFor(t testing.TB, what string, cond func() error) {
	t.Helper()
	if err := poll.Until(context.Background(), what, 30*time.Second, 10*time.Millisecond, cond); err != nil {
		t.Fatal(err)
	}
}

// app is a Marathon app with oak labels and one running task.
func app(id, env, ip, http string) catalog.App {
	labels := map[string]string{"OAK_IP": ip}
	if env != "" {
		labels["OAK_ENV"] = env
	}
	if http != "" {
		labels["OAK_HTTP"] = http
	}
	return catalog.App{ID: id, Labels: labels, Tasks: []catalog.Task{{ID: id + ".1", State: "TASK_RUNNING", Host: "192.0.2.1"}}}
}

// mustPolicy returns the policy of cfg, with loopback fixed IPs allowed:
// the tests play containers by loopback addresses.
func mustPolicy(t testing.TB, cfg catalog.PolicyConfig) *catalog.Policy {
	t.Helper()
	cfg.IPAllow = append(cfg.IPAllow, "loopback")
	p, err := catalog.NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// fakeWatcher is a watcher.Source that publishes what the test gives it.
type fakeWatcher struct {
	policy   *catalog.Policy
	snapshot atomic.Pointer[catalog.Snapshot]
	synced   atomic.Int64 // unix nanos
}

func (f *fakeWatcher) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (f *fakeWatcher) Snapshot() *catalog.Snapshot { return f.snapshot.Load() }

func (f *fakeWatcher) Ready() bool { return f.snapshot.Load() != nil }

func (f *fakeWatcher) Status() watcher.Status {
	if n := f.synced.Load(); n != 0 {
		return watcher.Status{LastSync: time.Unix(0, n)}
	}
	return watcher.Status{}
}

func (f *fakeWatcher) publish(apps ...catalog.App) {
	f.snapshot.Store(catalog.Build(f.policy, apps))
	f.synced.Store(time.Now().UnixNano())
}

// hookedSource lets a test change the model a Source gives, to play a
// catalog that lets something through it should not.
type hookedSource struct {
	Source
	hook func(*Model)
}

func (h hookedSource) View() (View, bool) {
	v, ok := h.Source.View()
	if ok {
		h.hook(&v.Model)
	}
	return v, ok
}
