package main

import "testing"

func TestVerdict(t *testing.T) {
	tests := []struct {
		f    figure
		want string
	}{
		{figure{value: 0.998, aim: 1.0}, "BELOW GOAL"},
		{figure{value: 1.0, aim: 1.0}, "met"},
		{figure{value: 0.5}, "no goal"},
		{figure{value: 2.0, aim: 2.0, atMost: true}, "met"},
		{figure{value: 2.01, aim: 2.0, atMost: true}, "ABOVE GOAL"},
		{figure{value: 0.4, aim: 2.0, atMost: true}, "met"},
	}
	for _, tc := range tests {
		if got := verdict(tc.f); got != tc.want {
			t.Errorf("verdict(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}
