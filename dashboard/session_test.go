package dashboard

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	hash := sha256.Sum256([]byte("admin"))
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	s := NewSessions(hash[:], time.Hour)
	s.now = func() time.Time { return now }

	rec := httptest.NewRecorder()
	sess := s.issue(rec, httptest.NewRequest("POST", "/dashboard/login", nil))
	cookie := rec.Result().Cookies()[0]
	withCookie := func(c *http.Cookie) *http.Request {
		r := httptest.NewRequest("GET", "/dashboard/", nil)
		r.AddCookie(c)
		return r
	}
	otherHash := sha256.Sum256([]byte("another admin token"))
	other := NewSessions(otherHash[:], time.Hour)

	tampered := *cookie
	body, sig, _ := strings.Cut(cookie.Value, ".")
	tampered.Value = body[:len(body)-2] + "AA." + sig

	cases := []struct {
		name  string
		s     *Sessions
		c     *http.Cookie
		after time.Duration
		ok    bool
	}{
		{"fresh", s, cookie, 0, true},
		{"just before expiry", s, cookie, time.Hour - time.Second, true},
		{"expired", s, cookie, time.Hour, false},
		{"tampered", s, &tampered, 0, false},
		{"signed by another admin token", other, cookie, 0, false},
		{"garbage", s, &http.Cookie{Name: sessionCookie, Value: "x.y"}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.now = func() time.Time { return now.Add(tc.after) }
			defer func() { tc.s.now = func() time.Time { return now } }()
			if _, ok := tc.s.current(withCookie(tc.c)); ok != tc.ok {
				t.Fatalf("valid = %v, want %v", ok, tc.ok)
			}
		})
	}

	form := func(token string, headers ...string) *http.Request {
		r := httptest.NewRequest("POST", "http://boost.test/dashboard/organizations", strings.NewReader(url.Values{csrfField: {token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		return r
	}
	token := s.csrfToken(sess)
	csrf := []struct {
		name string
		r    *http.Request
		ok   bool
	}{
		{"form token", form(token), true},
		{"header token", form("", csrfHeader, token), true},
		{"same origin", form(token, "Origin", "http://boost.test"), true},
		{"missing", form(""), false},
		{"wrong", form(token[:len(token)-1] + "x"), false},
		{"another session's", form(s.csrfToken(session{id: "other"})), false},
		{"cross origin", form(token, "Origin", "https://evil.test"), false},
		{"cross-site referer", form(token, "Referer", "https://evil.test/page"), false},
	}
	for _, tc := range csrf {
		t.Run("csrf "+tc.name, func(t *testing.T) {
			if ok := s.checkCSRF(tc.r, sess); ok != tc.ok {
				t.Fatalf("accepted = %v, want %v", ok, tc.ok)
			}
		})
	}

	// Signing out kills the cookie on this replica.
	s.end(httptest.NewRecorder(), httptest.NewRequest("POST", "/dashboard/logout", nil), sess)
	if _, ok := s.current(withCookie(cookie)); ok {
		t.Fatal("session valid after sign-out")
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "/dashboard/",
		"/dashboard/health":       "/dashboard/health",
		"https://evil.example/":   "/dashboard/",
		"//evil.example/":         "/dashboard/",
		"/dashboard/\r\nSet-X: y": "/dashboard/",
		"/v1/organizations":       "/dashboard/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
