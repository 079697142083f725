// Package watcher keeps an immutable catalog snapshot in step with Marathon.
//
// A Watcher reads Marathon's REST API for the state and its SSE event
// stream for hints. Events mark app ids dirty, and dirty
// apps are refetched from REST, which is the truth. The one exception is a
// task's status update for an app already known at the same version and
// without health checks: the task is added or removed from the event alone
// (a tombstone set keeps a reordered late TASK_RUNNING from bringing back a
// dead task), which spares a REST request per task change. A storm of events
// is coalesced into a bounded number of requests and one snapshot per batch,
// and turns into one full resync when too many apps are dirty. A full
// resync (GET /v2/apps?embed=apps.tasks) happens at start-up after the
// event stream is attached, on every stream (re)connection, on a period,
// on demand, and after REST errors once Marathon answers again. Its body
// is read as a stream, without go-marathon: an app whose list element has
// the bytes or the fingerprint (what oak reads of it) it was last listed
// with is not decoded, and only apps that changed reach the catalog. When Marathon is unreachable the last snapshot is
// kept: an error never publishes an empty view.
//
// REST goes through go-marathon v0.7.1 with an *http.Client whose
// RoundTripper the watcher owns: it ties every request to Run's lifetime
// (the library has no Close) and gives each a deadline. The event stream is
// the watcher's own SSE client on /v2/events, one goroutine that ends with
// Run, decoding into go-marathon's event types: go-marathon's stream cannot
// be closed, delivers events out of order and hides disconnects. It stays
// with the master it reached and, with several masters, moves to one that
// answers once it has been down for Config.StreamFailover. Changed lets a
// consumer wait for the next snapshot instead of polling.
//
// A FileSource serves the same snapshots from a /v2/apps?embed=apps.tasks
// dump on disk, for offline use, and reloads it when it changes, applying
// the apps that changed as a full resync does.
//
// Both satisfy Source, which is what the CoreDNS plugin and the Nginx
// controller read.
package watcher
