package marathonsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
	"github.com/oakdns/oak/internal/testutil"
	"go.yaml.in/yaml/v3"
)

// readFixture reads testdata/marathon/<rel> at the repository root.
func readFixture(t *testing.T, rel string) []byte {
	t.Helper()
	return testutil.ReadFixture(t, "marathon/"+rel)
}

// comparable clears what a loaded fixture need not agree with: the
// deployments in flight when it was captured, and
// "tasks":[] (what Marathon embeds for an app without tasks) and a
// missing "tasks" are the same to a consumer.
func comparable(a marathon.Application) marathon.Application {
	a.Deployments = nil
	if len(a.Tasks) == 0 {
		a.Tasks = nil
	}
	return a
}

// TestFixtureAppsRoundTrip loads each /v2/apps fixture into the simulator
// and checks that go-marathon decodes the simulator's answer to the same
// values as the fixture file itself.
func TestFixtureAppsRoundTrip(t *testing.T) {
	for _, rel := range []string{"marathon-lb/marathon15_apps.json", "marathon-docs/app_list.json"} {
		t.Run(rel, func(t *testing.T) {
			body := readFixture(t, rel)
			var want marathon.Applications
			if err := json.Unmarshal(body, &want); err != nil {
				t.Fatalf("fixture does not decode: %v", err)
			}
			f := start(t, Options{StagingDelay: -1, Apps: body})
			got, err := f.client.Applications(url.Values{"embed": {"apps.tasks"}})
			if err != nil {
				t.Fatalf("Applications: %v", err)
			}
			if len(got.Apps) != len(want.Apps) {
				t.Fatalf("%d apps, want %d", len(got.Apps), len(want.Apps))
			}
			for i := range want.Apps {
				g, w := comparable(got.Apps[i]), comparable(want.Apps[i])
				if !reflect.DeepEqual(g, w) {
					gj, _ := json.Marshal(g)
					wj, _ := json.Marshal(w)
					t.Errorf("app %s differs:\nsim:     %s\nfixture: %s", w.ID, gj, wj)
				}
			}
		})
	}
}

// TestFixtureAppDefinition posts the docs' full app definition and checks
// the definition fields go-marathon maps survive, then loads it as-is.
func TestFixtureAppDefinition(t *testing.T) {
	body := readFixture(t, "marathon-docs/app.json")
	var want marathon.Application
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatalf("fixture does not decode: %v", err)
	}
	f := start(t, Options{StagingDelay: time.Hour})
	resp := postJSON(t, http.MethodPost, f.srv.URL+"/v2/apps", string(body))
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST app.json: %s %s", resp.Status, b)
	}
	got, err := f.client.Application("/foo")
	if err != nil {
		t.Fatalf("Application: %v", err)
	}
	// Marathon assigns service ports for port 0 and stamps versions, so
	// ports, versions, counts, tasks and deployments are not compared.
	pick := func(a *marathon.Application) []any {
		return []any{a.ID, a.Cmd, a.Args, a.Constraints, a.CPUs, a.Disk, a.Env, a.Executor, a.HealthChecks,
			a.Instances, a.Mem, a.RequirePorts, a.BackoffSeconds, a.BackoffFactor, a.MaxLaunchDelaySeconds,
			a.Dependencies, a.User, a.UpgradeStrategy, a.Labels, a.AcceptedResourceRoles, a.Fetch,
			a.IPAddressPerTask, a.Container.Type, a.Container.Docker.Image, a.Container.Docker.Network,
			a.Container.Docker.Parameters, a.Container.Docker.Privileged, a.Container.Volumes}
	}
	if g, w := pick(got), pick(&want); !reflect.DeepEqual(g, w) {
		t.Errorf("definition differs:\nsim:     %v\nfixture: %v", g, w)
	}
	if got.Ports[0] != 10019 { // the fixture's portMapping servicePort
		t.Errorf("ports %v", got.Ports)
	}
}

