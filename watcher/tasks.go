package watcher

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"slices"

	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/oakdns/oak/catalog"
)

// Task updates applied from status_update_event content (docs/marathon-api.md §3).
// A task change of an app the watcher already knows, at the version it
// knows, is applied to the known app without a REST round trip. Everything
// else (an unknown app, another version, an app with health checks, an event
// that does not parse) falls back to a refetch of the app, as for every other
// event. Full resyncs stay the truth and replace the known apps.

// maxTaskIDLen bounds task ids taken from events; Marathon's are far shorter.
const maxTaskIDLen = 512

// maxTaskUpdates bounds the task updates waiting for the sync loop; past it,
// further tasks only mark their app dirty (a refetch covers them).
const maxTaskUpdates = 1 << 14

// maxTombstones bounds the remembered dead task ids; the oldest are
// forgotten first. A forgotten id costs at most one stale task until the
// next sync of its app.
const maxTombstones = 1 << 16

// taskChange is what a status update does to a task. The order is the
// order of a task's life, which only moves forward.
type taskChange uint8

const (
	taskInactive taskChange = iota // staging or starting: not live yet, nothing to do
	taskUp                         // running: upsert the task
	taskDown                       // terminal, killing or unreachable: remove it for good
)

// changeOf maps the task states that may be applied from an event.
// Unlisted states (TASK_UNKNOWN, anything new) fall back to a refetch.
func changeOf(state string) (taskChange, bool) {
	switch state {
	case "TASK_STAGING", "TASK_STARTING":
		return taskInactive, true
	case "TASK_RUNNING":
		return taskUp, true
	case "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_KILLING", "TASK_LOST", "TASK_ERROR",
		"TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNREACHABLE":
		return taskDown, true
	}
	return taskInactive, false
}

// taskUpdate is a status_update_event parsed at the edge: every field has
// been checked, and it is never modified once made.
type taskUpdate struct {
	app     string // absolute app id (parseAppID)
	task    string
	state   string
	change  taskChange
	version string
	host    string
	ips     []string
	ports   []int
}

// statusUpdate is the part of a status_update_event the watcher reads.
// Under churn nearly every event is one, so it is decoded into this lean
// type (encoding/json's semantics, on the faster engine the list decode
// uses) rather than go-marathon's: FuzzStatusUpdate checks that whatever
// go-marathon decodes gives the same update here. Fields the watcher does
// not read are not checked.
type statusUpdate struct {
	AppID       string       `json:"appId"`
	TaskID      string       `json:"taskId"`
	TaskStatus  string       `json:"taskStatus"`
	Version     string       `json:"version"`
	Host        string       `json:"host"`
	Ports       []int        `json:"ports"`
	IPAddresses []*ipAddress `json:"ipAddresses"`
}

// ipAddress is one element of a status update's ipAddresses.
type ipAddress struct {
	IPAddress string `json:"ipAddress"`
}

// decodeStatusUpdate decodes the body of a status_update_event: the shape
// Marathon writes by scanStatusUpdate, anything else by jsonv1.
func decodeStatusUpdate(data []byte) (statusUpdate, error) {
	if e, ok := scanStatusUpdate(data); ok {
		return e, nil
	}
	var e statusUpdate
	if err := jsonv1.Unmarshal(data, &e); err != nil {
		return statusUpdate{}, fmt.Errorf("%s: %w", statusUpdateEvent, err)
	}
	return e, nil
}

