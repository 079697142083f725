package marathonsim

import (
	"fmt"
	"strings"
)

// selector is a parsed Marathon label selector (GET /v2/apps?label=):
// comma-separated terms "key", "key==value", "key!=value",
// "key in (a,b)" and "key notin (a,b)", all of which must hold.
type selector []labelTerm

type labelTerm struct {
	key    string
	op     string // "exists", "==", "!=", "in", "notin"
	values []string
}

func parseSelector(s string) (selector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var terms []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				terms = append(terms, s[start:i])
				start = i + 1
			}
		}
	}
	terms = append(terms, s[start:])
	var sel selector
	for _, raw := range terms {
		t := strings.TrimSpace(raw)
		switch {
		case strings.Contains(t, "=="):
			k, v, _ := strings.Cut(t, "==")
			sel = append(sel, labelTerm{strings.TrimSpace(k), "==", []string{strings.TrimSpace(v)}})
		case strings.Contains(t, "!="):
			k, v, _ := strings.Cut(t, "!=")
			sel = append(sel, labelTerm{strings.TrimSpace(k), "!=", []string{strings.TrimSpace(v)}})
		case strings.Contains(t, " notin "), strings.Contains(t, " in "):
			op := "in"
			if strings.Contains(t, " notin ") {
				op = "notin"
			}
			k, rest, _ := strings.Cut(t, " "+op+" ")
			rest = strings.TrimSpace(rest)
			if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
				return nil, fmt.Errorf("%q: want %s (a,b)", t, op)
			}
			var values []string
			for _, v := range strings.Split(rest[1:len(rest)-1], ",") {
				values = append(values, strings.TrimSpace(v))
			}
			sel = append(sel, labelTerm{strings.TrimSpace(k), op, values})
		case t == "" || strings.ContainsAny(t, " =!()"):
			return nil, fmt.Errorf("%q: not a label selector term", t)
		default:
			sel = append(sel, labelTerm{t, "exists", nil})
		}
	}
	return sel, nil
}

func (sel selector) matches(labels map[string]string) bool {
	for _, t := range sel {
		v, ok := labels[t.key]
		switch t.op {
		case "exists":
			if !ok {
				return false
			}
		case "==":
			if !ok || v != t.values[0] {
				return false
			}
		case "!=":
			if ok && v == t.values[0] {
				return false
			}
		case "in", "notin":
			in := false
			for _, x := range t.values {
				in = in || (ok && v == x)
			}
			if in != (t.op == "in") {
				return false
			}
		}
	}
	return true
}
