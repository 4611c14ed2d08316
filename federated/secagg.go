package federated

// Secure aggregation (Bonawitz et al. 2017, "Practical Secure Aggregation
// for Privacy-Preserving Machine Learning"), the pairwise-mask part:
//
//   - every edge u draws an X25519 key pair for the round and publishes its
//     public key;
//   - each pair {u, v} derives the same 32-byte seed: HKDF-SHA256 over the
//     X25519 shared secret, with info naming the model, the round and the
//     two edges (so a seed never serves two rounds or two pairs);
//   - a seed expands to a mask vector: the AES-256-CTR keystream (zero IV)
//     of the seed, read as little-endian uint64s, i.e. uniform elements of
//     the ring Z/2^64;
//   - u's input x_u (its fixed-point vector, below) travels as
//     y_u = x_u + Σ_{v>u} mask(u,v) − Σ_{v<u} mask(u,v)  (mod 2^64),
//     edges ordered by their ids: in Σ_u y_u every mask appears once with
//     each sign, so Σ y_u = Σ x_u.
//
// Fixed point: an update (already clipped to norm clip_norm) becomes
// q_i = round(update_i·scale) as int64; the edge sends n·q_i and, last, n
// itself, as uint64 (two's complement): the hub learns Σ n·q and Σ n and
// divides. Config.Validate keeps max_edges·max_samples·(clip·scale+1)
// below 2^62, so the sum of int64s never wraps.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// SeedSize is the size of a pairwise seed.
const SeedSize = 32

// Seed is the secret a pair of edges shares for one round.
type Seed [SeedSize]byte

// NewKey draws a fresh X25519 key pair.
func NewKey() (*ecdh.PrivateKey, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("federated: generate X25519 key: %w", err)
	}
	return k, nil
}

// PairSeed derives the seed edges a and b share in a round of model: the
// X25519 secret of own and the peer's public key, through HKDF-SHA256.
// Both edges compute the same seed whatever their order.
func PairSeed(own *ecdh.PrivateKey, peerPub []byte, model string, round uint64, a, b string) (Seed, error) {
	var s Seed
	pub, err := ecdh.X25519().NewPublicKey(peerPub)
	if err != nil {
		return s, fmt.Errorf("federated: peer public key: %w", err)
	}
	shared, err := own.ECDH(pub)
	if err != nil {
		return s, fmt.Errorf("federated: X25519: %w", err)
	}
	if b < a {
		a, b = b, a
	}
	info := "netfeat-fl mask v1|" + model + "|" + strconv.FormatUint(round, 10) + "|" + a + "|" + b
	key, err := hkdf.Key(sha256.New, shared, nil, info, SeedSize)
	if err != nil {
		return s, fmt.Errorf("federated: HKDF: %w", err)
	}
	copy(s[:], key)
	return s, nil
}

// addMask adds sign·mask(seed) to v in place (sign +1 or −1), mod 2^64.
func addMask(v []uint64, seed Seed, sign int) {
	block, err := aes.NewCipher(seed[:])
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	var iv [aes.BlockSize]byte
	ctr := cipher.NewCTR(block, iv[:])
	var buf [512]byte
	for i := 0; i < len(v); {
		n := min(len(v)-i, len(buf)/8)
		b := buf[:8*n]
		clear(b)
		ctr.XORKeyStream(b, b)
		for j := range n {
			m := binary.LittleEndian.Uint64(b[8*j:])
			if sign > 0 {
				v[i+j] += m
			} else {
				v[i+j] -= m
			}
		}
		i += n
	}
}

// MaskSign is the sign with which edge self adds its mask with peer: + when
// self sorts before peer, − after.
func MaskSign(self, peer string) int {
	if self < peer {
		return 1
	}
	return -1
}

// Mask adds the pairwise masks of self with each peer to v in place.
func Mask(v []uint64, self string, seeds map[string]Seed) {
	for peer, s := range seeds {
		addMask(v, s, MaskSign(self, peer))
	}
}

// RemoveMask removes from a sum the masks survivor left in it with a dropped
// edge, given their seed.
func RemoveMask(sum []uint64, survivor, dropped string, seed Seed) {
	addMask(sum, seed, -MaskSign(survivor, dropped))
}

// Norm returns the L2 norm of v.
func Norm(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

// Clip scales v in place so that its norm is at most c.
func Clip(v []float64, c float64) {
	if n := Norm(v); n > c {
		f := c / n
		for i := range v {
			v[i] *= f
		}
	}
}

// Quantize returns the ring vector of an update weighted by its sample
// count: n·round(u_i·scale) for each i, then n. The update must be finite
// and clipped to a norm of at most clip (|u_i·scale| then fits an int64).
func Quantize(u []float64, n int, scale float64) []uint64 {
	v := make([]uint64, len(u)+1)
	for i, x := range u {
		v[i] = uint64(int64(n) * int64(math.Round(x*scale)))
	}
	v[len(u)] = uint64(int64(n))
	return v
}

// Dequantize turns an unmasked sum back into the weighted mean update
// Σ n·u / Σ n and Σ n. The sum of n is returned as an int64 (negative when
// the sum is garbage).
func Dequantize(sum []uint64, scale float64) ([]float64, int64) {
	d := len(sum) - 1
	n := int64(sum[d])
	mean := make([]float64, d)
	if n <= 0 {
		for i := range mean {
			mean[i] = math.NaN()
		}
		return mean, n
	}
	for i := range d {
		mean[i] = float64(int64(sum[i])) / scale / float64(n)
	}
	return mean, n
}
