package marathonsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// recordedApp is the full app definition of Marathon's docs, as recorded.
func recordedApp(t *testing.T) map[string]any {
	t.Helper()
	var app map[string]any
	if err := json.Unmarshal(readFixture(t, "marathon-docs/app.json"), &app); err != nil {
		t.Fatal(err)
	}
	return app
}

func keySet(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// rawApp returns GET /v2/apps/{id}'s "app" as plain JSON values.
func rawApp(t *testing.T, f *fixture, id string) map[string]any {
	t.Helper()
	resp, err := http.Get(f.srv.URL + "/v2/apps" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		App map[string]any `json:"app"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.App == nil {
		t.Fatalf("GET %s: %s %v", id, resp.Status, err)
	}
	return body.App
}

// TestHealthCheckDefaults: health checks come back with Marathon's
// defaults filled in, in the shape of the recorded app.json's check, on
// create and on update, and go-marathon decodes them.
func TestHealthCheckDefaults(t *testing.T) {
	recorded := recordedApp(t)["healthChecks"].([]any)[0]
	f := start(t, fast())
	post := `{"id":"/hc","healthChecks":[{},{"protocol":"TCP"},{"protocol":"COMMAND","command":{"value":"true"}},{"protocol":"HTTP","port":8080,"path":"/health","intervalSeconds":5}]}`
	if resp := postJSON(t, http.MethodPost, f.srv.URL+"/v2/apps", post); resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s", resp.Status)
	}
	defaults := map[string]any{"gracePeriodSeconds": 300.0, "intervalSeconds": 60.0, "timeoutSeconds": 20.0, "maxConsecutiveFailures": 3.0}
	with := func(extra map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range defaults {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	want := []any{
		with(map[string]any{"protocol": "HTTP", "path": "/", "portIndex": 0.0, "ignoreHttp1xx": false}),
		with(map[string]any{"protocol": "TCP", "portIndex": 0.0}),
		with(map[string]any{"protocol": "COMMAND", "command": map[string]any{"value": "true"}}),
		with(map[string]any{"protocol": "HTTP", "port": 8080.0, "path": "/health", "intervalSeconds": 5.0, "ignoreHttp1xx": false}),
	}
	got := rawApp(t, f, "/hc")["healthChecks"].([]any)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("health checks\n got %v\nwant %v", got, want)
	}
	if g, w := keySet(got[0]), keySet(recorded); !slices.Equal(g, w) {
		t.Errorf("default HTTP check has keys %v, the recorded one %v", g, w)
	}

	f.settle(t)
	if resp := postJSON(t, http.MethodPut, f.srv.URL+"/v2/apps/hc", `{"healthChecks":[{"protocol":"HTTPS"}]}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %s", resp.Status)
	}
	app, err := f.client.Application("/hc")
	if err != nil {
		t.Fatalf("go-marathon: %v", err)
	}
	hc := (*app.HealthChecks)[0]
	if len(*app.HealthChecks) != 1 || hc.Protocol != "HTTPS" || hc.TimeoutSeconds != 20 || hc.IntervalSeconds != 60 ||
		hc.GracePeriodSeconds != 300 || *hc.MaxConsecutiveFailures != 3 || *hc.Path != "/" || *hc.PortIndex != 0 {
		t.Errorf("after update go-marathon sees %+v", hc)
	}
}

// TestPortDefaults: port definitions and Docker port mappings come back
// with protocol "tcp" and labels {}, as in the recorded app.json.
func TestPortDefaults(t *testing.T) {
	recorded := recordedApp(t)
	f := start(t, fast())
	postJSON(t, http.MethodPost, f.srv.URL+"/v2/apps", `{"id":"/pd","portDefinitions":[{"port":0},{"port":0,"protocol":"udp","name":"dns"}]}`)
	postJSON(t, http.MethodPost, f.srv.URL+"/v2/apps", `{"id":"/pm","container":{"type":"DOCKER","docker":{"image":"x","network":"BRIDGE","portMappings":[{"containerPort":80}]}}}`)
	postJSON(t, http.MethodPost, f.srv.URL+"/v2/apps", `{"id":"/ports","ports":[0]}`)

	defs := rawApp(t, f, "/pd")["portDefinitions"].([]any)
	want := []any{
		map[string]any{"port": 10000.0, "protocol": "tcp", "labels": map[string]any{}},
		map[string]any{"port": 10001.0, "protocol": "udp", "name": "dns", "labels": map[string]any{}},
	}
	if !reflect.DeepEqual(defs, want) {
		t.Errorf("portDefinitions %v, want %v", defs, want)
	}
	// The recorded definition has a name; without one, the rest is alike.
	recordedKeys := slices.DeleteFunc(keySet(recorded["portDefinitions"].([]any)[0]), func(k string) bool { return k == "name" })
	if g := keySet(defs[0]); !slices.Equal(g, recordedKeys) {
		t.Errorf("port definition keys %v, recorded %v", g, recordedKeys)
	}
	if g := keySet(rawApp(t, f, "/ports")["portDefinitions"].([]any)[0]); !slices.Equal(g, recordedKeys) {
		t.Errorf("port definition from ports: keys %v, recorded %v", g, recordedKeys)
	}
	mapping := rawApp(t, f, "/pm")["container"].(map[string]any)["docker"].(map[string]any)["portMappings"].([]any)[0].(map[string]any)
	if mapping["protocol"] != "tcp" || !reflect.DeepEqual(mapping["labels"], map[string]any{}) {
		t.Errorf("port mapping %v", mapping)
	}
	app, err := f.client.Application("/pd")
	if err != nil || len(*app.PortDefinitions) != 2 || (*app.PortDefinitions)[0].Protocol != "tcp" {
		t.Errorf("go-marathon: %+v %v", app, err)
	}
}

// TestCreateLocation: POST /v2/apps answers 201 with the app's absolute URL.
func TestCreateLocation(t *testing.T) {
	f := start(t, fast())
	for _, tt := range []struct{ path, want string }{
		{"/v2/apps", f.srv.URL + "/v2/apps/shop/web"},
		{"/marathon/v2/apps", f.srv.URL + "/marathon/v2/apps/shop/api"},
	} {
		id := "/shop/web"
		if strings.HasPrefix(tt.path, "/marathon") {
			id = "/shop/api"
		}
		resp := postJSON(t, http.MethodPost, f.srv.URL+tt.path, `{"id":"`+id+`"}`)
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != tt.want {
			t.Errorf("POST %s: %s, Location %q, want %q", tt.path, resp.Status, resp.Header.Get("Location"), tt.want)
		}
	}
}

// TestKillingTaskStaysListed: a killed task reports TASK_KILLING first and
// stays listed in that state (KillDelay is an hour here) by every listing
// go-marathon reads.
func TestKillingTaskStaysListed(t *testing.T) {
	opts := fast()
	opts.KillDelay = time.Hour
	f := start(t, opts)
	stream := openStream(t, f.srv.URL, "?event_type=status_update_event")
	if _, err := f.client.CreateApplication(webApp("/web", 2, nil)); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	tasks, err := f.client.Tasks("/web")
	if err != nil || len(tasks.Tasks) != 2 {
		t.Fatalf("tasks %v %v", tasks, err)
	}
	victim := tasks.Tasks[0].ID
	if _, err := f.client.KillTask(victim, &marathon.KillTaskOpts{Scale: true}); err != nil {
		t.Fatalf("KillTask: %v", err)
	}
	for {
		fr := stream.next(t)
		if fr.data["taskId"] == victim && status(fr) != "TASK_RUNNING" && status(fr) != "TASK_STAGING" {
			if status(fr) != "TASK_KILLING" {
				t.Fatalf("first status after the kill: %s", status(fr))
			}
			break
		}
	}
	stateOf := func(list []marathon.Task) string {
		for _, task := range list {
			if task.ID == victim {
				return task.State
			}
		}
		return "absent"
	}
	deref := func(list []*marathon.Task) []marathon.Task {
		out := make([]marathon.Task, len(list))
		for i, task := range list {
			out[i] = *task
		}
		return out
	}
	embedded := appsWithTasks(t, f.client)["/web"]
	all, err := f.client.AllTasks(nil)
	if err != nil {
		t.Fatal(err)
	}
	for where, state := range map[string]string{"/v2/apps?embed=apps.tasks": stateOf(deref(embedded.Tasks)), "/v2/tasks": stateOf(all.Tasks)} {
		if state != "TASK_KILLING" {
			t.Errorf("%s lists the victim as %s", where, state)
		}
	}
	if embedded.TasksRunning != 1 || len(runningIPs(embedded)) != 1 {
		t.Errorf("running count %d, running tasks %v", embedded.TasksRunning, runningIPs(embedded))
	}
	if running, _ := f.client.AllTasks(&marathon.AllTasksOpts{Status: "running"}); stateOf(running.Tasks) != "absent" {
		t.Errorf("?status=running lists the dying task")
	}
}

// frames subscribes to every event of sim without HTTP, for synctest.
func frames(sim *Server) <-chan []byte {
	c := &client{frames: make(chan []byte, 1024), gone: make(chan struct{})}
	sim.events.attach(c, []byte(`{}`))
	<-c.frames // its own event_stream_attached
	return c.frames
}

// drain returns the events published so far as (type, data) pairs.
func drain(t *testing.T, ch <-chan []byte) (types []string, data []map[string]any) {
	t.Helper()
	for {
		select {
		case f := <-ch:
			lines := strings.Split(string(f), "\n")
			var d map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &d); err != nil {
				t.Fatal(err)
			}
			types = append(types, d["eventType"].(string))
			data = append(data, d)
		default:
			return types, data
		}
	}
}

