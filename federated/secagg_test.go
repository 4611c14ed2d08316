package federated

import (
	"crypto/ecdh"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// maskedInputs runs the edge side of a round for edges with updates and
// sample counts: keys, seeds, quantised and masked vectors. It returns the
// masked vectors and each edge's seeds.
func maskedInputs(t testing.TB, edges []string, updates [][]float64, ns []int, scale float64) ([]Ring, []map[string]Seed) {
	t.Helper()
	priv := make([]*ecdh.PrivateKey, len(edges))
	for i := range edges {
		k, err := NewKey()
		if err != nil {
			t.Fatal(err)
		}
		priv[i] = k
	}
	out := make([]Ring, len(edges))
	seeds := make([]map[string]Seed, len(edges))
	for i, e := range edges {
		seeds[i] = map[string]Seed{}
		for j, f := range edges {
			if i == j {
				continue
			}
			s, err := PairSeed(priv[i], priv[j].PublicKey().Bytes(), "m", 7, e, f)
			if err != nil {
				t.Fatal(err)
			}
			seeds[i][f] = s
		}
		v := Quantize(updates[i], ns[i], scale)
		Mask(v, e, seeds[i])
		out[i] = v
	}
	return out, seeds
}

func TestMaskedSumIsPlainSum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const dim, scale = 17, 1 << 20
	edges := []string{"e00", "e01", "e02", "e03", "e04", "e05", "e06", "e07", "e08", "e09"}
	updates := make([][]float64, len(edges))
	ns := make([]int, len(edges))
	for i := range edges {
		updates[i] = make([]float64, dim)
		for j := range updates[i] {
			updates[i][j] = r.NormFloat64() * 0.1
		}
		Clip(updates[i], 1)
		ns[i] = 1 + r.IntN(5000)
	}
	masked, seeds := maskedInputs(t, edges, updates, ns, scale)
	for _, tc := range []struct {
		name    string
		dropped []int
	}{
		{"all", nil},
		{"two dropped", []int{3, 7}},
		{"first and last dropped", []int{0, 9}},
		{"seven dropped", []int{0, 1, 2, 4, 5, 6, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum := make(Ring, dim+1)
			plain := make([]uint64, dim+1)
			for i := range edges {
				if slices.Contains(tc.dropped, i) {
					continue
				}
				for j, x := range masked[i] {
					sum[j] += x
				}
				for j, x := range Quantize(updates[i], ns[i], scale) {
					plain[j] += x
				}
			}
			if !slices.Equal(sum, plain) && len(tc.dropped) == 0 {
				t.Fatal("masks did not cancel")
			}
			for i := range edges {
				if slices.Contains(tc.dropped, i) {
					continue
				}
				for _, d := range tc.dropped {
					RemoveMask(sum, edges[i], edges[d], seeds[i][edges[d]])
				}
			}
			if !slices.Equal(sum, plain) {
				t.Fatalf("hub's sum %v differs from the plain weighted sum %v", sum[:3], plain[:3])
			}
			// And it is the weighted mean update, to the rounding.
			mean, n := Dequantize(sum, scale)
			var want float64
			var total int
			for i := range edges {
				if !slices.Contains(tc.dropped, i) {
					want += float64(ns[i]) * updates[i][0]
					total += ns[i]
				}
			}
			if n != int64(total) || math.Abs(mean[0]-want/float64(total)) > 1/float64(scale) {
				t.Fatalf("mean[0] %v n %d, want %v n %d", mean[0], n, want/float64(total), total)
			}
		})
	}
}

