package watcher

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// A fast path for the one event that churn brings by the thousand. A task
// kill is four status_update_events (the simulator's KILLING, then the
// replacement's STAGING and RUNNING, then KILLED; Marathon's are alike),
// so 1,000 kills a second are ~4,000 events, and decoding them through
// reflection (jsonv1.Unmarshal into statusUpdate) took 2.3% of the core
// that serves DNS (BENCHMARKS.md). scanStatusUpdate reads the shape
// Marathon writes in one pass over the bytes and gives up on anything
// else, which decodeStatusUpdate then decodes in full: so it need not
// know every rule of encoding/json, only recognise input on which its
// answer and jsonv1's cannot differ (FuzzStatusUpdate checks both).
//
// It takes: one object, all ASCII, with no backslash anywhere (no escapes
// to undo); member names of letters and digits only, which jsonv1 matches
// to fields by ASCII case folding (plainName, the fingerprinter's rule);
// each of statusUpdate's fields at most once, its value of the field's
// type, never null; and other members whose values are strings, numbers,
// true or false. Anything else is left to jsonv1.

// statusSpan is where a string's bytes lie in the event: data[from:to].
type statusSpan struct{ from, to int }

// statusScan is the state of one scan: the event and the reading position.
type statusScan struct {
	data     []byte
	at       int
	controls bool // data has bytes below 0x20 (whitespace, or what no string may hold)
}

// plainASCII reports whether data is ASCII without a backslash, and
// whether it has bytes below 0x20; eight bytes at a time.
func plainASCII(data []byte) (plain, controls bool) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	var high, backslash, control uint64
	i := 0
	for ; i+8 <= len(data); i += 8 {
		x := binary.LittleEndian.Uint64(data[i:])
		high |= x
		v := x ^ ('\\' * ones)
		backslash |= (v - ones) &^ v
		control |= (x - 0x20*ones) &^ x
	}
	for ; i < len(data); i++ {
		x := uint64(data[i])
		high |= x
		if x == '\\' {
			backslash |= highs
		}
		if x < 0x20 {
			control |= highs
		}
	}
	// Each test sets a high bit in a word exactly when some byte of it
	// matches (a borrow runs only up from a matching byte); the one for
	// control bytes holds for ASCII words, the only ones it is asked of.
	return (high|backslash)&highs == 0, control&highs != 0
}

