package marathonsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
)

// computed reports app keys Marathon derives; they are never stored from a
// request body.
func computed(key string) bool {
	switch key {
	case "tasks", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy",
		"deployments", "taskStats", "lastTaskFailure", "versionInfo", "version",
		"readinessCheckResults", "counts":
		return true
	}
	return false
}

// defaultDefinition is what Marathon 1.4 fills in for keys a new app leaves out.
func defaultDefinition() fields {
	return fields{
		"cmd": raw(`null`), "args": raw(`null`), "user": raw(`null`), "env": raw(`{}`),
		"instances": raw(`1`), "cpus": raw(`1`), "mem": raw(`128`), "disk": raw(`0`), "gpus": raw(`0`),
		"executor": raw(`""`), "constraints": raw(`[]`), "uris": raw(`[]`), "fetch": raw(`[]`),
		"storeUrls": raw(`[]`), "backoffSeconds": raw(`1`), "backoffFactor": raw(`1.15`),
		"maxLaunchDelaySeconds": raw(`3600`), "container": raw(`null`), "healthChecks": raw(`[]`),
		"readinessChecks": raw(`[]`), "dependencies": raw(`[]`),
		"upgradeStrategy": raw(`{"maximumOverCapacity":1,"minimumHealthCapacity":1}`),
		"labels":          raw(`{}`), "acceptedResourceRoles": raw(`null`), "ipAddress": raw(`null`),
		"residency": raw(`null`), "secrets": raw(`{}`), "taskKillGracePeriodSeconds": raw(`null`),
		"unreachableStrategy": raw(`{"expungeAfterSeconds":600,"inactiveAfterSeconds":300}`),
		"killSelection":       raw(`"YOUNGEST_FIRST"`), "requirePorts": raw(`false`),
		"portDefinitions": raw(`[]`), "ports": raw(`[]`),
	}
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// canonical re-encodes a JSON value with sorted keys and no spaces, so that
// equal values compare equal as bytes.
func canonical(v json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

// readBody reads a request body of at most 8 MiB.
func readBody(r *http.Request) ([]byte, *apiError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return nil, badJSON("/", "error.read")
	}
	return body, nil
}

// parseBody reads a JSON object body into canonical top-level fields.
func parseBody(r *http.Request) (fields, *apiError) {
	body, aerr := readBody(r)
	if aerr != nil {
		return nil, aerr
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, badJSON("/", "error.expected.jsobject")
	}
	return parseFields(top)
}

// parseFields turns a JSON object's keys into canonical fields. Computed
// keys are dropped, and so are nulls (a null in an update means
// "unchanged", which is what go-marathon's "ports":null needs).
func parseFields(top map[string]json.RawMessage) (fields, *apiError) {
	out := fields{}
	for k, v := range top {
		if computed(k) && k != "version" {
			continue
		}
		if string(bytes.TrimSpace(v)) == "null" {
			continue
		}
		c, err := canonical(v)
		if err != nil {
			return nil, badJSON("/"+k, "error.invalid")
		}
		out[k] = c
	}
	return out, nil
}

// parseSpec fills in Marathon's defaults inside health checks and port
// definitions and mappings, then decodes the fields the simulator acts on
// and validates them.
func parseSpec(def fields) (appSpec, *apiError) {
	var spec appSpec
	if aerr := withNestedDefaults(def); aerr != nil {
		return spec, aerr
	}
	body, _ := json.Marshal(def)
	if err := json.Unmarshal(body, &spec); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return spec, badJSON("/"+strings.ReplaceAll(te.Field, ".", "/"), "error.expected.js"+jsType(te.Type.Kind().String()))
		}
		return spec, badJSON("/", err.Error())
	}
	if !validID(normalizeID(spec.ID)) || strings.TrimSpace(spec.ID) == "" {
		return spec, invalid("/id", "must fully match regular expression '"+appIDPattern.String()+"'")
	}
	if n := spec.instances(); n < 0 {
		return spec, invalid("/instances", fmt.Sprintf("got %d, expected 0 or more", n))
	}
	return spec, nil
}

