package marathonsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/oakdns/oak/internal/poll"
)

// launchLocked starts a new task of a's current config version: it is
// TASK_STAGING now and a goroutine moves it on. s.mu must be held.
func (s *Server) launchLocked(a *app) *task {
	now := timestamp(time.Now())
	t := &task{
		ID: newTaskID(a.id), SlaveID: s.opts.AgentID, Host: s.opts.Host, State: stateStaging,
		StagedAt: now, Version: a.configVersion, AppID: a.id,
		Ports: s.hostPortsLocked(a), ServicePorts: append([]int(nil), a.servicePorts()...),
	}
	inContainer := s.docker != nil && a.spec.runsContainer()
	if inContainer {
		t.stop = make(chan struct{}) // the address comes from the container
	} else if ip := a.spec.fixedIP(); ip != "" {
		t.IPAddresses = []ipAddress{{IPAddress: ip, Protocol: protocolOf(ip)}}
	} else if addr, ok := s.leaseLocked(); ok {
		t.leased = addr
		t.IPAddresses = []ipAddress{{IPAddress: addr.String(), Protocol: protocolOf(addr.String())}}
	}
	s.tasks[a.id] = append(s.tasks[a.id], t)
	s.emitLocked("instance_changed_event", instanceChanged(t, "Created"))
	s.emitLocked("status_update_event", statusUpdate(t, ""))
	s.notifyLocked()
	withHealth := a.spec.hasHealthChecks()
	checks := len(a.spec.HealthChecks)
	if !inContainer {
		s.goLocked(func() { s.runTask(t, withHealth, checks) })
		return t
	}
	plan, err := planContainer(a, t, s.docker.owner, s.opts.Host)
	spec := a.spec
	s.goLocked(func() {
		if err != nil {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.notStartedLocked(t, err)
			return
		}
		s.runContainer(t, plan, spec)
	})
	return t
}

// runTask moves a new task to TASK_RUNNING after StagingDelay and, for apps
// with health checks, gives it alive results after HealthDelay.
func (s *Server) runTask(t *task, withHealth bool, checks int) {
	if !poll.Sleep(s.ctx, s.opts.StagingDelay) {
		return
	}
	s.mu.Lock()
	if t.removed || t.State != stateStaging {
		s.mu.Unlock()
		return
	}
	t.State = stateRunning
	t.StartedAt = timestamp(time.Now())
	s.emitLocked("status_update_event", statusUpdate(t, ""))
	s.emitLocked("instance_changed_event", instanceChanged(t, "Running"))
	s.notifyLocked()
	s.mu.Unlock()
	if !withHealth || !poll.Sleep(s.ctx, s.opts.HealthDelay) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.removed || t.State != stateRunning || len(t.HealthCheckResults) > 0 {
		return // killed, or health already set through the admin API
	}
	s.setHealthLocked(t, true, checks)
}

// stopTaskLocked kills t as Marathon's kill service does: TASK_KILLING now,
// with t still listed, then TASK_KILLED and removal after Options.KillDelay,
// when Mesos would confirm. It reports whether t is still listed.
// s.mu must be held.
func (s *Server) stopTaskLocked(t *task) bool {
	if t.removed {
		return false
	}
	if t.State == stateKilling {
		return true
	}
	t.State = stateKilling
	stopContainerLocked(t)
	s.emitLocked("status_update_event", statusUpdate(t, ""))
	s.emitLocked("instance_changed_event", instanceChanged(t, "Killing"))
	if t.stop != nil {
		// Docker mode: TASK_KILLED once the container is gone, as Mesos
		// reports it, so that a replacement never meets it on its address.
		s.notifyLocked()
		return true
	}
	if s.opts.KillDelay == 0 {
		s.killLocked(t, stateKilled, "")
		return false
	}
	s.notifyLocked()
	s.goLocked(func() {
		if !poll.Sleep(s.ctx, s.opts.KillDelay) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !t.removed && t.State == stateKilling {
			s.killLocked(t, stateKilled, "")
		}
	})
	return true
}

// killLocked ends t with a terminal state, publishes it and forgets t.
// s.mu must be held.
func (s *Server) killLocked(t *task, state, message string) {
	t.State = state
	s.emitLocked("status_update_event", statusUpdate(t, message))
	condition := "Killed"
	if state == stateFailed {
		condition = "Failed"
	}
	s.emitLocked("instance_changed_event", instanceChanged(t, condition))
	s.removeLocked(t)
	s.notifyLocked()
}

