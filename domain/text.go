package domain

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Every string Boost accepts must be storable as-is by both read-model
// databases and by every consumer of the log. PostgreSQL refuses NUL in
// text and jsonb, SQLite's statement tokenizer stops at it, and invalid
// UTF-8 would have to be replaced (turning distinct raw ids into one), so
// both are refused at the edge rather than rewritten.

// TextProblem says why a string cannot be stored, or "" when it can.
func TextProblem(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "must not contain the NUL character (U+0000)"
	}
	return ""
}

// Blank reports whether s holds nothing a person could see or a system
// would tell apart: only white space and default-ignorable code points
// (zero-width spaces and joiners, the BOM, soft hyphens, variation
// selectors, …). A blank name or id counts as missing.
func Blank(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) && !isDefaultIgnorable(r) {
			return false
		}
	}
	return true
}

// isDefaultIgnorable reports Unicode's Default_Ignorable_Code_Point, as
// DerivedCoreProperties.txt derives it: Other_Default_Ignorable_Code_Point,
// format characters (Cf) and variation selectors, less white space, the
// interlinear annotation characters, Egyptian hieroglyph format controls
// and prepended concatenation marks.
func isDefaultIgnorable(r rune) bool {
	if r < 0xAD {
		return false // the common case, ASCII and Latin-1 up to the soft hyphen
	}
	if !unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) && !unicode.Is(unicode.Cf, r) &&
		!unicode.Is(unicode.Variation_Selector, r) {
		return false
	}
	switch {
	case unicode.IsSpace(r),
		r >= 0xFFF9 && r <= 0xFFFB,
		r >= 0x13430 && r <= 0x1343F,
		unicode.Is(unicode.Prepended_Concatenation_Mark, r):
		return false
	}
	return true
}

// stripIgnorable drops default-ignorable code points.
func stripIgnorable(s string) string {
	return strings.Map(func(r rune) rune {
		if isDefaultIgnorable(r) {
			return -1
		}
		return r
	}, s)
}

var fold = cases.Fold()

// CanonicalName is what event names are compared by for every rule that
// depends on a name (key classes, commerce, identify, processing rules):
// default-ignorables removed, Unicode NFKC with case folding, trimmed, then
// reduced to its UTS #39 confusable skeleton. "Purchase", "purchase" with a
// zero-width space or a soft hyphen in it, fullwidth "ｐｕｒｃｈａｓｅ" and
// "рurchase" with a Cyrillic р all have the skeleton of "purchase". The
// stored name is never changed; only comparisons use this form.
func CanonicalName(name string) string {
	if s, ok := asciiCanonical(name); ok {
		return s
	}
	return unicodeCanonical(name)
}

// unicodeCanonical is CanonicalName's full pipeline.
func unicodeCanonical(name string) string {
	s := norm.NFKC.String(stripIgnorable(name))
	s = norm.NFKC.String(fold.String(s))
	return confusables.Skeleton(strings.TrimSpace(s))
}

// asciiSkeleton is the confusable skeleton of the printable ASCII
// characters that have one other than themselves (after case folding, so
// no capitals); TestASCIICanonicalMatchesUnicode ties it to the full
// pipeline.
var asciiSkeleton = map[byte]string{'"': "''", '%': "º/₀", '0': "O", '1': "l", '`': "'", 'm': "rn", '|': "l"}

// asciiCanonical is CanonicalName for pure printable ASCII, which most
// names are: lower-cased, trimmed and mapped byte by byte, without the
// normalization passes.
func asciiCanonical(name string) (string, bool) {
	mapped := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x20 || c > 0x7e {
			return "", false
		}
		if _, ok := asciiSkeleton[c]; ok || (c >= 'A' && c <= 'Z') {
			mapped = true
		}
	}
	s := strings.Trim(name, " ")
	if !mapped {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if sk, ok := asciiSkeleton[c]; ok {
			b.WriteString(sk)
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), true
}
