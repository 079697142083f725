package watcher

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"runtime"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/oakdns/oak/catalog"
)

// yieldEvery is how many listed apps the decoder handles between two
// runtime.Gosched calls: on a DNS server's single core a resync then
// delays a query by a fraction of a millisecond, not by the 10 ms
// scheduler slice.
const yieldEvery = 64

// errNoAppsArray is the error of a body that is not one object with one
// "apps" array, which go-marathon would take as an empty list.
var errNoAppsArray = errors.New(`parse apps: want one object with one "apps" array`)

// listedApp is one element of an apps list: the app, or, when its bytes
// are those of an element of the previous list (rawIndex), only its id and
// unchanged set.
type listedApp struct {
	app       catalog.App
	unchanged bool
	hash      uint64 // of the element's bytes
}

// appsOfList returns the apps of a list decoded whole (no index).
func appsOfList(list []listedApp) []catalog.App {
	apps := make([]catalog.App, len(list))
	for i := range list {
		apps[i] = list[i].app
	}
	return apps
}

// rawIndex remembers, by a hash of its bytes, each element of the last
// apps list that the catalog holds as listed, so that the next list skips
// decoding an element whose bytes are the same: most of a cluster, most of
// the time. A 64-bit hash with a per-process seed makes a false match
// vanishingly rare (the birthday bound is ~1e-11 per resync at 10,000 apps).
type rawIndex struct {
	seed maphash.Seed
	ids  map[uint64]string // element hash -> app id
	hash map[string]uint64 // app id -> element hash
}

func newRawIndex() *rawIndex {
	return &rawIndex{seed: maphash.MakeSeed(), ids: map[uint64]string{}, hash: map[string]uint64{}}
}

// forget drops an app whose known definition no longer comes from its list
// element (a partial sync or a task update changed it).
func (x *rawIndex) forget(id string) {
	if h, ok := x.hash[id]; ok {
		delete(x.ids, h)
		delete(x.hash, id)
	}
}

// clear forgets every element, so that the next list is decoded whole.
func (x *rawIndex) clear() {
	clear(x.ids)
	clear(x.hash)
}

// decodeApps reads an apps list ({"apps":[...]}) as a stream, one element
// at a time. With an index, an element whose bytes the index holds is not
// decoded: it comes back as its id, unchanged. The body must be exactly one
// object holding one "apps" array (matched as encoding/json matches
// names): a missing, null or repeated array is an error, never an empty or
// merged view.
func decodeApps(r io.Reader, index *rawIndex) ([]listedApp, error) {
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
		if list, err = decodeAppArray(dec, index); err != nil {
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

func decodeAppArray(dec *jsontext.Decoder, index *rawIndex) ([]listedApp, error) {
	tok, err := dec.ReadToken()
	switch {
	case err != nil:
		return nil, fmt.Errorf("parse apps: %w", err)
	case tok.Kind() == 'n':
		return nil, fmt.Errorf(`%w: "apps" is null`, errNoAppsArray)
	case tok.Kind() != '[':
		return nil, fmt.Errorf(`parse apps: "apps" is %v, not an array`, tok.Kind())
	}
	list := []listedApp{}
	for i := 0; dec.PeekKind() != ']'; i++ {
		if i%yieldEvery == yieldEvery-1 {
			runtime.Gosched()
		}
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("parse apps: element %d: %w", i, err)
		}
		var item listedApp
		if index != nil {
			item.hash = maphash.Bytes(index.seed, raw)
			if id, ok := index.ids[item.hash]; ok {
				item.app.ID, item.unchanged = id, true
				list = append(list, item)
				continue
			}
		}
		var lean leanApp
		if err := jsonv1.Unmarshal(raw, &lean); err != nil {
			return nil, fmt.Errorf("parse apps: element %d: %w", i, err)
		}
		item.app = lean.app()
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
