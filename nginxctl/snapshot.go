package nginxctl

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/watcher"
)

// This file is the only one that reads the catalog. It uses today's
// catalog API, which cannot say "held" (VirtualHosts lists only live
// vhosts) nor list the addresses apps claim or the policy's CIDR rules:
// clients are found among the vhosts' backends, and the CIDR rules are
// passed in.

// FromSnapshot builds the model of s: the default env's vhosts, and for
// every other env that has apps or a CIDR rule, the vhosts it sees
// differently.
func FromSnapshot(s *catalog.Snapshot, cidrs []catalog.CIDRRule) Model {
	defaultEnv := s.Policy().DefaultEnv()
	m := Model{DefaultEnv: defaultEnv, Default: routesOf(s, defaultEnv)}

	envs := s.Envs()
	for _, r := range cidrs {
		m.CIDRs = append(m.CIDRs, CIDREnv{Prefix: r.Prefix.Masked(), Env: r.Env})
		envs = append(envs, r.Env)
	}
	slices.Sort(envs)
	byHost := make(map[string]Route, len(m.Default))
	for _, r := range m.Default {
		byHost[r.Host] = r
	}
	candidates := map[netip.Addr]bool{}
	for _, env := range slices.Compact(envs) {
		routes := routesOf(s, env)
		var own []Route
		for _, r := range routes {
			for _, b := range r.Backends {
				candidates[b.Addr] = true
			}
			if env != defaultEnv && !sameRoute(r, byHost[r.Host]) {
				own = append(own, r)
			}
		}
		if len(own) > 0 {
			m.Envs = append(m.Envs, EnvRoutes{Env: env, Routes: own})
		}
	}
	// Backends are the apps' addresses, and apps are clients too.
	for addr := range candidates {
		if env, how := s.EnvOf(addr); how == catalog.ByApp {
			m.Clients = append(m.Clients, ClientEnv{Addr: addr, Env: env})
		}
	}
	slices.SortFunc(m.Clients, func(a, b ClientEnv) int { return a.Addr.Compare(b.Addr) })
	return m
}

// routesOf turns the vhosts a client of env sees into routes, one per
// host. Today's catalog keeps host:port entries apart, so a host may come
// with several serving envs: the first in env's chain wins, and entries of
// that env merge their backends. A vhost without a port is served on port
// 80 of its backends.
func routesOf(s *catalog.Snapshot, env string) []Route {
	chain := s.Policy().Chain(env)
	var out []Route
	for _, vh := range s.VirtualHosts(env) {
		port := vh.Port
		if port == 0 {
			port = 80
		}
		if len(out) == 0 || out[len(out)-1].Host != vh.Host {
			out = append(out, Route{Host: vh.Host, Env: vh.Service.Env})
		}
		r := &out[len(out)-1]
		switch here, serving := slices.Index(chain, vh.Service.Env), slices.Index(chain, r.Env); {
		case here > serving:
			continue
		case here < serving:
			r.Env, r.Backends = vh.Service.Env, nil
		}
		for _, a := range vh.Service.Addrs {
			r.Backends = append(r.Backends, Backend{Addr: a, Port: port})
		}
		slices.SortFunc(r.Backends, compareBackend)
		r.Backends = slices.Compact(r.Backends)
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
	CIDRs  []catalog.CIDRRule // the policy's rules, as configured
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
	return View{Model: FromSnapshot(s, w.CIDRs), Rejected: rejected}, true
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
