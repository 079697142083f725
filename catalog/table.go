package catalog

import (
	"iter"
	"slices"
)

// Blocks per table (powers of two), each of leavesPerBlock leaves. An
// Apply copies the block list of each table it writes, and each block it
// writes with all its entries, so the count weighs the one against the
// other: at 10,000 apps a block of the names tables holds ~20 entries
// (about a kilobyte) and a leaf one or two. The address index has a few
// entries per app (OAK_IP and every task's IP), hence more blocks.
const (
	blocksSmall = 16   // envs, rejected apps, reverse names, conflicts
	blocksNames = 512  // apps, names, vhosts, name suffixes
	blocksAddrs = 1024 // addresses
)

// leafBits selects a leaf within its block; leavesPerBlock is 1<<leafBits.
const (
	leafBits       = 4
	leavesPerBlock = 1 << leafBits
)

// table is a hash table in two levels, keyed by a hash of the key (with
// the snapshot's seed): the hash's low bits pick a leaf in a block, the
// next bits the block. A block holds its leaves' entries in one array,
// leaf after leaf; a leaf is a short run of it, scanned.
// Published tables are never written; an update replaces the block list
// and the blocks it touches with copies (see tableWriter), so a changed
// entry costs one block (its entries, some hundreds of bytes to a few
// kilobytes), not its neighbours. Entries live in arrays rather than maps,
// one per block: few objects for the collector to mark on the core that
// serves queries, no map overhead, and a lookup reads the block and its
// entries.
type table[K comparable, V any] struct {
	blocks []*block[K, V] // len is a power of two; nil = every leaf empty
	n      int
}

// block is leavesPerBlock leaves: leaf i is entries[at[i]:at[i+1]].
type block[K comparable, V any] struct {
	entries []entry[K, V]
	at      [leavesPerBlock + 1]uint32 // at[0] is 0
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

// leaf returns the bounds of hash's leaf in b.entries.
func (b *block[K, V]) leaf(hash uint64) (start, end int) {
	li := leafOf(hash)
	return int(b.at[li]), int(b.at[li+1])
}

// find returns the index in b.entries of key's entry, or -1; b may be nil.
func (b *block[K, V]) find(hash uint64, key K) int {
	if b == nil {
		return -1
	}
	start, end := b.leaf(hash)
	for i := start; i < end; i++ {
		if b.entries[i].hash == hash && b.entries[i].key == key {
			return i
		}
	}
	return -1
}

func (t *table[K, V]) get(hash uint64, key K) (V, bool) {
	b := t.blocks[t.blockOf(hash)]
	if i := b.find(hash, key); i >= 0 {
		return b.entries[i].val, true
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
			for _, e := range b.entries {
				if !yield(e.key, e.val) {
					return
				}
			}
		}
	}
}

// tableWriter writes to a table that shares its blocks with a published
// one: the first write copies the block list, and the first write to a
// block copies the block with its entries.
type tableWriter[K comparable, V any] struct {
	t    *table[K, V]
	orig []*block[K, V] // the block list before the first write; nil until then
}

// block returns the block of hash, owned by this writer; a copy made
// now has room for room more entries.
func (w *tableWriter[K, V]) block(hash uint64, room int) *block[K, V] {
	if w.orig == nil {
		w.orig = w.t.blocks
		w.t.blocks = slices.Clone(w.t.blocks)
	}
	bi := w.t.blockOf(hash)
	b := w.t.blocks[bi]
	if b == w.orig[bi] { // not copied yet (or nil)
		fresh := new(block[K, V])
		if b != nil {
			fresh.at = b.at
			fresh.entries = append(make([]entry[K, V], 0, len(b.entries)+room), b.entries...)
		}
		b, w.t.blocks[bi] = fresh, fresh
	}
	return b
}

func (w *tableWriter[K, V]) put(hash uint64, key K, v V) {
	// A copy keeps its entries' places, so the index found before it holds.
	if i := w.t.blocks[w.t.blockOf(hash)].find(hash, key); i >= 0 {
		w.block(hash, 0).entries[i].val = v // a new value, not a new entry
		return
	}
	b := w.block(hash, 1)
	_, end := b.leaf(hash)
	b.entries = slices.Insert(b.entries, end, entry[K, V]{hash: hash, key: key, val: v})
	for li := leafOf(hash) + 1; li <= leavesPerBlock; li++ {
		b.at[li]++
	}
	w.t.n++
}

func (w *tableWriter[K, V]) del(hash uint64, key K) {
	i := w.t.blocks[w.t.blockOf(hash)].find(hash, key)
	if i < 0 {
		return
	}
	b := w.block(hash, 0)
	b.entries = slices.Delete(b.entries, i, i+1) // zeroes the last: no pointer kept past the length
	for li := leafOf(hash) + 1; li <= leavesPerBlock; li++ {
		b.at[li]--
	}
	if len(b.entries) == 0 {
		b.entries = nil
	}
	w.t.n--
}
