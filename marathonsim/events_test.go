package marathonsim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// sseFrame is one parsed event stream frame.
type sseFrame struct {
	lines []string // the frame's lines without the blank terminator
	event string
	data  map[string]any
}

// sseReader reads a raw /v2/events stream strictly, frame by frame.
type sseReader struct {
	frames     chan sseFrame
	heartbeats chan struct{}
	errs       chan error
}

// parseFrames reads frames from r until EOF. Blank lines outside a frame
// are heartbeats.
func parseFrames(r io.Reader, frame func(sseFrame), heartbeat func()) error {
	br := bufio.NewReader(r)
	var lines []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSuffix(line, "\n")
		if line != "" {
			lines = append(lines, line)
			continue
		}
		if len(lines) == 0 {
			heartbeat()
			continue
		}
		f := sseFrame{lines: lines}
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "event: "); ok {
				f.event = v
			}
			if v, ok := strings.CutPrefix(l, "data: "); ok {
				if err := json.Unmarshal([]byte(v), &f.data); err != nil {
					return fmt.Errorf("data line %q: %w", v, err)
				}
			}
		}
		frame(f)
		lines = nil
	}
}

// openStream connects to /v2/events?query like a raw SSE client.
func openStream(t *testing.T, base, query string) *sseReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/events"+query, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /v2/events: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		resp.Body.Close()
		t.Fatalf("GET /v2/events: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &sseReader{frames: make(chan sseFrame, 1024), heartbeats: make(chan struct{}, 1024), errs: make(chan error, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.errs <- parseFrames(resp.Body,
			func(f sseFrame) { s.frames <- f },
			func() {
				select {
				case s.heartbeats <- struct{}{}:
				default:
				}
			})
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return s
}

