package ipam

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// State is where an address is in its life.
type State string

// An address the pool holds is either bound to an app or cooling down;
// an address the pool does not hold is free.
const (
	Allocated State = "allocated"
	Cooling   State = "cooling"
)

// Allocation is the pool's record of one address. Values are never changed
// once stored; a change stores a new one.
type Allocation struct {
	Addr netip.Addr
	// App is the Marathon app id the address is bound to, or (cooling) was
	// last bound to; empty for an address held by a rebuild.
	App   string
	State State
	Since time.Time // allocated or released at
	Until time.Time // cooling: reusable from then on
	// Deployed is set once Marathon was seen running App on Addr; only a
	// deployed allocation is released when its app disappears.
	Deployed bool
}

const table = "addresses"

// The go-memdb view, indexed by address, app, state and cooling deadline.
var schema = &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
	table: {Name: table, Indexes: map[string]*memdb.IndexSchema{
		"id":    {Name: "id", Unique: true, Indexer: addrIndex{}},
		"app":   {Name: "app", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "App"}},
		"state": {Name: "state", Indexer: &memdb.StringFieldIndex{Field: "State"}},
		"until": {Name: "until", AllowMissing: true, Indexer: untilIndex{}},
	}},
}}

// addrIndex keys records by address, in address order.
type addrIndex struct{}

func (addrIndex) FromObject(obj any) (bool, []byte, error) {
	return true, obj.(*Allocation).Addr.AsSlice(), nil
}

func (addrIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("want one address, got %d args", len(args))
	}
	a, ok := args[0].(netip.Addr)
	if !ok {
		return nil, fmt.Errorf("want a netip.Addr, got %T", args[0])
	}
	return a.AsSlice(), nil
}

// untilIndex orders cooling records by the end of their cooldown.
type untilIndex struct{}

func (untilIndex) FromObject(obj any) (bool, []byte, error) {
	a := obj.(*Allocation)
	if a.State != Cooling {
		return false, nil, nil
	}
	return true, timeKey(a.Until), nil
}

func (untilIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("want one time, got %d args", len(args))
	}
	t, ok := args[0].(time.Time)
	if !ok {
		return nil, fmt.Errorf("want a time.Time, got %T", args[0])
	}
	return timeKey(t), nil
}

// timeKey sorts as the time does; the address suffix of FromObject's keys
// is not needed because the index allows duplicates.
func timeKey(t time.Time) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixNano())^(1<<63))
	return b[:]
}
