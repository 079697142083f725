package catalog

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// Answer is the result of resolving one name for one env.
type Answer struct {
	Service    *Service // nil when no env in the chain serves the name (live)
	Chain      []string // the envs walked, in order, ending at the serving env (shared: do not modify)
	Registered bool     // some env in Chain has an app claiming the name, live or not
}

// Classification says how EnvOf chose a client's env.
type Classification int

// How EnvOf chose an env. The zero value is not a classification.
const (
	ByApp      Classification = iota + 1 // an app claims the client's address
	ByCIDR                               // a CIDR rule of the policy
	ByDefault                            // nothing matched: the default env
	ByConflict                           // apps of several envs claim the address: the default env
)

// String returns "app", "cidr", "default" or "conflict", for logs and
// metric labels.
func (c Classification) String() string {
	switch c {
	case ByApp:
		return "app"
	case ByCIDR:
		return "cidr"
	case ByDefault:
		return "default"
	case ByConflict:
		return "conflict"
	}
	return "unknown"
}

// VirtualHost is one OAK_HTTP host as a client of some env sees it.
type VirtualHost struct {
	Host    string
	Port    uint16   // 0 when the label gave no port (renderers use 80)
	Service *Service // the serving env's backends; never nil
}

// Resolve answers which backends serve name for a client of env: the first
// env of env's chain with a live backend for name serves it (the envs
// before it have no app claiming the name, or none live). env "" means the
// default env. name must be lower-case; a trailing dot is ignored. Resolve
// does not allocate for envs the policy names or the snapshot has apps in.
func (s *Snapshot) Resolve(env, name string) Answer {
	name = strings.TrimSuffix(name, ".")
	entry, ok := s.names.get(s.hashString(name), name)
	if !ok {
		return Answer{Chain: s.policy.Chain(env)}
	}
	return walk(&entry, s.policy.Chain(env))
}

// walk is the fallback walk, shared by DNS names and virtual hosts so that
// DNS and Nginx never disagree.
func walk(entry *claims, chain []string) Answer {
	registered := false
	for i, env := range chain {
		here := entry.find(env)
		if here == nil {
			continue
		}
		registered = true
		if len(here.service.Addrs) > 0 {
			return Answer{Service: &here.service, Chain: chain[:i+1], Registered: true}
		}
	}
	return Answer{Chain: chain, Registered: registered}
}

// EnvOf returns the env of a client: the env of the app whose OAK_IP or
// running task IP is the client's address; else the env of the most
// specific CIDR rule; else the default env. When apps of several envs
// claim the address, the client gets the default env and ByConflict. It
// does not allocate.
func (s *Snapshot) EnvOf(client netip.Addr) (env string, how Classification) {
	client = client.Unmap().WithZone("")
	if client.IsValid() {
		key := keyOf(client)
		if o, _ := s.addrs.get(s.hashAddr(key), key); o != nil && len(o.claimants) > 0 {
			if o.conflict {
				return s.policy.defaultEnv, ByConflict
			}
			return o.env, ByApp
		}
		if env, ok := s.policy.EnvForAddr(client); ok {
			return env, ByCIDR
		}
	}
	return s.policy.defaultEnv, ByDefault
}

// Reverse returns the names, with their envs, whose live backends include
// a, sorted; for PTR answers and Nginx. The slice is shared: do not modify.
func (s *Snapshot) Reverse(a netip.Addr) []NameRef {
	if !a.IsValid() {
		return nil
	}
	key := keyOf(a)
	if o, _ := s.addrs.get(s.hashAddr(key), key); o != nil {
		return o.refs
	}
	return nil
}

// Claimed reports whether an app of any env claims name itself, live or
// not. name must be lower-case; a trailing dot is ignored.
func (s *Snapshot) Claimed(name string) bool {
	name = strings.TrimSuffix(name, ".")
	_, ok := s.names.get(s.hashString(name), name)
	return ok
}

// HasSuffix reports whether some app claims name, or a name below it, in
// any env: a DNS server answers NODATA rather than NXDOMAIN for such empty
// non-terminals. name must be lower-case; a trailing dot is ignored.
func (s *Snapshot) HasSuffix(name string) bool {
	name = strings.TrimSuffix(name, ".")
	count, _ := s.suffixes.get(s.hashString(name), name)
	return count > 0
}

// VirtualHosts returns the OAK_HTTP virtual hosts a client of env sees,
// each resolved through env's chain exactly as Resolve resolves names, and
// only those with live backends; sorted by host, then port.
func (s *Snapshot) VirtualHosts(env string) []VirtualHost {
	chain := s.policy.Chain(env)
	var out []VirtualHost
	for _, shard := range s.vhosts.shards {
		for _, entry := range shard {
			if answer := walk(&entry, chain); answer.Service != nil {
				out = append(out, VirtualHost{Host: entry.name, Port: entry.port, Service: answer.Service})
			}
		}
	}
	slices.SortFunc(out, func(a, b VirtualHost) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port))
	})
	return out
}
