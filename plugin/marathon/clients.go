package marathon

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/oakdns/oak/catalog"
)

// The memo holds clientSlots clients at most.
const (
	clientSlotBits = 12
	clientSlots    = 1 << clientSlotBits
)

// contestedAfter is how many queries of other clients a view outlasts in
// its slot, within its snapshot, before one of them takes the slot.
const contestedAfter = 8

// clientMemo remembers, for recent clients, what every query of a client
// decides before it looks at its name: the client's env, how it was
// chosen, the env's fallback chain, and the counters its queries go to. A
// query of a remembered client reads one slot and one view, where deciding
// reads the snapshot's address index, the policy's chains and the
// counters' map: less memory per query, which measured cheaper where each
// query follows a system call, as in a server (BenchmarkVersusHosts, mode
// syscall).
//
// A slot is an atomic pointer to a view, which holds for one server and
// one snapshot: a query under a later snapshot decides again, and moves
// the view on to that snapshot when it decides the same (no allocation:
// under churn most clients' decisions outlive many snapshots), or else
// takes the slot with a new view. A query of another client whose address
// falls in the same slot decides as before without a view of its own
// (nothing allocated), and takes the slot once the view has been contested
// contestedAfter times:
// clients that share a slot do not evict each other on every query, and
// one seen once does not hold a slot for good. Views hold the number the
// memo gave their snapshot, not the snapshot, so that a client seen once
// keeps no old snapshot alive. The zero value is ready to use.
type clientMemo struct {
	current atomic.Pointer[memoEpoch]
	slots   [clientSlots]atomic.Pointer[clientView]
}

// memoEpoch is the last snapshot the memo saw and the number it gave it.
type memoEpoch struct {
	snapshot *catalog.Snapshot
	n        uint64
}

// clientView is what the handler decided about one client, for one
// snapshot and server. When a later snapshot decides the same, the view is
// confirmed for it (epoch moves on) rather than made again: under churn a
// new snapshot comes many times a second, and most clients' decisions do
// not change.
type clientView struct {
	epoch     atomic.Uint64 // the number of the last snapshot it holds for
	server    string        // the server it counts on (metrics.WithServer)
	addr      netip.Addr
	decision  clientDecision
	contested atomic.Uint32 // queries of other clients that found it in their slot
}

// clientDecision is what a query needs to know of its client.
type clientDecision struct {
	env      string   // env the client is served as
	how      string   // how env was chosen: pinned, app, cidr, default, conflict
	chain    []string // env and the envs it falls back to (Policy.Chain)
	counters *envCounters
}

// epoch returns snapshot's number. A snapshot the memo did not see last
// gets a new number, even one it saw before (a query still on an older
// snapshot than another's): numbers only ever grow, so no two snapshots
// share one and a view never outlives its snapshot, at worst a few views
// are decided again.
func (c *clientMemo) epoch(snapshot *catalog.Snapshot) uint64 {
	for {
		cur := c.current.Load()
		if cur != nil && cur.snapshot == snapshot {
			return cur.n
		}
		next := &memoEpoch{snapshot: snapshot}
		if cur != nil {
			next.n = cur.n + 1
		}
		if c.current.CompareAndSwap(cur, next) {
			return next.n
		}
	}
}

// view returns what m decides about client under snapshot on server.
func (m *Marathon) view(snapshot *catalog.Snapshot, server string, client netip.Addr) clientDecision {
	epoch := m.clients.epoch(snapshot)
	slot := &m.clients.slots[slotOf(client)]
	held := slot.Load()
	switch {
	case held == nil:
	case held.addr != client || held.server != server:
		// Another client's view: while it is current and not yet
		// contested away, decide without a view of this client's own.
		if held.epoch.Load() == epoch && held.contested.Add(1) <= contestedAfter {
			return m.decide(snapshot, server, client)
		}
	default:
		at := held.epoch.Load()
		if at == epoch {
			return held.decision
		}
		d := m.decide(snapshot, server, client)
		switch {
		case at > epoch:
			return d // a query of a later snapshot has been here: its view stays
		case d.same(&held.decision):
			held.epoch.CompareAndSwap(at, epoch) // lost only to a query moving it on too
			return d
		}
		return hold(slot, epoch, server, client, d)
	}
	return hold(slot, epoch, server, client, m.decide(snapshot, server, client))
}

// hold puts a view of client's decision d in slot.
func hold(slot *atomic.Pointer[clientView], epoch uint64, server string, client netip.Addr, d clientDecision) clientDecision {
	v := &clientView{server: server, addr: client, decision: d}
	v.epoch.Store(epoch)
	slot.Store(v)
	return d
}

// same reports whether d and o decide alike.
func (d *clientDecision) same(o *clientDecision) bool {
	return d.env == o.env && d.how == o.how && d.counters == o.counters && slices.Equal(d.chain, o.chain)
}

// decide classifies client under snapshot and finds its counters on server.
func (m *Marathon) decide(snapshot *catalog.Snapshot, server string, client netip.Addr) clientDecision {
	d := clientDecision{env: m.pinnedEnv, how: howPinned}
	if m.pinnedEnv == "" {
		env, how := snapshot.EnvOf(client)
		d.env, d.how = env, how.String()
	}
	d.chain = snapshot.Policy().Chain(d.env)
	d.counters = m.counters.of(server, d.env)
	return d
}

// slotOf spreads addresses over the slots (a 64-bit finalizer of each half,
// as in MurmurHash3), so that neighbouring addresses fall far apart.
func slotOf(a netip.Addr) int {
	b := a.As16()
	h := mix64(mix64(binary.LittleEndian.Uint64(b[:8])) ^ binary.LittleEndian.Uint64(b[8:]))
	return int(h >> (64 - clientSlotBits))
}

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
