package watcher

import (
	"bytes"
	"log/slog"
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
	var buf bytes.Buffer
	p := newProblemLog(slog.New(slog.NewTextHandler(&buf, nil)))
	for _, step := range steps {
		buf.Reset()
		p.report(catalog.Build(policy, step.apps))
		var lines []string
		if out := strings.TrimSpace(buf.String()); out != "" {
			lines = strings.Split(out, "\n")
		}
		if len(lines) != len(step.want) {
			t.Fatalf("%s: logged %d lines, want %d:\n%s", step.name, len(lines), len(step.want), buf.String())
		}
		for i, want := range step.want {
			if !strings.Contains(lines[i], want) {
				t.Errorf("%s: line %q lacks %q", step.name, lines[i], want)
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
