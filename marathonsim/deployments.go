package marathonsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
)

// planKind is what a deployment does to its app.
type planKind int

const (
	planNone    planKind = iota // nothing changed: no steps
	planCreate                  // StartApplication, then ScaleApplication
	planScale                   // ScaleApplication
	planRestart                 // RestartApplication: new tasks, then old ones killed
	planStop                    // StopApplication
)

// action is one deployment step action (Marathon ≥1.1.2 format).
type action struct {
	Action string `json:"action"`
	App    string `json:"app"`
}

// step is one deployment step.
type step struct {
	Actions []action `json:"actions"`
}

// change is what a deployment does to one app.
type change struct {
	appID string
	kind  planKind
	prev  *app // the app before the change; nil for a create
}

// deployment is a running deployment plan for one or more apps (PUT
// /v2/apps changes several at once). Guarded by Server.mu.
type deployment struct {
	id, version string
	changes     []change
	steps       []step
	current     int             // 1-based step in progress
	plan        json.RawMessage // plan JSON of deployment events, with root groups before and after
	ctx         context.Context
	cancel      context.CancelFunc
}

// affected returns the ids of the apps d changes.
func (d *deployment) affected() []string {
	ids := make([]string, len(d.changes))
	for i, c := range d.changes {
		ids[i] = c.appID
	}
	return ids
}

// planJSON renders a deployment plan as deployment events carry it. The
// root groups are copied as they are: they are most of the bytes, and the
// plan is rendered once per deployment, not once per event.
func planJSON(id, version string, original, target json.RawMessage, steps []step) json.RawMessage {
	idJSON, _ := json.Marshal(id)
	stepsJSON, _ := json.Marshal(steps)
	versionJSON, _ := json.Marshal(version)
	out := make([]byte, 0, len(idJSON)+len(original)+len(stepsJSON)+len(target)+len(versionJSON)+64)
	out = append(out, `{"id":`...)
	out = append(out, idJSON...)
	out = append(out, `,"original":`...)
	out = append(out, original...)
	out = append(out, `,"steps":`...)
	out = append(out, stepsJSON...)
	out = append(out, `,"target":`...)
	out = append(out, target...)
	out = append(out, `,"version":`...)
	out = append(out, versionJSON...)
	return append(out, '}')
}

// deployLocked starts a deployment that brings each changed app to its
// stored state (or stops it) and publishes group_change_success: new apps
// start in a first step, then every app scales, restarts or stops in one
// more. s.mu must be held.
func (s *Server) deployLocked(original json.RawMessage, changes ...change) *deployment {
	d := &deployment{id: newUUID(), version: timestamp(s.lastVersion), changes: changes, steps: []step{}}
	var start, then []action
	for _, c := range changes {
		act := func(name string) action { return action{Action: name, App: c.appID} }
		switch c.kind {
		case planCreate:
			start = append(start, act("StartApplication"))
			if a := s.apps[c.appID]; a != nil && a.spec.instances() > 0 {
				then = append(then, act("ScaleApplication"))
			}
		case planScale:
			then = append(then, act("ScaleApplication"))
		case planRestart:
			then = append(then, act("RestartApplication"))
		case planStop:
			then = append(then, act("StopApplication"))
		}
	}
	for _, actions := range [][]action{start, then} {
		if len(actions) > 0 {
			d.steps = append(d.steps, step{Actions: actions})
		}
	}
	ids := d.affected()
	d.plan = planJSON(d.id, d.version, original, s.planTreeLocked(ids...), d.steps)
	d.ctx, d.cancel = context.WithCancel(s.ctx)
	s.deployments[d.id] = d
	group := "/"
	for _, id := range ids {
		s.locks[id] = d
	}
	if len(ids) == 1 {
		group = parentGroup(ids[0])
	}
	s.emitLocked("group_change_success", map[string]any{"groupId": group, "version": d.version})
	s.notifyLocked()
	if !s.goLocked(func() { s.runDeployment(d) }) {
		d.cancel()
	}
	return d
}

