package watcher

import (
	"bytes"
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
type packedApp []byte

// packApp packs a (TestPackedAppFields keeps it in step with
// catalog.App's fields).
func packApp(a *catalog.App) packedApp {
	var scratch [512]byte // most apps pack into it; the result is one exact allocation
	return bytes.Clone(appendPacked(scratch[:0], a))
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
	r := unpacker{b: p}
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
	return a, !r.bad && len(r.b) == 0
}

// unpacker reads a packedApp; past a fault it reads zeros and says bad.
type unpacker struct {
	b   []byte
	bad bool
}

func (r *unpacker) num() int {
	n, size := binary.Varint(r.b)
	if size <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[size:]
	return int(n)
}

// count reads a length, bounded by the bytes left (each element takes at
// least one), so that a bad packing cannot ask for a huge allocation.
func (r *unpacker) count() int {
	n := r.num()
	if n < 0 || n > len(r.b) {
		r.bad, r.b = true, nil
		return 0
	}
	return n
}

func (r *unpacker) str() string {
	n, size := binary.Uvarint(r.b)
	if size <= 0 || n > uint64(len(r.b)-size) {
		r.bad, r.b = true, nil
		return ""
	}
	s := string(r.b[size : size+int(n)])
	r.b = r.b[size+int(n):]
	return s
}

func (r *unpacker) byte() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}
