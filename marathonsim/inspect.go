package marathonsim

import (
	"context"
	"sort"
)

// State is a debugging view of the simulator (GET /_sim/state).
type State struct {
	Apps        []AppState `json:"apps"`
	Deployments []string   `json:"deployments"`
	Streams     int        `json:"streams"`
	Faults      Faults     `json:"faults"`
}

// AppState is one app in State.
type AppState struct {
	ID        string            `json:"id"`
	Instances int               `json:"instances"`
	Version   string            `json:"version"`
	Labels    map[string]string `json:"labels,omitempty"`
	Tasks     []TaskState       `json:"tasks"`
}

// TaskState is one task in State.
type TaskState struct {
	ID      string   `json:"id"`
	State   string   `json:"state"`
	Host    string   `json:"host"`
	IPs     []string `json:"ips,omitempty"`
	Ports   []int    `json:"ports,omitempty"`
	Version string   `json:"version"`
	Healthy *bool    `json:"healthy,omitempty"` // nil without health results
}

// State returns a snapshot of apps, tasks, deployments, streams and faults.
// Tasks of deleted apps that are still being killed are left out.
func (s *Server) State() State {
	s.mu.Lock()
	st := State{Apps: []AppState{}, Deployments: []string{}}
	for id, a := range s.apps {
		as := AppState{ID: id, Instances: a.spec.instances(), Version: a.version, Labels: a.spec.Labels, Tasks: []TaskState{}}
		for _, t := range s.tasks[id] {
			ts := TaskState{ID: t.ID, State: t.State, Host: t.Host, Ports: t.Ports, Version: t.Version}
			for _, ip := range t.IPAddresses {
				ts.IPs = append(ts.IPs, ip.IPAddress)
			}
			if len(t.HealthCheckResults) > 0 {
				healthy := t.ready(true)
				ts.Healthy = &healthy
			}
			as.Tasks = append(as.Tasks, ts)
		}
		st.Apps = append(st.Apps, as)
	}
	for id := range s.deployments {
		st.Deployments = append(st.Deployments, id)
	}
	s.mu.Unlock()
	sort.Slice(st.Apps, func(i, j int) bool { return st.Apps[i].ID < st.Apps[j].ID })
	sort.Strings(st.Deployments)
	st.Streams = s.events.count()
	st.Faults = s.Faults()
	return st
}

// Stats counts what clients asked of the simulator (GET /_sim/stats).
type Stats struct {
	// FullLists is the GET /v2/apps requests with embed=apps.tasks
	// answered: a watcher's full resyncs.
	FullLists int64 `json:"fullLists"`
}

// Stats returns the request counts.
func (s *Server) Stats() Stats { return Stats{FullLists: s.fullLists.Load()} }

// Streams returns the number of connected event stream clients.
func (s *Server) Streams() int { return s.events.count() }

// Settle waits until nothing is in flight: no deployment runs, no task is
// staging, being killed or waiting for its first health result, no replacement is
// waiting for its backoff. A task made unhealthy on purpose keeps a
// deployment (and so Settle) waiting, as it would keep Marathon's.
func (s *Server) Settle(ctx context.Context) error {
	for {
		s.mu.Lock()
		busy := s.busyLocked()
		changed := s.changed
		s.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
}

func (s *Server) busyLocked() bool {
	if len(s.deployments) > 0 || s.pending > 0 {
		return true
	}
	for id, list := range s.tasks {
		a := s.apps[id]
		for _, t := range list {
			if t.State == stateStaging || t.State == stateKilling {
				return true
			}
			if a != nil && a.spec.hasHealthChecks() && t.State == stateRunning && len(t.HealthCheckResults) == 0 {
				return true
			}
		}
	}
	return false
}
