package watcher

import (
	"encoding/binary"
	"maps"
	"slices"

	"github.com/oakdns/oak/catalog"
)

// packedApp is a known app kept as bytes. The watcher keeps every app of
// the cluster between syncs; as catalog.Apps (a map, strings and slices
// each) they were half the server's heap, and pointers the garbage
// collector marks on the core that serves queries (BENCHMARKS.md, issue
// 10). Packed, an app is one pointer-free allocation, unpacked only when an
// event changes it or a resync finds its list element changed. The
// encoding is canonical (labels sorted by key, nil and empty alike), so two
// apps hold the same data exactly when their packings are equal.
//
// A packing is a string, so that what is read from it needs no copy: the
// app's id (the watcher's key for it) and the strings of an unpacked app
// are parts of it. The watcher then keeps one object per app, and an
// unpacked app none of its own; the snapshot keeps the strings of the
// app's first version (catalog's adopt).
type packedApp string

// packApp packs a (TestPackedAppFields keeps it in step with
// catalog.App's fields).
func packApp(a *catalog.App) packedApp {
	var scratch [512]byte // most apps pack into it; the result is one exact allocation
	return packedApp(appendPacked(scratch[:0], a))
}

// id returns the app's id, a part of p.
func (p packedApp) id() string {
	r := unpacker{s: string(p)}
	return r.str()
}

// appendPacked appends a's packing to b.
func appendPacked(b []byte, a *catalog.App) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	num := func(n int) { b = binary.AppendVarint(b, int64(n)) }
	str(a.ID)
	str(a.Version)
	str(a.ConfigChange)
	num(len(a.Labels))
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		str(k)
		str(a.Labels[k])
	}
	num(len(a.Ports))
	for _, p := range a.Ports {
		str(p.Name)
		num(p.Number)
		str(p.Protocol)
	}
	str(a.DockerIP)
	num(a.HealthChecks)
	num(len(a.Tasks))
	for _, t := range a.Tasks {
		str(t.ID)
		str(t.State)
		str(t.Host)
		num(len(t.IPs))
		for _, ip := range t.IPs {
			str(ip)
		}
		num(len(t.Ports))
		for _, p := range t.Ports {
			num(p)
		}
		num(len(t.Health))
		for _, alive := range t.Health {
			if alive {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	return b
}

// unpack returns the app p holds; false only if p is not a packing, which
// packApp never makes.
func (p packedApp) unpack() (catalog.App, bool) {
	r := unpacker{s: string(p)}
	a := catalog.App{ID: r.str(), Version: r.str(), ConfigChange: r.str()}
	if n := r.count(); n > 0 {
		a.Labels = make(map[string]string, n)
		for range n {
			k := r.str()
			a.Labels[k] = r.str()
		}
	}
	if n := r.count(); n > 0 {
		a.Ports = make([]catalog.PortSpec, n)
		for i := range a.Ports {
			a.Ports[i] = catalog.PortSpec{Name: r.str(), Number: r.num(), Protocol: r.str()}
		}
	}
	a.DockerIP = r.str()
	a.HealthChecks = r.num()
	if n := r.count(); n > 0 {
		a.Tasks = make([]catalog.Task, n)
		for i := range a.Tasks {
			t := &a.Tasks[i]
			t.ID, t.State, t.Host = r.str(), r.str(), r.str()
			if n := r.count(); n > 0 {
				t.IPs = make([]string, n)
				for j := range t.IPs {
					t.IPs[j] = r.str()
				}
			}
			if n := r.count(); n > 0 {
				t.Ports = make([]int, n)
				for j := range t.Ports {
					t.Ports[j] = r.num()
				}
			}
			if n := r.count(); n > 0 {
				t.Health = make([]bool, n)
				for j := range t.Health {
					t.Health[j] = r.byte() == 1
				}
			}
		}
	}
	return a, !r.bad && len(r.s) == 0
}

// unpacker reads a packedApp; past a fault it reads zeros and says bad.
type unpacker struct {
	s   string // what is left to read
	bad bool
}

// uvarint reads what binary.AppendUvarint wrote, as binary.Uvarint does.
func (r *unpacker) uvarint() uint64 {
	var x uint64
	for i := 0; i < len(r.s) && i < binary.MaxVarintLen64; i++ {
		c := r.s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflow
			}
			r.s = r.s[i+1:]
			return x | uint64(c)<<(7*i)
		}
		x |= uint64(c&0x7f) << (7 * i)
	}
	r.bad, r.s = true, ""
	return 0
}

func (r *unpacker) num() int {
	ux := r.uvarint() // binary.AppendVarint's zig-zag encoding
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return int(x)
}

// count reads a length, bounded by the bytes left (each element takes at
// least one), so that a bad packing cannot ask for a huge allocation.
func (r *unpacker) count() int {
	n := r.num()
	if n < 0 || n > len(r.s) {
		r.bad, r.s = true, ""
		return 0
	}
	return n
}

func (r *unpacker) str() string {
	n := r.uvarint()
	if n > uint64(len(r.s)) {
		r.bad, r.s = true, ""
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

func (r *unpacker) byte() byte {
	if len(r.s) == 0 {
		r.bad = true
		return 0
	}
	c := r.s[0]
	r.s = r.s[1:]
	return c
}