// taskUpdate returns the task update a status update carries, and false
// when it does not parse cleanly (the stream then refetches its app).
func (e *statusUpdate) taskUpdate() (taskUpdate, bool) {
	app, ok := parseAppID(e.AppID)
	if !ok || e.TaskID == "" || len(e.TaskID) > maxTaskIDLen || e.Version == "" {
		return taskUpdate{}, false
	}
	change, ok := changeOf(e.TaskStatus)
	if !ok {
		return taskUpdate{}, false
	}
	u := taskUpdate{app: app, task: e.TaskID, state: e.TaskStatus, change: change, version: e.Version}
	if change != taskUp {
		return u, true
	}
	if e.Host == "" {
		return taskUpdate{}, false
	}
	for _, ip := range e.IPAddresses {
		if ip == nil {
			return taskUpdate{}, false
		}
		if _, err := netip.ParseAddr(ip.IPAddress); err != nil {
			return taskUpdate{}, false
		}
		u.ips = append(u.ips, ip.IPAddress)
	}
	for _, p := range e.Ports {
		if p < 0 || p > 65535 {
			return taskUpdate{}, false
		}
	}
	u.host = e.Host
	u.ports = slices.Clone(e.Ports)
	return u, true
}

// tombstones is a bounded set of dead task ids, forgotten oldest first.
// Task ids are never reused, and go-marathon delivers events out of order,
// so a RUNNING that arrives after its task's end must not bring it back.
//
// An id is kept as a 64-bit hash (with a per-set seed), not as its string:
// under churn the set fills, and 65,536 ids as strings were 7.5 MiB of heap,
// 4.5 MiB of it scanned by the collector on the core that serves queries;
// hashes are 1.6 MiB that it does not scan (TestTombstonesHeap). Two ids of
// one hash would cost a live task's RUNNING until the next sync of its app,
// at odds of ~2^-48 per event.
type tombstones struct {
	seed  maphash.Seed
	ids   map[uint64]struct{}
	order []uint64 // ring of ids in insertion order
	next  int      // ring slot to overwrite when full
	limit int
}

func newTombstones(limit int) *tombstones {
	return &tombstones{seed: maphash.MakeSeed(), ids: make(map[uint64]struct{}), limit: limit}
}

func (t *tombstones) add(id string) {
	h := maphash.String(t.seed, id)
	if _, dead := t.ids[h]; dead {
		return
	}
	if len(t.order) < t.limit {
		t.order = append(t.order, h)
	} else {
		delete(t.ids, t.order[t.next])
		t.order[t.next] = h
		t.next = (t.next + 1) % t.limit
	}
	t.ids[h] = struct{}{}
}

func (t *tombstones) has(id string) bool {
	_, dead := t.ids[maphash.String(t.seed, id)]
	return dead
}

// knownApps is the last known definition of every app, from REST syncs and
// the task updates applied since, packed (packedApp). It belongs to the
// sync loop alone; readers only ever see the immutable snapshots built
// from it.
type knownApps struct {
	apps    map[string]packedApp
	dead    *tombstones
	prints  *printIndex    // fingerprints of the list elements the apps are known from
	listed  map[string]int // scratch of resync: app id -> its last element
	scratch []byte         // scratch of resync: a listed app's packing
	chunk   int            // the most apps one Apply of a sync takes (applyChunk)
}

func newKnownApps() *knownApps {
	return &knownApps{apps: make(map[string]packedApp), dead: newTombstones(maxTombstones), prints: newPrintIndex(), listed: map[string]int{}, chunk: applyChunk}
}

// get returns the known app of id.
func (k *knownApps) get(id string) (catalog.App, bool) {
	p, ok := k.apps[id]
	if !ok {
		return catalog.App{}, false
	}
	return p.unpack()
}

// commit records the result of a published batch: upserts (refetched or
// listed) and removes are no longer known from their list elements, while
// retasked apps, whose tasks alone events changed, keep theirs with the
// new tasks. pace is stepped at every app (a resync's commit may pack a
// thousand apps); a nil pace never pauses.
func (k *knownApps) commit(upserts, retasked []catalog.App, removes []string, pace *pacer) {
	// The keys are parts of the packings (packedApp), so that an app costs
	// the watcher one object.
	for i := range upserts {
		pace.step()
		p := packApp(&upserts[i])
		k.apps[p.id()] = p
		k.prints.forget(upserts[i].ID)
	}
	for i := range retasked {
		pace.step()
		p := packApp(&retasked[i])
		k.apps[p.id()] = p
		k.prints.retask(p.id(), &retasked[i])
	}
	for _, id := range removes {
		pace.step()
		delete(k.apps, id)
		k.prints.forget(id)
	}
}

