package marathonsim

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/oakdns/oak/internal/poll"
)

// withHealthCheckDefaults fills in what Marathon stores for keys a health
// check leaves out (docs/marathon-api.md §2.1); check is canonical JSON.
func withHealthCheckDefaults(check json.RawMessage) (json.RawMessage, error) {
	var hc map[string]any
	dec := json.NewDecoder(bytes.NewReader(check))
	dec.UseNumber()
	if err := dec.Decode(&hc); err != nil {
		return nil, err
	}
	set := func(key string, v any) {
		if _, ok := hc[key]; !ok {
			hc[key] = v
		}
	}
	set("protocol", "HTTP")
	set("gracePeriodSeconds", 300)
	set("intervalSeconds", 60)
	set("timeoutSeconds", 20)
	set("maxConsecutiveFailures", 3)
	protocol, _ := hc["protocol"].(string)
	switch protocol {
	case "HTTP", "HTTPS":
		set("path", "/")
		set("ignoreHttp1xx", false)
	}
	if _, port := hc["port"]; !port && protocol != "COMMAND" {
		set("portIndex", 0)
	}
	return json.Marshal(hc)
}

// healthCheck is what the simulator acts on of one of an app's checks.
type healthCheck struct {
	definition  json.RawMessage
	interval    time.Duration
	maxFailures int // 0: never kill
	// What docker mode probes (see probe.go).
	protocol  string
	path      string
	port      int // 0: portIndex's
	portIndex int
	grace     time.Duration
	timeout   time.Duration
}

// healthChecks parses the app's checks, with Marathon's defaults for what
// a loaded definition leaves out.
func (s appSpec) healthChecks() []healthCheck {
	checks := make([]healthCheck, 0, len(s.HealthChecks))
	for _, def := range s.HealthChecks {
		var hc struct {
			IntervalSeconds        *float64 `json:"intervalSeconds"`
			MaxConsecutiveFailures *int     `json:"maxConsecutiveFailures"`
			Protocol               string   `json:"protocol"`
			Path                   string   `json:"path"`
			Port                   int      `json:"port"`
			PortIndex              int      `json:"portIndex"`
			GracePeriodSeconds     *float64 `json:"gracePeriodSeconds"`
			TimeoutSeconds         *float64 `json:"timeoutSeconds"`
		}
		_ = json.Unmarshal(def, &hc)
		c := healthCheck{definition: def, interval: time.Minute, maxFailures: 3,
			protocol: hc.Protocol, path: hc.Path, port: hc.Port, portIndex: hc.PortIndex,
			grace: 300 * time.Second, timeout: 20 * time.Second}
		if hc.GracePeriodSeconds != nil && *hc.GracePeriodSeconds >= 0 {
			c.grace = time.Duration(*hc.GracePeriodSeconds * float64(time.Second))
		}
		if hc.TimeoutSeconds != nil && *hc.TimeoutSeconds > 0 {
			c.timeout = time.Duration(*hc.TimeoutSeconds * float64(time.Second))
		}
		if hc.IntervalSeconds != nil && *hc.IntervalSeconds > 0 {
			c.interval = time.Duration(*hc.IntervalSeconds * float64(time.Second))
		}
		if hc.MaxConsecutiveFailures != nil {
			c.maxFailures = *hc.MaxConsecutiveFailures
		}
		checks = append(checks, c)
	}
	return checks
}

// setTaskHealthLocked makes t pass or fail its checks; see SetTaskHealth.
// s.mu must be held.
func (s *Server) setTaskHealthLocked(t *task, alive bool) {
	t.checkRun++ // ends the check loop of an earlier failure
	var checks []healthCheck
	if a := s.apps[t.AppID]; a != nil {
		checks = a.spec.healthChecks()
	}
	if alive || len(checks) == 0 {
		s.setHealthLocked(t, alive, len(checks))
		return
	}
	s.failCheckLocked(t, checks)
	period := s.opts.HealthCheckInterval
	if period == 0 {
		period = checks[0].interval
	}
	if period < 0 {
		return
	}
	run := t.checkRun
	s.goLocked(func() {
		for poll.Sleep(s.ctx, period) {
			s.mu.Lock()
			if t.removed || t.checkRun != run || t.State != stateRunning {
				s.mu.Unlock()
				return
			}
			s.failCheckLocked(t, checks)
			s.mu.Unlock()
		}
	})
}

// failCheckLocked records one failed run of each of t's checks as
// Marathon's health check actors do: failed_health_check_event for each,
// then, when a check fails with its maxConsecutiveFailures failures already
// counted, unhealthy_instance_kill_event and the kill of t, which a
// replacement follows. s.mu must be held.
func (s *Server) failCheckLocked(t *task, checks []healthCheck) {
	before := t.HealthCheckResults
	kill := false
	for i, c := range checks {
		s.emitLocked("failed_health_check_event", map[string]any{
			"appId": t.AppID, "instanceId": instanceID(t.ID), "healthCheck": c.definition,
		})
		if i < len(before) && c.maxFailures > 0 && before[i].ConsecutiveFailures >= c.maxFailures {
			kill = true
		}
	}
	s.setHealthLocked(t, false, len(checks))
	if !kill {
		return
	}
	s.emitLocked("unhealthy_instance_kill_event", map[string]any{
		"appId": t.AppID, "taskId": t.ID, "instanceId": instanceID(t.ID), "version": t.Version,
		"reason": failureCause, "host": t.Host, "slaveId": t.SlaveID,
	})
	s.stopTaskLocked(t)
	s.replaceLater(t.AppID, 0)
}

// failureCause is the lastFailureCause of every failed check.
const failureCause = "simulated failure (marathonsim)"

// setHealthLocked sets every health check result of t and publishes
// health_status_changed_event when alive changes. s.mu must be held.
func (s *Server) setHealthLocked(t *task, alive bool, checks int) {
	if checks < 1 {
		checks = 1
	}
	now := timestamp(time.Now())
	changed := len(t.HealthCheckResults) == 0
	results := make([]healthResult, checks)
	for i := range results {
		var h healthResult
		if i < len(t.HealthCheckResults) {
			h = t.HealthCheckResults[i]
		}
		if h.Alive != alive {
			changed = true
		}
		h.Alive = alive
		h.InstanceID = instanceID(t.ID)
		if alive {
			h.ConsecutiveFailures = 0
			if h.FirstSuccess == nil {
				h.FirstSuccess = &now
			}
			h.LastSuccess = &now
		} else {
			h.ConsecutiveFailures++
			h.LastFailure = &now
			cause := failureCause
			h.LastFailureCause = &cause
		}
		results[i] = h
	}
	t.HealthCheckResults = results
	if changed {
		s.emitLocked("health_status_changed_event", map[string]any{
			"appId": t.AppID, "instanceId": instanceID(t.ID), "version": t.Version, "alive": alive,
		})
	}
	s.notifyLocked()
}
