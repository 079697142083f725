package ipam

import (
	"errors"
	"fmt"
	"strings"
)

// MaxAppIDLength bounds an app id; Marathon has no limit of its own, but
// ids end up in Mesos task ids, labels and logs.
const MaxAppIDLength = 256

// ParseAppID checks an app id against Marathon's rules and returns it in
// absolute form ("/team/app1"; "team/app1" is taken as absolute too). Each
// path segment is lower-case letters, digits, hyphens and dots, starts and
// ends with a letter or digit, and has no empty dot-separated label;
// relative segments ("." and "..") and a trailing slash are refused.
func ParseAppID(id string) (string, error) {
	if id == "" {
		return "", errors.New("app id is empty")
	}
	path := strings.TrimPrefix(id, "/")
	if path == "" {
		return "", errors.New("app id is the root group, not an app")
	}
	if len(path)+1 > MaxAppIDLength {
		return "", fmt.Errorf("app id is longer than %d characters", MaxAppIDLength)
	}
	for seg := range strings.SplitSeq(path, "/") {
		if err := checkSegment(seg); err != nil {
			return "", fmt.Errorf("app id %q: %w", id, err)
		}
	}
	return "/" + path, nil
}

func checkSegment(seg string) error {
	switch seg {
	case "":
		return errors.New("empty path segment (a double or trailing slash)")
	case ".", "..":
		return fmt.Errorf("relative segment %q", seg)
	}
	for label := range strings.SplitSeq(seg, ".") {
		if label == "" {
			return fmt.Errorf("segment %q has an empty dot-separated label", seg)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("segment %q starts or ends a label with a hyphen", seg)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("segment %q has %q; only a-z, 0-9, '-' and '.' are allowed", seg, r)
			}
		}
	}
	return nil
}