// resync compares a full list with the known apps: it returns the apps
// that differ (the last element of each id, as catalog.Build keeps it) and
// the ids no longer listed, and, with commit, makes the list the known
// state. An element with the fingerprint the app was last listed with is
// the same without a decode, and equal apps are not passed on, so the
// catalog parses the labels of changed apps only.
func (k *knownApps) resync(list []listedApp) (upserts []catalog.App, removes []string, commit func()) {
	clear(k.listed)
	pace := newPacer(mapStride)
	for i := range list {
		pace.step()
		k.listed[list[i].id] = i
	}
	for i := range list {
		pace.step()
		item := &list[i]
		if k.listed[item.id] != i || item.app == nil {
			continue
		}
		if old, ok := k.apps[item.id]; ok {
			k.scratch = appendPacked(k.scratch[:0], item.app)
			if string(old) == string(k.scratch) {
				continue // equal packings hold the same data
			}
		}
		upserts = append(upserts, *item.app)
	}
	for id := range k.apps {
		pace.step()
		if _, ok := k.listed[id]; !ok {
			removes = append(removes, id)
		}
	}
	return upserts, removes, func() {
		// The commit runs later, after the Apply: slices of its own.
		perApp := newPacer(elementStride)
		k.commit(upserts, nil, removes, &perApp)
		pace := newPacer(mapStride)
		for _, i := range k.listed {
			pace.step()
			if item := &list[i]; !item.sameRaw {
				if p, ok := k.apps[item.id]; ok {
					item.id = p.id() // the id the watcher keeps
				}
				k.prints.record(item)
			}
		}
		clear(k.listed) // its keys would keep the list's ids alive till the next resync
	}
}

// follow returns the snapshot that follows a full list, and makes the list
// the known state: a build of the list when there is no current snapshot
// (the list must then be decoded whole), else current with the apps that
// changed applied, or nil when none did.
func (k *knownApps) follow(current *catalog.Snapshot, policy *catalog.Policy, list []listedApp) *catalog.Snapshot {
	if current == nil {
		clear(k.apps)
		k.prints.clear()
		_, _, commit := k.resync(list)
		commit()
		return catalog.Build(policy, appsOfList(list))
	}
	upserts, removes, commit := k.resync(list)
	defer commit()
	if len(upserts) == 0 && len(removes) == 0 {
		return nil
	}
	pace := newPacer(elementStride)
	return k.apply(current, upserts, removes, &pace)
}

// applyChunk is the most apps one Apply of a sync takes. Under churn a
// resync's list can differ from the known apps in hundreds of apps, and
// the task updates that come during a resync make a batch of hundreds
// after it; one Apply of them all would hold the single core for
// milliseconds while queries wait (BENCHMARKS.md, the seventh session).
// An app costs ~10-15 µs to apply (BenchmarkTaskBatch), so a chunk fits
// in the pacer's slice.
const applyChunk = 16

// apply returns current.Apply(upserts, removes), made in chunks of at
// most k.chunk apps with pace stepped between them. Only the last
// snapshot leaves: the others are never published. Each app is in one
// chunk, and Apply's result follows the final apps, not the steps taken
// to them (TestApplyInChunks).
func (k *knownApps) apply(current *catalog.Snapshot, upserts []catalog.App, removes []string, pace *pacer) *catalog.Snapshot {
	for len(upserts)+len(removes) > k.chunk {
		n := min(len(upserts), k.chunk)
		r := min(len(removes), k.chunk-n)
		current = current.Apply(upserts[:n], removes[:r])
		upserts, removes = upserts[n:], removes[r:]
		pace.step()
	}
	return current.Apply(upserts, removes)
}

