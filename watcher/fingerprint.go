package watcher

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"io"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/oakdns/oak/catalog"
)

// fingerprinter hashes what oak reads of one element of an apps list (the
// fields of leanApp, with each task's fields and its health results' alive
// only), walking its tokens without decoding them: two elements with the
// same fingerprint decode to the same app, whatever else differs (task
// counts, health check timestamps, deployments, resources). It hashes
// each read app field's bytes as they are, so a different spelling of the
// same value only costs a decode. An element it cannot vouch for (not an
// object, or a name that is not plain ASCII, which encoding/json might
// match to a field by folding or unescaping) has no fingerprint and is
// always decoded.
//
// The tasks are hashed by what they decode to (tasksPrint), not by their
// bytes, so that the watcher can compute the fingerprint of an app whose
// tasks it changed from events: the next list then finds the element
// unchanged without decoding it (printIndex.retask). Tasks it cannot
// vouch for (an escaped or non-ASCII string, a null, a repeated field, a
// number that is not a plain integer: shapes whose decoding is not simply
// their bytes) leave the element without a fingerprint.
type fingerprinter struct {
	seed  maphash.Seed
	hash  maphash.Hash // the element's fields other than its tasks
	rd    bytes.Reader
	dec   *jsontext.Decoder
	tasks uint64 // tasksPrint of the element's tasks, once read
	read  bool   // the element's tasks were read

	// Scratch: one listed task, a known task's addresses, the tasks'
	// encoding (appendTask).
	task     taskDigest
	knownIPs []uint64
	encoded  []byte
	empty    uint64 // the hash of "", a string field's value when absent
}

// elementPrint is an element's fingerprint, and its part that is not the
// tasks'.
type elementPrint struct{ whole, app uint64 }

func newFingerprinter(seed maphash.Seed) *fingerprinter {
	f := &fingerprinter{seed: seed, empty: maphash.String(seed, "")}
	f.hash.SetSeed(seed)
	f.dec = jsontext.NewDecoder(&f.rd)
	return f
}

