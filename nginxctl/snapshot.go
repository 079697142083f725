package nginxctl

import (
	"context"
	"slices"
	"time"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/watcher"
)

// This file is the only one that reads the catalog. The catalog decides
// every answer; this file only turns its decisions into the model's
// routes: served → backends, held → 503, anything else → 404.

// FromSnapshot builds the model of s: who each client is (the addresses
// apps claim, the CIDR rules, the default env), the default env's vhosts,
// and for every env a client can be in, the vhosts it sees differently.
func FromSnapshot(s *catalog.Snapshot) Model {
	policy := s.Policy()
	m := Model{DefaultEnv: policy.DefaultEnv()}
	for _, c := range s.Clients() {
		m.Clients = append(m.Clients, ClientEnv{Addr: c.Addr, Env: c.Env})
	}
	envs := s.Envs()
	for _, r := range policy.CIDRRules() {
		m.CIDRs = append(m.CIDRs, CIDREnv{Prefix: r.Prefix, Env: r.Env})
		envs = append(envs, r.Env)
	}
	views := s.VHostViews(envs)
	byHost := map[string]Route{}
	for _, v := range views {
		if v.Env == m.DefaultEnv {
			m.Default = routesOf(v.Hosts)
			for _, r := range m.Default {
				byHost[r.Host] = r
			}
		}
	}
	for _, v := range views {
		if v.Env == m.DefaultEnv {
			continue
		}
		var own []Route
		for _, r := range routesOf(v.Hosts) {
			if !sameRoute(r, byHost[r.Host]) {
				own = append(own, r)
			}
		}
		if len(own) > 0 {
			m.Envs = append(m.Envs, EnvRoutes{Env: v.Env, Routes: own})
		}
	}
	return m
}

// routesOf maps the catalog's vhost decisions to routes, sorted by host as
// they come: served hosts to their backends' HTTP ports, held hosts to a
// 503. Foreign and unknown hosts get no route: the default server's 404.
func routesOf(hosts []catalog.VHostAnswer) []Route {
	var out []Route
	for _, h := range hosts {
		switch h.Answer.Kind {
		case catalog.Served:
			r := Route{Host: h.Host, Env: h.Answer.Env}
			for _, b := range h.Answer.Service.Backends {
				for _, p := range b.Ports {
					r.Backends = append(r.Backends, Backend{Addr: b.Addr, Port: p.Number})
				}
			}
			out = append(out, r)
		case catalog.Held:
			out = append(out, Route{Host: h.Host, Held: true, Env: h.Answer.Env})
		}
	}
	return out
}

// namesOf is what a client of env gets for every claimed DNS name.
func namesOf(s *catalog.Snapshot, env string) []NameView {
	names := s.Names()
	out := make([]NameView, 0, len(names))
	for _, name := range names {
		answer := s.Resolve(env, name)
		v := NameView{Name: name, Kind: answer.Kind.String()}
		if answer.Kind == catalog.Served || answer.Kind == catalog.Held {
			v.ServingEnv = answer.Env
		}
		if answer.Kind == catalog.Served {
			for _, a := range answer.Service.Addrs {
				v.Addrs = append(v.Addrs, a.String())
			}
		}
		out = append(out, v)
	}
	return out
}

func sameRoute(a, b Route) bool {
	return a.Host == b.Host && a.Held == b.Held && a.Env == b.Env && slices.Equal(a.Backends, b.Backends)
}

// WatcherSource is a Source over a watcher.Source (a Marathon watcher or a
// file).
type WatcherSource struct {
	Source watcher.Source
	// Poll is how often a source without change notification is checked;
	// default 1s.
	Poll time.Duration
}

// View implements Source.
func (w *WatcherSource) View() (View, bool) {
	s := w.Source.Snapshot()
	if s == nil || !w.Source.Ready() {
		return View{}, false
	}
	var rejected []Rejection
	for _, r := range s.Rejected() {
		rejected = append(rejected, Rejection{Source: "app", App: r.AppID, Value: r.Label + "=" + r.Value, Reason: r.Reason})
	}
	return View{Model: FromSnapshot(s), Rejected: rejected, Snapshot: s}, true
}

// Synced implements Source.
func (w *WatcherSource) Synced() time.Time { return w.Source.Status().LastSync }

// Watch implements Source: through the watcher's Changed channel when it
// has one, else by polling for a new snapshot.
func (w *WatcherSource) Watch(ctx context.Context, changed func()) {
	if notifier, ok := w.Source.(interface{ Changed() <-chan struct{} }); ok {
		for {
			select {
			case <-ctx.Done():
				return
			case <-notifier.Changed():
				changed()
			}
		}
	}
	period := w.Poll
	if period <= 0 {
		period = time.Second
	}
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	last := w.Source.Snapshot()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if s := w.Source.Snapshot(); s != last {
				last = s
				changed()
			}
		}
	}
}