// withNestedDefaults fills in what Marathon writes for keys that health
// checks, port definitions and Docker port mappings leave out
// (docs/marathon-api.md §2.1).
func withNestedDefaults(def fields) *apiError {
	if raw, ok := def["healthChecks"]; ok {
		var checks []json.RawMessage
		if err := json.Unmarshal(raw, &checks); err != nil {
			return badJSON("/healthChecks", "error.expected.jsarray")
		}
		for i, c := range checks {
			filled, err := withHealthCheckDefaults(c)
			if err != nil {
				return badJSON(fmt.Sprintf("/healthChecks(%d)", i), "error.expected.jsobject")
			}
			checks[i] = filled
		}
		def["healthChecks"], _ = json.Marshal(checks)
	}
	if raw, ok := def["portDefinitions"]; ok {
		filled, err := withPortDefaults(raw)
		if err != nil {
			return badJSON("/portDefinitions", "error.expected.jsarray")
		}
		def["portDefinitions"] = filled
	}
	if raw, ok := def["container"]; ok && string(raw) != "null" {
		var container map[string]json.RawMessage
		if err := json.Unmarshal(raw, &container); err != nil {
			return badJSON("/container", "error.expected.jsobject")
		}
		var docker map[string]json.RawMessage
		if err := json.Unmarshal(container["docker"], &docker); err != nil || docker == nil {
			return nil // no Docker part, or the spec check reports it
		}
		if mappings, ok := docker["portMappings"]; ok && string(mappings) != "null" {
			filled, err := withPortDefaults(mappings)
			if err != nil {
				return badJSON("/container/docker/portMappings", "error.expected.jsarray")
			}
			docker["portMappings"] = filled
			container["docker"], _ = json.Marshal(docker)
			def["container"], _ = json.Marshal(container)
		}
	}
	return nil
}

// withPortDefaults gives each port of a JSON array the "protocol" ("tcp")
// and "labels" ({}) Marathon writes for it.
func withPortDefaults(list json.RawMessage) (json.RawMessage, error) {
	var ports []map[string]any
	dec := json.NewDecoder(bytes.NewReader(list))
	dec.UseNumber()
	if err := dec.Decode(&ports); err != nil {
		return nil, err
	}
	for _, p := range ports {
		if p == nil {
			return nil, errors.New("port is not an object")
		}
		if _, ok := p["protocol"]; !ok {
			p["protocol"] = "tcp"
		}
		if _, ok := p["labels"]; !ok {
			p["labels"] = map[string]string{}
		}
	}
	return json.Marshal(ports)
}

func jsType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	}
	return "number"
}

// assignPorts gives service ports to zero ports and sets "ports" to the
// app's service ports, as Marathon does. s.mu must be held.
func (s *Server) assignPorts(def fields, spec *appSpec) {
	var service []int
	next := func(p int) int {
		if p != 0 {
			return p
		}
		s.nextService++
		return 10000 + s.nextService - 1
	}
	switch {
	case spec.Container != nil && spec.Container.Docker != nil && len(spec.Container.Docker.PortMappings) > 0:
		var container map[string]any
		_ = json.Unmarshal(def["container"], &container)
		docker, _ := container["docker"].(map[string]any)
		mappings, _ := docker["portMappings"].([]any)
		for i, m := range mappings {
			pm, _ := m.(map[string]any)
			if pm == nil {
				continue
			}
			p := next(spec.Container.Docker.PortMappings[i].ServicePort)
			spec.Container.Docker.PortMappings[i].ServicePort = p
			pm["servicePort"] = p
			service = append(service, p)
		}
		def["container"], _ = json.Marshal(container)
	case def["portDefinitions"] != nil && len(spec.PortDefinitions) > 0:
		var defs []map[string]any
		_ = json.Unmarshal(def["portDefinitions"], &defs)
		for i := range defs {
			p := next(spec.PortDefinitions[i].Port)
			spec.PortDefinitions[i].Port = p
			defs[i]["port"] = p
			service = append(service, p)
		}
		def["portDefinitions"], _ = json.Marshal(defs)
	case len(spec.Ports) > 0:
		defs := make([]map[string]any, len(spec.Ports))
		spec.PortDefinitions = make([]portDefinition, len(spec.Ports))
		for i, p := range spec.Ports {
			p = next(p)
			spec.PortDefinitions[i].Port = p
			defs[i] = map[string]any{"port": p, "protocol": "tcp", "labels": map[string]string{}}
			service = append(service, p)
		}
		def["portDefinitions"], _ = json.Marshal(defs)
	}
	if service == nil {
		service = []int{}
	}
	spec.Ports = service
	def["ports"], _ = json.Marshal(service)
}