// sum returns the fingerprint of element (one JSON value, already
// checked), and false when it has none.
func (f *fingerprinter) sum(element []byte) (elementPrint, bool) {
	f.rd.Reset(element)
	f.dec.Reset(&f.rd, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	f.hash.Reset()
	f.read = false
	if !f.object(f.appField) {
		return elementPrint{}, false
	}
	if _, err := f.dec.ReadToken(); err != io.EOF {
		return elementPrint{}, false // not one value
	}
	if !f.read {
		f.tasks = f.tasksPrint(nil)
	}
	app := f.hash.Sum64()
	return elementPrint{whole: f.whole(app, f.tasks), app: app}, true
}

// whole is the fingerprint of an element from its two parts.
func (f *fingerprinter) whole(app, tasks uint64) uint64 {
	return maphash.Comparable(f.seed, [2]uint64{app, tasks})
}

// taskDigest is one task as the lean decode gives it (catalog.Task), its
// strings hashed.
type taskDigest struct {
	id, state, host uint64
	ports           []int
	ips             []uint64
	health          []bool
}

// appendTask appends the encoding of one task that tasksPrint hashes: the
// one encoding of both the list's tasks and the known app's.
func appendTask(b []byte, t *taskDigest) []byte {
	b = binary.LittleEndian.AppendUint64(b, t.id)
	b = binary.LittleEndian.AppendUint64(b, t.state)
	b = binary.LittleEndian.AppendUint64(b, t.host)
	b = binary.AppendUvarint(b, uint64(len(t.ports)))
	for _, p := range t.ports {
		b = binary.AppendVarint(b, int64(p))
	}
	b = binary.AppendUvarint(b, uint64(len(t.ips)))
	for _, ip := range t.ips {
		b = binary.LittleEndian.AppendUint64(b, ip)
	}
	b = binary.AppendUvarint(b, uint64(len(t.health)))
	for _, alive := range t.health {
		b = append(b, boolByte(alive))
	}
	return b
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// tasksPrint is the tasks' part of the fingerprint of an element that
// decodes to tasks, in their order.
func (f *fingerprinter) tasksPrint(tasks []catalog.Task) uint64 {
	f.encoded = f.encoded[:0]
	for i := range tasks {
		t := &tasks[i]
		d := taskDigest{id: maphash.String(f.seed, t.ID), state: maphash.String(f.seed, t.State), host: maphash.String(f.seed, t.Host),
			ports: t.Ports, ips: f.knownIPs[:0], health: t.Health}
		for _, ip := range t.IPs {
			d.ips = append(d.ips, maphash.String(f.seed, ip))
		}
		f.knownIPs = d.ips
		f.encoded = appendTask(f.encoded, &d)
	}
	return maphash.Bytes(f.seed, f.encoded)
}

// Tags that mark the structure in the hash, so that different shapes of
// the same bytes do not collide.
const (
	tagObject byte = iota + 1
	tagEnd
	tagValue
)

// object walks an object, handing each plain name to field, which reads
// (or skips) its value. It reports false for a name it cannot vouch for.
func (f *fingerprinter) object(field func(name []byte) bool) bool {
	if f.dec.PeekKind() != '{' {
		return false
	}
	if _, err := f.dec.ReadToken(); err != nil {
		return false
	}
	f.hash.WriteByte(tagObject)
	for f.dec.PeekKind() != '}' {
		name, err := f.dec.ReadValue()
		if err != nil || !plainName(name) {
			return false
		}
		if !field(name[1 : len(name)-1]) {
			return false
		}
	}
	if _, err := f.dec.ReadToken(); err != nil {
		return false
	}
	f.hash.WriteByte(tagEnd)
	return true
}

// plainName reports whether a quoted name is ASCII letters and digits
// only: for those, encoding/json's matching is ASCII case folding.
func plainName(quoted []byte) bool {
	if len(quoted) < 2 {
		return false
	}
	for _, c := range quoted[1 : len(quoted)-1] {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// value hashes the next value's bytes under tag.
func (f *fingerprinter) value(tag byte) bool {
	v, err := f.dec.ReadValue()
	if err != nil {
		return false
	}
	f.hash.WriteByte(tagValue)
	f.hash.WriteByte(tag)
	var n [binary.MaxVarintLen64]byte
	f.hash.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
	f.hash.Write(v)
	return true
}

func (f *fingerprinter) skip() bool { return f.dec.SkipValue() == nil }

// The fields of leanApp, leanTask and leanHealth.
func (f *fingerprinter) appField(name []byte) bool {
	switch {
	case bytes.EqualFold(name, []byte("tasks")):
		return f.readTasks()
	case bytes.EqualFold(name, []byte("id")):
		return f.value('i')
	case bytes.EqualFold(name, []byte("version")):
		return f.value('v')
	case bytes.EqualFold(name, []byte("versionInfo")):
		return f.value('V')
	case bytes.EqualFold(name, []byte("labels")):
		return f.value('l')
	case bytes.EqualFold(name, []byte("healthChecks")):
		return f.value('h')
	case bytes.EqualFold(name, []byte("portDefinitions")):
		return f.value('p')
	case bytes.EqualFold(name, []byte("container")):
		return f.value('c')
	}
	return f.skip()
}

// The fields of leanTask that the lean decode reads, as bits of the
// fields seen in one task.
const (
	fieldID = 1 << iota
	fieldHost
	fieldState
	fieldPorts
	fieldIPs
	fieldHealth
)

// readTasks reads the element's "tasks" array, by what it decodes to.
func (f *fingerprinter) readTasks() bool {
	if f.read {
		return false // repeated: encoding/json would decode both
	}
	f.read = true
	f.encoded = f.encoded[:0]
	if f.dec.PeekKind() == 'n' { // null: no tasks
		_, err := f.dec.ReadToken()
		f.tasks = maphash.Bytes(f.seed, f.encoded)
		return err == nil
	}
	if f.dec.PeekKind() != '[' {
		return false
	}
	if _, err := f.dec.ReadToken(); err != nil {
		return false
	}
	for f.dec.PeekKind() != ']' {
		if !f.readTask() {
			return false
		}
		f.encoded = appendTask(f.encoded, &f.task)
	}
	if _, err := f.dec.ReadToken(); err != nil {
		return false
	}
	f.tasks = maphash.Bytes(f.seed, f.encoded)
	return true
}

// readTask reads one task into f.task.
func (f *fingerprinter) readTask() bool {
	d := &f.task
	*d = taskDigest{id: f.empty, state: f.empty, host: f.empty, ports: d.ports[:0], ips: d.ips[:0], health: d.health[:0]}
	return f.fields(func(name []byte) (int, bool) {
		switch {
		case bytes.EqualFold(name, []byte("id")):
			return fieldID, f.plainString(&d.id)
		case bytes.EqualFold(name, []byte("host")):
			return fieldHost, f.plainString(&d.host)
		case bytes.EqualFold(name, []byte("state")):
			return fieldState, f.plainString(&d.state)
		case bytes.EqualFold(name, []byte("ports")):
			return fieldPorts, f.ints(&d.ports)
		case bytes.EqualFold(name, []byte("ipAddresses")):
			return fieldIPs, f.objects(func() bool {
				ip := f.empty
				ok := f.oneField("ipAddress", func() bool { return f.plainString(&ip) })
				d.ips = append(d.ips, ip)
				return ok
			})
		case bytes.EqualFold(name, []byte("healthCheckResults")):
			return fieldHealth, f.objects(func() bool {
				alive := false
				ok := f.oneField("alive", func() bool { return f.boolean(&alive) })
				d.health = append(d.health, alive)
				return ok
			})
		}
		return 0, f.skip()
	})
}

// fields walks an object whose fields field reads (or skips), each
// returning its bit (0 for a skipped field). A name that is not plain, or
// a field read twice, which encoding/json would decode twice, fails.
func (f *fingerprinter) fields(field func(name []byte) (bit int, ok bool)) bool {
	if f.dec.PeekKind() != '{' {
		return false
	}
	if _, err := f.dec.ReadToken(); err != nil {
		return false
	}
	seen := 0
	for f.dec.PeekKind() != '}' {
		name, err := f.dec.ReadValue()
		if err != nil || !plainName(name) {
			return false
		}
		bit, ok := field(name[1 : len(name)-1])
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	_, err := f.dec.ReadToken()
	return err == nil
}

// oneField walks an object of which read reads the field called name
// (matched as encoding/json does) and the rest is skipped.
func (f *fingerprinter) oneField(name string, read func() bool) bool {
	return f.fields(func(n []byte) (int, bool) {
		if bytes.EqualFold(n, []byte(name)) {
			return 1, read()
		}
		return 0, f.skip()
	})
}

// objects walks an array whose elements are objects, each read by element.
func (f *fingerprinter) objects(element func() bool) bool {
	if f.dec.PeekKind() != '[' {
		return false
	}
	if _, err := f.dec.ReadToken(); err != nil {
		return false
	}
	for f.dec.PeekKind() != ']' {
		if !element() {
			return false
		}
	}
	_, err := f.dec.ReadToken()
	return err == nil
}

// plainString reads a string of printable ASCII without escapes, which
// decodes to its bytes, and sets *h to their hash.
func (f *fingerprinter) plainString(h *uint64) bool {
	if f.dec.PeekKind() != '"' {
		return false
	}
	v, err := f.dec.ReadValue()
	if err != nil {
		return false
	}
	s := v[1 : len(v)-1]
	for _, c := range s {
		if c == '\\' || c >= 0x80 {
			return false
		}
	}
	*h = maphash.Bytes(f.seed, s)
	return true
}

// ints reads an array of integers of at most 9 digits (which fit an int
// on every platform; ports have five) into *dst.
func (f *fingerprinter) ints(dst *[]int) bool {
	if f.dec.PeekKind() != '[' {
		return false
	}
	if _, err := f.dec.ReadToken(); err != nil {
		return false
	}
	for f.dec.PeekKind() == '0' {
		v, err := f.dec.ReadValue()
		if err != nil {
			return false
		}
		digits := bytes.TrimPrefix(v, []byte("-"))
		if len(digits) == 0 || len(digits) > 9 {
			return false
		}
		n := 0
		for _, c := range digits {
			if c < '0' || c > '9' {
				return false // a fraction or an exponent
			}
			n = n*10 + int(c-'0')
		}
		if len(digits) < len(v) {
			n = -n
		}
		*dst = append(*dst, n)
	}
	if f.dec.PeekKind() != ']' {
		return false // not a number
	}
	_, err := f.dec.ReadToken()
	return err == nil
}

// boolean reads true or false into *b.
func (f *fingerprinter) boolean(b *bool) bool {
	if k := f.dec.PeekKind(); k != 't' && k != 'f' {
		return false
	}
	tok, err := f.dec.ReadToken()
	if err != nil {
		return false
	}
	*b = tok.Bool()
	return true
}
