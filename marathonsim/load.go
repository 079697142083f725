package marathonsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
)

// LoadApps replaces the whole state with a GET /v2/apps?embed=apps.tasks
// body and makes it what Reset returns to. Apps keep their versions; tasks
// are loaded as they are (ids, states, hosts, ports, ipAddresses, health)
// and nothing is launched for them until the app changes or a task fails.
// Running deployments are cancelled; no events are published.
func (s *Server) LoadApps(body []byte) error {
	apps, tasks, err := parseApps(body)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
	s.baseline = append([]byte(nil), body...)
	s.installLocked(apps, tasks)
	return nil
}

// Reset cancels every deployment and task timer, clears all faults and
// returns to the initial state (Options.Apps or the last LoadApps). It
// publishes no events and keeps event streams connected: call DropStreams
// as well to make watchers reconnect and resync.
func (s *Server) Reset() {
	s.clearFaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
	if s.baseline != nil {
		apps, tasks, err := parseApps(s.baseline)
		if err == nil {
			s.installLocked(apps, tasks)
		}
	}
}

// resetLocked empties the state. s.mu must be held (or s not yet shared).
func (s *Server) resetLocked() {
	for _, d := range s.deployments {
		d.cancel()
	}
	for _, list := range s.tasks {
		for _, t := range list {
			t.removed = true
			stopContainerLocked(t)
		}
	}
	s.apps = map[string]*app{}
	s.sortedIDs, s.tree = nil, nil
	s.tasks = map[string][]*task{}
	s.deployments = map[string]*deployment{}
	s.locks = map[string]*deployment{}
	s.leases = map[netip.Addr]bool{}
	s.nextLease = netip.Addr{}
	s.nextService, s.nextHost, s.pending = 0, 0, 0
	s.generation++
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// installLocked adds parsed apps and tasks. s.mu must be held.
func (s *Server) installLocked(apps []*app, tasks map[string][]*task) {
	for _, a := range apps {
		s.putAppLocked(a)
		if v, err := parseTimestamp(a.version); err == nil && v.After(s.lastVersion) {
			s.lastVersion = v
		}
	}
	for id, list := range tasks {
		for _, t := range list {
			for _, ip := range t.IPAddresses {
				if addr, err := netip.ParseAddr(ip.IPAddress); err == nil && s.opts.TaskCIDR.Contains(addr) && !s.leases[addr] {
					s.leases[addr] = true
					t.leased = addr
					break
				}
			}
		}
		s.tasks[id] = list
	}
}

// parseApps parses a /v2/apps body into apps and their tasks.
func parseApps(body []byte) ([]*app, map[string][]*task, error) {
	var doc struct {
		Apps *[]map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("apps body: %w", err)
	}
	if doc.Apps == nil {
		return nil, nil, errors.New(`apps body: no "apps" array`)
	}
	var apps []*app
	tasks := map[string][]*task{}
	seen := map[string]bool{}
	for i, top := range *doc.Apps {
		def := fields{}
		for k, v := range top {
			if computed(k) {
				continue
			}
			c, err := canonical(v)
			if err != nil {
				return nil, nil, fmt.Errorf("app %d: %q: %w", i, k, err)
			}
			def[k] = c
		}
		spec, aerr := parseSpec(def)
		if aerr != nil {
			return nil, nil, fmt.Errorf("app %d: %v", i, aerr.body)
		}
		id := normalizeID(spec.ID)
		if seen[id] {
			return nil, nil, fmt.Errorf("app %d: duplicate id %s", i, id)
		}
		seen[id] = true
		def["id"], _ = json.Marshal(id)
		var meta struct {
			Version     string `json:"version"`
			VersionInfo struct {
				LastScalingAt      string `json:"lastScalingAt"`
				LastConfigChangeAt string `json:"lastConfigChangeAt"`
			} `json:"versionInfo"`
			Tasks []*task `json:"tasks"`
		}
		metaJSON, _ := json.Marshal(map[string]json.RawMessage{"version": top["version"], "versionInfo": top["versionInfo"], "tasks": top["tasks"]})
		if err := json.Unmarshal(metaJSON, &meta); err != nil {
			return nil, nil, fmt.Errorf("app %s: %w", id, err)
		}
		if meta.Version == "" {
			meta.Version = "2017-01-01T00:00:00.000Z"
		}
		a := &app{
			id: id, def: def, spec: spec, version: meta.Version,
			configVersion: orDefault(meta.VersionInfo.LastConfigChangeAt, meta.Version),
			scalingAt:     orDefault(meta.VersionInfo.LastScalingAt, meta.Version),
			versions:      map[string]fields{meta.Version: def}, order: []string{meta.Version},
		}
		apps = append(apps, a)
		for _, t := range meta.Tasks {
			if t == nil || t.ID == "" {
				return nil, nil, fmt.Errorf("app %s: task without id", id)
			}
			if t.AppID == "" {
				t.AppID = id
			}
			t.AppID = normalizeID(t.AppID)
			tasks[t.AppID] = append(tasks[t.AppID], t)
		}
	}
	return apps, tasks, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
