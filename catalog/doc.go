// Package catalog is oak's shared model: it turns Marathon applications
// into an immutable Snapshot that answers the one question both the CoreDNS
// plugin and the Nginx controller ask — which backends serve name N for a
// client of env E — so that DNS and Nginx never disagree.
//
// # Labels
//
// Apps opt in with labels (prefix configurable, "OAK_" by default):
// OAK_ENV (the app's env; absent means the default env), OAK_NAMES
// (comma-separated DNS names), OAK_IP (the container's fixed IP), OAK_HTTP
// (comma-separated host[:port] virtual hosts) and OAK_PORTS
// (comma-separated name:port[/proto]). Values are untrusted: names must be
// RFC 1123 (no wildcards or underscores), IPs unicast without zone, ports
// 1..65535, protocols tcp or udp. Spaces around list items are trimmed and
// empty items are errors. An app with an invalid label is left out and
// reported as a Rejection; the others are unaffected. Policy.Check gives
// that decision for one app before Marathon has it (nginxctl's deploy
// refuses such an app). Apps without oak labels are kept: they are in the
// default env and identify their clients.
//
// # Backends
//
// A task is live when it is TASK_RUNNING and, if the app has health checks,
// it has at least one health check result and all of them are alive. An
// app's backends are its OAK_IP (while any task is live), else the
// ipAddresses of its live tasks, else the host of a live task when that is
// an IP. Apps of one env claiming the same name merge their backends.
//
// # Environments
//
// Every env falls back to a parent: the Parent of the first FallbackRule
// whose glob matches it, else the default env, which has no parent. An env
// serves a name only while it has a live backend for it; otherwise the
// next env of the chain is asked (Consul prepared-query semantics). EnvOf
// places a client by the app that claims its address (OAK_IP or a running
// task IP), then by the most specific CIDR rule, then in the default env;
// an address claimed by apps of two envs is a conflict and gets the
// default env.
//
// # Snapshots
//
// Build makes a snapshot; Apply derives the next one from a set of changed
// or removed apps at a cost proportional to the change: every index is
// split into a fixed number of small maps by a seeded hash of the key, and
// Apply copies only the maps it writes. Reads (Resolve, EnvOf, Reverse,
// HasSuffix) are a hash and a few map lookups and do not allocate.
package catalog
