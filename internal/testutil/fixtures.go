package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// Fixture returns the path of a recorded payload under the repository's
// testdata/ folder (rel like "marathon/marathon-lb/marathon15_apps.json").
// It fails the test when the file is missing.
func Fixture(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("fixture %s: no go.mod above the test directory", rel)
		}
		dir = parent
	}
	path := filepath.Join(dir, "testdata", filepath.FromSlash(rel))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("fixture %s is missing from the repository's testdata/: %v", rel, err)
	}
	return path
}

// ReadFixture returns the content of Fixture(t, rel).
func ReadFixture(t testing.TB, rel string) []byte {
	t.Helper()
	body, err := os.ReadFile(Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return body
}
