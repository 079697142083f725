package catalog

import (
	"hash/maphash"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unique"
)

// Snapshot is an immutable view of the cluster under one Policy. All its
// methods are safe for concurrent use without locks. Callers publish a new
// snapshot by swapping a pointer (atomic.Pointer); Apply derives one from
// another, sharing everything that did not change.
//
// Every index is a table (table.go): a hash of the key, with a seed shared
// by a snapshot and everything Applied to it, picks a small leaf of
// entries in a block. Apply copies only the blocks it writes and the
// short array above them, so its cost follows the changed apps, not the
// cluster; a read is a hash, two array reads and a scan of a few entries.
type Snapshot struct {
	policy *Policy
	seed   maphash.Seed

	apps     table[string, *app]      // app id -> accepted app
	rejected table[string, Rejection] // app id -> why it was left out
	names    table[string, claims]    // OAK_NAMES name -> who claims and serves it, per env
	vhosts   table[string, claims]    // OAK_HTTP host -> who publishes and serves it, per env
	suffixes table[string, int]       // name or ancestor of a name -> number of names at or below it
	reverse  table[string, int]       // reverse name above a live backend with names (1.0.10.in-addr.arpa) -> backends below it
	addrs    table[addrKey, *owner]   // address -> apps claiming it and names it backs
	conflict table[addrKey, *owner]   // the addresses of addrs claimed in several envs: few, listed at every publish
	envs     table[string, int]       // env -> number of accepted apps in it

	// fixed is replaced (a new allocation) by every Apply that changes
	// what FixedAddrs lists, and shared otherwise: FixedAddrsChanged.
	fixed *fixedEpoch

	tasks, liveTasks int
}

// fixedEpoch identifies one version of a snapshot's FixedAddrs by its
// address; it is never zero-sized, so every allocation is distinct.
type fixedEpoch struct{ _ byte }

// claims is everything known about one name (or vhost) in every env. It
// is held by value in its table, and its envs sit in one array with their
// services inline, so that a lookup follows few pointers: on a DNS server
// between two queries the CPU's caches are cold, and each pointer followed
// is a wait for memory. Immutable: Apply replaces the whole value of a
// changed name.
type claims struct {
	envs []envClaims // sorted by env; most names are claimed in a few envs
}

// envClaims is one name in one env: the apps claiming it and what they
// serve together.
type envClaims struct {
	env     string   // interned (see intern), so comparing it rarely reads memory
	apps    []string // sorted ids of the apps claiming the name in this env, live or not
	service Service  // what they serve; no Addrs while none has a live backend
}