// serve answers one request without a network, for synctest.
func serve(sim *Server, method, path, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec
}

// TestKillDelay: TASK_KILLED and the task's removal come exactly
// Options.KillDelay after TASK_KILLING, on a fake clock.
func TestKillDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := New(Options{KillDelay: time.Second, Apps: []byte(`{"apps":[{"id":"/a","instances":1,"tasks":[{"id":"a.1","host":"h","state":"TASK_RUNNING"}]}]}`)})
		defer sim.Close()
		events := frames(sim)
		if rec := serve(sim, http.MethodDelete, "/v2/apps/a/tasks/a.1?scale=true", ""); rec.Code != http.StatusOK {
			t.Fatalf("kill: %d %s", rec.Code, rec.Body)
		}
		listed := func() string {
			for _, a := range sim.State().Apps {
				for _, task := range a.Tasks {
					return task.State
				}
			}
			return "gone"
		}
		if got := listed(); got != "TASK_KILLING" {
			t.Fatalf("right after the kill: %s", got)
		}
		time.Sleep(time.Second - time.Millisecond)
		synctest.Wait()
		if got := listed(); got != "TASK_KILLING" {
			t.Fatalf("just before KillDelay: %s", got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := listed(); got != "gone" {
			t.Fatalf("at KillDelay: %s", got)
		}
		var statuses []string
		types, data := drain(t, events)
		for i, typ := range types {
			if typ == "status_update_event" {
				statuses = append(statuses, data[i]["taskStatus"].(string))
			}
		}
		if !slices.Equal(statuses, []string{"TASK_KILLING", "TASK_KILLED"}) {
			t.Errorf("status updates %v", statuses)
		}
	})
}

