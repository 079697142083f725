package catalog

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// defaultLabelPrefix is the label prefix used when none is configured.
const defaultLabelPrefix = "OAK_"

// Label suffixes; the full label key is the schema prefix plus one of these.
const (
	labelEnv   = "ENV"
	labelNames = "NAMES"
	labelIP    = "IP"
	labelHTTP  = "HTTP"
	labelPorts = "PORTS"
)

// Limits on untrusted label values. They bound the work one app can cause
// and keep log lines and metrics labels readable.
const (
	maxLabelValue = 8192 // bytes in one label value
	maxListItems  = 256  // items in one comma-separated label
	maxErrorValue = 256  // bytes of the offending value kept in a LabelError
	maxNameLen    = 253  // RFC 1123 name length without the trailing dot
	maxLabelLen   = 63   // RFC 1123 label length
)

// LabelSchema names the Marathon labels oak reads. The zero value uses the
// prefix "OAK_".
type LabelSchema struct {
	// Prefix is put in front of ENV, NAMES, IP, HTTP and PORTS, e.g. "OAK_".
	Prefix string
}

// key returns the full label key for a suffix such as "NAMES".
func (s LabelSchema) key(suffix string) string {
	if s.Prefix == "" {
		return defaultLabelPrefix + suffix
	}
	return s.Prefix + suffix
}

// AppLabels is the validated content of one app's oak labels.
type AppLabels struct {
	Env   string     // "" when the ENV label is absent (the policy's default env applies)
	Names []string   // lower-cased, no trailing dot, RFC 1123, deduped and sorted
	IP    netip.Addr // the IP label; the zero Addr when unset
	HTTP  []VHost    // HTTP label entries, deduped and sorted by host then port
	Ports []Port     // PORTS label entries, sorted; nil when the label is absent
}

// VHost is one virtual host published through Nginx.
type VHost struct {
	Host string // validated DNS name
	Port uint16 // 0 when unset (renderers use 80)
}

// Port is one named service port of an app.
type Port struct {
	Name   string // lower-case RFC 1123 label
	Number uint16 // 1..65535
	Proto  string // "tcp" or "udp"
}

// LabelError says which label of an app is invalid and why.
type LabelError struct {
	Label  string // full label key, e.g. "OAK_NAMES"
	Value  string // the offending value, truncated to a few hundred bytes
	Reason string // what is wrong, naming the offending item
}

// Error implements error.
func (e *LabelError) Error() string {
	return fmt.Sprintf("label %s=%q: %s", e.Label, e.Value, e.Reason)
}

// Rejection records an app left out of a snapshot because its labels did
// not validate (the LabelError's fields plus the app id). An app without an
// id is rejected with Label "id".
type Rejection struct {
	AppID  string
	Label  string
	Value  string
	Reason string
	Addr   netip.Addr // the fixed address the app declares, when it parses (see Snapshot.FixedAddrs)
}

// Parse validates the oak labels of one app. Labels without the schema's
// prefix, and prefixed labels oak does not know, are ignored. The first
// invalid label is reported as a *LabelError.
//
// List labels (NAMES, HTTP, PORTS) are comma-separated; spaces around items
// are trimmed, and an empty item (as in "a,,b", "a," or an all-blank value)
// is an error, because it is almost always a typo that would otherwise hide
// silently. A present but empty ENV or IP label is an error too.
func (s LabelSchema) Parse(labels map[string]string) (AppLabels, error) {
	var out AppLabels
	if v, ok := labels[s.key(labelEnv)]; ok {
		env, err := parseEnvLabel(v)
		if err != nil {
			return AppLabels{}, s.labelError(labelEnv, v, err)
		}
		out.Env = env
	}
	if v, ok := labels[s.key(labelNames)]; ok {
		names, err := parseList(v, parseName)
		if err != nil {
			return AppLabels{}, s.labelError(labelNames, v, err)
		}
		slices.Sort(names)
		out.Names = slices.Compact(names)
	}
	if v, ok := labels[s.key(labelIP)]; ok {
		ip, err := parseIPLabel(v)
		if err != nil {
			return AppLabels{}, s.labelError(labelIP, v, err)
		}
		out.IP = ip
	}
	if v, ok := labels[s.key(labelHTTP)]; ok {
		hosts, err := parseList(v, parseVHost)
		if err != nil {
			return AppLabels{}, s.labelError(labelHTTP, v, err)
		}
		slices.SortFunc(hosts, compareVHost)
		out.HTTP = slices.Compact(hosts)
	}
	if v, ok := labels[s.key(labelPorts)]; ok {
		ports, err := parseList(v, parsePort)
		if err != nil {
			return AppLabels{}, s.labelError(labelPorts, v, err)
		}
		slices.SortFunc(ports, comparePort)
		out.Ports = slices.Compact(ports)
	}
	return out, nil
}

func (s LabelSchema) labelError(suffix, value string, err error) *LabelError {
	if len(value) > maxErrorValue {
		value = value[:maxErrorValue] + "..."
	}
	return &LabelError{Label: s.key(suffix), Value: value, Reason: err.Error()}
}

