package watcher

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/oakdns/oak/catalog"
)

// pacer pauses a long loop of the watcher (a resync's decode and
// comparison with the known apps) once it has held the core for
// sliceBudget, leaving the core to the goroutines the network has woken,
// such as DNS queries: a runtime.Gosched would not, since the scheduler
// polls the network only when no goroutine is runnable, or every 10 ms
// (BenchmarkResyncDelay). The budget is time, not steps, because a step's
// cost varies a hundredfold: an unchanged list element is hashed, a
// changed one decoded.
type pacer struct {
	every int       // steps between looks at the clock
	n     int       // steps taken
	since time.Time // start of the current slice
}

// sliceBudget is how long the watcher runs before it pauses; pauseFor is
// the pause asked for (the timer may give more). On the single core of
// bench-dns, a query that arrives during a slice waits for the rest of it.
//
// The pause must outlast the goroutines made runnable during the slice:
// the scheduler makes a due timer's goroutine runnable before it polls the
// network, so a pause that ends while queries are still queued hands the
// core straight back to the watcher, and new packets wait in the socket
// for sysmon's poll, up to 10 ms. A 20 µs pause did exactly that
// (BenchmarkResyncDelay decode-all, p99 lateness 5.7-6.1 ms; 0.87-0.89 ms
// with this one). A pause as long as the slice leaves a resync at most half
// the core while queries wait; back to back, a decode-all resync took
// 575-605 ms instead of 523-533 ms, for the same CPU.
const (
	sliceBudget = 200 * time.Microsecond
	pauseFor    = sliceBudget
)

// Steps between looks at the clock: list elements cost a microsecond or
// more each, map updates tens of nanoseconds.
const (
	elementStride = 1
	mapStride     = 64
)

func newPacer(every int) pacer { return pacer{every: every, since: time.Now()} }

// step counts one step and pauses when the slice is spent; a nil pacer
// never pauses.
func (p *pacer) step() {
	if p == nil {
		return
	}
	if p.n++; p.n%p.every != 0 || time.Since(p.since) < sliceBudget {
		return
	}
	time.Sleep(pauseFor)
	p.since = time.Now()
}

// errNoAppsArray is the error of a body that is not one object with one
// "apps" array, which go-marathon would take as an empty list.
var errNoAppsArray = errors.New(`parse apps: want one object with one "apps" array`)

// listedApp is one element of an apps list: its app, or, when it has the
// bytes or the fingerprint of an element of the previous list
// (printIndex), only its id.
type listedApp struct {
	id      string
	app     *catalog.App // nil when unchanged
	raw     uint64       // hash of the element's bytes
	print   elementPrint // the element's fingerprint, when printed
	printed bool
	sameRaw bool // unchanged by its bytes
}

// appsOfList returns the apps of a list decoded whole (no index).
func appsOfList(list []listedApp) []catalog.App {
	apps := make([]catalog.App, len(list))
	for i := range list {
		apps[i] = *list[i].app
	}
	return apps
}

// printIndex remembers, for each element of the last apps list that the
// catalog holds as listed, a hash of its bytes and its fingerprint, so
// that the next list skips decoding an element with the same bytes (a
// hash, the cheapest check) or else the same fingerprint (a walk of its
// tokens): most of a cluster, most of the time. An app whose tasks events
// changed keeps a fingerprint made from its new tasks (retask), so that
// churn between two lists costs a walk of each changed element, not a
// decode (BenchmarkResyncAfterKills). 64-bit hashes with a
// per-process seed make a false match vanishingly rare (the birthday
// bound is ~1e-11 per resync at 10,000 apps).
type printIndex struct {
	seed    maphash.Seed
	byRaw   map[uint64]string // hash of the bytes -> app id
	byPrint map[uint64]string // fingerprint -> app id
	of      map[string]elementHashes
	printer *fingerprinter
}

// elementHashes are an app's entries in a printIndex. Once events have
// changed the app's tasks, its element's bytes are no longer the app's
// (listed is false), but its fingerprint, recomputed, still is.
type elementHashes struct {
	raw     uint64
	print   elementPrint
	listed  bool // raw is in byRaw
	printed bool // print is in byPrint
}

func newPrintIndex() *printIndex {
	seed := maphash.MakeSeed()
	return &printIndex{seed: seed, byRaw: map[uint64]string{}, byPrint: map[uint64]string{}, of: map[string]elementHashes{},
		printer: newFingerprinter(seed)}
}

