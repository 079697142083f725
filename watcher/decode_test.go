package watcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/marathonsim"
)

// goMarathonApps decodes a list body as go-marathon v0.7.1 does, then
// converts it as the watcher's partial syncs do.
func goMarathonApps(body []byte) ([]catalog.App, error) {
	var list marathon.Applications
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, err
	}
	return appsOf(list.Apps), nil
}

// recordedBodies are the recorded Marathon lists (testdata/marathon, see
// its README), and a recorded app definition as a one-app list.
func recordedBodies(t testing.TB) map[string][]byte {
	t.Helper()
	bodies := map[string][]byte{}
	for _, rel := range []string{"marathon-lb/marathon15_apps.json", "marathon-docs/app_list.json", "marathon-docs/app.json"} {
		body, err := os.ReadFile("../testdata/marathon/" + rel)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(rel, "/app.json") {
			body = append(append([]byte(`{"apps":[`), body...), "]}"...)
		}
		bodies[rel] = body
	}
	return bodies
}

// simBody is the simulator's list after it loaded apps: with tasks on
// their own IPs, Docker parameters and health checks.
func simBody(t testing.TB) []byte {
	t.Helper()
	apps := `{"apps":[` +
		`{"id":"/db","instances":2,"labels":{"OAK_NAMES":"db.example.com","OAK_ENV":"feature-x"},` +
		`"container":{"type":"DOCKER","docker":{"image":"db","network":"BRIDGE","parameters":[{"key":"net","value":"oak-net"},{"key":"ip","value":"10.199.45.7"}],` +
		`"portMappings":[{"containerPort":5432,"hostPort":0,"name":"pg","protocol":"tcp"}]}},` +
		`"healthChecks":[{"protocol":"TCP","portIndex":0}]},` +
		`{"id":"/web","instances":3,"cmd":"sleep 1000","labels":{"OAK_NAMES":"web.example.com"},` +
		`"portDefinitions":[{"port":8080,"protocol":"tcp","name":"http"}]}]}`
	opts := fastSim()
	opts.Apps = append([]byte(apps[:len(apps)-2]+","), appsJSON(3, 2)[len(`{"apps":[`):]...)
	sim := marathonsim.New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	d := newDriver(t, srv.URL)
	return d.call("GET", "/v2/apps?embed=apps.tasks", nil)
}

// TestLeanDecodeMatchesGoMarathon: for every recorded body and the
// simulator's, the lean decoder gives exactly what go-marathon's decode
// and appOf give; with an index of the same list, every element is
// skipped as unchanged.
func TestLeanDecodeMatchesGoMarathon(t *testing.T) {
	bodies := recordedBodies(t)
	bodies["simulator"] = simBody(t)
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			want, err := goMarathonApps(body)
			if err != nil {
				t.Fatal(err)
			}
			list, err := decodeApps(bytes.NewReader(body), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := appsOfList(list); !reflect.DeepEqual(got, want) {
				t.Fatalf("lean decode\n%+v\ngo-marathon\n%+v", got, want)
			}
			if len(want) == 0 {
				t.Fatal("a body without apps checks nothing")
			}

			k := newKnownApps()
			first, err := decodeApps(bytes.NewReader(body), k.prints)
			if err != nil {
				t.Fatal(err)
			}
			k.follow(nil, testPolicy(t), first)
			again, err := decodeApps(bytes.NewReader(body), k.prints)
			if err != nil {
				t.Fatal(err)
			}
			for i, item := range again {
				if item.app != nil || item.id != want[i].ID {
					t.Errorf("element %d: decoded %v id %q, want the unchanged %q", i, item.app != nil, item.id, want[i].ID)
				}
			}
		})
	}
}

func TestDecodeAppsErrors(t *testing.T) {
	tests := []struct {
		name, body string
		noArray    bool // go-marathon would see an empty list
	}{
		{name: "empty", body: ``},
		{name: "not an object", body: `[]`, noArray: true},
		{name: "no apps", body: `{"x":[]}`, noArray: true},
		{name: "null apps", body: `{"apps":null}`, noArray: true},
		{name: "apps twice", body: `{"apps":[],"Apps":[]}`, noArray: true},
		{name: "apps not an array", body: `{"apps":{}}`},
		{name: "truncated", body: `{"apps":[{"id":"/a"}`},
		{name: "trailing data", body: `{"apps":[]}x`},
		{name: "wrong type", body: `{"apps":[{"id":5}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeApps(strings.NewReader(tt.body), nil)
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, errNoAppsArray); got != tt.noArray {
				t.Errorf("errors.Is(%v, errNoAppsArray) = %v", err, got)
			}
		})
	}
}

// FuzzLeanDecode compares the lean decoder with go-marathon's on any input.
// Whatever go-marathon accepts, the lean decoder accepts (unless the body
// lacks its one "apps" array, go-marathon's empty list) and converts to the
// same apps. What only the lean decoder accepts must differ in fields oak
// does not read: encoding/json then decodes the lean types from it alike.
func FuzzLeanDecode(f *testing.F) {
	for _, body := range recordedBodies(f) {
		f.Add(body)
	}
	f.Add(appsJSON(2, 2))
	f.Add([]byte(`{"APPS":[null,{"ID":"/a","labels":{"a":"b"},"Labels":null,"tasks":[null,{"id":"t","ports":[1],"healthCheckResults":[null,{"alive":true}]}]},` +
		`{"id":"/b","container":{"docker":{"parameters":[{"key":"ip","value":"x"}],"portMappings":[]}},"container":{"docker":{"parameters":null}},"portDefinitions":[{"port":null,"name":"\u00ff\xff"}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		want, wantErr := goMarathonApps(body)
		list, err := decodeApps(bytes.NewReader(body), nil)
		if err != nil {
			if wantErr == nil && !errors.Is(err, errNoAppsArray) {
				t.Fatalf("lean decode failed where go-marathon did not: %v", err)
			}
			return
		}
		if wantErr != nil {
			var lean struct {
				Apps []leanApp `json:"apps"`
			}
			if err := json.Unmarshal(body, &lean); err != nil {
				t.Fatalf("lean decode accepted what go-marathon rejects (%v) in a field oak reads: %v", wantErr, err)
			}
			want = make([]catalog.App, len(lean.Apps))
			for i := range lean.Apps {
				want[i] = lean.Apps[i].app()
			}
		}
		if got := appsOfList(list); !reflect.DeepEqual(got, want) {
			t.Fatalf("lean decode\n%+v\nwant\n%+v", got, want)
		}
	})
}

// TestPacer checks when the pacer pauses: only on every every-th step, and
// only once the slice has run past sliceBudget; a pause starts a new slice.
func TestPacer(t *testing.T) {
	tests := []struct {
		name      string
		every     int
		steps     int
		sliceAge  time.Duration // how long the slice has run before the steps (negative: not yet begun, so no stall of the machine can age it)
		wantPause bool
	}{
		{"fresh slice", 1, 1, -time.Hour, false},
		{"slice past the budget", 1, 1, 2 * sliceBudget, true},
		{"past the budget, between looks at the clock", 64, 63, 2 * sliceBudget, false},
		{"past the budget, at a look at the clock", 64, 64, 2 * sliceBudget, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPacer(tt.every)
			began := time.Now().Add(-tt.sliceAge)
			p.since = began
			for range tt.steps {
				p.step()
			}
			if paused := p.since != began; paused != tt.wantPause {
				t.Errorf("paused = %v, want %v", paused, tt.wantPause)
			}
		})
	}
}
