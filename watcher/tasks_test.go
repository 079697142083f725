package watcher

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oakdns/oak/catalog"
)

const (
	v1 = "2024-01-01T00:00:00.000Z"
	v2 = "2024-02-01T00:00:00.000Z"
)

// statusEvent is a status_update_event body for task of app.
func statusEvent(app, task, state, version, ip string) string {
	return fmt.Sprintf(`{"eventType":"status_update_event","appId":%q,"taskId":%q,"taskStatus":%q,"version":%q,`+
		`"host":"agent1","ports":[31000],"ipAddresses":[{"ipAddress":%q,"protocol":"IPv4"}]}`, app, task, state, version, ip)
}

// knownApp is an app at version v1 with one running task web.1 (10.0.0.1).
func knownApp(id string, health bool) catalog.App {
	a := catalog.App{ID: id, Version: v1, Tasks: []catalog.Task{{
		ID: strings.TrimPrefix(id, "/") + ".1", Host: "agent1", State: "TASK_RUNNING", IPs: []string{"10.0.0.1"},
	}}}
	if health {
		a.HealthChecks = 1
	}
	return a
}

// taskIPs lists "task=ip" for every task of an app, sorted.
func taskIPs(a catalog.App) []string {
	var out []string
	for _, t := range a.Tasks {
		ip := ""
		if len(t.IPs) > 0 {
			ip = t.IPs[0]
		}
		out = append(out, t.ID+"="+ip+"/"+t.State)
	}
	slices.Sort(out)
	return out
}

