package watcher

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// fingerprinter hashes what oak reads of one element of an apps list (the
// fields of leanApp, with each task's fields and its health results' alive
// only), walking its tokens without decoding them: two elements with the
// same fingerprint decode to the same app, whatever else differs (task
// counts, health check timestamps, deployments, resources). It hashes
// each read field's bytes as they are, so a different spelling of the same
// value only costs a decode. An element it cannot vouch for (not an
// object, or a name that is not plain ASCII, which encoding/json might
// match to a field by folding or unescaping) has no fingerprint and is
// always decoded.
type fingerprinter struct {
	hash maphash.Hash
	rd   bytes.Reader
	dec  *jsontext.Decoder
}

func newFingerprinter(seed maphash.Seed) *fingerprinter {
	f := &fingerprinter{}
	f.hash.SetSeed(seed)
	f.dec = jsontext.NewDecoder(&f.rd)
	return f
}

// sum returns the fingerprint of element (one JSON value, already
// checked), and false when it has none.
func (f *fingerprinter) sum(element []byte) (uint64, bool) {
	f.rd.Reset(element)
	f.dec.Reset(&f.rd, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	f.hash.Reset()
	if !f.object(f.appField) {
		return 0, false
	}
	if _, err := f.dec.ReadToken(); err != io.EOF {
		return 0, false // not one value
	}
	return f.hash.Sum64(), true
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

// array walks an array whose objects element reads; other values are
// hashed whole.
func (f *fingerprinter) array(tag byte, element func(name []byte) bool) bool {
	if f.dec.PeekKind() != '[' {
		return f.value(tag)
	}
	if _, err := f.dec.ReadToken(); err != nil {
		return false
	}
	f.hash.WriteByte(tag)
	for f.dec.PeekKind() != ']' {
		if f.dec.PeekKind() != '{' {
			if !f.value(tag) {
				return false
			}
			continue
		}
		if !f.object(element) {
			return false
		}
	}
	_, err := f.dec.ReadToken()
	f.hash.WriteByte(tagEnd)
	return err == nil
}

// The fields of leanApp, leanTask and leanHealth.
func (f *fingerprinter) appField(name []byte) bool {
	switch {
	case bytes.EqualFold(name, []byte("tasks")):
		return f.array('t', f.taskField)
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

func (f *fingerprinter) taskField(name []byte) bool {
	switch {
	case bytes.EqualFold(name, []byte("healthCheckResults")):
		return f.array('r', f.healthField)
	case bytes.EqualFold(name, []byte("id")):
		return f.value('i')
	case bytes.EqualFold(name, []byte("host")):
		return f.value('H')
	case bytes.EqualFold(name, []byte("ports")):
		return f.value('P')
	case bytes.EqualFold(name, []byte("state")):
		return f.value('s')
	case bytes.EqualFold(name, []byte("ipAddresses")):
		return f.value('a')
	}
	return f.skip()
}

func (f *fingerprinter) healthField(name []byte) bool {
	if bytes.EqualFold(name, []byte("alive")) {
		return f.value('A')
	}
	return f.skip()
}