// servicePorts are the app's service ports as tasks report them.
func (a *app) servicePorts() []int { return a.spec.Ports }

// defJSON renders the stored definition with version and versionInfo.
func (a *app) defJSON(def fields, version string) json.RawMessage {
	out := make(fields, len(def)+2)
	for k, v := range def {
		out[k] = v
	}
	out["version"], _ = json.Marshal(version)
	if _, ok := out["versionInfo"]; !ok && version == a.version {
		out["versionInfo"], _ = json.Marshal(map[string]string{
			"lastScalingAt": a.scalingAt, "lastConfigChangeAt": a.configVersion,
		})
	}
	b, _ := json.Marshal(out)
	return b
}

// embed says which computed parts go into an app's JSON.
type embed struct {
	tasks, counts, deployments, lastFailure bool
}

// appView is an app as GET /v2/apps shows it, copied under s.mu and
// encoded after it is released, so that listing 10,000 apps does not hold
// up every other request.
type appView struct {
	def         json.RawMessage // definition with version and versionInfo
	embed       embed
	staged      int
	running     int
	healthy     int
	unhealthy   int
	deployment  string // id of the deployment on the app; "" when none
	tasks       []task
	lastFailure *lastTaskFailure
}

// viewLocked copies what a's JSON needs. s.mu must be held.
func (s *Server) viewLocked(a *app, e embed) appView {
	v := appView{def: a.currentJSON(), embed: e}
	tasks := s.tasks[a.id]
	if e.counts {
		for _, t := range tasks {
			switch t.State {
			case stateStaging, "TASK_STARTING":
				v.staged++
			case stateRunning:
				v.running++
			}
			if a.spec.hasHealthChecks() && t.State == stateRunning && len(t.HealthCheckResults) > 0 {
				if t.ready(true) {
					v.healthy++
				} else {
					v.unhealthy++
				}
			}
		}
	}
	if d := s.locks[a.id]; e.deployments && d != nil {
		v.deployment = d.id
	}
	if e.tasks {
		// Tasks are changed by replacing their fields, never the slices'
		// contents, so shallow copies stay as they are now.
		v.tasks = make([]task, len(tasks))
		for i, t := range tasks {
			v.tasks[i] = *t
		}
	}
	if e.lastFailure && a.lastFailure != nil {
		failure := *a.lastFailure
		v.lastFailure = &failure
	}
	return v
}

// appendJSON appends the app JSON: the definition's keys, then the
// computed ones that were asked for.
func (v appView) appendJSON(out []byte) []byte {
	out = append(out, v.def[:len(v.def)-1]...) // without the closing brace
	if v.embed.deployments {
		out = append(out, `,"deployments":[`...)
		if v.deployment != "" {
			id, _ := json.Marshal(v.deployment)
			out = append(out, `{"id":`...)
			out = append(out, id...)
			out = append(out, '}')
		}
		out = append(out, ']')
	}
	if v.lastFailure != nil {
		failure, _ := json.Marshal(v.lastFailure)
		out = append(out, `,"lastTaskFailure":`...)
		out = append(out, failure...)
	}
	if v.embed.tasks {
		tasks, _ := json.Marshal(v.tasks)
		out = append(out, `,"tasks":`...)
		out = append(out, tasks...)
	}
	if v.embed.counts {
		out = fmt.Appendf(out, `,"tasksHealthy":%d,"tasksRunning":%d,"tasksStaged":%d,"tasksUnhealthy":%d`,
			v.healthy, v.running, v.staged, v.unhealthy)
	}
	return append(out, '}')
}