// removeLocked drops t from the task table and releases its address.
func (s *Server) removeLocked(t *task) {
	t.removed = true
	stopContainerLocked(t)
	list := s.tasks[t.AppID]
	for i, other := range list {
		if other == t {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.tasks, t.AppID)
	} else {
		s.tasks[t.AppID] = list
	}
	if t.leased.IsValid() {
		delete(s.leases, t.leased)
	}
}

// failLocked ends t with TASK_FAILED and launches a replacement after
// RestartBackoff, as Marathon's launch queue does. s.mu must be held.
func (s *Server) failLocked(t *task, message string) {
	s.killLocked(t, stateFailed, message)
	if a := s.apps[t.AppID]; a != nil {
		a.lastFailure = &lastTaskFailure{
			AppID: t.AppID, Host: t.Host, Message: message, State: stateFailed, TaskID: t.ID,
			Timestamp: timestamp(time.Now()), Version: t.Version, SlaveID: t.SlaveID,
		}
	}
	s.replaceLater(t.AppID, s.opts.RestartBackoff)
}

// replaceLater launches one task for appID after delay if the app still
// wants more tasks and no deployment is on it. s.mu must be held.
func (s *Server) replaceLater(appID string, delay time.Duration) {
	gen := s.generation
	started := s.goLocked(func() {
		if !poll.Sleep(s.ctx, delay) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if gen != s.generation {
			return // Reset meanwhile
		}
		s.pending--
		s.notifyLocked()
		a := s.apps[appID]
		if a == nil || s.locks[appID] != nil {
			return // gone, or a deployment converges it
		}
		current := 0
		for _, t := range s.tasks[appID] {
			if t.Version == a.configVersion && t.State != stateKilling {
				current++
			}
		}
		if current < a.spec.instances() {
			s.launchLocked(a)
		}
	})
	if started {
		s.pending++
	}
}

// hostPortsLocked picks the task's host ports: fixed host ports as given,
// others from 31000-32999. s.mu must be held.
func (s *Server) hostPortsLocked(a *app) []int {
	next := func() int {
		p := 31000 + s.nextHost%2000
		s.nextHost++
		return p
	}
	ports := []int{}
	if c := a.spec.Container; c != nil && c.Docker != nil && len(c.Docker.PortMappings) > 0 {
		for _, m := range c.Docker.PortMappings {
			switch {
			case m.HostPort != 0:
				ports = append(ports, m.HostPort)
			case c.Docker.Network != "USER":
				ports = append(ports, next())
			}
		}
		return ports
	}
	for _, d := range a.spec.PortDefinitions {
		if a.spec.RequirePorts && d.Port != 0 {
			ports = append(ports, d.Port)
		} else {
			ports = append(ports, next())
		}
	}
	return ports
}

// leaseLocked takes a free address of Options.TaskCIDR, skipping the
// network and broadcast addresses. It reports false when all are taken.
// s.mu must be held.
func (s *Server) leaseLocked() (netip.Addr, bool) {
	prefix := s.opts.TaskCIDR
	small := prefix.Bits() >= prefix.Addr().BitLen()-1 // /31, /32: every address
	usable := func(a netip.Addr) bool {
		if small {
			return true
		}
		if a == prefix.Addr() {
			return false
		}
		return !a.Is4() || prefix.Contains(a.Next()) // not the broadcast address
	}
	// One pass over the range at most: once every address is taken, a
	// launch must not scan 65,536 of them again.
	tries := 1 << 16
	if hostBits := prefix.Addr().BitLen() - prefix.Bits(); hostBits < 16 {
		tries = 1 << hostBits
	}
	for ; tries > 0; tries-- {
		a := s.nextLease
		if !a.IsValid() || !prefix.Contains(a) {
			a = prefix.Addr()
		}
		s.nextLease = a.Next()
		if usable(a) && !s.leases[a] {
			s.leases[a] = true
			return a, true
		}
	}
	return netip.Addr{}, false
}

func protocolOf(ip string) string {
	if addr, err := netip.ParseAddr(ip); err == nil && addr.Is6() && !addr.Is4In6() {
		return "IPv6"
	}
	return "IPv4"
}

