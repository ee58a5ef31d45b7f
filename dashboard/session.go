package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Cookie and form names of a dashboard session.
const (
	sessionCookie = "boost_session"
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
)

// Sessions issues and checks signed session cookies. The signing key is
// derived from the admin token's hash, which every API replica holds, so a
// session signed by one replica is good on all of them and no session store
// is needed. Signing out is remembered by the replica that served it until
// the session would have expired anyway.
type Sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time

	mu        sync.Mutex
	signedOut map[string]time.Time // session id → expiry
}

// The cookie's path is / because the dashboard's charts read the query API
// (GET /v1/projects/{id}/analytics/…) with it; the API accepts it for those
// reads only (see api.Server.AcceptSessions).

// session is a verified session cookie.
type session struct {
	id      string
	expires time.Time
}

// NewSessions derives the signing key from the admin token's SHA-256.
func NewSessions(adminTokenSHA256 []byte, ttl time.Duration) *Sessions {
	mac := hmac.New(sha256.New, adminTokenSHA256)
	mac.Write([]byte("boost dashboard sessions v1"))
	return &Sessions{key: mac.Sum(nil), ttl: ttl, now: time.Now, signedOut: map[string]time.Time{}}
}

func (s *Sessions) sign(parts ...[]byte) []byte {
	mac := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		mac.Write(p)
		mac.Write([]byte{0})
	}
	return mac.Sum(nil)
}

// issue sets a fresh session cookie on w.
func (s *Sessions) issue(w http.ResponseWriter, r *http.Request) session {
	var raw [24]byte
	_, _ = rand.Read(raw[:16])
	expires := s.now().Add(s.ttl)
	binary.BigEndian.PutUint64(raw[16:], uint64(expires.Unix()))
	value := base64.RawURLEncoding.EncodeToString(raw[:]) + "." +
		base64.RawURLEncoding.EncodeToString(s.sign([]byte("session"), raw[:]))
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: value, Path: "/", HttpOnly: true,
		Secure: isTLS(r), SameSite: http.SameSiteStrictMode, Expires: expires, MaxAge: int(s.ttl.Seconds())})
	return session{id: base64.RawURLEncoding.EncodeToString(raw[:16]), expires: expires}
}

// current returns the request's valid session, if any.
func (s *Sessions) current(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	body, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return session{}, false
	}
	raw, err1 := base64.RawURLEncoding.DecodeString(body)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || len(raw) != 24 || !hmac.Equal(mac, s.sign([]byte("session"), raw)) {
		return session{}, false
	}
	expires := time.Unix(int64(binary.BigEndian.Uint64(raw[16:])), 0)
	if !s.now().Before(expires) {
		return session{}, false
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:16])
	s.mu.Lock()
	_, out := s.signedOut[id]
	s.mu.Unlock()
	if out {
		return session{}, false
	}
	return session{id: id, expires: expires}, true
}

// end forgets a session and clears its cookie.
func (s *Sessions) end(w http.ResponseWriter, r *http.Request, sess session) {
	now := s.now()
	s.mu.Lock()
	for id, exp := range s.signedOut {
		if now.After(exp) {
			delete(s.signedOut, id)
		}
	}
	s.signedOut[sess.id] = sess.expires
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		Secure: isTLS(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// csrfToken is the synchronizer token of a session: forms carry it in a
// hidden field, scripts in the X-CSRF-Token header.
func (s *Sessions) csrfToken(sess session) string {
	return base64.RawURLEncoding.EncodeToString(s.sign([]byte("csrf"), []byte(sess.id)))
}

// checkCSRF reports whether a state-changing request carries the
// session's token and, when the browser says where it comes from, comes
// from this origin.
func (s *Sessions) checkCSRF(r *http.Request, sess session) bool {
	if !sameOrigin(r) {
		return false
	}
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	want := s.csrfToken(sess)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// sameOrigin rejects requests whose Origin (or, lacking it, Referer) names
// another host. Browsers send Origin on every cross-site POST.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return true
	}
	u, err := url.Parse(src)
	return err == nil && u.Host == r.Host
}

func isTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
