package nginxctl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeSource gives the models a test sets.
type fakeSource struct {
	mu     sync.Mutex
	model  *Model // nil: no view yet
	synced time.Time
	notify func()
}

func (f *fakeSource) View() (View, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.model == nil {
		return View{}, false
	}
	return View{Model: *f.model, Rejected: []Rejection{{Source: "app", App: "/bad", Reason: "test"}}}, true
}

func (f *fakeSource) Synced() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced
}

func (f *fakeSource) Watch(ctx context.Context, changed func()) {
	f.mu.Lock()
	f.notify = changed
	f.mu.Unlock()
	<-ctx.Done()
}

// touch says the view is still current.
func (f *fakeSource) touch() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.synced = time.Now()
}

// set publishes m as a fresh view.
func (f *fakeSource) set(m Model) {
	f.mu.Lock()
	f.model = &m
	f.synced = time.Now()
	notify := f.notify
	f.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// fakeApplier records what it applies; fail makes the next applies fail.
type fakeApplier struct {
	mu      sync.Mutex
	live    []byte
	applied []time.Time
	fail    error
	calls   int
}

func (f *fakeApplier) Apply(_ context.Context, cfg Config) (bool, Timing, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return false, Timing{}, &ApplyError{StageCheck, f.fail}
	}
	if string(f.live) == string(cfg.Text) {
		return false, Timing{}, nil
	}
	f.live = cfg.Text
	f.applied = append(f.applied, time.Now())
	return true, Timing{}, nil
}

func (f *fakeApplier) Live() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live
}

func (f *fakeApplier) appliedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applied)
}

func (f *fakeApplier) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeApplier) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// modelN is a model whose one route's backend port is n: n distinct
// values render n distinct configs.
func modelN(n int) Model {
	return Model{DefaultEnv: "integration", Default: []Route{route("app1.example.com", "integration", fmt.Sprintf("127.0.1.10:%d", 1000+n))}}
}

// controllerTest runs a controller on fakes inside a synctest bubble.
func controllerTest(t *testing.T, f func(t *testing.T, ctl *Controller, src *fakeSource, ap *fakeApplier)) {
	synctest.Test(t, func(t *testing.T) {
		opts := RenderOptions{Listen: ":8080", Control: netip.MustParseAddrPort("127.0.0.1:8081")}
		waiting, err := renderWaiting(opts)
		if err != nil {
			t.Fatal(err)
		}
		src, ap := &fakeSource{}, &fakeApplier{live: waiting.Text}
		ctl, err := New(Options{Source: src, Applier: ap, Render: opts, StaleAfter: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = ctl.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		synctest.Wait()
		f(t, ctl, src, ap)
	})
}

func TestControllerWaitsForAView(t *testing.T) {
	controllerTest(t, func(t *testing.T, ctl *Controller, src *fakeSource, ap *fakeApplier) {
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := ap.callCount(); n != 0 {
			t.Fatalf("%d applies before the source had a view", n)
		}
		if v := ctl.View(""); v.Generation != waitingGeneration || v.Note == "" {
			t.Errorf("view before the first sync: %+v", v)
		}
		src.set(modelN(1))
		synctest.Wait()
		if ap.appliedCount() != 1 {
			t.Fatalf("%d applies after the first view, want 1 at once", ap.appliedCount())
		}
		if got := ctl.Rejections(); len(got) != 1 || got[0].App != "/bad" {
			t.Errorf("rejections %+v, want the source's", got)
		}
	})
}

func TestControllerBurst(t *testing.T) {
	controllerTest(t, func(t *testing.T, ctl *Controller, src *fakeSource, ap *fakeApplier) {
		start := time.Now()
		for i := range 1000 {
			src.set(modelN(i))
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := ap.appliedCount(); n < 2 || n > 3 {
			t.Fatalf("%d applies for a burst of 1,000 changes in 2 s, want 2 or 3", n)
		}
		if first := ap.applied[0].Sub(start); first != 0 {
			t.Errorf("the first change applied after %v, want at once", first)
		}
		if last := ap.applied[len(ap.applied)-1].Sub(start); last != 2998*time.Millisecond {
			t.Errorf("the last change applied at %v, want one wait-min after it (2.998s)", last)
		}
		if !strings.Contains(string(ap.Live()), "127.0.1.10:1999") {
			t.Error("the live config is not the last model")
		}
	})
}

func TestControllerRetriesAndReportsFailure(t *testing.T) {
	controllerTest(t, func(t *testing.T, ctl *Controller, src *fakeSource, ap *fakeApplier) {
		src.set(modelN(1))
		synctest.Wait()
		good := string(ap.Live())
		ap.setFail(errors.New("nginx -t says no"))
		time.Sleep(2 * time.Second)
		src.set(modelN(2))
		synctest.Wait()
		if err := ctl.Health(); err == nil || !strings.Contains(err.Error(), "nginx -t says no") {
			t.Errorf("Health = %v while applies fail", err)
		}
		if string(ap.Live()) != good {
			t.Error("the live config changed on a failed apply")
		}
		calls := ap.callCount()
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := ap.callCount() - calls; n < 3 {
			t.Errorf("%d retries in a minute, want several", n)
		}
		ap.setFail(nil)
		time.Sleep(DefaultRetryMax)
		synctest.Wait()
		src.touch()
		if err := ctl.Health(); err != nil {
			t.Errorf("Health = %v after a retry succeeded", err)
		}
		if !strings.Contains(string(ap.Live()), "127.0.1.10:1002") {
			t.Error("the retry did not apply the latest model")
		}
	})
}

func TestControllerKeepsLiveConfigOverEmptyView(t *testing.T) {
	controllerTest(t, func(t *testing.T, ctl *Controller, src *fakeSource, ap *fakeApplier) {
		src.set(modelN(1))
		synctest.Wait()
		good := string(ap.Live())
		time.Sleep(2 * time.Second)
		src.set(Model{DefaultEnv: "integration"})
		synctest.Wait()
		if string(ap.Live()) != good {
			t.Error("an empty view replaced the live config")
		}
		if v := ctl.View(""); len(v.VHosts) != 1 || !strings.Contains(v.Note, "routes nothing") {
			t.Errorf("view %+v: want the live routes and a note", v)
		}
	})
}

func TestControllerStaleView(t *testing.T) {
	controllerTest(t, func(t *testing.T, ctl *Controller, src *fakeSource, ap *fakeApplier) {
		src.set(modelN(1))
		synctest.Wait()
		if err := ctl.Health(); err != nil {
			t.Fatalf("Health = %v on a fresh view", err)
		}
		// Marathon is gone: the source keeps its last view, which ages.
		time.Sleep(61 * time.Second)
		if err := ctl.Health(); err == nil || !strings.Contains(err.Error(), "stale") {
			t.Errorf("Health = %v on a view older than the bound", err)
		}
		if ap.appliedCount() != 1 {
			t.Errorf("%d applies, want the one config kept", ap.appliedCount())
		}
	})
}