// find returns the claims of env, or nil.
func (c *claims) find(env string) *envClaims {
	if len(c.envs) <= 8 {
		for i := range c.envs {
			if c.envs[i].env == env {
				return &c.envs[i]
			}
		}
		return nil
	}
	lo, hi := 0, len(c.envs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if c.envs[mid].env < env {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(c.envs) && c.envs[lo].env == env {
		return &c.envs[lo]
	}
	return nil
}

// owner is everything known about one address.
type owner struct {
	claimants []appEnv  // apps whose OAK_IP or running task IP it is, sorted by id
	backends  []string  // ids of apps that have it as a live backend, sorted
	env       string    // env of the claimants when they agree
	conflict  bool      // claimants are in more than one env
	refs      []NameRef // names whose live backends include it, sorted

	// Room for the usual single claimant, backend and name, which the
	// slices above then point into: the index holds an owner per task
	// address, and one allocation instead of four is three objects fewer
	// for the garbage collector to mark on the core that serves queries.
	oneClaimant [1]appEnv
	oneBackend  [1]string
	oneRef      [1]NameRef
}

type appEnv struct{ id, env string }

// Service is what one env serves for one name or virtual host: immutable.
type Service struct {
	Name     string
	Env      string
	Addrs    []netip.Addr // live backends' addresses, sorted, deduped, non-empty
	Ports    []Port       // union of the backends' ports, sorted
	Backends []Backend    // each address with the ports served there, sorted by address
	Apps     []string     // serving app ids (those with live backends), sorted
}

// NameRef is a name as registered in one env.
type NameRef struct{ Name, Env string }

// Stats counts what a snapshot holds.
type Stats struct {
	Apps      int // accepted apps
	Tasks     int // tasks in TASK_RUNNING of accepted apps
	LiveTasks int // running tasks passing their health checks
	Rejected  int // apps left out
	Names     int // distinct OAK_NAMES names claimed by any app
	Envs      int // envs that have accepted apps
}

// AddrConflict is an address claimed by apps of more than one env. Clients
// at that address get the default env.
type AddrConflict struct {
	Addr netip.Addr
	Envs []string // sorted
	Apps []string // sorted
}

// Build returns a snapshot of apps under p (non-nil). Apps whose labels do not
// validate are left out and listed by Rejected; when two apps share an id
// the later one wins.
func Build(p *Policy, apps []App) *Snapshot {
	empty := &Snapshot{
		policy:   p,
		seed:     maphash.MakeSeed(),
		apps:     newTable[string, *app](blocksNames),
		rejected: newTable[string, Rejection](blocksSmall),
		names:    newTable[string, claims](blocksNames),
		vhosts:   newTable[string, claims](blocksNames),
		suffixes: newTable[string, int](blocksNames),
		reverse:  newTable[string, int](blocksSmall),
		addrs:    newTable[addrKey, *owner](blocksAddrs),
		conflict: newTable[addrKey, *owner](blocksSmall),
		envs:     newTable[string, int](blocksSmall),
		fixed:    new(fixedEpoch),
	}
	return empty.Apply(apps, nil)
}

// Apply returns a new snapshot with the apps in upsert added or replaced
// and the apps with ids in remove taken out; an id in both is removed. s is
// unchanged. The cost is proportional to the changed apps (and to the
// names and addresses they touch), not to the cluster.
func (s *Snapshot) Apply(upsert []App, remove []string) *Snapshot {
	next := *s
	changed := len(upsert) + len(remove)
	u := &update{
		s:            &next,
		nameChanges:  make(map[string]map[string]*idChange, changed),
		vhostChanges: make(map[string]map[string]*idChange),
		addrChanges:  make(map[netip.Addr]*addrChange, 4*changed),
		newEnvs:      make(map[string]bool),
	}
	u.apps.t, u.rejected.t, u.envs.t = &next.apps, &next.rejected, &next.envs
	u.names.t, u.vhosts.t, u.suffixes.t, u.addrs.t = &next.names, &next.vhosts, &next.suffixes, &next.addrs
	u.reverse.t, u.conflict.t = &next.reverse, &next.conflict

	removed := make(map[string]bool, len(remove))
	for _, id := range remove {
		removed[id] = true
	}
	for i := range upsert {
		if removed[upsert[i].ID] {
			continue
		}
		built, rejection := newApp(s.policy, &upsert[i])
		if rejection != nil {
			u.replace(upsert[i].ID, nil, rejection)
		} else {
			u.replace(built.id, built, nil)
		}
	}
	for id := range removed {
		u.replace(id, nil, nil)
	}
	u.finish()
	if u.fixedChanged {
		next.fixed = new(fixedEpoch)
	}
	for env := range u.newEnvs {
		s.policy.Chain(env) // memoize, so Resolve in this env never allocates
	}
	return &next
}

// ProblemsChanged reports whether s's rejections or address conflicts may
// differ from since's. It is false only when one was derived from the other
// by Applies that left both untouched, which it tells by comparing two
// pointers: a publisher that logs problems per snapshot can then skip
// listing them (Rejected sorts them all). since may be nil (true).
func (s *Snapshot) ProblemsChanged(since *Snapshot) bool {
	return since == nil || !s.rejected.shares(&since.rejected) || !s.conflict.shares(&since.conflict)
}

// FixedAddrsChanged reports whether FixedAddrs may differ between s and
// since: false only when one was derived from the other by Applies that
// changed no app's listing (a task change, a label other than OAK_IP), which
// it tells by one pointer comparison. A consumer that reconciles with the
// fixed addresses per snapshot (nginxctl's IP pool) skips the others.
// since may be nil (true).
func (s *Snapshot) FixedAddrsChanged(since *Snapshot) bool {
	return since == nil || s.fixed != since.fixed
}

// Policy returns the policy the snapshot was built with.
func (s *Snapshot) Policy() *Policy { return s.policy }

// Stats returns counts for logs and metrics.
func (s *Snapshot) Stats() Stats {
	return Stats{
		Apps:      s.apps.n,
		Tasks:     s.tasks,
		LiveTasks: s.liveTasks,
		Rejected:  s.rejected.n,
		Names:     s.names.n,
		Envs:      s.envs.n,
	}
}

// Rejected returns the apps left out, sorted by app id.
func (s *Snapshot) Rejected() []Rejection {
	out := make([]Rejection, 0, s.rejected.n)
	for _, r := range s.rejected.all() {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Rejection) int { return strings.Compare(a.AppID, b.AppID) })
	return out
}

// Envs returns the sorted envs that have accepted apps.
func (s *Snapshot) Envs() []string {
	out := make([]string, 0, s.envs.n)
	for env := range s.envs.all() {
		out = append(out, env)
	}
	slices.Sort(out)
	return out
}

// Conflicts returns the addresses claimed by apps of more than one env,
// sorted by address. Its cost follows the conflicts, not the addresses:
// the watcher asks at every publish.
func (s *Snapshot) Conflicts() []AddrConflict {
	var out []AddrConflict
	for key, o := range s.conflict.all() {
		c := AddrConflict{Addr: key.addr()}
		for _, ae := range o.claimants {
			c.Apps = append(c.Apps, ae.id)
			c.Envs = append(c.Envs, ae.env)
		}
		slices.Sort(c.Envs)
		c.Envs = slices.Compact(c.Envs)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b AddrConflict) int { return a.Addr.Compare(b.Addr) })
	return out
}

