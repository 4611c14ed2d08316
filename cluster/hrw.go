package cluster

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// weight is the rendezvous (highest random weight) score of a node for a
// target: FNV-1a over node, a separator and target, finished with the
// splitmix64 mixer so that similar names spread evenly.
func weight(node, target string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(node); i++ {
		h = (h ^ uint64(node[i])) * prime
	}
	h = (h ^ 0xff) * prime
	for i := 0; i < len(target); i++ {
		h = (h ^ uint64(target[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Assign returns the node a target belongs to among nodes: the one with
// the highest weight for it, ties broken by the smaller name. Adding a
// node moves only the targets it wins (about 1/(N+1) of them); removing
// one moves only its own. It returns "" when nodes is empty.
func Assign(target string, nodes []string) string {
	best, bestW := "", uint64(0)
	for _, n := range nodes {
		w := weight(n, target)
		if best == "" || w > bestW || (w == bestW && n < best) {
			best, bestW = n, w
		}
	}
	return best
}

// Key prefixes in the bucket.
const (
	nodesPrefix  = "nodes."
	ownersPrefix = "owners."
	drainPrefix  = "drain."
)

// escape turns a name into one KV key token: letters, digits, '-' and '_'
// stay, every other byte becomes '=' and two hex digits (so dots do not
// make hierarchy and every name is a valid key).
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteString(hex.EncodeToString([]byte{c}))
	}
	return b.String()
}

// unescape reverses escape.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 > len(s) {
			return "", fmt.Errorf("key token %q: truncated escape", s)
		}
		v, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			return "", fmt.Errorf("key token %q: %w", s, err)
		}
		b.WriteByte(v[0])
		i += 2
	}
	return b.String(), nil
}
