package watcher

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oakdns/oak/catalog"
)

// TestPackedAppFields: a change to any field of catalog.App or
// catalog.Task changes the app's packing, and unpacking gives the app
// back, so a field added to the catalog's input can be neither lost
// between syncs nor skipped as unchanged by a resync.
func TestPackedAppFields(t *testing.T) {
	base := catalog.App{Tasks: []catalog.Task{{}}}
	for _, target := range []struct {
		name string
		v    reflect.Value
	}{{"App", reflect.ValueOf(&base).Elem()}, {"Task", reflect.ValueOf(&base.Tasks[0]).Elem()}} {
		for i := range target.v.NumField() {
			field := target.v.Type().Field(i)
			t.Run(target.name+"."+field.Name, func(t *testing.T) {
				changed := catalog.App{Tasks: []catalog.Task{{}}}
				v := reflect.ValueOf(&changed).Elem()
				if target.name == "Task" {
					v = reflect.ValueOf(&changed.Tasks[0]).Elem()
				}
				f := v.Field(i)
				switch f.Kind() {
				case reflect.String:
					f.SetString("x")
				case reflect.Int:
					f.SetInt(-1)
				case reflect.Map:
					f.Set(reflect.ValueOf(map[string]string{"k": "v"}))
				case reflect.Slice:
					elem := reflect.New(f.Type().Elem()).Elem()
					switch elem.Kind() {
					case reflect.String:
						elem.SetString("x")
					case reflect.Int:
						elem.SetInt(70000)
					case reflect.Bool:
						elem.SetBool(true)
					case reflect.Struct: // PortSpec
						elem.Field(0).SetString("x")
					default:
						t.Fatalf("element kind %s: teach this test and packApp", elem.Kind())
					}
					f.Set(reflect.Append(f, elem))
				default:
					t.Fatalf("field kind %s: teach this test and packApp", f.Kind())
				}
				if sameApp(&base, &changed) {
					t.Errorf("sameApp ignores %s", field.Name)
				}
				if string(packApp(&base)) == string(packApp(&changed)) {
					t.Errorf("packApp ignores %s", field.Name)
				}
				if got, ok := packApp(&changed).unpack(); !ok || !sameApp(&got, &changed) {
					t.Errorf("unpack(packApp(%+v)) = %+v, %v", changed, got, ok)
				}
			})
		}
	}
}

// TestPackedAppCanonical: equal apps pack equal, whatever their labels'
// order or nil against empty; a truncated packing does not unpack.
func TestPackedAppCanonical(t *testing.T) {
	a := catalog.App{ID: "/a", Labels: map[string]string{"A": "1", "B": "2", "C": "3"}, Tasks: []catalog.Task{{ID: "t", IPs: []string{}}}}
	b := catalog.App{ID: "/a", Labels: map[string]string{"C": "3", "A": "1", "B": "2"}, Ports: []catalog.PortSpec{}, Tasks: []catalog.Task{{ID: "t"}}}
	pa, pb := packApp(&a), packApp(&b)
	if string(pa) != string(pb) {
		t.Fatalf("equal apps pack differently: %q, %q", pa, pb)
	}
	for n := range len(pa) {
		if _, ok := pa[:n].unpack(); ok {
			t.Fatalf("a packing cut to %d of %d bytes unpacks", n, len(pa))
		}
	}
}

// TestUnpackerVarints: the unpacker reads what encoding/binary's Append
// functions write, and refuses what binary.Uvarint refuses (a truncated
// varint, one over 64 bits), as binary's readers do.
func TestUnpackerVarints(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 63, -64, 64, 127, 128, 300, -300, 1 << 40, math.MaxInt64, math.MinInt64} {
		r := unpacker{s: string(binary.AppendVarint(nil, n))}
		if got := r.num(); got != int(n) || r.bad || r.s != "" {
			t.Errorf("num of %d: %d, bad %v, %d bytes left", n, got, r.bad, len(r.s))
		}
	}
	for _, u := range []uint64{0, 1, 127, 128, 1<<63 - 1, math.MaxUint64} {
		r := unpacker{s: string(binary.AppendUvarint(nil, u))}
		if got := r.uvarint(); got != u || r.bad || r.s != "" {
			t.Errorf("uvarint of %d: %d, bad %v, %d bytes left", u, got, r.bad, len(r.s))
		}
	}
	for _, bad := range []string{"", "\x80", "\xff\xff", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"} {
		if _, size := binary.Uvarint([]byte(bad)); size > 0 {
			t.Fatalf("binary.Uvarint reads %q: fix the test", bad)
		}
		r := unpacker{s: bad}
		if r.uvarint(); !r.bad {
			t.Errorf("uvarint of %q is not bad", bad)
		}
	}
}

// sameApp reports whether a and b hold the same data, field by field: the
// reference the packing is checked against (TestPackedAppFields).
func sameApp(a, b *catalog.App) bool {
	return a.ID == b.ID && a.Version == b.Version && a.ConfigChange == b.ConfigChange &&
		maps.Equal(a.Labels, b.Labels) && slices.Equal(a.Ports, b.Ports) && a.DockerIP == b.DockerIP &&
		a.HealthChecks == b.HealthChecks && slices.EqualFunc(a.Tasks, b.Tasks, sameTask)
}