// appTasks answers GET /v2/apps/{id}/tasks.
func (s *Server) appTasks(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps[id] == nil {
		writeError(w, notFound(id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": tasksOrEmpty(s.tasks[id])})
}

// listTasks answers GET /v2/tasks[?status=running|staging].
func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) {
	status := strings.ToLower(r.URL.Query().Get("status"))
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.tasks))
	for id := range s.tasks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	list := []*task{}
	for _, id := range ids {
		for _, t := range s.tasks[id] {
			if status == "" || strings.EqualFold(t.State, "TASK_"+status) {
				list = append(list, t)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": list})
}

func tasksOrEmpty(list []*task) []*task {
	if list == nil {
		return []*task{}
	}
	return list
}

// killOneTask answers DELETE /v2/apps/{id}/tasks/{taskId}[?scale=true].
func (s *Server) killOneTask(w http.ResponseWriter, r *http.Request, appID, taskID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps[appID] == nil {
		writeError(w, notFound(appID))
		return
	}
	var found *task
	for _, t := range s.tasks[appID] {
		if t.ID == taskID {
			found = t
		}
	}
	if found == nil {
		writeError(w, &apiError{http.StatusNotFound, map[string]string{"message": fmt.Sprintf("Task '%s' does not exist", taskID)}})
		return
	}
	snapshot := *found
	s.killTasksLocked(w, r, appID, []*task{found})
	if r.URL.Query().Get("scale") != "true" {
		writeJSON(w, http.StatusOK, map[string]any{"task": &snapshot})
	}
}

// killAppTasks answers DELETE /v2/apps/{id}/tasks[?host=&scale=].
func (s *Server) killAppTasks(w http.ResponseWriter, r *http.Request, appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps[appID] == nil {
		writeError(w, notFound(appID))
		return
	}
	host := r.URL.Query().Get("host")
	var victims []*task
	snapshots := []task{}
	for _, t := range s.tasks[appID] {
		if host == "" || host == "*" || t.Host == host {
			victims = append(victims, t)
			snapshots = append(snapshots, *t)
		}
	}
	s.killTasksLocked(w, r, appID, victims)
	if r.URL.Query().Get("scale") != "true" {
		writeJSON(w, http.StatusOK, map[string]any{"tasks": snapshots})
	}
}

// deleteTasks answers POST /v2/tasks/delete {"ids":[...]}.
func (s *Server) deleteTasks(w http.ResponseWriter, r *http.Request) {
	var body struct {
		IDs []string `json:"ids"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, badJSON("/ids", "error.expected.jsarray"))
		return
	}
	want := map[string]bool{}
	for _, id := range body.IDs {
		want[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	byApp := map[string][]*task{}
	for appID, list := range s.tasks {
		for _, t := range list {
			if want[t.ID] {
				byApp[appID] = append(byApp[appID], t)
			}
		}
	}
	scale := r.URL.Query().Get("scale") == "true"
	for appID, victims := range byApp {
		s.killTasksLocked(nil, r, appID, victims)
	}
	if scale {
		writeJSON(w, http.StatusOK, map[string]string{"deploymentId": newUUID(), "version": timestamp(s.lastVersion)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": []any{}})
}

// killTasksLocked kills victims of appID (see stopTaskLocked). With scale=true
// the app's instances go down by as many, through a scale deployment whose
// id is written to w (when w is not nil); otherwise replacements start.
// s.mu must be held.
func (s *Server) killTasksLocked(w http.ResponseWriter, r *http.Request, appID string, victims []*task) {
	scale := r.URL.Query().Get("scale") == "true"
	for _, t := range victims {
		s.stopTaskLocked(t)
		if !scale {
			s.replaceLater(appID, 0)
		}
	}
	if !scale {
		return
	}
	a := s.apps[appID]
	if a == nil {
		return
	}
	if d := s.locks[appID]; d != nil {
		s.cancelDeploymentLocked(d)
	}
	original := s.planTreeLocked(appID)
	def := copyFields(a.def)
	n := a.spec.instances() - len(victims)
	if n < 0 {
		n = 0
	}
	def["instances"], _ = json.Marshal(n)
	spec := a.spec
	spec.Instances = &n
	prev := a
	a = s.storeLocked(appID, prev, def, spec, false)
	d := s.deployLocked(original, change{appID: appID, kind: planScale, prev: prev})
	if w != nil {
		writeJSON(w, http.StatusOK, map[string]string{"deploymentId": d.id, "version": a.version})
	}
}