// TestUnhealthyTaskKilled: a task failing its checks (intervalSeconds 10,
// maxConsecutiveFailures 2) fails one check at once and one every 10 s;
// the check that fails with 2 failures counted (at 20 s) publishes
// unhealthy_instance_kill_event, kills the task and launches a
// replacement, as Marathon's health check actor does.
func TestUnhealthyTaskKilled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		check := `{"protocol":"HTTP","intervalSeconds":10,"maxConsecutiveFailures":2}`
		sim := New(Options{StagingDelay: -1, HealthDelay: -1, KillDelay: time.Second})
		defer sim.Close()
		if rec := serve(sim, http.MethodPost, "/v2/apps", `{"id":"/web","healthChecks":[`+check+`]}`); rec.Code != http.StatusCreated {
			t.Fatalf("create: %d %s", rec.Code, rec.Body)
		}
		synctest.Wait()
		victim := sim.State().Apps[0].Tasks[0].ID
		events := frames(sim)
		if err := sim.SetTaskHealth(victim, false); err != nil {
			t.Fatal(err)
		}
		types, _ := drain(t, events)
		if !slices.Equal(types, []string{"failed_health_check_event", "health_status_changed_event"}) {
			t.Fatalf("first failed check: %v", types)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if types, _ := drain(t, events); !slices.Equal(types, []string{"failed_health_check_event"}) {
			t.Fatalf("second failed check: %v", types)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		types, data := drain(t, events)
		if len(types) < 3 || !slices.Equal(types[:3], []string{"failed_health_check_event", "unhealthy_instance_kill_event", "status_update_event"}) {
			t.Fatalf("third failed check: %v", types)
		}
		kill := data[1]
		for k, want := range map[string]any{"appId": "/web", "taskId": victim, "instanceId": instanceID(victim), "host": "127.0.0.1", "slaveId": "marathonsim-S1"} {
			if kill[k] != want {
				t.Errorf("unhealthy_instance_kill_event %s = %v, want %v", k, kill[k], want)
			}
		}
		if data[0]["instanceId"] != instanceID(victim) || data[0]["healthCheck"].(map[string]any)["intervalSeconds"] != 10.0 {
			t.Errorf("failed_health_check_event %v", data[0])
		}
		if data[2]["taskStatus"] != "TASK_KILLING" || data[2]["taskId"] != victim {
			t.Errorf("after the kill event: %v", data[2])
		}
		time.Sleep(time.Second)
		synctest.Wait()
		tasks := sim.State().Apps[0].Tasks
		if len(tasks) != 1 || tasks[0].ID == victim || tasks[0].State != "TASK_RUNNING" || !*tasks[0].Healthy {
			t.Errorf("after the kill: tasks %+v, want one healthy replacement", tasks)
		}
	})
}

