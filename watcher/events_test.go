package watcher

import (
	"slices"
	"testing"

	marathon "github.com/gambol99/go-marathon"
)

// event decodes an event body the way go-marathon does for the SSE stream.
func event(t *testing.T, body string) *marathon.Event {
	t.Helper()
	var kind marathon.EventType
	if err := jsonUnmarshal(body, &kind); err != nil {
		t.Fatalf("event %s: %v", body, err)
	}
	ev, err := marathon.GetEvent(kind.EventType)
	if err != nil {
		t.Fatalf("event %s: %v", body, err)
	}
	if err := jsonUnmarshal(body, ev.Event); err != nil {
		t.Fatalf("event %s: %v", body, err)
	}
	return ev
}

func TestEventDirtyApps(t *testing.T) {
	const plan = `{"id":"p1","steps":[{"actions":[{"action":"StartApplication","app":"/shop/web"}]},{"actions":[{"action":"ScaleApplication","app":"/shop/web"},{"action":"ScaleApplication","app":"/db"}]}]}`
	tests := []struct {
		name     string
		before   []string // events fed first (deployment_info notes plans)
		body     string
		wantApps []string
		wantFull bool
	}{
		{name: "stream attached", body: `{"eventType":"event_stream_attached","remoteAddress":"10.0.0.9"}`, wantFull: true},
		{name: "status running", body: `{"eventType":"status_update_event","taskId":"shop_web.1","taskStatus":"TASK_RUNNING","appId":"/shop/web"}`, wantApps: []string{"/shop/web"}},
		{name: "status killed", body: `{"eventType":"status_update_event","taskId":"web.1","taskStatus":"TASK_KILLED","appId":"/web"}`, wantApps: []string{"/web"}},
		{name: "relative app id", body: `{"eventType":"status_update_event","appId":"web"}`, wantApps: []string{"/web"}},
		{name: "health changed 1.4 (no taskId)", body: `{"eventType":"health_status_changed_event","appId":"/web","instanceId":"web.marathon-1","alive":false}`, wantApps: []string{"/web"}},
		{name: "failed health check", body: `{"eventType":"failed_health_check_event","appId":"/web","taskId":"web.1","healthCheck":{"path":"/"}}`, wantApps: []string{"/web"}},
		{name: "add health check", body: `{"eventType":"add_health_check_event","appId":"/web"}`, wantApps: []string{"/web"}},
		{name: "remove health check", body: `{"eventType":"remove_health_check_event","appId":"/web"}`, wantApps: []string{"/web"}},
		{name: "app terminated", body: `{"eventType":"app_terminated_event","appId":"/shop/web"}`, wantApps: []string{"/shop/web"}},
		{name: "api post with definition", body: `{"eventType":"api_post_event","uri":"/v2/apps/x","appDefinition":{"id":"/shop/web","labels":{"OAK_NAMES":"a.example.com"}}}`, wantApps: []string{"/shop/web"}},
		{name: "api post uri only", body: `{"eventType":"api_post_event","uri":"/v2/apps/shop/web?force=true"}`, wantApps: []string{"/shop/web"}},
		{name: "api post multi-app", body: `{"eventType":"api_post_event","uri":"/v2/apps"}`, wantFull: true},
		{name: "deployment info", body: `{"eventType":"deployment_info","plan":` + plan + `,"currentStep":{"actions":[{"action":"ScaleApplication","app":"/db"}]}}`, wantApps: []string{"/db", "/shop/web"}},
		{name: "deployment step success", body: `{"eventType":"deployment_step_success","plan":` + plan + `}`, wantApps: []string{"/db", "/shop/web"}},
		{name: "deployment step failure 1.1.1 format", body: `{"eventType":"deployment_step_failure","plan":{"id":"p2","steps":[{"actions":[{"type":"StopApplication","app":"/old"}]}]}}`, wantApps: []string{"/old"}},
		{name: "deployment of pods only", body: `{"eventType":"deployment_info","plan":{"id":"p3","steps":[{"actions":[{"action":"StartPod","pod":"/p"}]}]}}`},
		{
			name:     "deployment success of a noted plan",
			before:   []string{`{"eventType":"deployment_info","plan":` + plan + `}`},
			body:     `{"eventType":"deployment_success","id":"p1"}`,
			wantApps: []string{"/db", "/shop/web"},
		},
		{
			name:     "deployment failed of a noted plan",
			before:   []string{`{"eventType":"deployment_info","plan":` + plan + `}`},
			body:     `{"eventType":"deployment_failed","id":"p1"}`,
			wantApps: []string{"/db", "/shop/web"},
		},
		{name: "deployment success of an unknown plan", body: `{"eventType":"deployment_success","id":"zz"}`, wantFull: true},
		{name: "id with query", body: `{"eventType":"status_update_event","appId":"/web?x=1"}`, wantFull: true},
		{name: "id with dot-dot", body: `{"eventType":"status_update_event","appId":"/a/../b"}`, wantFull: true},
		{name: "id upper case", body: `{"eventType":"app_terminated_event","appId":"/Web"}`, wantFull: true},
		{name: "id empty", body: `{"eventType":"status_update_event","appId":""}`, wantFull: true},
		{name: "id percent", body: `{"eventType":"status_update_event","appId":"/a%2fb"}`, wantFull: true},
		{name: "group change is not subscribed", body: `{"eventType":"group_change_success","groupId":"/shop"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newEventMapper()
			for _, b := range tt.before {
				m.dirty(event(t, b))
			}
			apps, full := m.dirty(event(t, tt.body))
			slices.Sort(apps)
			if !slices.Equal(apps, tt.wantApps) || full != tt.wantFull {
				t.Errorf("dirty = %q, full=%v; want %q, full=%v", apps, full, tt.wantApps, tt.wantFull)
			}
		})
	}
}

func TestEventFilterCoversMappedEvents(t *testing.T) {
	for _, name := range []string{
		"api_post_event", "status_update_event", "event_stream_attached", "add_health_check_event",
		"remove_health_check_event", "failed_health_check_event", "health_status_changed_event",
		"deployment_info", "deployment_step_success", "deployment_step_failure", "deployment_success",
		"deployment_failed", "app_terminated_event",
	} {
		ev, err := marathon.GetEvent(name)
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID&eventFilter == 0 {
			t.Errorf("%s is mapped but not subscribed", name)
		}
	}
}

func TestDeploymentPlansAreBounded(t *testing.T) {
	m := newEventMapper()
	for i := range 3 * maxTrackedPlans {
		m.dirty(&marathon.Event{Event: &marathon.EventDeploymentInfo{Plan: &marathon.DeploymentPlan{
			ID: string(rune('a'+i%26)) + itoa(i), Steps: []*marathon.StepActions{stepFor("/web")},
		}}})
		if len(m.plans) > maxTrackedPlans {
			t.Fatalf("%d plans tracked", len(m.plans))
		}
	}
}

func TestDirtySet(t *testing.T) {
	tests := []struct {
		name      string
		marks     [][]string // nil entry = full
		limit     int
		max       int        // apps per take
		wantTakes [][]string // successive takes until empty
		wantFull  bool       // the first take is a full resync
	}{
		{name: "nothing", limit: 4, max: 4},
		{name: "coalesces repeats", marks: [][]string{{"/a"}, {"/a"}, {"/b", "/a"}}, limit: 4, max: 4, wantTakes: [][]string{{"/a", "/b"}}},
		{name: "full wins", marks: [][]string{{"/a"}, nil, {"/b"}}, limit: 4, max: 4, wantFull: true},
		{name: "over the limit becomes full", marks: [][]string{{"/a", "/b"}, {"/c"}}, limit: 2, max: 4, wantFull: true},
		{name: "batches of max", marks: [][]string{{"/a", "/b", "/c"}, {"/d", "/e"}}, limit: 8, max: 2, wantTakes: [][]string{{}, {}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDirtySet(tt.limit)
			var marked []string
			for _, m := range tt.marks {
				d.mark(m, m == nil)
				marked = append(marked, m...)
			}
			if tt.wantFull {
				if apps, full := d.take(tt.max); !full || len(apps) != 0 {
					t.Fatalf("take = %q, %v; want a full resync", apps, full)
				}
			} else {
				var all []string
				for i, want := range tt.wantTakes {
					apps, full := d.take(tt.max)
					if full || len(apps) == 0 || len(apps) > tt.max {
						t.Fatalf("take %d = %q, %v; want 1..%d apps", i, apps, full, tt.max)
					}
					if len(want) > 0 {
						slices.Sort(apps)
						if !slices.Equal(apps, want) {
							t.Errorf("take %d = %q, want %q", i, apps, want)
						}
					}
					if i < len(tt.wantTakes)-1 && len(d.kick) == 0 {
						t.Errorf("take %d left work but no kick", i)
					}
					all = append(all, apps...)
				}
				slices.Sort(all)
				slices.Sort(marked)
				if tt.wantTakes != nil && !slices.Equal(all, slices.Compact(marked)) {
					t.Errorf("takes returned %q, want every marked app once: %q", all, slices.Compact(marked))
				}
			}
			if apps, full := d.take(tt.max); len(apps) != 0 || full {
				t.Errorf("final take = %q, %v; want empty", apps, full)
			}
			if !d.since.IsZero() {
				t.Error("empty set keeps a batch start time")
			}
		})
	}
}

func stepFor(app string) *marathon.StepActions {
	s := &marathon.StepActions{}
	s.Actions = append(s.Actions, struct {
		Action string `json:"action"`
		Type   string `json:"type"`
		App    string `json:"app"`
	}{Action: "ScaleApplication", App: app})
	return s
}

// TestStreamEventTypes: the events asked of Marathon by name are exactly the
// ones go-marathon's listener bitmask lets through.
func TestStreamEventTypes(t *testing.T) {
	ids := map[string]int{
		"api_post_event":              marathon.EventIDAPIRequest,
		"status_update_event":         marathon.EventIDStatusUpdate,
		"event_stream_attached":       marathon.EventIDStreamAttached,
		"add_health_check_event":      marathon.EventIDAddHealthCheck,
		"remove_health_check_event":   marathon.EventIDRemoveHealthCheck,
		"failed_health_check_event":   marathon.EventIDFailedHealthCheck,
		"health_status_changed_event": marathon.EventIDChangedHealthCheck,
		"deployment_info":             marathon.EventIDDeploymentInfo,
		"deployment_step_success":     marathon.EventIDDeploymentStepSuccess,
		"deployment_step_failure":     marathon.EventIDDeploymentStepFailed,
		"deployment_success":          marathon.EventIDDeploymentSuccess,
		"deployment_failed":           marathon.EventIDDeploymentFailed,
		"app_terminated_event":        marathon.EventIDAppTerminated,
	}
	mask := 0
	for _, name := range streamEventTypes {
		id, ok := ids[name]
		if !ok {
			t.Errorf("unknown event type %q", name)
		}
		mask |= id
	}
	if mask != eventFilter {
		t.Errorf("event types give mask %b, eventFilter is %b", mask, eventFilter)
	}
}