// listApps answers GET /v2/apps with embed, id, cmd and label filters.
func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	e := embed{counts: true, deployments: true}
	for _, v := range q["embed"] {
		switch v {
		case "apps.tasks":
			e.tasks = true
		case "apps.lastTaskFailure":
			e.lastFailure = true
		}
	}
	if e.tasks {
		defer s.fullLists.Add(1) // once answered
	}
	sel, err := parseSelector(q.Get("label"))
	if err != nil {
		writeError(w, &apiError{http.StatusBadRequest, map[string]string{"message": "Invalid label selector: " + err.Error()}})
		return
	}
	idFilter, cmdFilter := strings.ToLower(q.Get("id")), q.Get("cmd")
	s.mu.Lock()
	ids := s.appIDsLocked()
	views := make([]appView, 0, len(ids))
	for _, id := range ids {
		a := s.apps[id]
		if idFilter != "" && !strings.Contains(strings.ToLower(id), idFilter) {
			continue
		}
		if cmdFilter != "" {
			var cmd string
			_ = json.Unmarshal(a.def["cmd"], &cmd)
			if !strings.Contains(cmd, cmdFilter) {
				continue
			}
		}
		if !sel.matches(a.spec.Labels) {
			continue
		}
		views = append(views, s.viewLocked(a, e))
	}
	s.mu.Unlock()
	size := 0
	for _, v := range views {
		size += len(v.def) + 300*(1+len(v.tasks))
	}
	out := make([]byte, 0, size)
	out = append(out, `{"apps":[`...)
	for i, v := range views {
		if i > 0 {
			out = append(out, ',')
		}
		out = v.appendJSON(out)
	}
	writeRaw(w, http.StatusOK, append(out, "]}"...))
}

// getApp answers GET /v2/apps/{id}: Marathon always embeds tasks, counts,
// deployments and the last task failure for a single app.
func (s *Server) getApp(w http.ResponseWriter, _ *http.Request, id string) {
	s.mu.Lock()
	a := s.apps[id]
	var view appView
	if a != nil {
		view = s.viewLocked(a, embed{tasks: true, counts: true, deployments: true, lastFailure: true})
	}
	s.mu.Unlock()
	if a == nil {
		writeError(w, notFound(id))
		return
	}
	writeRaw(w, http.StatusOK, append(view.appendJSON([]byte(`{"app":`)), '}'))
}

// createApp answers POST /v2/apps: 201 with the new app and its deployment.
func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	body, aerr := parseBody(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	delete(body, "version")
	def := defaultDefinition()
	for k, v := range body {
		def[k] = v
	}
	spec, aerr := parseSpec(def)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	id := normalizeID(spec.ID)
	def["id"], _ = json.Marshal(id)

	s.mu.Lock()
	if _, ok := s.apps[id]; ok {
		s.mu.Unlock()
		writeError(w, &apiError{http.StatusConflict, map[string]string{"message": fmt.Sprintf("An app with id [%s] already exists.", id)}})
		return
	}
	original := s.planTreeLocked(id)
	a := s.storeLocked(id, nil, def, spec, true)
	s.emitLocked("api_post_event", map[string]any{
		"clientIp": clientIP(r), "uri": r.URL.Path, "appDefinition": a.currentJSON(),
	})
	d := s.deployLocked(original, change{appID: a.id, kind: planCreate})
	view := s.viewLocked(a, embed{tasks: true, counts: true, deployments: true})
	s.mu.Unlock()
	w.Header().Set("Location", appURL(r, id))
	w.Header().Set("Marathon-Deployment-Id", d.id)
	writeRaw(w, http.StatusCreated, view.appendJSON(nil))
}

