package watcher

import (
	"strings"
	"sync"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// eventFilter is the events the watcher follows, as go-marathon's event
// bitmask: every event that can change an app's labels, tasks or health,
// plus our own stream attaching. Events outside it are not decoded.
const eventFilter = marathon.EventIDAPIRequest |
	marathon.EventIDStatusUpdate |
	marathon.EventIDStreamAttached |
	marathon.EventIDAddHealthCheck |
	marathon.EventIDRemoveHealthCheck |
	marathon.EventIDFailedHealthCheck |
	marathon.EventIDChangedHealthCheck |
	marathon.EventIDDeploymentInfo |
	marathon.EventIDDeploymentStepSuccess |
	marathon.EventIDDeploymentStepFailed |
	marathon.EventIDDeploymentSuccess |
	marathon.EventIDDeploymentFailed |
	marathon.EventIDAppTerminated

// streamEventTypes are eventFilter's events by Marathon's names, asked for
// with ?event_type= on /v2/events (Marathon 1.3.7+). A Marathon that
// ignores the parameter sends everything, and eventFilter still filters.
var streamEventTypes = []string{
	"api_post_event",
	"status_update_event",
	"event_stream_attached",
	"add_health_check_event",
	"remove_health_check_event",
	"failed_health_check_event",
	"health_status_changed_event",
	"deployment_info",
	"deployment_step_success",
	"deployment_step_failure",
	"deployment_success",
	"deployment_failed",
	"app_terminated_event",
}

// maxTrackedPlans bounds the deployment plan -> apps memory. Plans are
// forgotten on deployment_success/failed; the bound only matters when those
// events are lost, and forgetting a plan costs one full resync at worst.
const maxTrackedPlans = 1024

// eventMapper turns an event into the app ids it may have changed. Events are
// hints only: the apps they name are refetched from REST, so their content
// (labels) is never trusted and their order does not matter. The exception
// is a status update that parses cleanly: the stream hands it to the sync
// loop as a taskUpdate (see tasks.go), which applies it to a known app, with
// a tombstone set against late updates, or else refetches the app.
type eventMapper struct {
	plans map[string][]string // deployment plan id -> app ids its steps touch
}

func newEventMapper() *eventMapper {
	return &eventMapper{plans: make(map[string][]string)}
}

// dirty returns the app ids an event may have changed, or full when only a
// full resync can tell (our stream reattached, an unknown deployment, an id
// that does not parse).
func (m *eventMapper) dirty(ev *marathon.Event) (apps []string, full bool) {
	if ev == nil {
		return nil, false
	}
	switch e := ev.Event.(type) {
	case *marathon.EventStreamAttached:
		// The only sign of a reconnect in v0.7.1. Other clients' attaches
		// land here too; the dirty set debounces them into one resync.
		return nil, true
	case *marathon.EventStatusUpdate:
		return oneApp(e.AppID)
	case *marathon.EventHealthCheckChanged:
		// TaskID is empty on Marathon 1.4+; the app is enough.
		return oneApp(e.AppID)
	case *marathon.EventFailedHealthCheck:
		return oneApp(e.AppID)
	case *marathon.EventAddHealthCheck:
		return oneApp(e.AppID)
	case *marathon.EventRemoveHealthCheck:
		return oneApp(e.AppID)
	case *marathon.EventAppTerminated:
		return oneApp(e.AppID)
	case *marathon.EventAPIRequest:
		if e.AppDefinition != nil && e.AppDefinition.ID != "" {
			return oneApp(e.AppDefinition.ID)
		}
		return oneApp(appFromURI(e.URI))
	case *marathon.EventDeploymentInfo:
		return m.notePlan(e.Plan, e.CurrentStep)
	case *marathon.EventDeploymentStepSuccess:
		return m.notePlan(e.Plan, e.CurrentStep)
	case *marathon.EventDeploymentStepFailure:
		return m.notePlan(e.Plan, e.CurrentStep)
	case *marathon.EventDeploymentSuccess:
		return m.finishPlan(e.ID)
	case *marathon.EventDeploymentFailed:
		return m.finishPlan(e.ID)
	}
	return nil, false
}

// notePlan marks the apps of every step of a plan (v0.7.1 decodes no plan on
// deployment_success, so the ids are remembered for that event too).
func (m *eventMapper) notePlan(plan *marathon.DeploymentPlan, current *marathon.StepActions) (apps []string, full bool) {
	seen := make(map[string]bool)
	add := func(step *marathon.StepActions) {
		if step == nil {
			return
		}
		for _, action := range step.Actions {
			if action.App == "" {
				continue // pods and ResolveArtifacts carry no app
			}
			id, ok := parseAppID(action.App)
			if !ok {
				full = true
				continue
			}
			if !seen[id] {
				seen[id] = true
				apps = append(apps, id)
			}
		}
	}
	add(current)
	if plan != nil {
		for _, step := range plan.Steps {
			add(step)
		}
		if plan.ID != "" && len(apps) > 0 {
			if _, known := m.plans[plan.ID]; !known && len(m.plans) >= maxTrackedPlans {
				clear(m.plans)
			}
			m.plans[plan.ID] = apps
		}
	}
	return apps, full
}

func (m *eventMapper) finishPlan(id string) (apps []string, full bool) {
	apps, known := m.plans[id]
	if !known {
		return nil, true
	}
	delete(m.plans, id)
	return apps, false
}

// oneApp validates an app id taken from an event. An id that does not parse
// is never put into a request path; a full resync covers it instead.
func oneApp(raw string) (apps []string, full bool) {
	id, ok := parseAppID(raw)
	if !ok {
		return nil, true
	}
	return []string{id}, false
}

// appFromURI extracts the app id of an api_post_event URI such as
// /v2/apps/shop/web?force=true; "" when the URI names no single app.
func appFromURI(uri string) string {
	uri, _, _ = strings.Cut(uri, "?")
	id, ok := strings.CutPrefix(uri, "/v2/apps/")
	if !ok {
		return ""
	}
	return id
}

// maxAppIDLen bounds ids taken from events; Marathon ids are far shorter.
const maxAppIDLen = 512

// parseAppID returns the absolute form of a Marathon app id ("/shop/web"),
// and false unless every path segment is lower-case letters, digits, '-' and
// '.', as Marathon requires. The check keeps event data from reaching a URL
// path with '?', '%', '..' or anything else that could change the request.
func parseAppID(raw string) (string, bool) {
	id := strings.TrimPrefix(raw, "/")
	if id == "" || len(id) > maxAppIDLen {
		return "", false
	}
	for segment := range strings.SplitSeq(id, "/") {
		if segment == "" || segment == "." || segment == ".." {
			return "", false
		}
		for _, c := range []byte(segment) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				return "", false
			}
		}
	}
	return "/" + id, true
}