func sameTask(a, b catalog.Task) bool {
	return a.ID == b.ID && a.State == b.State && a.Host == b.Host &&
		slices.Equal(a.IPs, b.IPs) && slices.Equal(a.Ports, b.Ports) && slices.Equal(a.Health, b.Health)
}

// TestFullResyncFollowsList: after the simulator changed behind the
// watcher's back (no event stream, as after lost events), a full resync
// that skips unchanged apps gives the snapshot a build of the list gives,
// and applies only what changed.
func TestFullResyncFollowsList(t *testing.T) {
	opts := fastSim()
	opts.Apps = appsJSON(20, 2)
	opts.RestartBackoff = time.Millisecond // the killed task is replaced
	s := startSim(t, opts)
	d := newDriver(t, s.url)
	w := newWatcher(t, []string{s.url}, nil)
	session := testSession(t, w)
	ctx := context.Background()
	if err := w.fullSync(session); err != nil {
		t.Fatal(err)
	}
	first := w.Snapshot()
	if err := w.fullSync(session); err != nil {
		t.Fatal(err)
	}
	if w.Snapshot() != first {
		t.Error("an unchanged list published a new snapshot")
	}

	d.call(http.MethodPut, "/v2/apps/app3?force=true", map[string]any{"labels": map[string]string{"OAK_NAMES": "renamed.example.com"}})
	d.call(http.MethodDelete, "/v2/apps/app5?force=true", nil)
	d.call(http.MethodPost, "/v2/apps", appDef("/new", 1, "new.example.com", false))
	if err := s.sim.KillTask(d.app("/app7").Tasks[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	settle, done := context.WithTimeout(ctx, 20*time.Second)
	defer done()
	if err := s.sim.Settle(settle); err != nil {
		t.Fatal(err)
	}
	w.known.apps["/app9"] = packApp(&catalog.App{ID: "/app9"}) // a task update the list must undo
	w.known.prints.forget("/app9")
	list, err := w.listApps(session, w.known.prints)
	if err != nil {
		t.Fatal(err)
	}
	upserts, removes, _ := w.known.resync(list)
	var ids []string
	for _, a := range upserts {
		ids = append(ids, a.ID)
	}
	if got := fmt.Sprint(ids, removes); got != "[/app3 /app7 /app9 /new] [/app5]" {
		t.Errorf("resync would apply %s, want [/app3 /app7 /app9 /new] [/app5]", got)
	}
	if err := w.fullSync(session); err != nil {
		t.Fatal(err)
	}
	apps := d.apps()
	if diff := diffSnapshots(w.Snapshot(), catalog.Build(testPolicy(t), apps), apps); diff != "" {
		t.Fatal(diff)
	}
}

// TestListAppsRequest: the full list goes out as go-marathon sends it
// (path, query, headers, auth), fails over past a 5xx member, stays with
// the member that answered, and stops at another error.
func TestListAppsRequest(t *testing.T) {
	var hits [2]atomic.Int32
	var status [2]atomic.Int32
	var servers [2]*httptest.Server
	for i := range servers {
		status[i].Store(http.StatusOK)
		servers[i] = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			if got := r.Method + " " + r.URL.RequestURI(); got != "GET /marathon/v2/apps?embed=apps.tasks" {
				t.Errorf("request %s", got)
			}
			user, pass, _ := r.BasicAuth()
			if r.Header.Get("Authorization") != "token=tok" && user+pass == "" || r.Header.Get("Accept") != "application/json" {
				t.Errorf("headers %v", r.Header)
			}
			rw.WriteHeader(int(status[i].Load()))
			fmt.Fprint(rw, `{"apps":[{"id":"/a"}]}`)
		}))
		t.Cleanup(servers[i].Close)
	}
	w := newWatcher(t, []string{servers[0].URL, servers[1].URL}, func(c *Config) { c.Token = "tok" })
	session := testSession(t, w)
	list := func() error {
		_, err := w.listApps(session, nil)
		return err
	}

	status[0].Store(http.StatusServiceUnavailable)
	if err := list(); err != nil || hits[0].Load() != 1 || hits[1].Load() != 1 {
		t.Fatalf("failover: err %v, hits %d %d", err, hits[0].Load(), hits[1].Load())
	}
	status[0].Store(http.StatusOK)
	if err := list(); err != nil || hits[0].Load() != 1 || hits[1].Load() != 2 {
		t.Fatalf("sticky member: err %v, hits %d %d", err, hits[0].Load(), hits[1].Load())
	}
	status[1].Store(http.StatusUnauthorized)
	if err := list(); err == nil || !strings.Contains(err.Error(), "401") || hits[0].Load() != 1 {
		t.Fatalf("401: err %v, hits %d %d", err, hits[0].Load(), hits[1].Load())
	}
}

// testSession makes a session of w, not running, closed at cleanup.
func testSession(t testing.TB, w *Watcher) *session {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := w.newSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		s.transport.close()
	})
	return s
}