// storeLocked saves a new version of app id (prev nil for a new app) and
// returns it. configChange says whether tasks must be replaced.
// s.mu must be held.
func (s *Server) storeLocked(id string, prev *app, def fields, spec appSpec, configChange bool) *app {
	s.assignPorts(def, &spec)
	version := s.nowVersion()
	a := &app{id: id, def: def, spec: spec, version: version, scalingAt: version, configVersion: version, versions: map[string]fields{}}
	if prev != nil {
		a.versions, a.order, a.lastFailure = prev.versions, prev.order, prev.lastFailure
		if !configChange {
			a.configVersion = prev.configVersion
		}
	}
	a.versions[version] = def
	a.order = append(a.order, version)
	s.putAppLocked(a)
	return a
}

// updateApp answers PUT/PATCH /v2/apps/{id}: a partial update, or a
// rollback when the body names a version.
func (s *Server) updateApp(w http.ResponseWriter, r *http.Request, id string) {
	if !validID(id) {
		writeError(w, invalid("/id", "must fully match regular expression '"+appIDPattern.String()+"'"))
		return
	}
	body, aerr := parseBody(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if aerr := s.unlockLocked(r, id); aerr != nil {
		writeError(w, aerr)
		return
	}
	u, aerr := s.planUpdateLocked(id, body)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	original := s.planTreeLocked(id)
	a := s.storeLocked(id, u.prev, u.def, u.spec, u.configChange)
	s.emitLocked("api_post_event", map[string]any{
		"clientIp": clientIP(r), "uri": r.URL.Path, "appDefinition": a.currentJSON(),
	})
	d := s.deployLocked(original, change{appID: id, kind: u.kind, prev: u.prev})
	status := http.StatusOK
	if u.prev == nil {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]string{"deploymentId": d.id, "version": a.version})
}