// dirtySet is the bounded hand-off between the event reader and the sync
// loop. A set cannot overflow: a storm on one app is one entry, and beyond
// limit entries (far more than any batch) the set collapses into "full
// resync", which covers them all. Task updates are kept by task id (the
// latest wins, except that a task's state never moves back, so a late
// STAGING cannot undo a RUNNING); beyond
// maxTaskUpdates of them, a new task only marks its app dirty.
type dirtySet struct {
	mu    sync.Mutex
	apps  map[string]struct{}
	tasks map[string]taskUpdate // task id -> latest update
	full  bool
	since time.Time // first mark since the last take that emptied the set
	limit int
	kick  chan struct{} // capacity 1: "there is work"
}

func newDirtySet(limit int) *dirtySet {
	return &dirtySet{apps: make(map[string]struct{}), tasks: make(map[string]taskUpdate), limit: limit, kick: make(chan struct{}, 1)}
}

// update records a task update for the sync loop and wakes it.
func (d *dirtySet) update(u taskUpdate) {
	d.mu.Lock()
	prev, queued := d.tasks[u.task]
	switch {
	case d.full && u.change != taskDown:
		// The full resync covers it; only a task's end is kept, for the
		// tombstones.
		d.mu.Unlock()
		return
	case queued && prev.change > u.change:
		// Reordered: the task already runs (or ended); a task's state
		// only moves forward.
		d.mu.Unlock()
		return
	case queued || len(d.tasks) < maxTaskUpdates:
		d.tasks[u.task] = u
	default:
		d.mu.Unlock()
		d.mark([]string{u.app}, false)
		return
	}
	if d.since.IsZero() {
		d.since = time.Now()
	}
	d.mu.Unlock()
	d.wake()
}

// takeTasks returns and clears the pending task updates. The caller takes
// the dirty apps (take) right after, which ends the batch.
func (d *dirtySet) takeTasks() []taskUpdate {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.tasks) == 0 {
		return nil
	}
	updates := make([]taskUpdate, 0, len(d.tasks))
	for _, u := range d.tasks {
		updates = append(updates, u)
	}
	clear(d.tasks)
	return updates
}

// mark records apps (or a full resync) as needing a sync and wakes the loop.
func (d *dirtySet) mark(apps []string, full bool) {
	if !full && len(apps) == 0 {
		return
	}
	d.mu.Lock()
	if d.since.IsZero() {
		d.since = time.Now()
	}
	switch {
	case full:
		d.full = true
		clear(d.apps)
	case !d.full:
		for _, id := range apps {
			d.apps[id] = struct{}{}
		}
		if len(d.apps) > d.limit {
			d.full = true
			clear(d.apps)
		}
	}
	d.mu.Unlock()
	d.wake()
}

func (d *dirtySet) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// take returns and clears the pending work: a full resync, or at most max
// dirty apps. Apps beyond max stay pending and are due at once, so a storm
// is worked off in batches of max per-app refetches instead of turning into
// back-to-back full resyncs of the whole cluster.
func (d *dirtySet) take(max int) (apps []string, full bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.full {
		d.full = false
		clear(d.apps)
		d.settle()
		return nil, true
	}
	apps = make([]string, 0, min(len(d.apps), max))
	for id := range d.apps {
		if len(apps) == max {
			break
		}
		apps = append(apps, id)
		delete(d.apps, id)
	}
	d.settle()
	return apps, false
}

// settle ends the batch when nothing is left, or else asks for the next
// one. The caller holds d.mu.
func (d *dirtySet) settle() {
	if len(d.apps) == 0 && len(d.tasks) == 0 && !d.full {
		d.since = time.Time{}
	} else {
		d.wake()
	}
}

// batchDue returns when the pending batch should be synced: window after
// its first mark. Marks that arrived during a long sync are due at once.
func (d *dirtySet) batchDue(window time.Duration) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.since.Add(window)
}
