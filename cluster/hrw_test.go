package cluster

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// TestAssignMovesFew checks the rendezvous property the cluster relies on:
// a join moves only the targets the new node wins (about T/(N+1)), a leave
// moves only the leaving node's targets, and the spread is even.
func TestAssignMovesFew(t *testing.T) {
	const T = 20000
	targets := names("router-", T)
	for _, N := range []int{1, 2, 3, 5, 10} {
		t.Run(fmt.Sprintf("nodes=%d", N), func(t *testing.T) {
			nodes := names("node-", N)
			grown := append(slices.Clone(nodes), "node-new")
			count := map[string]int{}
			moved := 0
			for _, tg := range targets {
				before, after := Assign(tg, nodes), Assign(tg, grown)
				count[before]++
				if before != after {
					moved++
					if after != "node-new" {
						t.Fatalf("%s moved from %s to %s, not to the new node", tg, before, after)
					}
				}
			}
			want := float64(T) / float64(N+1)
			if d := float64(moved)/want - 1; d < -0.05 || d > 0.05 {
				t.Fatalf("join moved %d targets, want %.0f ± 5%%", moved, want)
			}
			for n, c := range count {
				if d := float64(c)/(float64(T)/float64(N)) - 1; d < -0.05 || d > 0.05 {
					t.Fatalf("%s got %d targets, want %d ± 5%%", n, c, T/N)
				}
			}
			if N == 1 {
				return
			}
			shrunk := nodes[1:]
			for _, tg := range targets {
				before, after := Assign(tg, nodes), Assign(tg, shrunk)
				if before != after && before != nodes[0] {
					t.Fatalf("%s moved from %s to %s although %s left", tg, before, after, nodes[0])
				}
			}
		})
	}
	if got := Assign("x", nil); got != "" {
		t.Fatalf("Assign over no nodes = %q", got)
	}
}

func TestEscape(t *testing.T) {
	for _, s := range []string{"r1", "pe1.lab.example", "10.0.0.1:161", "a=b", "ünï code", "-_", "a b/c*>"} {
		e := escape(s)
		if !jetstreamKeyValid(nodesPrefix + e) {
			t.Fatalf("escape(%q) = %q: not a valid KV key", s, e)
		}
		got, err := unescape(e)
		if err != nil || got != s {
			t.Fatalf("unescape(escape(%q)) = %q, %v", s, got, err)
		}
	}
	for _, bad := range []string{"=", "=4", "=zz"} {
		if _, err := unescape(bad); err == nil {
			t.Fatalf("unescape(%q) accepted", bad)
		}
	}
}

// jetstreamKeyValid mirrors the KV key rule: tokens of [-/_=.a-zA-Z0-9]
// separated by single dots.
func jetstreamKeyValid(k string) bool {
	if k == "" || k[0] == '.' || k[len(k)-1] == '.' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=' || c == '/' || c == '.'
		if !ok || (c == '.' && i > 0 && k[i-1] == '.') {
			return false
		}
	}
	return true
}

func TestConfigValidate(t *testing.T) {
	good := Config{Node: "a", LeaseTTL: 2e9, Targets: []string{"r1"}}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for name, c := range map[string]Config{
		"no node":       {LeaseTTL: 2e9},
		"fractional":    {Node: "a", LeaseTTL: 1500e6},
		"short":         {Node: "a", LeaseTTL: 5e8},
		"slow renew":    {Node: "a", LeaseTTL: 2e9, Renew: 1e9},
		"empty target":  {Node: "a", Targets: []string{""}},
		"bad replicas":  {Node: "a", Replicas: 7},
		"invalid utf-8": {Node: "\xff"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{Node: "a"}, nil, nil, nil); err == nil {
		t.Fatal("New without JetStream accepted")
	}
}

// FuzzEscape checks that every name becomes one valid KV key token and
// comes back unchanged.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"r1", "10.0.0.1:161", "a.b", "=", "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := escape(s)
		if s != "" && !jetstreamKeyValid(ownersPrefix+e) {
			t.Fatalf("escape(%q) = %q: not a valid key", s, e)
		}
		if strings.Contains(e, ".") {
			t.Fatalf("escape(%q) = %q contains a dot", s, e)
		}
		got, err := unescape(e)
		if err != nil || got != s {
			t.Fatalf("unescape(escape(%q)) = %q, %v", s, got, err)
		}
	})
}
