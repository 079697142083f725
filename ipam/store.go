package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// storeLockWait is how long Open waits for another process to let go of
// the store file (bbolt locks it).
const storeLockWait = 5 * time.Second

// The bbolt file: one bucket of records keyed by the address's 4 bytes, and
// one of metadata that exists once the pool's state is complete (a new pool
// was started, or a rebuild from Marathon finished).
var (
	recordsBucket = []byte("addresses")
	metaBucket    = []byte("meta")
	subnetKey     = []byte("subnet")
)

// storedRecord is an Allocation as the file holds it.
type storedRecord struct {
	App      string    `json:"app,omitempty"`
	State    State     `json:"state"`
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until,omitzero"`
	Deployed bool      `json:"deployed,omitempty"`
}

// store is the durable half of the pool; only the pool's writer uses it.
type store struct {
	db *bolt.DB
}

func openStore(path string, noSync bool) (*store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: storeLockWait})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open pool store %s: another process holds it (waited %v); the pool has one writer", path, storeLockWait)
	}
	if err != nil {
		return nil, fmt.Errorf("open pool store %s: %w", path, err)
	}
	db.NoSync = noSync
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(recordsBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("pool store %s: %w", path, err)
	}
	return &store{db: db}, nil
}

// load returns every record, and the subnet the store was completed for
// (invalid when it never was).
func (s *store) load() ([]*Allocation, netip.Prefix, error) {
	var out []*Allocation
	var subnet netip.Prefix
	err := s.db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(metaBucket); meta != nil {
			p, err := netip.ParsePrefix(string(meta.Get(subnetKey)))
			if err != nil {
				return fmt.Errorf("stored subnet: %w", err)
			}
			subnet = p
		}
		return tx.Bucket(recordsBucket).ForEach(func(k, v []byte) error {
			addr, ok := netip.AddrFromSlice(k)
			if !ok {
				return fmt.Errorf("stored key %x is not an address", k)
			}
			var r storedRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("stored record of %s: %w", addr, err)
			}
			if r.State != Allocated && r.State != Cooling {
				return fmt.Errorf("stored record of %s: unknown state %q", addr, r.State)
			}
			out = append(out, &Allocation{Addr: addr, App: r.App, State: r.State, Since: r.Since, Until: r.Until, Deployed: r.Deployed})
			return nil
		})
	})
	return out, subnet, err
}

// change is one write of a batch: a record to put, or an address to delete
// (put == nil).
type change struct {
	addr netip.Addr
	put  *Allocation
}

// commit writes changes (in order) and, when complete is valid, marks the
// store complete for that subnet; it returns once the transaction is synced.
func (s *store) commit(changes []change, complete netip.Prefix) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(recordsBucket)
		for _, c := range changes {
			key := c.addr.AsSlice()
			if c.put == nil {
				if err := b.Delete(key); err != nil {
					return err
				}
				continue
			}
			v, err := json.Marshal(storedRecord{App: c.put.App, State: c.put.State, Since: c.put.Since, Until: c.put.Until, Deployed: c.put.Deployed})
			if err != nil {
				return err
			}
			if err := b.Put(key, v); err != nil {
				return err
			}
		}
		if complete.IsValid() {
			meta, err := tx.CreateBucketIfNotExists(metaBucket)
			if err != nil {
				return err
			}
			return meta.Put(subnetKey, []byte(complete.String()))
		}
		return nil
	})
}

func (s *store) close() error {
	if s == nil {
		return errors.New("pool store not open")
	}
	return s.db.Close()
}
