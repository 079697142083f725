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

// deployment is a running deployment plan for one app. Guarded by Server.mu.
type deployment struct {
	id, version string
	appID       string
	kind        planKind
	steps       []step
	current     int             // 1-based step in progress
	plan        json.RawMessage // plan JSON of deployment events, with root groups before and after
	prev        *app            // the app before the change; nil for a create
	ctx         context.Context
	cancel      context.CancelFunc
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

// deployLocked starts a deployment that brings app appID to its stored
// state (or stops it) and publishes group_change_success. s.mu must be held.
func (s *Server) deployLocked(appID string, original json.RawMessage, kind planKind, prev *app) *deployment {
	d := &deployment{
		id: newUUID(), version: timestamp(s.lastVersion), appID: appID, kind: kind, prev: prev,
	}
	one := func(name string) step { return step{Actions: []action{{Action: name, App: appID}}} }
	switch kind {
	case planCreate:
		d.steps = []step{one("StartApplication")}
		if a := s.apps[appID]; a != nil && a.spec.instances() > 0 {
			d.steps = append(d.steps, one("ScaleApplication"))
		}
	case planScale:
		d.steps = []step{one("ScaleApplication")}
	case planRestart:
		d.steps = []step{one("RestartApplication")}
	case planStop:
		d.steps = []step{one("StopApplication")}
	default:
		d.steps = []step{}
	}
	d.plan = planJSON(d.id, d.version, original, s.planTreeLocked(appID), d.steps)
	d.ctx, d.cancel = context.WithCancel(s.ctx)
	s.deployments[d.id] = d
	s.locks[appID] = d
	s.emitLocked("group_change_success", map[string]any{"groupId": parentGroup(appID), "version": d.version})
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
	if s.locks[d.appID] == d {
		delete(s.locks, d.appID)
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
		return s.converge(d)
	case "StopApplication":
		s.mu.Lock()
		defer s.mu.Unlock()
		if d.ctx.Err() != nil {
			return false
		}
		s.emitLocked("app_terminated_event", map[string]any{"appId": d.appID})
		keep := ""
		if a := s.apps[d.appID]; a != nil { // re-created meanwhile
			keep = a.configVersion
		}
		for _, t := range append([]*task(nil), s.tasks[d.appID]...) {
			if keep == "" || t.Version != keep {
				s.killLocked(t, stateKilled, "")
			}
		}
	}
	return true
}

// converge launches and kills tasks until the app runs exactly its
// instances of its current config version, all ready, and then kills the
// tasks of older versions. It reports false when d was cancelled.
func (s *Server) converge(d *deployment) bool {
	for {
		s.mu.Lock()
		if d.ctx.Err() != nil {
			s.mu.Unlock()
			return false
		}
		a := s.apps[d.appID]
		if a == nil {
			s.mu.Unlock()
			return true
		}
		want := a.spec.instances()
		var current, old []*task
		for _, t := range s.tasks[a.id] {
			if t.Version == a.configVersion {
				current = append(current, t)
			} else {
				old = append(old, t)
			}
		}
		for len(current) < want {
			current = append(current, s.launchLocked(a))
		}
		for len(current) > want { // YOUNGEST_FIRST
			s.killLocked(current[len(current)-1], stateKilled, "")
			current = current[:len(current)-1]
		}
		ready := 0
		for _, t := range current {
			if t.ready(a.spec.hasHealthChecks()) {
				ready++
			}
		}
		if ready == want {
			for _, t := range old {
				s.killLocked(t, stateKilled, "")
			}
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
			ID: d.id, Version: d.version, AffectedApps: []string{d.appID}, AffectedPods: []string{},
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
	original := s.planTreeLocked(d.appID)
	current := s.apps[d.appID]
	var rollback *deployment
	if d.prev == nil {
		s.deleteAppLocked(d.appID)
		s.nowVersion()
		rollback = s.deployLocked(d.appID, original, planStop, current)
	} else {
		kind, change := planScale, false
		if current != nil {
			kind, change = classify(current, d.prev.def)
		}
		s.storeLocked(d.appID, d.prev, copyFields(d.prev.def), d.prev.spec, change)
		rollback = s.deployLocked(d.appID, original, kind, current)
	}
	writeJSON(w, http.StatusOK, map[string]string{"deploymentId": rollback.id, "version": rollback.version})
}