func (s *Snapshot) hashString(key string) uint64 { return maphash.String(s.seed, key) }

func (s *Snapshot) hashAddr(key addrKey) uint64 { return maphash.Bytes(s.seed, key[:]) }

// addrKey is an unmapped, zoneless address as 16 bytes: a key without
// pointers, so that the garbage collector need not scan the address index.
type addrKey [16]byte

func keyOf(a netip.Addr) addrKey { return a.Unmap().WithZone("").As16() }

func (k addrKey) addr() netip.Addr { return netip.AddrFrom16(k).Unmap() }

// update is one Apply in progress. Replacing an app records, per name,
// vhost and address it touches, which app ids leave and join; finish then
// rebuilds exactly those entries.
type update struct {
	s        *Snapshot
	apps     tableWriter[string, *app]
	rejected tableWriter[string, Rejection]
	names    tableWriter[string, claims]
	vhosts   tableWriter[string, claims]
	suffixes tableWriter[string, int]
	reverse  tableWriter[string, int]
	addrs    tableWriter[addrKey, *owner]
	conflict tableWriter[addrKey, *owner]
	envs     tableWriter[string, int]

	nameChanges  map[string]map[string]*idChange // name -> env -> change
	vhostChanges map[string]map[string]*idChange // vhost key -> env -> change
	addrChanges  map[netip.Addr]*addrChange
	newEnvs      map[string]bool
	fixedChanged bool // an app came, went, or changed the address FixedAddrs gives it
}

// idChange is the net change of membership of app ids in one set: +1
// joins, -1 leaves, 0 (left and joined again) keeps. Counting, rather than
// listing, keeps an app replaced twice in one Apply right.
type idChange []idDelta

type idDelta struct {
	id    string
	delta int
}

type addrChange struct {
	claimants idChange
	backends  idChange
}

func (c *idChange) record(id string, sign int) {
	for i := range *c {
		if (*c)[i].id == id {
			(*c)[i].delta += sign
			return
		}
	}
	*c = append(*c, idDelta{id: id, delta: sign})
}

func (c idChange) deltaOf(id string) int {
	for _, d := range c {
		if d.id == id {
			return d.delta
		}
	}
	return 0
}