func TestParseTaskUpdate(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		ok     bool
		change taskChange
	}{
		{name: "running", body: statusEvent("/web", "web.2", "TASK_RUNNING", v1, "10.0.0.2"), ok: true, change: taskUp},
		{name: "relative app id", body: statusEvent("web", "web.2", "TASK_RUNNING", v1, "10.0.0.2"), ok: true, change: taskUp},
		{name: "killed", body: statusEvent("/web", "web.1", "TASK_KILLED", v1, "10.0.0.1"), ok: true, change: taskDown},
		{name: "killing", body: statusEvent("/web", "web.1", "TASK_KILLING", v1, "10.0.0.1"), ok: true, change: taskDown},
		{name: "unreachable", body: statusEvent("/web", "web.1", "TASK_UNREACHABLE", v1, "10.0.0.1"), ok: true, change: taskDown},
		{name: "gone by operator", body: statusEvent("/web", "web.1", "TASK_GONE_BY_OPERATOR", v1, "10.0.0.1"), ok: true, change: taskDown},
		{name: "staging", body: statusEvent("/web", "web.2", "TASK_STAGING", v1, ""), ok: true, change: taskInactive},
		{name: "unknown state", body: statusEvent("/web", "web.2", "TASK_UNKNOWN", v1, "10.0.0.2")},
		{name: "bad ip", body: statusEvent("/web", "web.2", "TASK_RUNNING", v1, "10.0.0")},
		{name: "no task id", body: statusEvent("/web", "", "TASK_RUNNING", v1, "10.0.0.2")},
		{name: "no version", body: statusEvent("/web", "web.2", "TASK_RUNNING", "", "10.0.0.2")},
		{name: "bad app id", body: statusEvent("/web?x", "web.2", "TASK_RUNNING", v1, "10.0.0.2")},
		{name: "running without host", body: `{"eventType":"status_update_event","appId":"/web","taskId":"web.2","taskStatus":"TASK_RUNNING","version":"` + v1 + `"}`},
		{name: "bad port", body: `{"eventType":"status_update_event","appId":"/web","taskId":"web.2","taskStatus":"TASK_RUNNING","version":"` + v1 + `","host":"h","ports":[70000]}`},
		{name: "not a status update", body: `{"eventType":"app_terminated_event","appId":"/web"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ok := leanUpdate(t, tt.body)
			if ok != tt.ok || ok && u.change != tt.change {
				t.Fatalf("parse = %+v, %v; want ok=%v change=%v", u, ok, tt.ok, tt.change)
			}
			if ok && u.app != "/web" {
				t.Errorf("app %q, want /web", u.app)
			}
		})
	}
}

func TestKnownAppsPlan(t *testing.T) {
	configChanged := knownApp("/web", false)
	configChanged.Version = v2 // a scale: new version, same configuration
	configChanged.ConfigChange = v1
	tests := []struct {
		name        string
		known       []catalog.App
		dirty       []string
		batches     [][]string // event bodies, one batch each, committed in turn
		wantRefetch []string   // of the last batch
		wantTasks   []string   // tasks of /web after every batch; nil = /web not changed by the last batch
	}{
		{
			name:      "running task is added",
			known:     []catalog.App{knownApp("/web", false)},
			batches:   [][]string{{statusEvent("/web", "web.2", "TASK_RUNNING", v1, "10.0.0.2")}},
			wantTasks: []string{"web.1=10.0.0.1/TASK_RUNNING", "web.2=10.0.0.2/TASK_RUNNING"},
		},
		{
			name:      "running task is updated in place",
			known:     []catalog.App{knownApp("/web", false)},
			batches:   [][]string{{statusEvent("/web", "web.1", "TASK_RUNNING", v1, "10.0.0.9")}},
			wantTasks: []string{"web.1=10.0.0.9/TASK_RUNNING"},
		},
		{
			name:      "killed task is removed",
			known:     []catalog.App{knownApp("/web", false)},
			batches:   [][]string{{statusEvent("/web", "web.1", "TASK_KILLED", v1, "10.0.0.1")}},
			wantTasks: []string{},
		},
		{
			name:  "tombstone beats a late running",
			known: []catalog.App{knownApp("/web", false)},
			batches: [][]string{
				{statusEvent("/web", "web.1", "TASK_KILLED", v1, "10.0.0.1")},
				{statusEvent("/web", "web.1", "TASK_RUNNING", v1, "10.0.0.1")},
			},
		},
		{
			name:  "tombstone kept while the app is refetched",
			known: []catalog.App{knownApp("/web", false)},
			batches: [][]string{
				{statusEvent("/web", "web.2", "TASK_KILLED", v2, "10.0.0.2")}, // refetched: another version
				{statusEvent("/web", "web.2", "TASK_RUNNING", v1, "10.0.0.2")},
			},
		},
		{
			name:      "task of the last configuration change",
			known:     []catalog.App{configChanged},
			batches:   [][]string{{statusEvent("/web", "web.2", "TASK_RUNNING", v1, "10.0.0.2")}},
			wantTasks: []string{"web.1=10.0.0.1/TASK_RUNNING", "web.2=10.0.0.2/TASK_RUNNING"},
		},
		{
			name:        "staging does nothing",
			known:       []catalog.App{knownApp("/web", false)},
			batches:     [][]string{{statusEvent("/web", "web.2", "TASK_STAGING", v1, "")}},
			wantRefetch: nil,
		},
		{
			name:        "version mismatch refetches",
			known:       []catalog.App{knownApp("/web", false)},
			batches:     [][]string{{statusEvent("/web", "web.2", "TASK_RUNNING", v2, "10.0.0.2")}},
			wantRefetch: []string{"/web"},
		},
		{
			name:        "unknown app refetches",
			known:       []catalog.App{knownApp("/other", false)},
			batches:     [][]string{{statusEvent("/web", "web.2", "TASK_RUNNING", v1, "10.0.0.2")}},
			wantRefetch: []string{"/web"},
		},
		{
			name:        "running task of an app with health checks refetches",
			known:       []catalog.App{knownApp("/web", true)},
			batches:     [][]string{{statusEvent("/web", "web.2", "TASK_RUNNING", v1, "10.0.0.2")}},
			wantRefetch: []string{"/web"},
		},
		{
			name:      "dead task of an app with health checks is removed",
			known:     []catalog.App{knownApp("/web", true)},
			batches:   [][]string{{statusEvent("/web", "web.1", "TASK_FAILED", v1, "10.0.0.1")}},
			wantTasks: []string{},
		},
		{
			name:  "one refetch of a dirty app covers its updates",
			known: []catalog.App{knownApp("/web", false)},
			dirty: []string{"/web"},
			batches: [][]string{{
				statusEvent("/web", "web.2", "TASK_RUNNING", v1, "10.0.0.2"),
				statusEvent("/web", "web.3", "TASK_RUNNING", v2, "10.0.0.3"),
			}},
			wantRefetch: []string{"/web"},
		},
		{
			name:  "one refetch when any update needs it",
			known: []catalog.App{knownApp("/web", false)},
			batches: [][]string{{
				statusEvent("/web", "web.2", "TASK_RUNNING", v1, "10.0.0.2"),
				statusEvent("/web", "web.3", "TASK_RUNNING", v2, "10.0.0.3"),
			}},
			wantRefetch: []string{"/web"},
		},
		{
			name:  "apps of one batch are planned apart",
			known: []catalog.App{knownApp("/web", false), knownApp("/api", false), knownApp("/db", false)},
			batches: [][]string{{
				statusEvent("/web", "web.2", "TASK_RUNNING", v1, "10.0.0.2"),
				statusEvent("/api", "api.2", "TASK_RUNNING", v2, "10.0.0.5"), // refetched: another version
				statusEvent("/db", "db.2", "TASK_STAGING", v1, ""),           // nothing to do
				statusEvent("/web", "web.1", "TASK_KILLED", v1, "10.0.0.1"),
				statusEvent("/web", "web.3", "TASK_RUNNING", v1, "10.0.0.3"),
			}},
			wantRefetch: []string{"/api"},
			wantTasks:   []string{"web.2=10.0.0.2/TASK_RUNNING", "web.3=10.0.0.3/TASK_RUNNING"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newKnownApps()
			k.commit(tt.known, nil, nil, nil)
			original := taskIPs(tt.known[0])
			var refetch []string
			var changed []catalog.App
			for i, batch := range tt.batches {
				var updates []taskUpdate
				for _, body := range batch {
					u, ok := leanUpdate(t, body)
					if !ok {
						t.Fatalf("event does not parse: %s", body)
					}
					updates = append(updates, u)
				}
				var dirty []string
				if i == len(tt.batches)-1 {
					dirty = tt.dirty
				}
				refetch, changed = k.plan(dirty, updates)
				k.commit(nil, changed, nil, nil)
			}
			slices.Sort(refetch)
			if !slices.Equal(refetch, tt.wantRefetch) {
				t.Errorf("refetch %q, want %q", refetch, tt.wantRefetch)
			}
			if tt.wantTasks == nil {
				if len(changed) != 0 {
					t.Errorf("changed %d apps, want none", len(changed))
				}
			} else if len(changed) != 1 || changed[0].ID != "/web" {
				t.Errorf("changed %d apps, want /web", len(changed))
			} else if got := taskIPs(knownOf(t, k, "/web")); !slices.Equal(got, tt.wantTasks) && !(len(got) == 0 && len(tt.wantTasks) == 0) {
				t.Errorf("tasks %q, want %q", got, tt.wantTasks)
			}
			if got := taskIPs(tt.known[0]); !slices.Equal(got, original) {
				t.Errorf("the original app changed: %q, was %q", got, original)
			}
		})
	}
}

// TestTombstonesHeap: a full set of tombstones, as sustained churn leaves
// it, adds little for the collector to scan (strings: 4.5 MiB of 7.5).
func TestTombstonesHeap(t *testing.T) {
	measure := func() (heap, scanned uint64) {
		runtime.GC()
		runtime.GC()
		sample := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
		metrics.Read(sample)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc, sample[0].Value.Uint64()
	}
	heap0, scanned0 := measure()
	d := newTombstones(maxTombstones)
	for i := range maxTombstones {
		// Built bytes, as an event's decoded task id is its own string.
		d.add(string(fmt.Appendf(nil, "app%d.%08x-6c49-11e7-9bd8-0242ac110003", i%10000, i)))
	}
	heap1, scanned1 := measure()
	t.Logf("%d tombstones: heap +%.2f MiB, scanned +%.2f MiB", maxTombstones,
		float64(heap1-heap0)/(1<<20), float64(scanned1-scanned0)/(1<<20))
	if scanned1 > scanned0+1<<20 {
		t.Errorf("the collector scans %.2f MiB more for the tombstones", float64(scanned1-scanned0)/(1<<20))
	}
	if !d.has("app1.00000001-6c49-11e7-9bd8-0242ac110003") || d.has("app1.00000001-6c49-11e7-9bd8-0242ac110004") {
		t.Error("membership is wrong")
	}
	runtime.KeepAlive(d)
}

func TestTombstonesAreBounded(t *testing.T) {
	d := newTombstones(4)
	for i := range 10 {
		d.add(itoa(i))
		d.add(itoa(i)) // twice: no second slot
		if len(d.ids) > 4 || len(d.order) > 4 {
			t.Fatalf("%d ids, %d slots", len(d.ids), len(d.order))
		}
	}
	for i := range 10 {
		if d.has(itoa(i)) != (i >= 6) {
			t.Errorf("has(%d) = %v", i, d.has(itoa(i)))
		}
	}
}

func TestDirtySetTaskUpdates(t *testing.T) {
	running := taskUpdate{app: "/web", task: "web.1", change: taskUp}
	killed := taskUpdate{app: "/web", task: "web.1", change: taskDown}
	staging := taskUpdate{app: "/web", task: "web.1", change: taskInactive}
	tests := []struct {
		name      string
		updates   []taskUpdate
		full      bool // a full resync is pending first
		wantTasks []taskChange
	}{
		{name: "latest wins", updates: []taskUpdate{running, running}, wantTasks: []taskChange{taskUp}},
		{name: "end wins over a late running", updates: []taskUpdate{killed, running}, wantTasks: []taskChange{taskDown}},
		{name: "end replaces running", updates: []taskUpdate{running, killed}, wantTasks: []taskChange{taskDown}},
		{name: "running wins over a late staging", updates: []taskUpdate{running, staging}, wantTasks: []taskChange{taskUp}},
		{name: "running replaces staging", updates: []taskUpdate{staging, running}, wantTasks: []taskChange{taskUp}},
		{name: "full resync keeps only ends", full: true, updates: []taskUpdate{running, {app: "/web", task: "web.2", change: taskDown}}, wantTasks: []taskChange{taskDown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDirtySet(16)
			if tt.full {
				d.mark(nil, true)
			}
			for _, u := range tt.updates {
				d.update(u)
			}
			var got []taskChange
			for _, u := range d.takeTasks() {
				got = append(got, u.change)
			}
			if !slices.Equal(got, tt.wantTasks) {
				t.Errorf("tasks %v, want %v", got, tt.wantTasks)
			}
			d.take(16)
			if !d.since.IsZero() {
				t.Error("empty set keeps a batch start time")
			}
		})
	}

	t.Run("past the cap the app is marked dirty", func(t *testing.T) {
		d := newDirtySet(16)
		for i := range maxTaskUpdates + 1 {
			d.update(taskUpdate{app: "/web", task: "web." + itoa(i), change: taskUp})
		}
		if n := len(d.takeTasks()); n != maxTaskUpdates {
			t.Errorf("%d task updates, want %d", n, maxTaskUpdates)
		}
		if apps, full := d.take(16); !slices.Equal(apps, []string{"/web"}) || full {
			t.Errorf("take = %q, %v; want /web", apps, full)
		}
	})
}

// appGets counts the watcher's GET /v2/apps/{id}.
type appGets struct {
	next http.Handler
	n    atomic.Int64
}

func (h *appGets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v2/apps/") && r.Header.Get("X-Oak-Driver") == "" {
		h.n.Add(1)
	}
	h.next.ServeHTTP(w, r)
}

// TestWatcherAppliesTaskKillWithoutRefetch: a killed task of a known app
// without health checks leaves the snapshot through its status update
// alone, with no GET of the app.
func TestWatcherAppliesTaskKillWithoutRefetch(t *testing.T) {
	opts := fastSim()
	opts.Apps = appsJSON(3, 2)
	s := startSim(t, opts)
	gets := &appGets{next: s.sim}
	srv := httptest.NewServer(gets)
	t.Cleanup(srv.Close)
	d := newDriver(t, srv.URL)
	w := newWatcher(t, []string{srv.URL}, nil)
	runWatcher(t, w)
	waitFor(t, "initial sync", w.Ready)
	waitFor(t, "stream connected", func() bool { return w.Status().Connected })

	victim := d.app("/app1").Tasks[0]
	before := gets.n.Load()
	if err := s.sim.KillTask(victim.ID, ""); err != nil {
		t.Fatal(err)
	}
	victimIP := victim.IPAddresses[0].IPAddress
	waitFor(t, "killed task dropped", func() bool {
		addrs := served(w.Snapshot(), "app1.example.com")
		return len(addrs) == 1 && !slices.Contains(addrs, victimIP)
	})
	if n := gets.n.Load() - before; n != 0 {
		t.Errorf("%d GETs of an app for a task kill, want 0", n)
	}
	waitConverged(t, w, d, testPolicy(t))
}

// knownOf is the known app of id, or the zero App.
func knownOf(t *testing.T, k *knownApps, id string) catalog.App {
	t.Helper()
	app, _ := k.get(id)
	return app
}

// leanUpdate is the task update the stream takes from an event body.
func leanUpdate(t *testing.T, body string) (taskUpdate, bool) {
	t.Helper()
	e, err := decodeStatusUpdate([]byte(body))
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return e.taskUpdate()
}

// TestRetaskedAppNeedsNoDecode: once events have killed an app's task and
// run its replacement, the next list that shows the same tasks (with other
// unread fields changed) matches the app's recomputed fingerprint, so the
// element is not decoded and nothing is applied; a list that disagrees
// with the events is decoded and applied.
func TestRetaskedAppNeedsNoDecode(t *testing.T) {
	task := func(id, ip, started string) string {
		return `{"id":"` + id + `","host":"agent1","state":"TASK_RUNNING","ports":[31000],"startedAt":"` + started +
			`","ipAddresses":[{"ipAddress":"` + ip + `","protocol":"IPv4"}]}`
	}
	list := func(webTasks string) []byte {
		return []byte(`{"apps":[{"id":"/web","version":"` + v1 + `","labels":{"OAK_NAMES":"web.example.com"},` +
			`"tasksRunning":1,"tasks":[` + webTasks + `]},{"id":"/db","version":"` + v1 + `","tasks":[` + task("db.1", "10.0.1.1", "t0") + `]}]}`)
	}
	tests := []struct {
		name    string
		next    string // /web's tasks in the next list
		decoded bool
		want    string // /web's address after the next list
	}{
		{name: "agrees with the events", next: task("web.2", "10.0.0.2", "t9"), want: "10.0.0.2"},
		{name: "another address", next: task("web.2", "10.0.0.3", "t9"), decoded: true, want: "10.0.0.3"},
		{name: "the old task back", next: task("web.1", "10.0.0.1", "t0"), decoded: true, want: "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newKnownApps()
			policy := testPolicy(t)
			first, err := decodeApps(bytes.NewReader(list(task("web.1", "10.0.0.1", "t0"))), k.prints)
			if err != nil {
				t.Fatal(err)
			}
			snap := k.follow(nil, policy, first)
			var updates []taskUpdate
			for _, body := range []string{
				statusEvent("/web", "web.1", "TASK_KILLED", v1, "10.0.0.1"),
				statusEvent("/web", "web.2", "TASK_RUNNING", v1, "10.0.0.2"),
			} {
				u, ok := leanUpdate(t, body)
				if !ok {
					t.Fatalf("event does not parse: %s", body)
				}
				updates = append(updates, u)
			}
			refetch, changed := k.plan(nil, updates)
			if len(refetch) != 0 || len(changed) != 1 {
				t.Fatalf("refetch %q, %d changed", refetch, len(changed))
			}
			snap = snap.Apply(changed, nil)
			k.commit(nil, changed, nil, nil)

			next, err := decodeApps(bytes.NewReader(list(tt.next)), k.prints)
			if err != nil {
				t.Fatal(err)
			}
			for _, item := range next {
				if decoded := item.app != nil; decoded != (tt.decoded && item.id == "/web") {
					t.Errorf("%s decoded %v", item.id, decoded)
				}
			}
			if after := k.follow(snap, policy, next); (after != nil) != tt.decoded {
				t.Errorf("a snapshot applied: %v, want %v", after != nil, tt.decoded)
			}
			if got := taskIPs(knownOf(t, k, "/web")); len(got) != 1 || !strings.Contains(got[0], "="+tt.want+"/") {
				t.Errorf("/web's tasks %q, want one at %s", got, tt.want)
			}
		})
	}
}

