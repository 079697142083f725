package marathon

// Ready implements the ready.Readiness interface: ready once the source has
// published its first full snapshot. It stays ready when Marathon becomes
// unreachable later, because the plugin keeps answering from the last
// snapshot (see the sync_age_seconds metric).
func (m *Marathon) Ready() bool { return m.source.Ready() }