// runDeployment walks d's steps, publishing deployment_info before and
// deployment_step_success after each, then deployment_success.
func (s *Server) runDeployment(d *deployment) {
	for i, st := range d.steps {
		s.mu.Lock()
		if d.ctx.Err() != nil {
			s.mu.Unlock()
			return
		}
		d.current = i + 1
		s.emitPlanLocked("deployment_info", map[string]any{"currentStep": st}, d.plan)
		s.mu.Unlock()
		for _, act := range st.Actions {
			if !s.perform(d, act) {
				return
			}
		}
		s.mu.Lock()
		if d.ctx.Err() != nil {
			s.mu.Unlock()
			return
		}
		s.emitPlanLocked("deployment_step_success", map[string]any{"currentStep": st}, d.plan)
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.ctx.Err() != nil {
		return
	}
	s.endDeploymentLocked(d)
	s.emitPlanLocked("deployment_success", map[string]any{"id": d.id}, d.plan)
}

// endDeploymentLocked forgets d and unlocks its app. s.mu must be held.
func (s *Server) endDeploymentLocked(d *deployment) {
	d.cancel()
	delete(s.deployments, d.id)
	for _, id := range d.affected() {
		if s.locks[id] == d {
			delete(s.locks, id)
		}
	}
	s.notifyLocked()
}

// cancelDeploymentLocked stops d (forced over, deleted or reset) and
// publishes deployment_failed. s.mu must be held.
func (s *Server) cancelDeploymentLocked(d *deployment) {
	s.endDeploymentLocked(d)
	s.emitPlanLocked("deployment_failed", map[string]any{"id": d.id}, d.plan)
}

// perform runs one action; it reports false when the deployment was
// cancelled.
func (s *Server) perform(d *deployment, act action) bool {
	switch act.Action {
	case "ScaleApplication", "RestartApplication":
		return s.converge(d, act.App)
	case "StopApplication":
		return s.stopApp(d, act.App)
	}
	return true
}

// stopApp kills every task of deleted app appID (but those of an app
// re-created meanwhile) and waits until Mesos has confirmed the kills. It
// reports false when d was cancelled.
func (s *Server) stopApp(d *deployment, appID string) bool {
	s.mu.Lock()
	if d.ctx.Err() == nil {
		s.emitLocked("app_terminated_event", map[string]any{"appId": appID})
	}
	s.mu.Unlock()
	return s.until(d, func() bool {
		keep := ""
		if a := s.apps[appID]; a != nil {
			keep = a.configVersion
		}
		done := true
		for _, t := range append([]*task(nil), s.tasks[appID]...) {
			if (keep == "" || t.Version != keep) && s.stopTaskLocked(t) {
				done = false
			}
		}
		return done
	})
}

// converge launches and kills tasks until app appID runs exactly its
// instances of its current config version, all ready, then kills the tasks
// of older versions, and waits until no task of the app is being killed.
// It reports false when d was cancelled.
func (s *Server) converge(d *deployment, appID string) bool {
	return s.until(d, func() bool {
		a := s.apps[appID]
		if a == nil {
			return true
		}
		want := a.spec.instances()
		var current, old []*task
		dying := false
		for _, t := range s.tasks[a.id] {
			switch {
			case t.State == stateKilling:
				dying = true
			case t.Version == a.configVersion:
				current = append(current, t)
			default:
				old = append(old, t)
			}
		}
		if minHealthy, maxCapacity := a.spec.upgradeBounds(); maxCapacity < 2*want {
			// No room for a whole new version beside the old one: Marathon
			// kills old tasks first, as far as minHealthy allows, and starts
			// new ones within maxCapacity, counting those being killed.
			ready, killing := 0, 0
			for _, t := range current {
				if t.ready(a.spec.hasHealthChecks()) {
					ready++
				}
			}
			for len(old) > 0 && len(current) < want && ready+len(old)-1 >= minHealthy {
				dying = s.stopTaskLocked(old[0]) || dying
				old = old[1:]
			}
			for _, t := range s.tasks[a.id] {
				if t.State == stateKilling {
					killing++
				}
			}
			for len(current) < want && len(current)+len(old)+killing < maxCapacity {
				current = append(current, s.launchLocked(a))
			}
			if len(current) < want {
				return false // a change (a task killed, one ready) moves it on
			}
		}
		for len(current) < want {
			current = append(current, s.launchLocked(a))
		}
		for len(current) > want { // YOUNGEST_FIRST
			dying = s.stopTaskLocked(current[len(current)-1]) || dying
			current = current[:len(current)-1]
		}
		ready := 0
		for _, t := range current {
			if t.ready(a.spec.hasHealthChecks()) {
				ready++
			}
		}
		if ready < want {
			return false
		}
		for _, t := range old {
			dying = s.stopTaskLocked(t) || dying
		}
		return !dying
	})
}

// until calls step with s.mu held, at once and after every state change,
// until it reports true (until returns true) or d is cancelled (false).
func (s *Server) until(d *deployment, step func() bool) bool {
	for {
		s.mu.Lock()
		if d.ctx.Err() != nil {
			s.mu.Unlock()
			return false
		}
		if step() {
			s.mu.Unlock()
			return true
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-d.ctx.Done():
			return false
		}
	}
}

// deploymentJSON is one entry of GET /v2/deployments.
type deploymentJSON struct {
	ID             string           `json:"id"`
	Version        string           `json:"version"`
	AffectedApps   []string         `json:"affectedApps"`
	AffectedPods   []string         `json:"affectedPods"`
	Steps          []step           `json:"steps"`
	CurrentActions []map[string]any `json:"currentActions"`
	CurrentStep    int              `json:"currentStep"`
	TotalSteps     int              `json:"totalSteps"`
}

// listDeployments answers GET /v2/deployments.
func (s *Server) listDeployments(w http.ResponseWriter) {
	s.mu.Lock()
	list := make([]deploymentJSON, 0, len(s.deployments))
	for _, d := range s.deployments {
		current := []map[string]any{}
		if d.current > 0 && d.current <= len(d.steps) {
			for _, a := range d.steps[d.current-1].Actions {
				current = append(current, map[string]any{"action": a.Action, "app": a.App, "readinessCheckResults": []any{}})
			}
		}
		list = append(list, deploymentJSON{
			ID: d.id, Version: d.version, AffectedApps: d.affected(), AffectedPods: []string{},
			Steps: d.steps, CurrentActions: current, CurrentStep: d.current, TotalSteps: len(d.steps),
		})
	}
	s.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Version < list[j].Version })
	writeJSON(w, http.StatusOK, list)
}