// TestApplyInChunks: a resync's changes applied in chunks, as follow does
// so that queries are not kept waiting, give the snapshot one Apply of
// them all gives: the same names, answers, virtual hosts, clients,
// conflicts and rejections, whatever the chunk size.
func TestApplyInChunks(t *testing.T) {
	policy := testPolicy(t)
	app := func(env string, i, ip int, names string) catalog.App {
		a := catalog.App{ID: fmt.Sprintf("/%s/app%d", env, i), Version: v1, Labels: map[string]string{
			"OAK_ENV": env, "OAK_NAMES": names, "OAK_HTTP": fmt.Sprintf("web%d.example.com", i%7),
		}}
		a.Tasks = []catalog.Task{{ID: fmt.Sprintf("%s.app%d.1", env, i), Host: "agent1", State: "TASK_RUNNING",
			IPs: []string{fmt.Sprintf("10.0.%d.%d", ip/200, ip%200)}}}
		return a
	}
	envs := []string{"integration", "feature-a", "feature-b"}
	var base []catalog.App
	for i := range 60 {
		base = append(base, app(envs[i%3], i, i, fmt.Sprintf("svc%d.example.com", i%20)))
	}
	var upserts []catalog.App
	for i := 0; i < 60; i += 3 {
		upserts = append(upserts, app(envs[i%3], i, 500+i, fmt.Sprintf("svc%d.example.com,new%d.example.com", i%20, i%5)))
	}
	for i := 60; i < 75; i++ {
		upserts = append(upserts, app(envs[i%3], i, i%4, fmt.Sprintf("svc%d.example.com", i%25))) // addresses of other envs' apps: conflicts
	}
	bad := app("feature-a", 99, 999, "not a name!")
	upserts = append(upserts, bad)
	var removes []string
	for i := 1; i < 60; i += 4 {
		removes = append(removes, base[i].ID)
	}
	current := catalog.Build(policy, base)
	want := describe(current.Apply(upserts, removes), envs)
	for _, chunk := range []int{1, 3, 16, 1000} {
		k := newKnownApps()
		k.chunk = chunk
		if got := describe(k.apply(current, upserts, removes, nil), envs); got != want {
			t.Errorf("chunks of %d apps: the snapshot differs from one Apply's\n got: %s\nwant: %s", chunk, got, want)
		}
	}
	if !strings.Contains(want, "conflict") || !strings.Contains(want, bad.ID) {
		t.Fatalf("the changes make no conflict or no rejection, so the test shows little:\n%s", want)
	}
}

