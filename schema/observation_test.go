package schema

import "testing"

func TestValidOID(t *testing.T) {
	for s, want := range map[string]bool{
		"1.3.6.1.2.1.1.3.0": true, "1": true, "0.0": true,
		"": false, ".1.3.6": false, "1.3.": false, "1..3": false, "1.3a": false, "1 .3": false,
	} {
		if got := ValidOID(s); got != want {
			t.Errorf("ValidOID(%q) = %v, want %v", s, got, want)
		}
	}
}