// apply returns the members after the change, sorted. ids is not modified.
func (c idChange) apply(ids []string) []string {
	out := make([]string, 0, len(ids)+len(c))
	for _, id := range ids {
		if 1+c.deltaOf(id) > 0 {
			out = append(out, id)
		}
	}
	for _, d := range c {
		if d.delta > 0 && !slices.Contains(ids, d.id) {
			out = append(out, d.id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// replace sets the state of app id: accepted (a), rejected, or gone (both nil).
func (u *update) replace(id string, a *app, rejection *Rejection) {
	s := u.s
	hash := s.hashString(id)
	oldRejection, wasRejected := s.rejected.get(hash, id)
	if rejection != nil && wasRejected && oldRejection == *rejection {
		return // rejected as it was (a task change): the table stays shared
	}
	// What FixedAddrs gives the app, before and after.
	was, is := oldRejection.Addr, netip.Addr{}
	wasListed, isListed := wasRejected, a != nil || rejection != nil
	switch {
	case a != nil:
		is = a.fixed
	case rejection != nil:
		is = rejection.Addr
	}
	if old, ok := s.apps.get(hash, id); ok {
		was, wasListed = old.fixed, true
		u.changeApp(old, -1)
		u.apps.del(hash, id)
		if a != nil {
			a.adopt(old)
		}
	}
	if wasListed != isListed || was != is {
		u.fixedChanged = true
	}
	if wasRejected {
		u.rejected.del(hash, id)
	}
	switch {
	case a != nil:
		u.apps.put(hash, a.id, a)
		u.changeApp(a, +1)
	case rejection != nil:
		u.rejected.put(hash, id, *rejection)
	}
}

// changeApp records a joining (+1) or leaving (-1) everywhere it appears.
func (u *update) changeApp(a *app, sign int) {
	s := u.s
	s.tasks += sign * a.tasks
	s.liveTasks += sign * a.live
	envHash := s.hashString(a.env)
	count, _ := s.envs.get(envHash, a.env)
	if count += sign; count > 0 {
		if count == 1 && sign > 0 {
			u.newEnvs[a.env] = true
		}
		u.envs.put(envHash, a.env, count)
	} else {
		u.envs.del(envHash, a.env)
	}
	for _, name := range a.names {
		recordChange(u.nameChanges, name, a.env, a.id, sign)
	}
	for _, vh := range a.vhosts {
		recordChange(u.vhostChanges, vh.host, a.env, a.id, sign)
	}
	for _, addr := range a.claimed {
		u.addrChange(addr).claimants.record(a.id, sign)
	}
	for _, b := range a.backends {
		u.addrChange(b.Addr).backends.record(a.id, sign)
	}
}

func recordChange(changes map[string]map[string]*idChange, key, env, id string, sign int) {
	byEnv := changes[key]
	if byEnv == nil {
		byEnv = make(map[string]*idChange)
		changes[key] = byEnv
	}
	c := byEnv[env]
	if c == nil {
		c = new(idChange)
		byEnv[env] = c
	}
	c.record(id, sign)
}

func (u *update) addrChange(addr netip.Addr) *addrChange {
	c := u.addrChanges[addr]
	if c == nil {
		c = &addrChange{}
		u.addrChanges[addr] = c
	}
	return c
}

// finish rebuilds the names, vhosts and addresses whose app sets changed.
// It runs after all apps are replaced, so it sees the final apps.
func (u *update) finish() {
	s := u.s
	for name, byEnv := range u.nameChanges {
		hash := s.hashString(name)
		old, existed := s.names.get(hash, name)
		next, exists := u.rebuildClaims(old, name, false, byEnv)
		switch {
		case !exists && existed:
			u.names.del(hash, name)
			u.countSuffixes(name, -1)
		case exists:
			u.names.put(hash, name, next)
			if !existed {
				u.countSuffixes(name, +1)
			}
		}
	}
	for host, byEnv := range u.vhostChanges {
		hash := s.hashString(host)
		old, _ := s.vhosts.get(hash, host)
		if next, exists := u.rebuildClaims(old, host, true, byEnv); exists {
			u.vhosts.put(hash, host, next)
		} else {
			u.vhosts.del(hash, host)
		}
	}
	for addr, change := range u.addrChanges {
		key := keyOf(addr)
		hash := s.hashAddr(key)
		old, _ := s.addrs.get(hash, key)
		next := u.rebuildOwner(old, change)
		if next != nil {
			u.addrs.put(hash, key, next)
		} else {
			u.addrs.del(hash, key)
		}
		if next != nil && next.conflict {
			u.conflict.put(hash, key, next)
		} else if old != nil && old.conflict {
			u.conflict.del(hash, key)
		}
		// A live backend with names has a PTR record: the reverse names
		// above it exist (RFC 8020). They sit in a table of their own, small
		// next to the names, so that counting them stays cheap.
		hadPTR, hasPTR := old != nil && len(old.refs) > 0, next != nil && len(next.refs) > 0
		if hadPTR != hasPTR {
			delta := 1
			if hadPTR {
				delta = -1
			}
			u.count(&u.reverse, parentName(reverseName(addr)), delta)
		}
	}
}

// rebuildClaims returns the new claims of one name, and false when no app
// claims it any more. old is not modified: its envs may be read by
// published snapshots.
func (u *update) rebuildClaims(old claims, name string, vhost bool, changes map[string]*idChange) (claims, bool) {
	var room [8]envClaims // the list is built here, then placed in its own allocation
	envs := room[:0]
	if n := len(old.envs) + len(changes); n > len(room) {
		envs = make([]envClaims, 0, n) // a name claimed in many envs
	}
	for _, e := range old.envs {
		if changes[e.env] == nil {
			envs = append(envs, e)
		}
	}
	for env, change := range changes {
		var ids []string
		if prev := old.find(env); prev != nil {
			ids = prev.apps
		}
		if ids = change.apply(ids); len(ids) > 0 {
			env = intern(env)
			envs = append(envs, envClaims{env: env, apps: ids, service: u.service(name, env, ids, vhost)})
		}
	}
	if len(envs) == 0 {
		return claims{}, false
	}
	slices.SortFunc(envs, func(a, b envClaims) int { return strings.Compare(a.env, b.env) })
	return claims{envs: placed(envs)}, true
}

// placed copies a name's envs, sorted, into an allocation of their own,
// with each service's Addrs. The usual name, claimed in one env by one app
// and served on one address, gets one object for the env, the app's id and
// the address: a lookup reads adjacent memory rather than a second object
// (BenchmarkVersusHosts), and the collector marks one object, not two
// (BenchmarkLiveHeap).
func placed(envs []envClaims) []envClaims {
	if len(envs) == 1 && len(envs[0].service.Backends) == 1 {
		one := new(struct {
			env  [1]envClaims
			app  [1]string
			addr [1]netip.Addr
		})
		one.env[0], one.addr[0] = envs[0], envs[0].service.Backends[0].Addr
		e := &one.env[0]
		e.service.Addrs = one.addr[:]
		if len(e.apps) == 1 {
			one.app[0] = e.apps[0]
			e.apps = one.app[:]
			e.service.Apps = e.apps // the one app serves; service shares the array
		}
		return one.env[:]
	}
	out := slices.Clone(envs)
	for i := range out {
		if svc := &out[i].service; svc.Addrs == nil && len(svc.Backends) > 0 {
			svc.Addrs = make([]netip.Addr, len(svc.Backends))
			for j, b := range svc.Backends {
				svc.Addrs[j] = b.Addr
			}
		}
	}
	return out
}

// service merges the live backends of apps claiming name (a DNS name, or
// an OAK_HTTP host when vhost is set) in env; it has no Backends when none
// of them has a live backend. rebuildClaims places its Addrs.
func (u *update) service(name, env string, ids []string, vhost bool) Service {
	svc := Service{Name: name, Env: env}
	var backends []Backend
	serving := 0 // apps with live backends; the first one's index in ids is first
	first := 0
	var firstLive []Backend
	for i, id := range ids {
		a, _ := u.s.apps.get(u.s.hashString(id), id)
		if a == nil {
			continue
		}
		live := a.backends
		if vhost {
			live = nil
			if i := slices.IndexFunc(a.vhosts, func(v appVHost) bool { return v.host == name }); i >= 0 {
				live = a.vhosts[i].backends
			}
		}
		if len(live) == 0 {
			continue
		}
		serving++
		switch serving {
		case 1:
			first, firstLive = i, live
			continue
		case 2:
			svc.Apps = append(svc.Apps, ids[first])
			backends = append(backends, firstLive...)
		}
		svc.Apps = append(svc.Apps, id)
		backends = append(backends, live...)
	}
	switch serving {
	case 0:
		return Service{}
	case 1:
		// One app serves: its id and its backends, already merged, are
		// shared rather than copied (all immutable), so that the service
		// of most names holds no allocation of its own (see rebuildClaims).
		svc.Apps, svc.Backends = ids[first:first+1:first+1], firstLive
	default:
		svc.Backends = mergeBackends(backends)
	}
	if len(svc.Backends) == 1 {
		svc.Ports = svc.Backends[0].Ports // sorted and deduped already: shared
		return svc
	}
	for _, b := range svc.Backends {
		svc.Ports = append(svc.Ports, b.Ports...)
	}
	slices.SortFunc(svc.Ports, comparePort)
	svc.Ports = slices.Compact(svc.Ports)
	return svc
}

// intern returns the one shared copy of an env name, so that equal env
// names share their bytes: comparing them then costs no memory read.
func intern(env string) string { return unique.Make(env).Value() }

// rebuildOwner returns the new owner of one address, or nil when no app
// claims or uses it any more.
func (u *update) rebuildOwner(old *owner, change *addrChange) *owner {
	var oldClaimants, oldBackends []string
	if old != nil {
		for _, ae := range old.claimants {
			oldClaimants = append(oldClaimants, ae.id)
		}
		oldBackends = old.backends
	}
	claimants := change.claimants.apply(oldClaimants)
	backends := change.backends.apply(oldBackends)
	if len(claimants) == 0 && len(backends) == 0 {
		return nil
	}
	s := u.s
	next := &owner{backends: backends}
	if len(backends) == 1 {
		next.oneBackend[0] = backends[0]
		next.backends = next.oneBackend[:]
	}
	next.claimants, next.refs = next.oneClaimant[:0], next.oneRef[:0] // appends past one move to the heap
	for i, id := range claimants {
		a, _ := s.apps.get(s.hashString(id), id)
		next.claimants = append(next.claimants, appEnv{id: id, env: a.env})
		if i == 0 {
			next.env = a.env
		} else if a.env != next.env {
			next.conflict = true
		}
	}
	if next.conflict {
		next.env = ""
	}
	for _, id := range backends {
		a, _ := s.apps.get(s.hashString(id), id)
		for _, name := range a.names {
			next.refs = append(next.refs, NameRef{Name: name, Env: a.env})
		}
	}
	slices.SortFunc(next.refs, func(a, b NameRef) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Env, b.Env)
	})
	next.refs = slices.Compact(next.refs)
	if len(next.claimants) == 0 {
		next.claimants = nil
	}
	if len(next.refs) == 0 {
		next.refs = nil
	}
	return next
}

// countSuffixes adds delta to name and each of its ancestors.
func (u *update) countSuffixes(name string, delta int) { u.count(&u.suffixes, name, delta) }

// count adds delta to name and each of its ancestors in a counting table.
func (u *update) count(w *tableWriter[string, int], name string, delta int) {
	for suffix := name; ; suffix = parentName(suffix) {
		hash := u.s.hashString(suffix)
		count, _ := w.t.get(hash, suffix)
		if count += delta; count > 0 {
			w.put(hash, suffix, count)
		} else {
			w.del(hash, suffix)
		}
		if !strings.Contains(suffix, ".") {
			return
		}
	}
}

// reverseName is the name of addr's PTR record, without the final dot:
// 4.3.2.1.in-addr.arpa, or 32 nibbles and ip6.arpa.
func reverseName(addr netip.Addr) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	if addr.Is4() {
		a4 := addr.As4()
		for i := 3; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(a4[i])))
			b.WriteByte('.')
		}
		b.WriteString("in-addr.arpa")
		return b.String()
	}
	a16 := addr.As16()
	for i := 15; i >= 0; i-- {
		b.WriteByte(hex[a16[i]&0xf])
		b.WriteByte('.')
		b.WriteByte(hex[a16[i]>>4])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa")
	return b.String()
}