// TestMaskedUpdateRevealsNothing checks that one masked update looks
// uniform on the ring and is uncorrelated with the update it carries,
// while the plain quantised update fails the same checks.
func TestMaskedUpdateRevealsNothing(t *testing.T) {
	const dim, scale = 20000, 1 << 20
	edges := []string{"a", "b", "c"}
	updates := make([][]float64, len(edges))
	for i := range updates {
		updates[i] = make([]float64, dim)
		for j := range updates[i] {
			updates[i][j] = 0.005 * math.Sin(float64(j)/50) // structured, small
		}
	}
	masked, _ := maskedInputs(t, edges, updates, []int{100, 200, 300}, scale)
	plain := Ring(Quantize(updates[0], 100, scale))
	if ok, why := looksUniform(plain[:dim], Quantize(updates[0], 100, scale)[:dim]); ok {
		t.Fatalf("the check cannot fail: the plain update passes it (%s)", why)
	}
	for i := range edges {
		if ok, why := looksUniform(masked[i][:dim], Quantize(updates[i], 100*(i+1), scale)[:dim]); !ok {
			t.Fatalf("edge %s's masked update is not uniform: %s", edges[i], why)
		}
	}
}

// looksUniform tests v against uniform uint64s: the share of one bits, a
// chi-square of its bytes (255 degrees of freedom, threshold at p ≈ 1e-6),
// and the correlation of v (as signed) with the plaintext x.
func looksUniform(v []uint64, x []uint64) (bool, string) {
	var ones int
	var hist [256]float64
	for _, e := range v {
		ones += bits.OnesCount64(e)
		for b := range 8 {
			hist[byte(e>>(8*b))]++
		}
	}
	nbits := float64(64 * len(v))
	if z := math.Abs(float64(ones)-nbits/2) / math.Sqrt(nbits/4); z > 5 {
		return false, "share of one bits off by " + ftoa(z) + " sigma"
	}
	exp := float64(8*len(v)) / 256
	var chi float64
	for _, h := range hist {
		chi += (h - exp) * (h - exp) / exp
	}
	if chi > 370 {
		return false, "byte chi-square " + ftoa(chi)
	}
	var sx, sy, sxx, syy, sxy float64
	n := float64(len(v))
	for i := range v {
		a, b := float64(int64(v[i])), float64(int64(x[i]))
		sx += a
		sy += b
		sxx += a * a
		syy += b * b
		sxy += a * b
	}
	corr := (sxy - sx*sy/n) / math.Sqrt((sxx-sx*sx/n)*(syy-sy*sy/n))
	if math.Abs(corr) > 5/math.Sqrt(n) {
		return false, "correlation with the update " + ftoa(corr)
	}
	return true, ""
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

func TestQuantizeClip(t *testing.T) {
	for _, tc := range []struct {
		name string
		u    []float64
		n    int
		clip float64
	}{
		{"small", []float64{0.1, -0.2, 0.3}, 10, 1},
		{"clipped", []float64{3, 4, 0}, 1000, 1},
		{"negative", []float64{-0.5, -0.5, -0.5}, 1, 2},
		{"max samples", []float64{1, 0, 0}, 1_000_000, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := slices.Clone(tc.u)
			Clip(u, tc.clip)
			if Norm(u) > tc.clip*(1+1e-12) {
				t.Fatalf("norm %v after clipping to %v", Norm(u), tc.clip)
			}
			mean, n := Dequantize(Quantize(u, tc.n, 1<<20), 1<<20)
			if n != int64(tc.n) {
				t.Fatalf("n %d, want %d", n, tc.n)
			}
			for i := range u {
				if math.Abs(mean[i]-u[i]) > 1.0/(1<<20) {
					t.Fatalf("value %d: %v, want %v", i, mean[i], u[i])
				}
			}
		})
	}
}

func TestPairSeedSymmetric(t *testing.T) {
	a, _ := NewKey()
	b, _ := NewKey()
	s1, err := PairSeed(a, b.PublicKey().Bytes(), "m", 1, "x", "y")
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := PairSeed(b, a.PublicKey().Bytes(), "m", 1, "y", "x")
	if s1 != s2 {
		t.Fatal("the two edges derive different seeds")
	}
	s3, _ := PairSeed(a, b.PublicKey().Bytes(), "m", 2, "x", "y")
	if s1 == s3 {
		t.Fatal("the seed does not depend on the round")
	}
	if _, err := PairSeed(a, []byte{1, 2, 3}, "m", 1, "x", "y"); err == nil {
		t.Fatal("a short public key was taken")
	}
}
