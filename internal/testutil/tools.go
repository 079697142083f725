// Package testutil holds helpers shared by oak's tests.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// RequireTool returns the path of an external program a test needs. When the
// program is missing the test is skipped with a clear message on a developer
// machine, and fails when CI=true, so that CI never counts a skipped check as
// a pass.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required but not installed (CI=true): %v", name, err)
	}
	t.Skipf("skipping: %s is not installed (install it, e.g. via .ci/run, to run this test)", name)
	return ""
}