// TestHealthyAgainStopsChecks: a task made healthy before its failures
// add up keeps running, and its failures count from zero again.
func TestHealthyAgainStopsChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := New(Options{StagingDelay: -1, HealthDelay: -1, HealthCheckInterval: time.Second})
		defer sim.Close()
		serve(sim, http.MethodPost, "/v2/apps", `{"id":"/web","healthChecks":[{"maxConsecutiveFailures":1}]}`)
		synctest.Wait()
		victim := sim.State().Apps[0].Tasks[0].ID
		events := frames(sim)
		_ = sim.SetTaskHealth(victim, false)
		_ = sim.SetTaskHealth(victim, true)
		time.Sleep(time.Hour)
		synctest.Wait()
		if types, _ := drain(t, events); !slices.Equal(types, []string{"failed_health_check_event", "health_status_changed_event", "health_status_changed_event"}) {
			t.Errorf("events %v", types)
		}
		if tasks := sim.State().Apps[0].Tasks; len(tasks) != 1 || tasks[0].ID != victim || !*tasks[0].Healthy {
			t.Errorf("tasks %+v", tasks)
		}
	})
}

// TestUpdateApps: PUT /v2/apps with an array changes and creates apps in
// one deployment, publishes no api_post_event, and changes nothing while a
// deployment holds one of them.
func TestUpdateApps(t *testing.T) {
	f := start(t, fast())
	if _, err := f.client.CreateApplication(webApp("/a", 1, nil)); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	stream := openStream(t, f.srv.URL, "")
	resp := postJSON(t, http.MethodPut, f.srv.URL+"/v2/apps", `[{"id":"/a","instances":2},{"id":"b","instances":1,"labels":{"x":"y"}}]`)
	body, _ := io.ReadAll(resp.Body)
	var id marathon.DeploymentID
	if err := json.Unmarshal(body, &id); resp.StatusCode != http.StatusOK || err != nil || id.DeploymentID == "" || id.Version == "" {
		t.Fatalf("PUT /v2/apps: %s %s", resp.Status, body)
	}
	got := stream.until(t, "deployment_success")
	if done := got[len(got)-1].data["id"]; done != id.DeploymentID {
		t.Errorf("deployment_success for %v, want %s", done, id.DeploymentID)
	}
	for _, fr := range got {
		if fr.event == "api_post_event" {
			t.Errorf("api_post_event on PUT /v2/apps")
		}
	}
	steps := got[2].data["plan"].(map[string]any)["steps"].([]any)
	if got[1].event != "group_change_success" || len(steps) != 2 {
		t.Errorf("events %v, steps %v", types(got), steps)
	}
	apps := appsWithTasks(t, f.client)
	if len(apps["/a"].Tasks) != 2 || len(apps["/b"].Tasks) != 1 || (*apps["/b"].Labels)["x"] != "y" {
		t.Errorf("apps after the update: %+v", apps)
	}

}

// TestUpdateAppsLocked: while a deployment holds one of the apps, PUT
// /v2/apps changes nothing without force, and everything with it.
func TestUpdateAppsLocked(t *testing.T) {
	f := start(t, Options{StagingDelay: time.Hour}) // the create's deployment stays in progress
	if _, err := f.client.CreateApplication(webApp("/a", 1, nil)); err != nil {
		t.Fatal(err)
	}
	update := `[{"id":"/b","instances":1},{"id":"/a","instances":2}]`
	resp := postJSON(t, http.MethodPut, f.srv.URL+"/v2/apps", update)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("PUT while locked: %s", resp.Status)
	}
	if _, err := f.client.Application("/b"); err == nil {
		t.Errorf("/b created by a refused update")
	}
	resp = postJSON(t, http.MethodPut, f.srv.URL+"/v2/apps?force=true", update)
	var id marathon.DeploymentID
	if err := json.NewDecoder(resp.Body).Decode(&id); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("PUT with force: %s %v", resp.Status, err)
	}
	deployments, err := f.client.Deployments()
	if err != nil || len(deployments) != 1 || deployments[0].ID != id.DeploymentID ||
		!slices.Equal(deployments[0].AffectedApps, []string{"/b", "/a"}) {
		t.Errorf("deployments %+v %v, want one for /b and /a", deployments, err)
	}
	apps := appsWithTasks(t, f.client)
	if *apps["/a"].Instances != 2 || *apps["/b"].Instances != 1 {
		t.Errorf("after the forced update: %+v", apps)
	}
	if resp := postJSON(t, http.MethodPut, f.srv.URL+"/v2/apps", `{"id":"/c"}`); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT /v2/apps with an object: %s", resp.Status)
	}
}
