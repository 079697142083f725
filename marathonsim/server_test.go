package marathonsim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRouting covers path forms go-marathon produces: a trailing slash in
// Config.URL gives "//v2/...", DC/OS adds "/marathon", ids are relative,
// and GET requests may carry a body.
func TestRouting(t *testing.T) {
	f := start(t, Options{StagingDelay: -1, Apps: []byte(`{"apps":[{"id":"/grp/web","instances":1}]}`)})
	tests := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"GET", "/ping", "", 200, "pong"},
		{"GET", "//v2/apps", "", 200, `"/grp/web"`},
		{"GET", "/v2/apps/", "", 200, `"/grp/web"`},
		{"GET", "/marathon/v2/apps", "", 200, `"/grp/web"`},
		{"GET", "/v2/groups", `""`, 404, "not found"},
		{"GET", "/v2/apps/grp//web", `""`, 200, `"app":{`},
		{"GET", "/v2/apps?label=missing", "", 200, `"apps":[]`},
		{"GET", "/v2/apps?id=web", "", 200, `"/grp/web"`},
		{"GET", "/v2/apps/nope", "", 404, `{"message":"App '/nope' does not exist"}`},
		{"POST", "/v2/apps", `{"id":"rel","instances":0}`, 201, `"id":"/rel"`},
		{"POST", "/v2/apps", `{"id":42}`, 400, `error.expected.jsstring`},
		{"POST", "/v2/apps", `not json`, 400, `Invalid JSON`},
		{"PUT", "/v2/apps/new", `{"instances":0}`, 201, `"deploymentId"`},
		{"PUT", "/v2/apps/grp/web", `{"instances":-2}`, 422, `"path":"/instances"`},
		{"GET", "/v2/leader", "", 200, `"leader"`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, f.srv.URL+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.contains) {
				t.Errorf("%s %s: %d %s", tt.method, tt.path, resp.StatusCode, body)
			}
		})
	}
}

func TestSelector(t *testing.T) {
	labels := map[string]string{"env": "prod", "tier": "web"}
	tests := []struct {
		sel  string
		want bool
	}{
		{"", true}, {"env", true}, {"nope", false}, {"env==prod", true}, {"env==dev", false},
		{"env!=dev", true}, {"env in (dev, prod)", true}, {"env notin (prod)", false},
		{"env==prod,tier==web", true}, {"env==prod,tier==db", false},
	}
	for _, tt := range tests {
		sel, err := parseSelector(tt.sel)
		if err != nil {
			t.Fatalf("%q: %v", tt.sel, err)
		}
		if got := sel.matches(labels); got != tt.want {
			t.Errorf("%q: %v, want %v", tt.sel, got, tt.want)
		}
	}
	if _, err := parseSelector("a b"); err == nil {
		t.Error("bad selector accepted")
	}
}

// TestFixedIP checks that tasks of an app with the Docker parameter "ip"
// all get that address (docker run --ip).
func TestFixedIP(t *testing.T) {
	f := start(t, fast())
	app := webApp("/fixed", 2, nil)
	app.Container.Docker.AddParameter("ip", "10.199.45.23")
	if _, err := f.client.CreateApplication(app); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	got, err := f.client.Application("/fixed")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(got.Tasks)
	if ips := runningIPs(*got); len(ips) != 2 || ips[0] != "10.199.45.23" || ips[1] != "10.199.45.23" {
		t.Fatalf("tasks %s", out)
	}
}

// TestStatsCountFullLists: /_sim/stats counts the answered apps lists that
// embed tasks (a watcher's full resyncs), and nothing else.
func TestStatsCountFullLists(t *testing.T) {
	f := start(t, Options{StagingDelay: -1, Apps: []byte(`{"apps":[{"id":"/web","instances":1}]}`)})
	for _, path := range []string{"/v2/apps?embed=apps.tasks", "/v2/apps", "/v2/apps/web?embed=app.tasks", "/v2/apps?embed=apps.tasks&embed=apps.tasks"} {
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := http.Get(f.srv.URL + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.FullLists != 2 {
		t.Errorf("fullLists = %d, want 2", st.FullLists)
	}
}