// forget drops an app whose known definition no longer comes from its list
// element (a partial sync changed it, or it is gone).
func (x *printIndex) forget(id string) {
	if h, ok := x.of[id]; ok {
		x.drop(h)
		delete(x.of, id)
	}
}

// drop removes an app's entries from byRaw and byPrint.
func (x *printIndex) drop(h elementHashes) {
	if h.listed {
		delete(x.byRaw, h.raw)
	}
	if h.printed {
		delete(x.byPrint, h.print.whole)
	}
}

// retask follows app, whose tasks alone events changed since its element
// was listed: its fingerprint becomes the one of the same element with
// app's tasks, which the next list has when it agrees with the events. id
// is app's id, as the index keeps it from now on.
func (x *printIndex) retask(id string, app *catalog.App) {
	h, ok := x.of[id]
	if !ok || !h.printed {
		x.forget(id)
		return
	}
	x.drop(h)
	h.listed = false
	h.print.whole = x.printer.whole(h.print.app, x.printer.tasksPrint(app.Tasks))
	x.of[id] = h
	x.byPrint[h.print.whole] = id
}

// record makes item the element its app is known from.
func (x *printIndex) record(item *listedApp) {
	x.forget(item.id)
	x.of[item.id] = elementHashes{raw: item.raw, print: item.print, listed: true, printed: item.printed}
	x.byRaw[item.raw] = item.id
	if item.printed {
		x.byPrint[item.print.whole] = item.id
	}
}

// clear forgets every element, so that the next list is decoded whole.
func (x *printIndex) clear() {
	clear(x.byRaw)
	clear(x.byPrint)
	clear(x.of)
}

// match reports the id of the known app an element is unchanged from.
func (x *printIndex) match(raw []byte, item *listedApp) bool {
	item.raw = maphash.Bytes(x.seed, raw)
	if id, ok := x.byRaw[item.raw]; ok {
		item.id, item.sameRaw = id, true
		return true
	}
	item.print, item.printed = x.printer.sum(raw)
	if id, ok := x.byPrint[item.print.whole]; ok && item.printed {
		item.id = id
		return true
	}
	return false
}

// decodeApps reads an apps list ({"apps":[...]}) as a stream, one element
// at a time. With an index, an element the index matches is not decoded:
// it comes back as its id, unchanged. The body must be exactly one
// object holding one "apps" array (matched as encoding/json matches
// names): a missing, null or repeated array is an error, never an empty or
// merged view.
func decodeApps(r io.Reader, index *printIndex) ([]listedApp, error) {
	return decodeAppsSized(r, index, 0)
}

// decodeAppsSized is decodeApps with room for size elements up front.
func decodeAppsSized(r io.Reader, index *printIndex, size int) ([]listedApp, error) {
	dec := jsontext.NewDecoder(r, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if tok, err := dec.ReadToken(); err != nil {
		return nil, fmt.Errorf("parse apps: %w", err)
	} else if tok.Kind() != '{' {
		return nil, fmt.Errorf("%w, got %v", errNoAppsArray, tok.Kind())
	}
	var list []listedApp
	found := false
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil, fmt.Errorf("parse apps: %w", err)
		}
		if !strings.EqualFold(name.String(), "apps") {
			if err := dec.SkipValue(); err != nil {
				return nil, fmt.Errorf("parse apps: %w", err)
			}
			continue
		}
		if found {
			return nil, fmt.Errorf(`%w: "apps" repeated`, errNoAppsArray)
		}
		found = true
		if list, err = decodeAppArray(dec, index, size); err != nil {
			return nil, err
		}
	}
	if _, err := dec.ReadToken(); err != nil { // the closing brace, or the error that stopped PeekKind
		return nil, fmt.Errorf("parse apps: %w", err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, errors.New("parse apps: data after the JSON object")
	}
	if !found {
		return nil, fmt.Errorf(`%w: no "apps"`, errNoAppsArray)
	}
	return list, nil
}

func decodeAppArray(dec *jsontext.Decoder, index *printIndex, size int) ([]listedApp, error) {
	tok, err := dec.ReadToken()
	switch {
	case err != nil:
		return nil, fmt.Errorf("parse apps: %w", err)
	case tok.Kind() == 'n':
		return nil, fmt.Errorf(`%w: "apps" is null`, errNoAppsArray)
	case tok.Kind() != '[':
		return nil, fmt.Errorf(`parse apps: "apps" is %v, not an array`, tok.Kind())
	}
	list := make([]listedApp, 0, size)
	pace := newPacer(elementStride)
	for i := 0; dec.PeekKind() != ']'; i++ {
		pace.step()
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("parse apps: element %d: %w", i, err)
		}
		var item listedApp
		if index != nil && index.match(raw, &item) {
			list = append(list, item)
			continue
		}
		var lean leanApp
		if err := jsonv1.Unmarshal(raw, &lean); err != nil {
			return nil, fmt.Errorf("parse apps: element %d: %w", i, err)
		}
		app := lean.app()
		item.id, item.app = app.ID, &app
		list = append(list, item)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, fmt.Errorf("parse apps: %w", err)
	}
	return list, nil
}