// deleteDeployment answers DELETE /v2/deployments/{id}: with force=true the
// deployment just stops (202); otherwise a rollback deployment restores the
// app as it was before, and its id is returned.
func (s *Server) deleteDeployment(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deployments[id]
	if d == nil {
		writeError(w, &apiError{http.StatusNotFound, map[string]string{"message": fmt.Sprintf("DeploymentPlan %s does not exist", id)}})
		return
	}
	s.cancelDeploymentLocked(d)
	if forced(r) {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	original := s.planTreeLocked(d.affected()...)
	undo := make([]change, 0, len(d.changes))
	for _, c := range d.changes {
		current := s.apps[c.appID]
		if c.prev == nil {
			s.deleteAppLocked(c.appID)
			s.nowVersion()
			undo = append(undo, change{appID: c.appID, kind: planStop, prev: current})
			continue
		}
		kind, configChange := planScale, false
		if current != nil {
			kind, configChange = classify(current, c.prev.def)
		}
		s.storeLocked(c.appID, c.prev, copyFields(c.prev.def), c.prev.spec, configChange)
		undo = append(undo, change{appID: c.appID, kind: kind, prev: current})
	}
	rollback := s.deployLocked(original, undo...)
	writeJSON(w, http.StatusOK, map[string]string{"deploymentId": rollback.id, "version": rollback.version})
}
