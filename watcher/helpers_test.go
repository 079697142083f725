package watcher

import (
	"encoding/json"
	"net/netip"
	"strconv"
)

func jsonUnmarshal(body string, v any) error { return json.Unmarshal([]byte(body), v) }

func itoa(i int) string { return strconv.Itoa(i) }

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
