package ipam

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestTokenSources(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if _, err := TokenFromFile(path); err == nil {
		t.Fatal("a missing token file was accepted")
	}
	os.WriteFile(path, []byte("  \n"), 0o600)
	if _, err := TokenFromFile(path); err == nil {
		t.Fatal("an empty token file was accepted")
	}
	os.WriteFile(path, []byte("first\n"), 0o600)
	src, err := TokenFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := src(); tok != "first" {
		t.Fatalf("token %q", tok)
	}
	os.WriteFile(path, []byte("second"), 0o600) // rotated: no restart needed
	if tok, _ := src(); tok != "second" {
		t.Fatalf("after rotation: %q", tok)
	}

	t.Setenv("OAK_IPAM_TEST_TOKEN_ENV", "")
	if _, err := TokenFromEnv("OAK_IPAM_TEST_TOKEN_ENV"); err == nil {
		t.Fatal("an empty variable was accepted")
	}
	t.Setenv("OAK_IPAM_TEST_TOKEN_ENV", "from-env")
	env, err := TokenFromEnv("OAK_IPAM_TEST_TOKEN_ENV")
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := env(); tok != "from-env" {
		t.Fatalf("token %q", tok)
	}
}

func TestAuthorize(t *testing.T) {
	src := func() (string, error) { return "s3cret", nil }
	for _, tc := range []struct {
		header string
		ok     bool
	}{
		{"Bearer s3cret", true},
		{"bearer s3cret", true},
		{"Bearer  s3cret ", true},
		{"Bearer s3cret2", false},
		{"Bearer s3cre", false},
		{"Bearer", false},
		{"s3cret", false},
		{"Basic s3cret", false},
		{"", false},
	} {
		r, _ := http.NewRequest("POST", "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		err := authorize(r, src)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errUnauthorized)) {
			t.Errorf("Authorization %q: %v, want ok=%v", tc.header, err, tc.ok)
		}
	}
	r, _ := http.NewRequest("POST", "/", nil)
	r.Header.Set("Authorization", "Bearer x")
	failing := func() (string, error) { return "", errors.New("gone") }
	if err := authorize(r, failing); err == nil || errors.Is(err, errUnauthorized) {
		t.Errorf("an unreadable token is not a server error: %v", err)
	}
}
