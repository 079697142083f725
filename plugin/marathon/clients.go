package marathon

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"github.com/oakdns/oak/catalog"
)

// clientSlots is the number of clients the memo holds.
const (
	clientSlotBits = 10
	clientSlots    = 1 << clientSlotBits
)

// clientMemo remembers, for the clients seen last, what every query of a
// client decides before it looks at its name: the client's env, how it was
// chosen, the env's fallback chain, and the counters its queries go to. A query of a remembered
// client reads one slot and one view, where deciding reads the snapshot's
// address index, the policy's chains and the counters' map: fewer pages and cache lines, which
// a server pays for after each of its system calls (BenchmarkVersusHosts,
// mode syscall). A slot is an atomic pointer to an immutable view, which
// holds for one snapshot and one server only: a query under another, or of
// another client in the same slot, decides as before and takes the slot.
// Views hold the number the memo gave their snapshot, not the snapshot,
// so that a client seen once keeps no old snapshot alive. The zero value
// is ready to use.
type clientMemo struct {
	current atomic.Pointer[memoEpoch]
	slots   [clientSlots]atomic.Pointer[clientView]
}

// memoEpoch is the last snapshot the memo saw and the number it gave it.
type memoEpoch struct {
	snapshot *catalog.Snapshot
	n        uint64
}

// clientView is what the handler decided about one client.
type clientView struct {
	epoch    uint64 // the number of the snapshot it was decided in
	server   string // the server it counts on (metrics.WithServer)
	addr     netip.Addr
	env, how string
	chain    []string // env's fallback chain
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
func (m *Marathon) view(snapshot *catalog.Snapshot, server string, client netip.Addr) *clientView {
	epoch := m.clients.epoch(snapshot)
	slot := &m.clients.slots[slotOf(client)]
	if v := slot.Load(); v != nil && v.epoch == epoch && v.addr == client && v.server == server {
		return v
	}
	v := &clientView{epoch: epoch, server: server, addr: client, env: m.pinnedEnv, how: howPinned}
	if m.pinnedEnv == "" {
		env, how := snapshot.EnvOf(client)
		v.env, v.how = env, how.String()
	}
	v.chain = snapshot.Policy().Chain(v.env)
	v.counters = m.counters.of(server, v.env)
	slot.Store(v)
	return v
}

// slotOf spreads addresses over the slots. Clients that share a slot only
// take turns in it.
func slotOf(a netip.Addr) int {
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])
	return int((h * 0x9e3779b97f4a7c15) >> (64 - clientSlotBits))
}