// TestFixtureTasks loads the tasks of tasks.json and app_tasks.json into
// apps and compares GET /v2/tasks and GET /v2/apps/{id}/tasks.
func TestFixtureTasks(t *testing.T) {
	tests := []struct {
		rel   string
		fetch func(marathon.Marathon) (*marathon.Tasks, error)
	}{
		{"marathon-docs/tasks.json", func(c marathon.Marathon) (*marathon.Tasks, error) { return c.AllTasks(nil) }},
		{"marathon-docs/app_tasks.json", func(c marathon.Marathon) (*marathon.Tasks, error) { return c.Tasks("/minecraft/survival-world") }},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			body := readFixture(t, tt.rel)
			var want marathon.Tasks
			if err := json.Unmarshal(body, &want); err != nil {
				t.Fatalf("fixture does not decode: %v", err)
			}
			var raw struct {
				Tasks []map[string]any `json:"tasks"`
			}
			_ = json.Unmarshal(body, &raw)
			byApp := map[string][]map[string]any{}
			var order []string
			for _, task := range raw.Tasks {
				id := task["appId"].(string)
				if byApp[id] == nil {
					order = append(order, id)
				}
				byApp[id] = append(byApp[id], task)
			}
			var apps []map[string]any
			for _, id := range order {
				apps = append(apps, map[string]any{"id": id, "instances": len(byApp[id]), "tasks": byApp[id]})
			}
			appsBody, _ := json.Marshal(map[string]any{"apps": apps})
			f := start(t, Options{StagingDelay: -1, Apps: appsBody})
			got, err := tt.fetch(f.client)
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if !reflect.DeepEqual(got.Tasks, want.Tasks) {
				gj, _ := json.Marshal(got.Tasks)
				wj, _ := json.Marshal(want.Tasks)
				t.Errorf("tasks differ:\nsim:     %s\nfixture: %s", gj, wj)
			}
		})
	}
}

// TestEventFramingMatchesCapture compares the structure of the docs' real
// SSE capture with the simulator's stream: "event:" line, "data:" line,
// blank line, no id, and event_stream_attached first with the same fields.
func TestEventFramingMatchesCapture(t *testing.T) {
	var capture []sseFrame
	err := parseFrames(strings.NewReader(string(readFixture(t, "marathon-docs/events.txt"))),
		func(f sseFrame) { capture = append(capture, f) }, func() {})
	if err != io.EOF || len(capture) == 0 {
		t.Fatalf("capture: %d frames, %v", len(capture), err)
	}
	f := start(t, fast())
	stream := openStream(t, f.srv.URL, "")
	postJSON(t, http.MethodPost, f.srv.URL+"/v2/apps", `{"id":"/test-app","instances":1}`)
	sim := stream.until(t, "deployment_success")

	shape := regexp.MustCompile(`^event: [a-z_]+$`)
	check := func(who string, frames []sseFrame) {
		for _, fr := range frames {
			if len(fr.lines) != 2 || !shape.MatchString(fr.lines[0]) || !strings.HasPrefix(fr.lines[1], "data: {") {
				t.Errorf("%s frame %q: want exactly an event line and a data line", who, fr.lines)
			}
			if fr.data["eventType"] != fr.event {
				t.Errorf("%s frame: event %q but eventType %v", who, fr.event, fr.data["eventType"])
			}
		}
		if frames[0].event != "event_stream_attached" {
			t.Errorf("%s: first event %q", who, frames[0].event)
		}
	}
	check("capture", capture)
	check("simulator", sim)
	if g, w := keys(sim[0].data), keys(capture[0].data); !reflect.DeepEqual(g, w) {
		t.Errorf("event_stream_attached fields %v, capture has %v", g, w)
	}
	// Every status_update_event field of the capture is in ours.
	for _, fr := range sim {
		if fr.event != "status_update_event" {
			continue
		}
		for k := range capture[1].data {
			if _, ok := fr.data[k]; !ok {
				t.Errorf("status_update_event lacks %q", k)
			}
		}
	}
}