// bury remembers the dead tasks of updates that are otherwise dropped (a
// full resync covers them).
func (k *knownApps) bury(updates []taskUpdate) {
	for _, u := range updates {
		if u.change == taskDown {
			k.dead.add(u.task)
		}
	}
}

// plan sorts a batch: dirty apps and the apps of updates that cannot be
// applied are refetched; the other updates give the changed apps to
// publish as they are. Updates of refetched apps are dropped, since the
// refetch is newer than they are, but every dead task is remembered. Nothing
// known changes until commit.
func (k *knownApps) plan(dirty []string, updates []taskUpdate) (refetch []string, changed []catalog.App) {
	refetch = dirty
	refetching := make(map[string]bool, len(dirty))
	for _, id := range dirty {
		refetching[id] = true
	}
	k.bury(updates)
	// The apps of the updates, each unpacked once, side by side in one
	// slice: a map of App values (128 bytes each) grew by copying them.
	apps := make([]catalog.App, 0, len(updates))
	index := make(map[string]int, len(updates)) // app id -> its index in apps
	for _, u := range updates {
		if refetching[u.app] {
			continue
		}
		i, ok := index[u.app]
		if !ok {
			var app catalog.App
			if app, ok = k.get(u.app); ok {
				i = len(apps)
				index[u.app] = i
				apps = append(apps, app)
			}
		}
		if !ok || !applicable(&apps[i], u) {
			refetching[u.app] = true
			refetch = append(refetch, u.app)
		}
	}
	edited := make([]bool, len(apps)) // the app's tasks are a copy of its own
	for _, u := range updates {
		if refetching[u.app] || u.change == taskInactive {
			continue
		}
		i := index[u.app]
		if tasks, did := k.applyTask(apps[i].Tasks, u, !edited[i]); did {
			apps[i].Tasks, edited[i] = tasks, true
		}
	}
	changed = apps[:0] // in place: an app moves only towards the front
	for i := range apps {
		if edited[i] && !refetching[apps[i].ID] {
			changed = append(changed, apps[i])
		}
	}
	return refetch, changed
}

// applicable reports whether u can be applied to the known app without a
// refetch: the task runs the app's known configuration (its version is the
// app's version or its last configuration change, so the labels are the
// known ones), and, for a new running task, the app has no health checks
// (such a task is not live until its health results come, and health events
// refetch the app). Removing a dead task is always right.
func applicable(app *catalog.App, u taskUpdate) bool {
	known := u.version == app.Version || app.ConfigChange != "" && u.version == app.ConfigChange
	if !known {
		return false
	}
	return u.change != taskUp || app.HealthChecks == 0
}

// applyTask returns tasks with u applied, and whether that changed them. It
// copies the slice when fresh (the first change of this app in the batch),
// since the known app's slice is shared with published snapshots.
func (k *knownApps) applyTask(tasks []catalog.Task, u taskUpdate, fresh bool) ([]catalog.Task, bool) {
	i := slices.IndexFunc(tasks, func(t catalog.Task) bool { return t.ID == u.task })
	switch {
	case u.change == taskDown:
		if i < 0 {
			return tasks, false
		}
		if fresh {
			tasks = slices.Clone(tasks)
		}
		return slices.Delete(tasks, i, i+1), true
	case k.dead.has(u.task):
		return tasks, false
	}
	task := catalog.Task{ID: u.task}
	if i >= 0 {
		task = tasks[i]
	}
	task.Host, task.IPs, task.Ports, task.State = u.host, u.ips, u.ports, u.state
	if fresh {
		tasks = slices.Clone(tasks)
	}
	if i >= 0 {
		tasks[i] = task
	} else {
		tasks = append(tasks, task)
	}
	return tasks, true
}
