package marathonsim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/internal/poll"
)

func get(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestDropStreamsReconnects(t *testing.T) {
	f := start(t, Options{StagingDelay: -1, SSERetry: 10 * time.Millisecond})
	events, err := f.client.AddEventsListener(marathon.EventIDStreamAttached)
	if err != nil {
		t.Fatal(err)
	}
	defer f.client.RemoveEventsListener(events)
	<-events // our own attach
	if n := f.sim.DropStreams(); n != 1 {
		t.Fatalf("dropped %d streams, want 1", n)
	}
	select {
	case <-events: // eventsource reconnected after retry: 10ms
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnect after DropStreams")
	}
}

func TestRefuseStreams(t *testing.T) {
	f := start(t, fast())
	f.sim.RefuseStreams(true)
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/v2/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("refused stream: %s", resp.Status)
	}
	if _, err := f.client.AddEventsListener(marathon.EventIDStreamAttached); err == nil {
		t.Fatal("AddEventsListener succeeded while streams are refused")
	}
	f.sim.RefuseStreams(false)
	openStream(t, f.srv.URL, "")
}

func TestFailREST(t *testing.T) {
	f := start(t, fast())
	f.sim.FailREST(RESTFault{Count: 2})
	if resp := get(t, f.srv.URL+"/ping"); resp.StatusCode != http.StatusOK {
		t.Fatalf("/ping failed without IncludePing: %s", resp.Status)
	}
	if resp := get(t, f.srv.URL+"/v2/apps"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("first: %s", resp.Status)
	}
	if _, err := f.client.Applications(nil); !errors.Is(err, marathon.ErrMarathonDown) {
		t.Fatalf("go-marathon after 5xx: %v, want ErrMarathonDown", err)
	}
	// go-marathon's /ping brings the member back; then calls work again.
	if err := poll.Until(context.Background(), "go-marathon to recover", 10*time.Second, 10*time.Millisecond, func() error {
		_, err := f.client.Applications(nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f.sim.FailREST(RESTFault{Count: 1, Status: http.StatusInternalServerError, IncludePing: true})
	if resp := get(t, f.srv.URL+"/ping"); resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("/ping with IncludePing: %s", resp.Status)
	}
	if resp := get(t, f.srv.URL+"/v2/apps"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the count: %s", resp.Status)
	}
}

func TestDropEvents(t *testing.T) {
	f := start(t, fast())
	stream := openStream(t, f.srv.URL, "")
	stream.next(t) // attached
	f.sim.DropEvents(2)
	postJSON(t, http.MethodPost, f.srv.URL+"/v2/apps", `{"id":"/x","instances":0}`)
	if got := stream.next(t); got.event != "deployment_info" {
		t.Fatalf("first event after dropping api_post_event and group_change_success: %s", got.event)
	}
	if fl := f.sim.Faults(); fl.DroppedEvents != 2 || fl.DropEvents != 0 {
		t.Fatalf("faults %+v", fl)
	}
}

func TestDelay(t *testing.T) {
	f := start(t, fast())
	f.sim.SetDelay(time.Hour) // a hung master
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/v2/apps", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("answered despite the delay: %s", resp.Status)
	}
	f.sim.SetDelay(0)
	if resp := get(t, f.srv.URL+"/v2/apps"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after clearing: %s", resp.Status)
	}
}

func TestTaskHealth(t *testing.T) {
	f := start(t, fast())
	app := webApp("/hc", 1, nil)
	app.AddHealthCheck(*marathon.NewDefaultHealthCheck())
	if _, err := f.client.CreateApplication(app); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	got, err := f.client.Application("/hc")
	if err != nil || len(got.Tasks) != 1 || len(got.Tasks[0].HealthCheckResults) != 1 || !got.Tasks[0].HealthCheckResults[0].Alive {
		t.Fatalf("healthy app: %+v %v", got, err)
	}
	stream := openStream(t, f.srv.URL, "?event_type=health_status_changed_event")
	if err := f.sim.SetTaskHealth(got.Tasks[0].ID, false); err != nil {
		t.Fatal(err)
	}
	if ev := stream.next(t); ev.data["alive"] != false || ev.data["appId"] != "/hc" {
		t.Fatalf("event %v", ev.data)
	}
	got, _ = f.client.Application("/hc")
	if got.Tasks[0].HealthCheckResults[0].Alive || got.TasksUnhealthy != 1 {
		t.Fatalf("after unhealthy: %+v", got)
	}
	if ok, _ := f.client.ApplicationOK("/hc"); ok {
		t.Fatal("ApplicationOK with an unhealthy task")
	}
	if err := f.sim.SetTaskHealth(got.Tasks[0].ID, true); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.client.ApplicationOK("/hc"); !ok {
		t.Fatalf("ApplicationOK after healthy: %v", err)
	}
	if err := f.sim.SetTaskHealth("nope.x", true); err == nil {
		t.Fatal("unknown task accepted")
	}
}

func TestKillTaskAndReset(t *testing.T) {
	f := start(t, Options{StagingDelay: -1, RestartBackoff: -1, Apps: []byte(`{"apps":[{"id":"/base","instances":1,"tasks":[{"id":"base.1","host":"h","state":"TASK_RUNNING","ports":[1]}]}]}`)})
	if err := f.sim.KillTask("base.1", ""); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	app, err := f.client.Application("/base")
	if err != nil || len(app.Tasks) != 1 || app.Tasks[0].ID == "base.1" || app.LastTaskFailure == nil {
		t.Fatalf("after kill: %+v %v", app, err)
	}
	if _, err := f.client.CreateApplication(webApp("/extra", 1, nil)); err != nil {
		t.Fatal(err)
	}
	f.sim.FailREST(RESTFault{Count: 5})
	f.sim.Reset()
	st := f.sim.State()
	if len(st.Apps) != 1 || st.Apps[0].ID != "/base" || st.Apps[0].Tasks[0].ID != "base.1" || st.Faults.FailREST != 0 {
		t.Fatalf("after reset: %+v", st)
	}
}

// TestAdminAPI drives every /_sim/ endpoint over HTTP.
func TestAdminAPI(t *testing.T) {
	f := start(t, Options{StagingDelay: -1, Apps: []byte(`{"apps":[{"id":"/a","healthChecks":[{"protocol":"HTTP"}],"tasks":[{"id":"a.1","host":"h","state":"TASK_RUNNING"}]}]}`)})
	tests := []struct {
		path, body string
		check      func(State) bool
	}{
		{"refuse-streams?on=true", "", func(s State) bool { return s.Faults.RefuseStreams }},
		{"refuse-streams", `{"on":false}`, func(s State) bool { return !s.Faults.RefuseStreams }},
		{"fail-rest?n=3&status=502", "", func(s State) bool { return s.Faults.FailREST == 3 && s.Faults.FailStatus == 502 }},
		{"fail-rest", `{"n":0}`, func(s State) bool { return s.Faults.FailREST == 0 }},
		{"drop-events?n=4", "", func(s State) bool { return s.Faults.DropEvents == 4 }},
		{"delay?ms=7", "", func(s State) bool { return s.Faults.DelayMS == 7 }},
		{"delay", `{"ms":0}`, func(s State) bool { return s.Faults.DelayMS == 0 }},
		{"task/unhealthy?task=a.1", "", func(s State) bool { return !*s.Apps[0].Tasks[0].Healthy }},
		{"task/healthy", `{"task":"a.1"}`, func(s State) bool { return *s.Apps[0].Tasks[0].Healthy }},
		{"task/kill?task=a.1&message=boom", "", func(s State) bool { return len(s.Apps[0].Tasks) == 0 || s.Apps[0].Tasks[0].ID != "a.1" }},
		{"drop-streams", "", func(s State) bool { return s.Streams == 0 }},
		{"reset", "", func(s State) bool { return s.Apps[0].Tasks[0].ID == "a.1" && s.Faults.DropEvents == 0 }},
	}
	for _, tt := range tests {
		resp := postJSON(t, http.MethodPost, f.srv.URL+"/_sim/"+tt.path, tt.body)
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s: %s %s", tt.path, resp.Status, b)
		}
		if st := f.sim.State(); !tt.check(st) {
			t.Errorf("%s: state %+v", tt.path, st)
		}
	}
	if resp := postJSON(t, http.MethodPost, f.srv.URL+"/_sim/task/kill?task=nope", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("kill unknown task: %s", resp.Status)
	}
	resp := get(t, f.srv.URL+"/_sim/state")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("state: %s", resp.Status)
	}
}

func TestAuth(t *testing.T) {
	f := start(t, Options{StagingDelay: -1, User: "u", Password: "p"})
	// Marathon's --http_credentials protects /ping too, and challenges.
	for _, path := range []string{"/ping", "/v2/apps", "/v2/events"} {
		resp := get(t, f.srv.URL+path)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="Mesosphere"` {
			t.Errorf("%s without auth: %s, WWW-Authenticate %q", path, resp.Status, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if _, err := f.client.Ping(); err != nil { // the fixture client sends basic auth
		t.Errorf("ping with auth: %v", err)
	}
	if _, err := f.client.Applications(nil); err != nil {
		t.Fatalf("with auth: %v", err)
	}
	if resp := get(t, f.srv.URL+"/_sim/state"); resp.StatusCode != http.StatusOK {
		t.Errorf("/_sim/state: %s", resp.Status)
	}
	tok := start(t, Options{Token: "secret"})
	if _, err := tok.client.Applications(nil); err != nil { // DC/OS: /marathon prefix + token
		t.Fatalf("with token: %v", err)
	}
	if resp := get(t, tok.srv.URL+"/ping"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/ping without a token: %s", resp.Status)
	}
}