// scanStatusUpdate decodes data as jsonv1.Unmarshal would into a
// statusUpdate, or reports false when data is not of the shape it reads.
func scanStatusUpdate(data []byte) (statusUpdate, bool) {
	plain, controls := plainASCII(data)
	if !plain {
		return statusUpdate{}, false
	}
	s := statusScan{data: data, controls: controls}
	var (
		strs    [statusPorts]statusSpan // the string fields, by statusField
		seen    [statusFields]bool
		ports   []int
		ipsRoom [2]statusSpan
		ips     []statusSpan
		haveIPs bool
	)
	if !s.byte('{') {
		return statusUpdate{}, false
	}
	for first := true; !s.peek('}'); first = false {
		if !first && !s.byte(',') {
			return statusUpdate{}, false
		}
		name, ok := s.string()
		if !ok || !s.byte(':') {
			return statusUpdate{}, false
		}
		if !plainName(data[name.from-1 : name.to+1]) {
			return statusUpdate{}, false
		}
		field := statusField(string(data[name.from:name.to]))
		if field >= 0 {
			if seen[field] {
				return statusUpdate{}, false
			}
			seen[field] = true
		}
		switch field {
		case statusAppID, statusTaskID, statusTaskStatus, statusVersion, statusHost:
			if strs[field], ok = s.string(); !ok {
				return statusUpdate{}, false
			}
		case statusPorts:
			if ports, ok = s.ints(); !ok {
				return statusUpdate{}, false
			}
		case statusIPAddresses:
			if ips, ok = s.ipAddresses(ipsRoom[:0]); !ok {
				return statusUpdate{}, false
			}
			haveIPs = true
		case unknownField:
			if !s.scalar() {
				return statusUpdate{}, false
			}
		}
	}
	s.at++ // the '}'
	s.space()
	if s.at != len(data) {
		return statusUpdate{}, false
	}

	// The strings kept share one allocation: written one after another
	// and cut apart in that order.
	var keptRoom [statusPorts + 2]statusSpan
	kept := append(append(keptRoom[:0], strs[:]...), ips...)
	n := 0
	for _, sp := range kept {
		n += sp.to - sp.from
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, sp := range kept {
		sb.Write(data[sp.from:sp.to])
	}
	all := sb.String()
	cut := func(sp statusSpan) string {
		v := all[:sp.to-sp.from]
		all = all[len(v):]
		return v
	}
	out := statusUpdate{ // in the order of strs
		AppID: cut(strs[statusAppID]), TaskID: cut(strs[statusTaskID]), TaskStatus: cut(strs[statusTaskStatus]),
		Version: cut(strs[statusVersion]), Host: cut(strs[statusHost]),
		Ports: ports,
	}
	if haveIPs {
		addrs := make([]ipAddress, len(ips))
		out.IPAddresses = make([]*ipAddress, len(ips))
		for i, sp := range ips {
			addrs[i].IPAddress = cut(sp)
			out.IPAddresses[i] = &addrs[i]
		}
	}
	return out, true
}

// statusUpdate's fields as statusField names them, the string fields
// first.
const (
	statusAppID = iota
	statusTaskID
	statusTaskStatus
	statusVersion
	statusHost
	statusPorts
	statusIPAddresses
	statusFields // how many

	unknownField = -1 // a member statusUpdate does not have
)

// statusField returns the field a plain member name (plainName) stands
// for, as jsonv1 matches it: exactly, or else by ASCII case folding; and
// unknownField for any other name. No two of the names fold to the same,
// so one pass finds the exact match and the folded one alike; a plain name
// folds only to a name of its length.
func statusField(name string) int {
	for field, tag := range [statusFields]string{"appId", "taskId", "taskStatus", "version", "host", "ports", "ipAddresses"} {
		if len(name) == len(tag) && (name == tag || strings.EqualFold(name, tag)) {
			return field
		}
	}
	return unknownField
}

// space skips JSON whitespace.
func (s *statusScan) space() {
	for s.at < len(s.data) {
		switch s.data[s.at] {
		case ' ', '\t', '\n', '\r':
			s.at++
		default:
			return
		}
	}
}

// byte reads c after whitespace.
func (s *statusScan) byte(c byte) bool {
	s.space()
	if s.at < len(s.data) && s.data[s.at] == c {
		s.at++
		return true
	}
	return false
}

// peek reports whether c is next after whitespace, without reading it.
func (s *statusScan) peek(c byte) bool {
	s.space()
	return s.at < len(s.data) && s.data[s.at] == c
}

// string reads a string (no escapes: scanStatusUpdate has checked) and
// returns where its content lies.
func (s *statusScan) string() (statusSpan, bool) {
	if !s.byte('"') {
		return statusSpan{}, false
	}
	from := s.at
	end := bytes.IndexByte(s.data[from:], '"')
	if end < 0 {
		return statusSpan{}, false
	}
	s.at = from + end + 1
	if s.controls && bytes.ContainsFunc(s.data[from:from+end], func(r rune) bool { return r < 0x20 }) {
		return statusSpan{}, false // a control character must be escaped
	}
	return statusSpan{from, from + end}, true
}

// number reads a JSON number and reports whether it was an integer of at
// most 18 digits, with its value.
func (s *statusScan) number() (value int, integer, ok bool) {
	s.space()
	neg := s.at < len(s.data) && s.data[s.at] == '-'
	if neg {
		s.at++
	}
	from := s.at
	for s.at < len(s.data) && '0' <= s.data[s.at] && s.data[s.at] <= '9' {
		value = value*10 + int(s.data[s.at]-'0')
		s.at++
	}
	digits := s.at - from
	if digits == 0 || digits > 1 && s.data[from] == '0' {
		return 0, false, false
	}
	integer = digits <= 18
	if s.at < len(s.data) && s.data[s.at] == '.' {
		s.at++
		if !s.digits() {
			return 0, false, false
		}
		integer = false
	}
	if s.at < len(s.data) && (s.data[s.at] == 'e' || s.data[s.at] == 'E') {
		s.at++
		if s.at < len(s.data) && (s.data[s.at] == '+' || s.data[s.at] == '-') {
			s.at++
		}
		if !s.digits() {
			return 0, false, false
		}
		integer = false
	}
	if neg {
		value = -value
	}
	return value, integer, true
}

// digits reads one or more decimal digits.
func (s *statusScan) digits() bool {
	from := s.at
	for s.at < len(s.data) && '0' <= s.data[s.at] && s.data[s.at] <= '9' {
		s.at++
	}
	return s.at > from
}

// scalar skips a string, number, true or false.
func (s *statusScan) scalar() bool {
	s.space()
	if s.at == len(s.data) {
		return false
	}
	switch c := s.data[s.at]; {
	case c == '"':
		_, ok := s.string()
		return ok
	case c == '-' || '0' <= c && c <= '9':
		_, _, ok := s.number()
		return ok
	case c == 't':
		return s.word("true")
	case c == 'f':
		return s.word("false")
	}
	return false // null, an object or an array: jsonv1 decides
}

// word reads a literal.
func (s *statusScan) word(w string) bool {
	if len(s.data)-s.at < len(w) || string(s.data[s.at:s.at+len(w)]) != w {
		return false
	}
	s.at += len(w)
	return true
}

// ints reads an array of integers; an empty array is an empty, non-nil
// slice, as jsonv1 makes it.
func (s *statusScan) ints() ([]int, bool) {
	if !s.byte('[') {
		return nil, false
	}
	out := []int{}
	for first := true; !s.peek(']'); first = false {
		if !first && !s.byte(',') {
			return nil, false
		}
		v, integer, ok := s.number()
		if !ok || !integer {
			return nil, false
		}
		out = append(out, v)
	}
	s.at++
	return out, true
}

// ipAddresses reads ipAddresses: an array of objects, each with at most
// one ipAddress (matched as statusField matches) and other members of
// scalar values. It returns where each
// element's ipAddress lies (empty for an element without one).
func (s *statusScan) ipAddresses(out []statusSpan) ([]statusSpan, bool) {
	if !s.byte('[') {
		return nil, false
	}
	for first := true; !s.peek(']'); first = false {
		if !first && !s.byte(',') {
			return nil, false
		}
		if !s.byte('{') {
			return nil, false
		}
		var addr statusSpan
		seen := false
		for firstMember := true; !s.peek('}'); firstMember = false {
			if !firstMember && !s.byte(',') {
				return nil, false
			}
			name, ok := s.string()
			if !ok || !s.byte(':') || !plainName(s.data[name.from-1:name.to+1]) {
				return nil, false
			}
			if !bytes.EqualFold(s.data[name.from:name.to], []byte("ipAddress")) {
				if !s.scalar() {
					return nil, false
				}
				continue
			}
			if seen {
				return nil, false
			}
			seen = true
			if addr, ok = s.string(); !ok {
				return nil, false
			}
		}
		s.at++
		out = append(out, addr)
	}
	s.at++
	return out, true
}
