package ipam

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// TokenSource returns the bearer token that API mutations must carry. It is
// read from a file or the environment, never from a flag (which ps shows).
type TokenSource func() (string, error)

// TokenFromFile reads the token from path on every call, so a rotated file
// takes effect at once; it fails now if the file holds no token.
func TokenFromFile(path string) (TokenSource, error) {
	src := func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("token file %s is empty", path)
		}
		return tok, nil
	}
	if _, err := src(); err != nil {
		return nil, err
	}
	return src, nil
}

// TokenFromEnv takes the token from the environment variable name; it fails
// if the variable is empty.
func TokenFromEnv(name string) (TokenSource, error) {
	tok := strings.TrimSpace(os.Getenv(name))
	if tok == "" {
		return nil, fmt.Errorf("environment variable %s holds no token", name)
	}
	return func() (string, error) { return tok, nil }, nil
}

var errUnauthorized = errors.New("a valid bearer token is required (Authorization: Bearer <token>)")

// authorize compares r's bearer token with the source's in constant time
// (over digests, so the length does not leak either).
func authorize(r *http.Request, token TokenSource) error {
	if token == nil {
		return errors.New("the server has no API token configured")
	}
	want, err := token()
	if err != nil {
		return fmt.Errorf("the server cannot read its API token: %w", err)
	}
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return errUnauthorized
	}
	a, b := sha256.Sum256([]byte(strings.TrimSpace(got))), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return errUnauthorized
	}
	return nil
}
