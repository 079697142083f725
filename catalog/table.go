package catalog

import (
	"iter"
	"slices"
)

// Blocks per table (powers of two), each of leavesPerBlock leaves: enough
// that a leaf of a 10,000-app cluster holds one to three entries. The
// address index has a few entries per app (OAK_IP and every task's IP),
// hence more blocks.
const (
	blocksSmall = 16   // envs, rejected apps, reverse names, conflicts
	blocksNames = 256  // apps, names, vhosts, name suffixes
	blocksAddrs = 1024 // addresses
)

// leafBits selects a leaf within its block; leavesPerBlock is 1<<leafBits.
const (
	leafBits       = 4
	leavesPerBlock = 1 << leafBits
)

// table is a hash table in two levels, keyed by a hash of the key (with
// the snapshot's seed): the hash's low bits pick a leaf in a block, the
// next bits the block. A leaf is a short slice of entries, scanned.
// Published tables are never written; an update replaces the block list,
// the blocks and the leaves it touches with copies (see tableWriter), so a
// changed entry costs its leaf and one block (a few hundred bytes), not its
// neighbours. Entries live in slices rather than maps: few objects, no
// map overhead, and a lookup reads the block and one leaf.
type table[K comparable, V any] struct {
	blocks []*block[K, V] // len is a power of two; nil = every leaf empty
	n      int
}

// block is leavesPerBlock leaves. owned marks the leaves the writer that
// made the block has copied; it means nothing once the block is published.
type block[K comparable, V any] struct {
	leaves [leavesPerBlock][]entry[K, V]
	owned  uint16
}

type entry[K comparable, V any] struct {
	hash uint64
	key  K
	val  V
}

func newTable[K comparable, V any](blocks int) table[K, V] {
	return table[K, V]{blocks: make([]*block[K, V], blocks)}
}

func (t *table[K, V]) blockOf(hash uint64) int {
	return int((hash >> leafBits) & uint64(len(t.blocks)-1))
}

func leafOf(hash uint64) int { return int(hash & (leavesPerBlock - 1)) }

func (t *table[K, V]) get(hash uint64, key K) (V, bool) {
	if b := t.blocks[t.blockOf(hash)]; b != nil {
		leaf := b.leaves[leafOf(hash)]
		for i := range leaf {
			if leaf[i].hash == hash && leaf[i].key == key {
				return leaf[i].val, true
			}
		}
	}
	var zero V
	return zero, false
}

// shares reports whether t and o are one table: one derived from the
// other by writers that never wrote it. A writer's first write copies the
// block list, so untouched tables share it; comparing it is enough.
func (t *table[K, V]) shares(o *table[K, V]) bool {
	return len(t.blocks) > 0 && len(t.blocks) == len(o.blocks) && &t.blocks[0] == &o.blocks[0]
}

// all yields every entry, in no particular order.
func (t *table[K, V]) all() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for _, b := range t.blocks {
			if b == nil {
				continue
			}
			for _, leaf := range b.leaves {
				for i := range leaf {
					if !yield(leaf[i].key, leaf[i].val) {
						return
					}
				}
			}
		}
	}
}

// tableWriter writes to a table that shares its blocks with a published
// one: the first write copies the block list, the first write to a block
// copies the block, and the first write to a leaf copies the leaf.
type tableWriter[K comparable, V any] struct {
	t    *table[K, V]
	orig []*block[K, V] // the block list before the first write; nil until then
}

// leaf returns the leaf of hash, owned by this writer.
func (w *tableWriter[K, V]) leaf(hash uint64) *[]entry[K, V] {
	if w.orig == nil {
		w.orig = w.t.blocks
		w.t.blocks = slices.Clone(w.t.blocks)
	}
	bi, li := w.t.blockOf(hash), leafOf(hash)
	b := w.t.blocks[bi]
	if b == w.orig[bi] { // not copied yet (or nil)
		fresh := new(block[K, V])
		if b != nil {
			fresh.leaves = b.leaves
		}
		b, w.t.blocks[bi] = fresh, fresh
	}
	if b.owned&(1<<li) == 0 {
		b.owned |= 1 << li
		b.leaves[li] = slices.Clone(b.leaves[li])
	}
	return &b.leaves[li]
}

func (w *tableWriter[K, V]) put(hash uint64, key K, v V) {
	leaf := w.leaf(hash)
	for i := range *leaf {
		if e := &(*leaf)[i]; e.hash == hash && e.key == key {
			e.val = v
			return
		}
	}
	*leaf = append(*leaf, entry[K, V]{hash: hash, key: key, val: v})
	w.t.n++
}

func (w *tableWriter[K, V]) del(hash uint64, key K) {
	if _, ok := w.t.get(hash, key); !ok {
		return
	}
	leaf := w.leaf(hash)
	i := slices.IndexFunc(*leaf, func(e entry[K, V]) bool { return e.hash == hash && e.key == key })
	last := len(*leaf) - 1
	(*leaf)[i] = (*leaf)[last]
	(*leaf)[last] = entry[K, V]{} // no pointer kept past the length
	*leaf = (*leaf)[:last]
	if last == 0 {
		*leaf = nil
	}
	w.t.n--
}
