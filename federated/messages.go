package federated

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Phases name the messages of a round, each on its own subject:
// hub → edges on <prefix>.<model>.<round>.<phase>, edge → hub on
// <prefix>.<model>.<round>.<phase>.<edge>.
const (
	PhaseStart  = "start"  // hub: the round begins, with the global weights
	PhaseKeys   = "keys"   // edge: its public key for the round
	PhasePeers  = "peers"  // hub: every edge's public key
	PhaseMasked = "masked" // edge: its masked update
	PhaseUnmask = "unmask" // hub: survivors and dropped edges
	PhaseReveal = "reveal" // edge: its seeds with the dropped edges
	PhaseGlobal = "global" // hub: the new global weights
)

// MaxMessageBytes bounds every message the hub or an edge decodes.
const MaxMessageBytes = 16 << 20

// Subject returns the subject of a hub message of a round (edge empty) or
// of an edge's message.
func Subject(prefix, model string, round uint64, phase, edge string) string {
	s := prefix + "." + model + "." + strconv.FormatUint(round, 10) + "." + phase
	if edge != "" {
		s += "." + edge
	}
	return s
}

// parseSubject splits an edge's subject into round, phase and edge.
func parseSubject(subj, prefix, model string) (round uint64, phase, edge string, ok bool) {
	rest, ok := strings.CutPrefix(subj, prefix+"."+model+".")
	if !ok {
		return 0, "", "", false
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, "", "", false
	}
	r, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil {
		return 0, "", "", false
	}
	if len(parts) == 3 {
		edge = parts[2]
	}
	return r, parts[1], edge, true
}

// Start announces a round.
type Start struct {
	Round    uint64 `json:"round"`
	Model    string `json:"model"`
	Dim      int    `json:"dim"`
	Version  uint64 `json:"version"` // the round that made Global; 0: the initial weights
	Global   Floats `json:"global"`
	Deadline int64  `json:"deadline_ms"` // of each phase
}

// Keys is an edge's public key for a round.
type Keys struct {
	Round uint64 `json:"round"`
	Edge  string `json:"edge"`
	Pub   []byte `json:"pub"` // X25519, 32 bytes
}

// Peer is one edge of a round and its public key.
type Peer struct {
	Edge string `json:"edge"`
	Pub  []byte `json:"pub"`
}

// Peers lists the edges of a round, sorted by id.
type Peers struct {
	Round uint64 `json:"round"`
	Peers []Peer `json:"peers"`
}

// Masked is an edge's masked update: Dim+1 ring elements.
type Masked struct {
	Round uint64 `json:"round"`
	Edge  string `json:"edge"`
	Vec   Ring   `json:"vec"`
}

// Unmask asks the survivors of a round for their seeds with the dropped
// edges.
type Unmask struct {
	Round     uint64   `json:"round"`
	Survivors []string `json:"survivors"`
	Dropped   []string `json:"dropped"`
}

// RevealedSeed is a survivor's seed with one dropped edge.
type RevealedSeed struct {
	Edge string `json:"edge"`
	Seed []byte `json:"seed"`
}

// Reveal is a survivor's answer to Unmask.
type Reveal struct {
	Round uint64         `json:"round"`
	Edge  string         `json:"edge"`
	Seeds []RevealedSeed `json:"seeds"`
}

// Global is a new version of the global weights.
type Global struct {
	Model   string `json:"model"`
	Version uint64 `json:"version"` // the round that made it
	Weights Floats `json:"weights"`
	Edges   int    `json:"edges"`   // whose updates it averages
	Samples int64  `json:"samples"` // their total sample count
}

// Ring is a vector of ring elements; in JSON the base64 of its
// little-endian bytes.
type Ring []uint64

// MarshalJSON writes r as base64.
func (r Ring) MarshalJSON() ([]byte, error) {
	b := make([]byte, 8*len(r))
	for i, x := range r {
		binary.LittleEndian.PutUint64(b[8*i:], x)
	}
	return json.Marshal(b)
}

// UnmarshalJSON reads base64 whose length is a multiple of 8 bytes.
func (r *Ring) UnmarshalJSON(data []byte) error {
	var b []byte
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	if len(b)%8 != 0 {
		return fmt.Errorf("ring vector of %d bytes, not a multiple of 8", len(b))
	}
	v := make(Ring, len(b)/8)
	for i := range v {
		v[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	*r = v
	return nil
}

// Floats is a vector of finite weights.
type Floats []float64

// UnmarshalJSON reads a JSON array of numbers (JSON has no NaN or Inf;
// values that overflow are refused).
func (f *Floats) UnmarshalJSON(data []byte) error {
	var v []float64
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return errors.New("non-finite weight")
		}
	}
	*f = v
	return nil
}

// decode reads one message strictly: unknown fields, trailing data and
// oversized payloads are errors.
func decode(data []byte, v any) error {
	if len(data) > MaxMessageBytes {
		return fmt.Errorf("message of %d bytes exceeds %d", len(data), MaxMessageBytes)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

// allFinite reports whether every value of v is finite.
func allFinite(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
