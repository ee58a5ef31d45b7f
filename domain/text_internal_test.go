package domain

import (
	"math/rand/v2"
	"testing"
)

// TestASCIICanonicalMatchesUnicode ties the ASCII fast path to the full
// Unicode pipeline: every printable ASCII character, alone and between
// letters, and random printable strings.
func TestASCIICanonicalMatchesUnicode(t *testing.T) {
	var cases []string
	for c := byte(0x20); c < 0x7f; c++ {
		cases = append(cases, string(c), "a"+string(c)+"B", " "+string(c)+string(c)+" ")
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for range 2000 {
		b := make([]byte, 1+rng.IntN(20))
		for i := range b {
			b[i] = byte(0x20 + rng.IntN(0x5f))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		fast, ok := asciiCanonical(s)
		if !ok {
			t.Fatalf("%q: the fast path refused printable ASCII", s)
		}
		if slow := unicodeCanonical(s); fast != slow {
			t.Errorf("%q: fast path %q, Unicode pipeline %q", s, fast, slow)
		}
	}
	if _, ok := asciiCanonical("caf\u00e9"); ok {
		t.Error("the fast path took a non-ASCII name")
	}
	if _, ok := asciiCanonical("a\tb"); ok {
		t.Error("the fast path took a control character")
	}
}