func keys(m map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// methodsEntry is one entry of go-marathon's tests/rest-api/methods.yml.
type methodsEntry struct {
	URI     string `yaml:"uri"`
	Method  string `yaml:"method"`
	Content string `yaml:"content"`
	Scope   string `yaml:"scope"`
}

// TestMethodsYML replays every methods.yml entry for an endpoint the
// simulator implements against a simulator loaded with the file's own
// apps, and decodes both the simulator's answer and the fixture content
// into the type go-marathon v0.7.1 uses for that call.
func TestMethodsYML(t *testing.T) {
	var entries []methodsEntry
	if err := yaml.Unmarshal(readFixture(t, "go-marathon/methods.yml"), &entries); err != nil {
		t.Fatalf("methods.yml: %v", err)
	}
	// Start state: the single apps the file serves, plus the tasks its
	// task-kill entries name.
	var apps []json.RawMessage
	for _, e := range entries {
		if e.Method == http.MethodGet && e.Scope == "" && regexp.MustCompile(`^/v2/apps/[a-z-]+$`).MatchString(e.URI) {
			var wrapped struct {
				App json.RawMessage `json:"app"`
			}
			if err := json.Unmarshal([]byte(e.Content), &wrapped); err != nil {
				t.Fatalf("%s: %v", e.URI, err)
			}
			apps = append(apps, wrapped.App)
		}
	}
	apps = append(apps, json.RawMessage(`{"id":"/fake-group/fake-app","instances":1,"tasks":[{"id":"fake-group_fake-app.fake-task","host":"h","state":"TASK_RUNNING"}]}`))
	base, _ := json.Marshal(map[string]any{"apps": apps})
	base = []byte(strings.Replace(string(base), `"tasks":[`, `"tasks":[{"id":"fake-app.fake-task","host":"h","state":"TASK_RUNNING","appId":"/fake-app"},`, 1))

	type single struct {
		App marathon.Application `json:"app"`
	}
	type oneTask struct {
		Task marathon.Task `json:"task"`
	}
	type leader struct {
		Leader string `json:"leader"`
	}
	type message struct {
		Message string `json:"message"`
	}
	routes := []struct {
		method, pattern string
		target          func() any // nil: body not decoded by go-marathon
		body            string
	}{
		{"GET", `^/ping$`, nil, ""},
		{"GET", `^(/marathon)?/v2/apps(\?.*)?$`, func() any { return new(marathon.Applications) }, ""},
		{"GET", `^/v2/apps/[a-z-]+/versions$`, func() any { return new(marathon.ApplicationVersions) }, ""},
		{"GET", `^/v2/apps/[a-z-]+/versions/.+$`, func() any { return new(marathon.Application) }, ""},
		{"GET", `^/v2/apps/[a-z-]+/tasks$`, func() any { return new(marathon.Tasks) }, ""},
		{"GET", `^/v2/apps/[a-z-]+$`, func() any { return new(single) }, ""},
		{"POST", `^/v2/apps$`, func() any { return new(marathon.Application) }, `{"id":"/posted","instances":1}`},
		{"POST", `^/v2/apps/[a-z-]+/restart$`, func() any { return new(marathon.DeploymentID) }, `{}`},
		{"PUT", `^/v2/apps/[a-z-]+(\?force=true)?$`, func() any { return new(marathon.DeploymentID) }, `{"instances":2,"ports":null,"dependencies":null}`},
		{"DELETE", `^/v2/apps/[a-z-]+(\?force=true)?$`, func() any { return new(marathon.DeploymentID) }, ""},
		{"DELETE", `^/v2/apps/[a-z-]+/tasks$`, func() any { return new(marathon.Tasks) }, ""},
		{"DELETE", `^/v2/apps/[a-z/-]+/tasks/[a-z_.-]+$`, func() any { return new(oneTask) }, ""},
		{"GET", `^/v2/tasks(\?status=.*)?$`, func() any { return new(marathon.Tasks) }, ""},
		{"POST", `^/v2/tasks/delete$`, nil, `{"ids":["fake-app.fake-task"]}`},
		{"GET", `^/v2/deployments$`, func() any { return new([]*marathon.Deployment) }, ""},
		{"DELETE", `^/v2/deployments/.+$`, func() any { return new(marathon.DeploymentID) }, ""},
		{"GET", `^/v2/leader$`, func() any { return new(leader) }, ""},
		{"DELETE", `^/v2/leader$`, func() any { return new(message) }, ""},
		{"GET", `^/v2/info$`, func() any { return new(marathon.Info) }, ""},
	}
	covered := 0
	for _, e := range entries {
		var route *int
		for i, r := range routes {
			if r.method == e.Method && regexp.MustCompile(r.pattern).MatchString(e.URI) {
				route = &i
				break
			}
		}
		if route == nil {
			t.Logf("not simulated: %s %s", e.Method, e.URI)
			continue
		}
		r := routes[*route]
		if r.target != nil && e.Content != "" {
			if err := json.Unmarshal([]byte(e.Content), r.target()); err != nil {
				t.Errorf("fixture %s %s does not decode: %v", e.Method, e.URI, err)
			}
		}
		if e.Scope != "" {
			continue // scripted sequences of go-marathon's fake, no single answer
		}
		covered++
		t.Run(e.Method+" "+e.URI, func(t *testing.T) {
			f := start(t, Options{StagingDelay: time.Hour, Apps: base})
			uri := e.URI
			if strings.HasPrefix(uri, "/v2/deployments/") { // need a live deployment
				var d marathon.DeploymentID
				resp := postJSON(t, http.MethodPut, f.srv.URL+"/v2/apps/fake-app", `{"instances":5}`)
				_ = json.NewDecoder(resp.Body).Decode(&d)
				uri = "/v2/deployments/" + d.DeploymentID
			}
			resp := postJSON(t, e.Method, f.srv.URL+uri, r.body)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode/100 != 2 {
				t.Fatalf("%s: %s", resp.Status, body)
			}
			if r.target != nil {
				if err := json.Unmarshal(body, r.target()); err != nil {
					t.Fatalf("simulator answer does not decode: %v\n%s", err, body)
				}
			}
		})
	}
	if covered < 25 {
		t.Errorf("only %d methods.yml entries replayed", covered)
	}
}
