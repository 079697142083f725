// Package watcher keeps an immutable catalog snapshot in step with Marathon.
//
// A Watcher talks to Marathon only through go-marathon v0.7.1: REST for the
// state, the SSE event stream for hints. Events mark app ids dirty, and dirty
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
// go-marathon v0.7.1 gets an *http.Client whose RoundTripper the watcher
// owns: it ties every connection to Run's lifetime (the library has no
// Close and never ends its event stream), gives REST calls a deadline
// without cutting the stream, and reports the stream's disconnects, which
// the library only logs. With several masters, a stream that stays down
// (go-marathon keeps it pinned to the master it first reached) makes the
// watcher replace its go-marathon client, whose stream goes to a master
// that answers (Config.StreamFailover). Changed lets a consumer wait for
// the next snapshot instead of polling.
//
// A FileSource serves the same snapshots from a /v2/apps?embed=apps.tasks
// dump on disk, for offline use, and reloads it when it changes, applying
// the apps that changed as a full resync does.
//
// Both satisfy Source, which is what the CoreDNS plugin and the Nginx
// controller read.
package watcher
