package watcher

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/oakdns/oak/catalog"
)

// TestProblemLog: rejections and address conflicts are logged once when
// they appear or change and once when they clear, never again for an
// unchanged snapshot; values are cut and escaped.
func TestProblemLog(t *testing.T) {
	app := func(id, env, ip string) catalog.App {
		labels := map[string]string{"OAK_NAMES": strings.Trim(id, "/") + ".example.com", "OAK_IP": ip}
		if env != "" {
			labels["OAK_ENV"] = env
		}
		// A running task: fixed IPs claim their clients only then.
		return catalog.App{ID: id, Labels: labels, Tasks: []catalog.Task{{ID: id + ".1", State: "TASK_RUNNING", Host: "192.0.2.1"}}}
	}
	long := strings.Repeat("x", 1000)
	steps := []struct {
		name string
		apps []catalog.App
		want []string // substrings, one per line logged, in order
	}{
		{"first view", []catalog.App{
			app("/good", "", "10.0.0.1"),
			app("/bad", "", "not-an-ip\nlevel=ERROR msg=forged"),
			app("/x", "feature-x", "10.0.0.9"), app("/y", "feature-y", "10.0.0.9"),
		}, []string{
			`level=WARN msg="marathon app rejected: its labels do not validate" app=/bad label=OAK_IP value="not-an-ip\nlevel=ERROR msg=forged"`,
			`level=WARN msg="address claimed by apps of several envs; its clients get the default env" addr=10.0.0.9 envs=feature-x,feature-y apps=/x,/y`,
		}},
		{"unchanged", []catalog.App{
			app("/good", "", "10.0.0.1"),
			app("/bad", "", "not-an-ip\nlevel=ERROR msg=forged"),
			app("/x", "feature-x", "10.0.0.9"), app("/y", "feature-y", "10.0.0.9"),
		}, nil},
		{"a task change elsewhere", []catalog.App{
			app("/good", "", "10.0.0.3"),
			app("/bad", "", "not-an-ip\nlevel=ERROR msg=forged"),
			app("/x", "feature-x", "10.0.0.9"), app("/y", "feature-y", "10.0.0.9"),
		}, nil},
		{"changed value, long", []catalog.App{
			app("/good", "", "10.0.0.1"),
			app("/bad", "", long),
			app("/x", "feature-x", "10.0.0.9"), app("/y", "feature-y", "10.0.0.9"),
		}, []string{`app=/bad label=OAK_IP value=` + strings.Repeat("x", maxLoggedValue) + `... reason=`}},
		{"cleared", []catalog.App{
			app("/good", "", "10.0.0.1"),
			app("/bad", "", "10.0.0.2"),
			app("/x", "feature-x", "10.0.0.9"),
		}, []string{
			`level=INFO msg="marathon app no longer rejected" app=/bad`,
			`level=INFO msg="address conflict cleared" addr=10.0.0.9`,
		}},
	}
	policy := testPolicy(t)
	for _, derived := range []bool{false, true} {
		// Each step's snapshot built anew, then Applied to the last one as
		// the watcher does, where an Apply that leaves the problems alone
		// is told by ProblemsChanged.
		var buf bytes.Buffer
		p := newProblemLog(slog.New(slog.NewTextHandler(&buf, nil)))
		var last *catalog.Snapshot
		for _, step := range steps {
			buf.Reset()
			next := catalog.Build(policy, step.apps)
			if derived && last != nil {
				var gone []string
				for _, id := range []string{"/good", "/bad", "/x", "/y"} {
					if !slices.ContainsFunc(step.apps, func(a catalog.App) bool { return a.ID == id }) {
						gone = append(gone, id)
					}
				}
				next = last.Apply(step.apps, gone)
			}
			last = next
			p.report(next)
			var lines []string
			if out := strings.TrimSpace(buf.String()); out != "" {
				lines = strings.Split(out, "\n")
			}
			if len(lines) != len(step.want) {
				t.Fatalf("%s (derived %v): logged %d lines, want %d:\n%s", step.name, derived, len(lines), len(step.want), buf.String())
			}
			for i, want := range step.want {
				if !strings.Contains(lines[i], want) {
					t.Errorf("%s (derived %v): line %q lacks %q", step.name, derived, lines[i], want)
				}
			}
		}
	}
}

// TestProblemLogBounded: a snapshot full of bad apps logs maxProblemLines
// of them and one line for the rest.
func TestProblemLogBounded(t *testing.T) {
	var apps []catalog.App
	for i := range maxProblemLines + 5 {
		apps = append(apps, catalog.App{ID: "/bad" + itoa(i), Labels: map[string]string{"OAK_IP": "bad"}})
	}
	var buf bytes.Buffer
	newProblemLog(slog.New(slog.NewTextHandler(&buf, nil))).report(catalog.Build(testPolicy(t), apps))
	if got := strings.Count(buf.String(), "\n"); got != maxProblemLines+1 || !strings.Contains(buf.String(), "not_logged=5") {
		t.Errorf("%d lines:\n%s", got, buf.String())
	}
}

// BenchmarkProblemReport: what reporting problems costs per published
// snapshot of a 10,000-app cluster with 1,000 rejected apps, when the
// snapshot is a task change of an accepted app (as under churn).
func BenchmarkProblemReport(b *testing.B) {
	policy := testPolicy(b)
	apps := make([]catalog.App, 10000)
	for i := range apps {
		names := fmt.Sprintf("app%d.example.com", i)
		if i%10 == 0 {
			names = fmt.Sprintf("bad_%d.example.com", i)
		}
		apps[i] = catalog.App{ID: fmt.Sprintf("/app%d", i), Labels: map[string]string{"OAK_NAMES": names},
			Tasks: []catalog.Task{{ID: fmt.Sprintf("app%d.1", i), State: "TASK_RUNNING", Host: "192.0.2.1", IPs: []string{"10.1.0.1"}}}}
	}
	p := newProblemLog(slog.New(slog.DiscardHandler))
	snap := catalog.Build(policy, apps)
	if n := len(snap.Rejected()); n != 1000 {
		b.Fatalf("%d rejected, want 1000", n)
	}
	p.report(snap)
	// The snapshots are made beforehand: only the report is measured.
	next := make([]*catalog.Snapshot, 64)
	for i := range next {
		changed := apps[10*i+1] // accepted
		changed.Tasks = []catalog.Task{{ID: fmt.Sprintf("app%d.2", 10*i+1), State: "TASK_RUNNING", Host: "192.0.2.1", IPs: []string{"10.2.0.1"}}}
		snap = snap.Apply([]catalog.App{changed}, nil)
		next[i] = snap
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.report(next[i%len(next)])
	}
}