// next returns the next frame; it fails the test when the stream ends or
// stays silent for long.
func (s *sseReader) next(t *testing.T) sseFrame {
	t.Helper()
	select {
	case f := <-s.frames:
		return f
	case err := <-s.errs:
		t.Fatalf("stream ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseFrame{}
}

// until collects frames up to and including the first of type last.
func (s *sseReader) until(t *testing.T, last string) []sseFrame {
	t.Helper()
	var out []sseFrame
	for {
		f := s.next(t)
		out = append(out, f)
		if f.event == last {
			return out
		}
	}
}

func types(frames []sseFrame) []string {
	var out []string
	for _, f := range frames {
		out = append(out, f.event)
	}
	return out
}

// without drops the 1.4-only instance events (go-marathon drops them too)
// so that sequences can be compared exactly.
func without(frames []sseFrame, drop ...string) []sseFrame {
	return slices.DeleteFunc(slices.Clone(frames), func(f sseFrame) bool { return slices.Contains(drop, f.event) })
}

func status(f sseFrame) string {
	s, _ := f.data["taskStatus"].(string)
	return s
}

// statuses is types with each status_update_event shown as its task status.
func statuses(frames []sseFrame) []string {
	out := types(frames)
	for i, f := range frames {
		if f.event == "status_update_event" {
			out[i] = status(f)
		}
	}
	return out
}

func postJSON(t *testing.T, method, url, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestEventSequences checks the wire order of events for create, scale
// down, label change, task failure and delete against docs/marathon-api.md §2.5.
func TestEventSequences(t *testing.T) {
	f := start(t, fast())
	stream := openStream(t, f.srv.URL, "")
	if first := stream.next(t); first.event != "event_stream_attached" {
		t.Fatalf("first event %q", first.event)
	}
	hc := `"healthChecks":[{"protocol":"HTTP","path":"/","portIndex":0}]`
	app := `{"id":"/shop/web","instances":2,"labels":{"a":"1"},` + hc + `,"container":{"type":"DOCKER","docker":{"image":"nginx","network":"BRIDGE","portMappings":[{"containerPort":80}]}}}`

	t.Run("create", func(t *testing.T) {
		if resp := postJSON(t, http.MethodPost, f.srv.URL+"/v2/apps", app); resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %s", resp.Status)
		}
		got := stream.until(t, "deployment_success")
		head := types(got[:5])
		want := []string{"api_post_event", "group_change_success", "deployment_info", "deployment_step_success", "deployment_info"}
		if !slices.Equal(head, want) {
			t.Fatalf("create head %v, want %v", head, want)
		}
		if a := got[2].data["currentStep"].(map[string]any)["actions"].([]any)[0].(map[string]any); a["action"] != "StartApplication" || a["app"] != "/shop/web" {
			t.Errorf("first step %v", a)
		}
		plan := got[2].data["plan"].(map[string]any)
		if plan["original"] == nil || plan["target"] == nil || len(plan["steps"].([]any)) != 2 {
			t.Errorf("plan %v", plan)
		}
		tail := types(got[len(got)-2:])
		if !slices.Equal(tail, []string{"deployment_step_success", "deployment_success"}) {
			t.Errorf("create tail %v", tail)
		}
		// Per task: STAGING before RUNNING before alive.
		seen := map[string][]string{}
		for _, fr := range got[5 : len(got)-2] {
			switch fr.event {
			case "status_update_event":
				id := fr.data["taskId"].(string)
				seen[id] = append(seen[id], status(fr))
				if ips := fr.data["ipAddresses"].([]any); len(ips) != 1 {
					t.Errorf("status update ipAddresses %v", ips)
				}
			case "health_status_changed_event":
				id := strings.Replace(fr.data["instanceId"].(string), ".marathon-", ".", 1)
				seen[id] = append(seen[id], fmt.Sprint("alive=", fr.data["alive"]))
			case "instance_changed_event":
			default:
				t.Errorf("unexpected %s during scale", fr.event)
			}
		}
		if len(seen) != 2 {
			t.Fatalf("tasks seen %v", seen)
		}
		for id, states := range seen {
			if !slices.Equal(states, []string{"TASK_STAGING", "TASK_RUNNING", "alive=true"}) {
				t.Errorf("task %s: %v", id, states)
			}
		}
	})

	t.Run("scale down", func(t *testing.T) {
		postJSON(t, http.MethodPut, f.srv.URL+"/v2/apps/shop/web", `{"id":"/shop/web","instances":1,"ports":null,"dependencies":null}`)
		got := statuses(without(stream.until(t, "deployment_success"), "instance_changed_event"))
		want := []string{"api_post_event", "group_change_success", "deployment_info", "TASK_KILLING", "TASK_KILLED", "deployment_step_success", "deployment_success"}
		if !slices.Equal(got, want) {
			t.Fatalf("scale down %v, want %v", got, want)
		}
	})

	t.Run("label change", func(t *testing.T) {
		postJSON(t, http.MethodPut, f.srv.URL+"/v2/apps/shop/web", `{"labels":{"a":"2"},"ports":null,"dependencies":null}`)
		got := without(stream.until(t, "deployment_success"), "instance_changed_event")
		seq := statuses(got)
		want := []string{"api_post_event", "group_change_success", "deployment_info", "TASK_STAGING", "TASK_RUNNING", "health_status_changed_event", "TASK_KILLING", "TASK_KILLED", "deployment_step_success", "deployment_success"}
		if !slices.Equal(seq, want) {
			t.Fatalf("label change %v, want %v", seq, want)
		}
		if def := got[0].data["appDefinition"].(map[string]any); def["labels"].(map[string]any)["a"] != "2" {
			t.Errorf("api_post_event appDefinition %v", def)
		}
	})

	t.Run("task failure", func(t *testing.T) {
		id := f.sim.State().Apps[0].Tasks[0].ID
		if err := f.sim.KillTask(id, "OOM"); err != nil {
			t.Fatal(err)
		}
		failed := stream.next(t)
		for failed.event == "instance_changed_event" {
			failed = stream.next(t)
		}
		if status(failed) != "TASK_FAILED" || failed.data["message"] != "OOM" || failed.data["taskId"] != id {
			t.Fatalf("failure event %v", failed.data)
		}
		var seq []string
		for len(seq) < 3 {
			fr := stream.next(t)
			switch fr.event {
			case "status_update_event":
				seq = append(seq, status(fr))
			case "health_status_changed_event":
				seq = append(seq, "alive")
			case "instance_changed_event":
			default:
				t.Fatalf("unexpected %s after a task failure", fr.event)
			}
		}
		if !slices.Equal(seq, []string{"TASK_STAGING", "TASK_RUNNING", "alive"}) {
			t.Errorf("replacement %v", seq)
		}
	})

	t.Run("delete", func(t *testing.T) {
		f.settle(t)
		postJSON(t, http.MethodDelete, f.srv.URL+"/v2/apps/shop/web", "")
		got := statuses(without(stream.until(t, "deployment_success"), "instance_changed_event"))
		want := []string{"group_change_success", "deployment_info", "app_terminated_event", "TASK_KILLING", "TASK_KILLED", "deployment_step_success", "deployment_success"}
		if !slices.Equal(got, want) {
			t.Fatalf("delete %v, want %v", got, want)
		}
	})
}

// TestGoMarathonListener checks that go-marathon's SSE listener receives
// the event kinds a watcher subscribes to, decoded.
func TestGoMarathonListener(t *testing.T) {
	f := start(t, fast())
	events, err := f.client.AddEventsListener(marathon.EventIDStreamAttached | marathon.EventIDAPIRequest |
		marathon.EventIDStatusUpdate | marathon.EventIDDeploymentInfo | marathon.EventIDDeploymentSuccess |
		marathon.EventIDAppTerminated | marathon.EventIDChangedHealthCheck)
	if err != nil {
		t.Fatalf("AddEventsListener: %v", err)
	}
	defer f.client.RemoveEventsListener(events)
	want := map[string]bool{
		"event_stream_attached": false, "api_post_event": false, "status_update_event": false,
		"deployment_info": false, "deployment_success": false, "app_terminated_event": false,
	}
	if _, err := f.client.CreateApplication(webApp("/web", 1, nil)); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	if _, err := f.client.DeleteApplication("/web", false); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for slices.Contains(mapValues(want), false) {
		select {
		case ev := <-events:
			want[ev.Name] = true
			switch e := ev.Event.(type) {
			case *marathon.EventAPIRequest:
				if e.AppDefinition == nil || e.AppDefinition.ID != "/web" {
					t.Errorf("api_post_event %+v", e)
				}
			case *marathon.EventStatusUpdate:
				if e.AppID != "/web" || len(e.IPAddresses) != 1 || !strings.HasPrefix(e.TaskID, "web.") {
					t.Errorf("status_update_event %+v", e)
				}
			case *marathon.EventDeploymentInfo:
				if e.Plan == nil || e.CurrentStep == nil || len(e.Plan.Steps) == 0 {
					t.Errorf("deployment_info %+v", e)
				}
			}
		case <-timeout:
			t.Fatalf("events seen: %v", want)
		}
	}
}

func mapValues(m map[string]bool) []bool {
	var out []bool
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestEventStreamProtocol(t *testing.T) {
	f := start(t, Options{StagingDelay: -1, Heartbeat: 5 * time.Millisecond})

	t.Run("needs Accept text/event-stream", func(t *testing.T) {
		resp, err := http.Get(f.srv.URL + "/v2/events")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %s, want 405 as Jetty's servlet", resp.Status)
		}
	})

	t.Run("heartbeat", func(t *testing.T) {
		s := openStream(t, f.srv.URL, "")
		select {
		case <-s.heartbeats:
		case <-time.After(10 * time.Second):
			t.Fatal("no heartbeat")
		}
	})

	t.Run("event_type filter", func(t *testing.T) {
		s := openStream(t, f.srv.URL, "?event_type=deployment_success&event_type=app_terminated_event")
		postJSON(t, http.MethodPost, f.srv.URL+"/v2/apps", `{"id":"/filtered","instances":1}`)
		if got := s.next(t); got.event != "deployment_success" {
			t.Fatalf("first filtered event %q", got.event)
		}
		postJSON(t, http.MethodDelete, f.srv.URL+"/v2/apps/filtered", "")
		got := []string{s.next(t).event, s.next(t).event}
		if !slices.Equal(got, []string{"app_terminated_event", "deployment_success"}) {
			t.Fatalf("filtered %v", got)
		}
	})

	t.Run("detached", func(t *testing.T) {
		watcher := openStream(t, f.srv.URL, "?event_type=event_stream_detached")
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/v2/events", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		got := watcher.next(t)
		if got.event != "event_stream_detached" || got.data["remoteAddress"] != "127.0.0.1" {
			t.Fatalf("got %v", got)
		}
	})
}

// TestSlowClientDropped checks that a full client buffer disconnects that
// client and never blocks publishing.
func TestSlowClientDropped(t *testing.T) {
	b := newBroker(2)
	slow := &client{frames: make(chan []byte, 2), gone: make(chan struct{})}
	b.attach(slow, []byte(`{}`))
	for i := 0; i < 5; i++ {
		b.publish("status_update_event", []byte(`{}`))
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("slow client not dropped")
	}
	if b.count() != 0 {
		t.Fatalf("%d clients left", b.count())
	}
}

// planApps decodes the plan of a deployment_info or deployment_step_success
// frame as go-marathon does and lists the app ids of its root groups,
// sorted.
func planApps(t *testing.T, fr sseFrame) (plan *marathon.DeploymentPlan, original, target []string) {
	t.Helper()
	var e marathon.EventDeploymentInfo
	if err := json.Unmarshal([]byte(strings.TrimPrefix(fr.lines[1], "data: ")), &e); err != nil {
		t.Fatalf("%s does not decode as go-marathon's EventDeploymentInfo: %v", fr.event, err)
	}
	if e.Plan == nil || e.Plan.Original == nil || e.Plan.Target == nil {
		t.Fatalf("%s: plan %+v", fr.event, e.Plan)
	}
	var walk func(g *marathon.Group, ids *[]string)
	walk = func(g *marathon.Group, ids *[]string) {
		for _, a := range g.Apps {
			*ids = append(*ids, a.ID)
		}
		for _, sub := range g.Groups {
			walk(sub, ids)
		}
	}
	walk(e.Plan.Original, &original)
	walk(e.Plan.Target, &target)
	slices.Sort(original)
	slices.Sort(target)
	return e.Plan, original, target
}

// TestPlanGroups checks what deployment plans hold with each PlanGroups:
// every app, or only the deployed one, with go-marathon decoding both.
func TestPlanGroups(t *testing.T) {
	tests := []struct {
		plan           string
		method, path   string
		body           string
		action         string
		original, want []string // app ids of the plan's root groups
	}{
		{PlanGroupsFull, http.MethodPut, "/v2/apps/a/b/web", `{"labels":{"X":"2"}}`, "RestartApplication",
			[]string{"/a/b/web", "/other"}, []string{"/a/b/web", "/other"}},
		{PlanGroupsAffected, http.MethodPut, "/v2/apps/a/b/web", `{"labels":{"X":"2"}}`, "RestartApplication",
			[]string{"/a/b/web"}, []string{"/a/b/web"}},
		{PlanGroupsAffected, http.MethodPost, "/v2/apps", `{"id":"/a/new"}`, "StartApplication",
			nil, []string{"/a/new"}},
		{PlanGroupsAffected, http.MethodDelete, "/v2/apps/a/b/web", ``, "StopApplication",
			[]string{"/a/b/web"}, nil},
		{"", http.MethodDelete, "/v2/apps/a/b/web", ``, "StopApplication",
			[]string{"/a/b/web", "/other"}, []string{"/other"}},
	}
	for _, tt := range tests {
		t.Run(tt.plan+" "+tt.method+" "+tt.path, func(t *testing.T) {
			opts := fast()
			opts.PlanGroups = tt.plan
			f := start(t, opts)
			postJSON(t, http.MethodPost, f.srv.URL+"/v2/apps", `{"id":"/a/b/web","labels":{"X":"1"}}`).Body.Close()
			postJSON(t, http.MethodPost, f.srv.URL+"/v2/apps", `{"id":"/other"}`).Body.Close()
			f.settle(t)
			stream := openStream(t, f.srv.URL, "?event_type=deployment_info&event_type=deployment_step_success")
			postJSON(t, tt.method, f.srv.URL+tt.path, tt.body).Body.Close()
			info := stream.next(t)
			for info.event != "deployment_info" {
				info = stream.next(t)
			}
			plan, original, target := planApps(t, info)
			if !slices.Equal(original, tt.original) || !slices.Equal(target, tt.want) {
				t.Errorf("plan original %v target %v, want %v and %v", original, target, tt.original, tt.want)
			}
			if len(plan.Steps) == 0 || plan.Steps[0].Actions[0].Action != tt.action {
				t.Errorf("plan steps %+v, want %s first", plan.Steps, tt.action)
			}
			step := stream.next(t)
			if step.event != "deployment_step_success" {
				t.Fatalf("after deployment_info: %s", step.event)
			}
			if again, _, _ := planApps(t, step); !reflect.DeepEqual(again, plan) {
				t.Errorf("deployment_step_success plan %+v differs from deployment_info's %+v", again, plan)
			}
		})
	}
}
