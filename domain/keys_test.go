package domain

import (
	"strings"
	"testing"
)

func TestGenerateAndParseKeys(t *testing.T) {
	for _, typ := range []KeyType{KeyPublishable, KeySecret} {
		k, err := GenerateKey(typ)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseKey(k.Plaintext)
		if err != nil || got != typ {
			t.Fatalf("ParseKey(%s key) = %q, %v", typ, got, err)
		}
		if k.Hash != HashKey(k.Plaintext) || len(k.Hash) != 64 || strings.Contains(k.Hash, k.Plaintext[8:]) {
			t.Fatalf("hash %q", k.Hash)
		}
		if !strings.HasPrefix(k.Plaintext, k.Prefix) || len(k.Prefix) != 12 {
			t.Fatalf("prefix %q of %q", k.Prefix, k.Plaintext)
		}
		k2, _ := GenerateKey(typ)
		if k2.Plaintext == k.Plaintext {
			t.Fatal("two keys are equal")
		}
	}
	if _, err := GenerateKey("admin"); err == nil {
		t.Fatal("GenerateKey accepted an unknown type")
	}
}

func TestParseKeyRejectsMalformed(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	for _, s := range []string{
		"", "pk_live_", "pk_live_" + hex64[:63], "pk_live_" + hex64 + "0", "xk_live_" + hex64,
		"pk_test_" + hex64, "pk_live_" + strings.ToUpper(hex64), "pk_live_" + strings.Repeat("g", 64),
		"sk_live_" + hex64[:62] + "é",
	} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
}

func TestParseID(t *testing.T) {
	for s, ok := range map[string]bool{
		NewID(): true, "01A21F92-FC2D-7683-9D1E-A953FF65F6F7": true, "not-a-uuid": false, "": false,
		"{01a21f92-fc2d-7683-9d1e-a953ff65f6f7}": false, "urn:uuid:01a21f92-fc2d-7683-9d1e-a953ff65f6f7": false,
	} {
		id, err := ParseID(s)
		if (err == nil) != ok {
			t.Errorf("ParseID(%q) error %v, want ok=%v", s, err, ok)
		}
		if ok && id != strings.ToLower(s) {
			t.Errorf("ParseID(%q) = %q", s, id)
		}
	}
}