// describe renders what a snapshot serves to clients of envs, through its
// exported methods.
func describe(s *catalog.Snapshot, envs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%+v envs=%v\n", s.Stats(), s.Envs())
	answer := func(a catalog.Answer) string {
		out := fmt.Sprintf("%v env=%s base=%s children=%v", a.Kind, a.Env, a.Base, a.Children)
		if a.Service != nil {
			out += fmt.Sprintf(" %+v", *a.Service)
		}
		return out
	}
	for _, name := range s.Names() {
		for _, env := range envs {
			fmt.Fprintf(&b, "%s@%s: %s\n", name, env, answer(s.Resolve(env, name)))
		}
	}
	for _, host := range s.VHosts() {
		for _, env := range envs {
			fmt.Fprintf(&b, "vhost %s@%s: %s\n", host, env, answer(s.ResolveVHost(env, host)))
		}
	}
	for _, c := range s.Conflicts() {
		fmt.Fprintf(&b, "conflict %+v\n", c)
	}
	fmt.Fprintf(&b, "clients %+v\nrejected %+v\nfixed %+v\n", s.Clients(), s.Rejected(), s.FixedAddrs())
	return b.String()
}

// TestKillsKeepObjects: after every app's task is killed and replaced
// through events, the watcher and its snapshot hold as many objects as
// after the first list. Each kill unpacks the known app and applies a new
// version of it; were the strings of those versions kept (by the
// snapshot's tables, the watcher's keys, a scratch map), each would be an
// object more for the collector to mark on the core that serves queries,
// for as long as the app runs (BenchmarkLiveHeap/after-kills measures the
// mark).
func TestKillsKeepObjects(t *testing.T) {
	const apps = 2000
	body := appsJSON(apps, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	defer srv.Close()
	w := newWatcher(t, []string{srv.URL}, nil)
	s := testSession(t, w)
	for range 2 { // the first sync, then a resync that finds nothing changed
		if err := w.fullSync(s); err != nil {
			t.Fatal(err)
		}
	}
	_, listed := liveNow()
	func() { // the killer's own strings are not the watcher's
		k := newKiller(t, w, s, apps)
		k.prepare(apps)
		k.run()
	}()
	_, killed := liveNow()
	if st := w.Snapshot().Stats(); st.Apps != apps || st.Tasks != apps {
		t.Fatalf("after the kills: %+v, want %d apps each running one task", st, apps)
	}
	if more := (killed - listed) / apps; more > 0.25 {
		t.Errorf("after a kill and a replacement of every app's task, %.2f more objects per app than after the list, want none", more)
	}
}
