package watcher

import (
	"log/slog"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/oakdns/oak/catalog"
)

// maxLoggedValue bounds a label value in a log line: values are untrusted
// and may be long. The log handler escapes what is left.
const maxLoggedValue = 120

// maxProblemLines bounds the lines of one kind logged for one snapshot, so
// that a first sync of a cluster full of bad labels does not flood the log;
// the rest are counted in one line.
const maxProblemLines = 100

// problemLog tells operators why apps are left out and which addresses are
// claimed by several envs: each rejection and conflict is logged once when
// it appears or changes, and once when it clears, by comparing each
// published snapshot with the one before. It belongs to the goroutine that
// publishes.
type problemLog struct {
	log       *slog.Logger
	last      *catalog.Snapshot            // the snapshot last reported
	rejected  map[string]catalog.Rejection // by app id
	conflicts map[netip.Addr]conflict
}

// conflict is what is logged of a catalog.AddrConflict.
type conflict struct{ envs, apps string }

func newProblemLog(log *slog.Logger) *problemLog {
	return &problemLog{log: log, rejected: map[string]catalog.Rejection{}, conflicts: map[netip.Addr]conflict{}}
}

// report logs what changed between the last snapshot reported and s. Most
// snapshots (a batch of task changes) leave the problems as they were,
// which costs a pointer comparison to tell.
func (p *problemLog) report(s *catalog.Snapshot) {
	changed := s.ProblemsChanged(p.last)
	p.last = s
	if !changed {
		return
	}
	if s.Stats().Rejected > 0 || len(p.rejected) > 0 {
		p.reportRejected(s.Rejected())
	}
	p.reportConflicts(s.Conflicts())
}

func (p *problemLog) reportRejected(rejections []catalog.Rejection) {
	var lines lineBudget
	now := make(map[string]catalog.Rejection, len(rejections))
	for _, r := range rejections {
		now[r.AppID] = r
		if p.rejected[r.AppID] != r && lines.take() {
			p.log.Warn("marathon app rejected: its labels do not validate", "app", r.AppID, "label", r.Label, "value", cut(r.Value), "reason", r.Reason)
		}
	}
	for id := range p.rejected {
		if _, still := now[id]; !still && lines.take() {
			p.log.Info("marathon app no longer rejected", "app", id)
		}
	}
	lines.summary(p.log, "more rejected apps changed")
	p.rejected = now
}

func (p *problemLog) reportConflicts(conflicts []catalog.AddrConflict) {
	var lines lineBudget
	now := make(map[netip.Addr]conflict, len(conflicts))
	for _, c := range conflicts {
		logged := conflict{envs: strings.Join(c.Envs, ","), apps: strings.Join(c.Apps, ",")}
		now[c.Addr] = logged
		if p.conflicts[c.Addr] != logged && lines.take() {
			p.log.Warn("address claimed by apps of several envs; its clients get the default env", "addr", c.Addr, "envs", logged.envs, "apps", logged.apps)
		}
	}
	for addr := range p.conflicts {
		if _, still := now[addr]; !still && lines.take() {
			p.log.Info("address conflict cleared", "addr", addr)
		}
	}
	lines.summary(p.log, "more address conflicts changed")
	p.conflicts = now
}

// lineBudget counts the lines of one report past maxProblemLines.
type lineBudget struct{ used, over int }

func (b *lineBudget) take() bool {
	if b.used < maxProblemLines {
		b.used++
		return true
	}
	b.over++
	return false
}

func (b *lineBudget) summary(log *slog.Logger, msg string) {
	if b.over > 0 {
		log.Warn(msg, "not_logged", b.over)
	}
}

// cut shortens v to maxLoggedValue bytes on a character boundary.
func cut(v string) string {
	if len(v) <= maxLoggedValue {
		return v
	}
	n := maxLoggedValue
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n] + "..."
}
