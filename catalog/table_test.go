package catalog

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
)

// TestTableCopyOnWrite: writes through a writer never change the table
// it was copied from, equal hashes are told apart by their keys, and the
// count follows puts and deletes. Hashes are chosen by the test, so that
// leaves and blocks are shared on purpose.
func TestTableCopyOnWrite(t *testing.T) {
	hashOf := func(i int) uint64 { return uint64(i % 5 * 3) } // many equal hashes, few leaves
	contents := func(tab *table[string, int]) map[string]int {
		out := map[string]int{}
		for k, v := range tab.all() {
			out[k] = v
		}
		if len(out) != tab.n {
			t.Fatalf("table counts %d, holds %d", tab.n, len(out))
		}
		return out
	}
	base := newTable[string, int](blocksSmall)
	w := tableWriter[string, int]{t: &base}
	want := map[string]int{}
	for i := range 40 {
		key := fmt.Sprint("k", i)
		w.put(hashOf(i), key, i)
		want[key] = i
	}
	if got := contents(&base); !maps.Equal(got, want) {
		t.Fatalf("after puts: %v, want %v", got, want)
	}
	published := maps.Clone(want)

	next := base
	w = tableWriter[string, int]{t: &next}
	for i := range 40 {
		key := fmt.Sprint("k", i)
		switch i % 3 {
		case 0:
			w.del(hashOf(i), key)
			delete(want, key)
		case 1:
			w.put(hashOf(i), key, -i)
			want[key] = -i
		}
	}
	w.del(hashOf(1), "absent")
	w.put(hashOf(41), "k41", 41)
	want["k41"] = 41
	if got := contents(&next); !maps.Equal(got, want) {
		t.Fatalf("after the update: %v, want %v", got, want)
	}
	for key, v := range want {
		var i int
		fmt.Sscanf(key, "k%d", &i)
		if got, ok := next.get(hashOf(i), key); !ok || got != v {
			t.Fatalf("get(%s) = %d %v, want %d", key, got, ok, v)
		}
	}
	if _, ok := next.get(hashOf(0), "k0"); ok {
		t.Fatal("deleted k0 still found")
	}
	if got := contents(&base); !maps.Equal(got, published) {
		t.Fatalf("the published table changed: %v, want %v", got, published)
	}
}

// TestTableAgainstMap: random puts and deletes through a chain of writers,
// each starting from the table the last one wrote, agree with a map after
// every writer, and leave every earlier table as it was. The hashes fall
// in three blocks and every leaf of them, several keys to a hash, so
// entries move within a block's array as leaves before them grow and
// shrink, and equal hashes are told apart by their keys.
func TestTableAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	hashOf := func(k int) uint64 { return uint64(k%16) | uint64(k%3)<<leafBits } // leaf k%16, block k%3
	type version struct {
		tab  table[int, int]
		want map[int]int
	}
	var versions []version
	tab, want := newTable[int, int](blocksSmall), map[int]int{}
	for range 50 {
		w := tableWriter[int, int]{t: &tab}
		for range rng.IntN(40) {
			k := rng.IntN(120)
			if rng.IntN(3) == 0 {
				w.del(hashOf(k), k)
				delete(want, k)
			} else {
				v := rng.Int()
				w.put(hashOf(k), k, v)
				want[k] = v
			}
		}
		versions = append(versions, version{tab, maps.Clone(want)})
		for _, v := range versions {
			got := maps.Collect(v.tab.all())
			if !maps.Equal(got, v.want) || v.tab.n != len(v.want) {
				t.Fatalf("version %d: holds %v (count %d), want %v", len(versions), got, v.tab.n, v.want)
			}
			for k := range 120 {
				val, ok := v.tab.get(hashOf(k), k)
				if wantVal, wantOK := v.want[k]; ok != wantOK || val != wantVal {
					t.Fatalf("version %d: get(%d) = %d %v, want %d %v", len(versions), k, val, ok, wantVal, wantOK)
				}
			}
		}
	}
}