// The lean decoding of GET /v2/apps?embed=apps.tasks: only the fields oak
// reads, each with go-marathon v0.7.1's JSON name and a type that decodes
// the same way (encoding/json semantics: names matched without regard to
// case, null leaves a value alone and clears a pointer, map or slice, a
// repeated name decodes into what the first one left), so that leanApp.app
// gives what appOf gives for go-marathon's Application
// (TestLeanDecodeMatchesGoMarathon, FuzzLeanDecode). Every other field is
// skipped unread.
type (
	leanApp struct {
		ID              string            `json:"id"`
		Version         string            `json:"version"`
		VersionInfo     *leanVersionInfo  `json:"versionInfo"`
		Labels          map[string]string `json:"labels"`
		HealthChecks    []struct{}        `json:"healthChecks"` // counted only
		PortDefinitions []leanPortDef     `json:"portDefinitions"`
		Container       *leanContainer    `json:"container"`
		Tasks           []*leanTask       `json:"tasks"`
	}
	leanVersionInfo struct {
		LastConfigChangeAt string `json:"lastConfigChangeAt"`
	}
	leanPortDef struct {
		Port     *int   `json:"port"`
		Protocol string `json:"protocol"`
		Name     string `json:"name"`
	}
	leanContainer struct {
		Docker *leanDocker `json:"docker"`
	}
	leanDocker struct {
		Parameters   []leanParameter   `json:"parameters"`
		PortMappings []leanPortMapping `json:"portMappings"`
	}
	leanParameter struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	leanPortMapping struct {
		ContainerPort int    `json:"containerPort"`
		Name          string `json:"name"`
		Protocol      string `json:"protocol"`
	}
	leanTask struct {
		ID                 string        `json:"id"`
		Host               string        `json:"host"`
		HealthCheckResults []*leanHealth `json:"healthCheckResults"`
		Ports              []int         `json:"ports"`
		State              string        `json:"state"`
		IPAddresses        []*leanIP     `json:"ipAddresses"`
	}
	leanHealth struct {
		Alive bool `json:"alive"`
	}
	leanIP struct {
		IPAddress string `json:"ipAddress"`
	}
)

// app converts a decoded app by the rules of appOf.
func (a *leanApp) app() catalog.App {
	out := catalog.App{ID: a.ID, Version: a.Version, Labels: a.Labels, HealthChecks: len(a.HealthChecks),
		Tasks: make([]catalog.Task, 0, len(a.Tasks))}
	if a.VersionInfo != nil {
		out.ConfigChange = a.VersionInfo.LastConfigChangeAt
	}
	var docker *leanDocker
	if a.Container != nil {
		docker = a.Container.Docker
	}
	switch {
	case len(a.PortDefinitions) > 0:
		out.Ports = make([]catalog.PortSpec, 0, len(a.PortDefinitions))
		for _, d := range a.PortDefinitions {
			spec := catalog.PortSpec{Name: d.Name, Protocol: d.Protocol}
			if d.Port != nil {
				spec.Number = *d.Port
			}
			out.Ports = append(out.Ports, spec)
		}
	case docker != nil:
		for _, m := range docker.PortMappings {
			out.Ports = append(out.Ports, catalog.PortSpec{Name: m.Name, Number: m.ContainerPort, Protocol: m.Protocol})
		}
	}
	if docker != nil {
		for _, p := range docker.Parameters {
			if p.Key == "ip" {
				out.DockerIP = p.Value
			}
		}
	}
	for _, t := range a.Tasks {
		if t == nil {
			continue
		}
		task := catalog.Task{ID: t.ID, State: t.State, Host: t.Host, Ports: t.Ports}
		for _, ip := range t.IPAddresses {
			if ip != nil {
				task.IPs = append(task.IPs, ip.IPAddress)
			}
		}
		for _, r := range t.HealthCheckResults {
			task.Health = append(task.Health, r != nil && r.Alive)
		}
		out.Tasks = append(out.Tasks, task)
	}
	return out
}