// parseList splits a comma-separated value and parses every trimmed item.
func parseList[T any](value string, parse func(string) (T, error)) ([]T, error) {
	if len(value) > maxLabelValue {
		return nil, fmt.Errorf("value longer than %d bytes", maxLabelValue)
	}
	items := strings.Split(value, ",")
	if len(items) > maxListItems {
		return nil, fmt.Errorf("more than %d items", maxListItems)
	}
	out := make([]T, 0, len(items))
	for i, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("item %d is empty", i+1)
		}
		v, err := parse(item)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func parseEnvLabel(value string) (string, error) {
	env := strings.TrimSpace(value)
	if err := ValidEnvName(env); err != nil {
		return "", err
	}
	return env, nil
}

// ValidEnvName reports whether s can name an environment: 1 to 63
// characters of [a-z0-9-], starting and ending with a letter or digit.
// Env names appear in zones, metrics and Nginx configs, so the charset is
// deliberately narrow and upper case is not folded.
func ValidEnvName(s string) error {
	if s == "" {
		return fmt.Errorf("env name is empty")
	}
	if len(s) > maxLabelLen {
		return fmt.Errorf("env name %.70q is longer than %d characters", s, maxLabelLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return fmt.Errorf("env name %q must match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", s)
		}
	}
	return nil
}

// parseName validates a DNS name by RFC 1123 and returns it lower-cased
// without its trailing dot: labels of 1 to 63 characters from [a-z0-9-],
// not starting or ending with '-', at most 253 characters in all. Wildcards,
// underscores, spaces and anything else that could change a zone or an
// Nginx config are rejected.
func parseName(s string) (string, error) {
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return "", fmt.Errorf("name %q is empty", s)
	}
	if len(name) > maxNameLen {
		return "", fmt.Errorf("name %.70q... is longer than %d characters", s, maxNameLen)
	}
	labelStart := 0
	upper := false
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			label := name[labelStart:i]
			switch {
			case label == "":
				return "", fmt.Errorf("name %q has an empty label", s)
			case len(label) > maxLabelLen:
				return "", fmt.Errorf("name %q has a label longer than %d characters", s, maxLabelLen)
			case label[0] == '-' || label[len(label)-1] == '-':
				return "", fmt.Errorf("name %q has a label starting or ending with '-'", s)
			}
			labelStart = i + 1
			continue
		}
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c >= 'A' && c <= 'Z':
			upper = true
		default:
			return "", fmt.Errorf("name %q contains %q; only [a-z0-9-.] are allowed", s, rune(c))
		}
	}
	if upper {
		name = strings.ToLower(name)
	}
	return name, nil
}

func parseIPLabel(value string) (netip.Addr, error) {
	return parseAddr(strings.TrimSpace(value))
}

// parseAddr parses an IP address a backend or client may have: no zone, not
// unspecified, not multicast. IPv4-mapped IPv6 addresses are unmapped so that
// one host has one key everywhere.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	switch {
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("IP %q has a zone", s)
	case a.IsUnspecified():
		return netip.Addr{}, fmt.Errorf("IP %q is unspecified", s)
	case a.IsMulticast():
		return netip.Addr{}, fmt.Errorf("IP %q is multicast", s)
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("IP %q is not a unicast address", s)
	}
	return a, nil
}

// parseVHost parses host[:port]. IPv6 literals are not hosts.
func parseVHost(item string) (VHost, error) {
	host, portText, hasPort := strings.Cut(item, ":")
	name, err := parseName(host)
	if err != nil {
		return VHost{}, err
	}
	var port uint16
	if hasPort {
		if port, err = parsePortNumber(portText); err != nil {
			return VHost{}, err
		}
	}
	return VHost{Host: name, Port: port}, nil
}

// parsePortNumber accepts 1 to 5 decimal digits with a value in 1..65535.
func parsePortNumber(s string) (uint16, error) {
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("port %q is not a number in 1..65535", s)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("port %q is not a number in 1..65535", s)
		}
		n = n*10 + int(s[i]-'0')
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number in 1..65535", s)
	}
	return uint16(n), nil
}

// parsePort parses name:port[/proto]; proto defaults to tcp.
func parsePort(item string) (Port, error) {
	name, rest, ok := strings.Cut(item, ":")
	if !ok {
		return Port{}, fmt.Errorf("port %q is not name:port[/proto]", item)
	}
	portName, err := parsePortName(name)
	if err != nil {
		return Port{}, err
	}
	numText, proto, hasProto := strings.Cut(rest, "/")
	num, err := parsePortNumber(numText)
	if err != nil {
		return Port{}, err
	}
	if !hasProto {
		proto = "tcp"
	}
	proto, err = parseProto(proto)
	if err != nil {
		return Port{}, err
	}
	return Port{Name: portName, Number: num, Proto: proto}, nil
}

// parsePortName accepts one RFC 1123 label (it becomes the _name of an SRV
// owner name), lower-cased.
func parsePortName(s string) (string, error) {
	if s == "" || strings.Contains(s, ".") {
		return "", fmt.Errorf("port name %q must be one DNS label", s)
	}
	name, err := parseName(s)
	if err != nil {
		return "", fmt.Errorf("port name %q must be one DNS label", s)
	}
	return name, nil
}

func parseProto(s string) (string, error) {
	switch s {
	case "tcp", "TCP":
		return "tcp", nil
	case "udp", "UDP":
		return "udp", nil
	}
	return "", fmt.Errorf("protocol %q is not tcp or udp", s)
}

func compareVHost(a, b VHost) int {
	return cmp.Or(strings.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port))
}

func comparePort(a, b Port) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Proto, b.Proto), cmp.Compare(a.Number, b.Number))
}