// updateApps answers PUT/PATCH /v2/apps with a JSON array of partial
// updates (apps that do not exist are created): one deployment for all,
// and no api_post_event, as Marathon does. Nothing changes unless every
// update is valid.
func (s *Server) updateApps(w http.ResponseWriter, r *http.Request) {
	body, aerr := readBody(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(body, &list); err != nil {
		writeError(w, badJSON("/", "error.expected.jsarray"))
		return
	}
	bodies := make([]fields, len(list))
	ids := make([]string, len(list))
	seen := map[string]bool{}
	for i, top := range list {
		f, aerr := parseFields(top)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		var id string
		if err := json.Unmarshal(f["id"], &id); err != nil || !validID(normalizeID(id)) {
			writeError(w, invalid(fmt.Sprintf("(%d)/id", i), "must fully match regular expression '"+appIDPattern.String()+"'"))
			return
		}
		ids[i], bodies[i] = normalizeID(id), f
		if seen[ids[i]] {
			writeError(w, invalid("/", "duplicate app id "+ids[i]))
			return
		}
		seen[ids[i]] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	updates := make([]appUpdate, len(ids))
	for i, id := range ids {
		if d := s.locks[id]; d != nil && s.apps[id] != nil && !forced(r) {
			writeError(w, locked(d))
			return
		}
		u, aerr := s.planUpdateLocked(id, bodies[i])
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		updates[i] = u
	}
	for _, id := range ids {
		if aerr := s.unlockLocked(r, id); aerr != nil {
			writeError(w, aerr)
			return
		}
	}
	original := s.planTreeLocked(ids...)
	changes := make([]change, len(updates))
	for i, u := range updates {
		s.storeLocked(ids[i], u.prev, u.def, u.spec, u.configChange)
		changes[i] = change{appID: ids[i], kind: u.kind, prev: u.prev}
	}
	d := s.deployLocked(original, changes...)
	writeJSON(w, http.StatusOK, map[string]string{"deploymentId": d.id, "version": d.version})
}

// unlockLocked lets a change of app id proceed: 409 when a deployment
// holds the app, unless ?force=true, which cancels that deployment.
// s.mu must be held.
func (s *Server) unlockLocked(r *http.Request, id string) *apiError {
	d := s.locks[id]
	if d == nil || s.apps[id] == nil {
		return nil
	}
	if !forced(r) {
		return locked(d)
	}
	s.cancelDeploymentLocked(d)
	return nil
}

// appUpdate is a validated change of one app, not yet stored.
type appUpdate struct {
	prev         *app // nil: the update creates the app
	def          fields
	spec         appSpec
	kind         planKind
	configChange bool // tasks must be replaced
}

// planUpdateLocked merges body into app id's definition (or, when body
// names a version, takes that version) and validates the result.
// s.mu must be held.
func (s *Server) planUpdateLocked(id string, body fields) (appUpdate, *apiError) {
	u := appUpdate{prev: s.apps[id], kind: planCreate, configChange: true}
	if v, ok := body["version"]; ok {
		var version string
		_ = json.Unmarshal(v, &version)
		if u.prev == nil || u.prev.versions[version] == nil {
			return u, &apiError{http.StatusNotFound, map[string]string{"message": fmt.Sprintf("App '%s' does not exist in version %s", id, version)}}
		}
		u.def = copyFields(u.prev.versions[version])
	} else {
		if u.prev != nil {
			u.def = copyFields(u.prev.def)
		} else {
			u.def = defaultDefinition()
		}
		for k, v := range body {
			if k == "ports" {
				if _, both := body["portDefinitions"]; both {
					continue
				}
				delete(u.def, "portDefinitions")
			}
			u.def[k] = v
		}
	}
	u.def["id"], _ = json.Marshal(id)
	spec, aerr := parseSpec(u.def)
	if aerr != nil {
		return u, aerr
	}
	u.spec = spec
	if u.prev != nil {
		u.kind, u.configChange = classify(u.prev, u.def)
	}
	return u, nil
}

// classify tells a scale-only change from a config change (which restarts
// every task) and from no change at all.
func classify(prev *app, def fields) (planKind, bool) {
	if len(prev.def) != len(def) {
		return planRestart, true
	}
	for k, v := range def {
		if k != "instances" && !bytes.Equal(prev.def[k], v) {
			return planRestart, true
		}
	}
	if bytes.Equal(prev.def["instances"], def["instances"]) {
		return planNone, false
	}
	return planScale, false
}

func copyFields(f fields) fields {
	out := make(fields, len(f))
	for k, v := range f {
		out[k] = v
	}
	return out
}

// changeableLocked returns app id for a change. It answers 404 when the app
// does not exist, and 409 when a deployment holds it unless ?force=true,
// which cancels that deployment; ok is false when it wrote such an answer.
func (s *Server) changeableLocked(w http.ResponseWriter, r *http.Request, id string) (prev *app, ok bool) {
	prev = s.apps[id]
	if prev == nil {
		writeError(w, notFound(id))
		return nil, false
	}
	if aerr := s.unlockLocked(r, id); aerr != nil {
		writeError(w, aerr)
		return nil, false
	}
	return prev, true
}

// deleteApp answers DELETE /v2/apps/{id}: the app leaves the group tree at
// once; a StopApplication deployment kills its tasks.
func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, ok := s.changeableLocked(w, r, id)
	if !ok {
		return
	}
	original := s.planTreeLocked(id)
	s.deleteAppLocked(id)
	version := s.nowVersion()
	d := s.deployLocked(original, change{appID: id, kind: planStop, prev: prev})
	writeJSON(w, http.StatusOK, map[string]string{"deploymentId": d.id, "version": version})
}

// restartApp answers POST /v2/apps/{id}/restart: a new config version and a
// RestartApplication deployment, without api_post_event.
func (s *Server) restartApp(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, ok := s.changeableLocked(w, r, id)
	if !ok {
		return
	}
	original := s.planTreeLocked(id)
	a := s.storeLocked(id, prev, copyFields(prev.def), prev.spec, true)
	d := s.deployLocked(original, change{appID: id, kind: planRestart, prev: prev})
	writeJSON(w, http.StatusOK, map[string]string{"deploymentId": d.id, "version": a.version})
}

// appVersions answers GET /v2/apps/{id}/versions, newest first.
func (s *Server) appVersions(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil {
		writeError(w, notFound(id))
		return
	}
	versions := make([]string, 0, len(a.order))
	for i := len(a.order) - 1; i >= 0; i-- {
		versions = append(versions, a.order[i])
	}
	writeJSON(w, http.StatusOK, map[string][]string{"versions": versions})
}

// appAtVersion answers GET /v2/apps/{id}/versions/{v} with the bare app.
func (s *Server) appAtVersion(w http.ResponseWriter, id, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil {
		writeError(w, notFound(id))
		return
	}
	def := a.versions[version]
	if def == nil {
		writeError(w, &apiError{http.StatusNotFound, map[string]string{"message": fmt.Sprintf("App '%s' does not exist in version %s", id, version)}})
		return
	}
	writeJSON(w, http.StatusOK, a.defJSON(def, version))
}

// currentJSON is a's definition at its version, as in deployment plans and
// api_post_event. An app value never changes once stored (a change stores
// a new one), so it is encoded once. s.mu must be held.
func (a *app) currentJSON() json.RawMessage {
	if a.planJSON == nil {
		a.planJSON = a.defJSON(a.def, a.version)
	}
	return a.planJSON
}

// putAppLocked stores a as the current version of its app. s.mu must be held.
func (s *Server) putAppLocked(a *app) {
	if _, ok := s.apps[a.id]; !ok {
		s.sortedIDs = nil
	}
	s.apps[a.id] = a
	s.tree = nil
}

// deleteAppLocked forgets app id. s.mu must be held.
func (s *Server) deleteAppLocked(id string) {
	delete(s.apps, id)
	s.sortedIDs, s.tree = nil, nil
}

// appIDsLocked returns the ids of all apps, sorted; the slice is shared
// until the next app is added or deleted. s.mu must be held.
func (s *Server) appIDsLocked() []string {
	if s.sortedIDs == nil {
		ids := make([]string, 0, len(s.apps))
		for id := range s.apps {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		s.sortedIDs = ids
	}
	return s.sortedIDs
}

// treeLocked renders the current root group, built once per state of the
// apps and shared by every plan until an app changes. s.mu must be held.
func (s *Server) treeLocked() json.RawMessage {
	if s.tree != nil {
		return s.tree
	}
	ids := s.appIDsLocked()
	apps := make([]groupApp, len(ids))
	version := ""
	for i, id := range ids {
		a := s.apps[id]
		apps[i] = groupApp{id: id, json: a.currentJSON()}
		if a.version > version {
			version = a.version
		}
	}
	if version == "" {
		version = timestamp(s.lastVersion)
	}
	s.tree = groupTree(apps, version)
	return s.tree
}

// planTreeLocked renders a root group for a plan that deploys apps ids:
// the current root group, or with PlanGroupsAffected a root group holding
// only those of ids that exist, versioned with the last version given out.
// s.mu must be held.
func (s *Server) planTreeLocked(ids ...string) json.RawMessage {
	if s.opts.PlanGroups != PlanGroupsAffected {
		return s.treeLocked()
	}
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	var apps []groupApp
	for _, id := range sorted {
		if a := s.apps[id]; a != nil {
			apps = append(apps, groupApp{id: id, json: a.currentJSON()})
		}
	}
	return groupTree(apps, timestamp(s.lastVersion))
}

// appURL is the absolute URL of app id on the server r reached, for the
// Location header of a created app.
func appURL(r *http.Request, id string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	prefix := ""
	if strings.HasPrefix(strings.TrimLeft(r.URL.Path, "/"), "marathon/") {
		prefix = "/marathon"
	}
	return scheme + "://" + r.Host + prefix + "/v2/apps" + id
}

// clientIP is the request's remote address without the port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
