package compat

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"
)

type bodyKey struct{}

func contextWithBody(r *http.Request, body []byte) context.Context {
	return context.WithValue(r.Context(), bodyKey{}, body)
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// storedEvent is an event as Boost's query API answers it.
type storedEvent struct {
	ID          string         `json:"id"`
	Event       string         `json:"event"`
	UserID      string         `json:"userId"`
	AnonymousID string         `json:"anonymousId"`
	Properties  map[string]any `json:"properties"`
	MessageID   string         `json:"messageId"`
	Status      string         `json:"status"`
	OccurredAt  time.Time      `json:"occurredAt"`
	raw         string
}

func getJSON(e boostEnv, path string, out any) (int, string, error) {
	req, _ := http.NewRequest("GET", e.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&raw); err != nil {
		return res.StatusCode, "", err
	}
	if res.StatusCode == http.StatusOK && out != nil {
		err = json.Unmarshal(raw, out)
	}
	return res.StatusCode, string(raw), err
}

// listEvents is every stored event matching q.
func listEvents(e boostEnv, q url.Values) ([]storedEvent, error) {
	var out []storedEvent
	q.Set("limit", "1000")
	for page := 0; page < 50; page++ {
		var body struct {
			Data       []json.RawMessage `json:"data"`
			NextCursor string            `json:"nextCursor"`
		}
		status, raw, err := getJSON(e, "/v1/projects/"+e.project+"/events?"+q.Encode(), &body)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("GET /v1/projects/{id}/events?%s answered %d %s", q.Encode(), status, raw)
		}
		for _, d := range body.Data {
			var ev storedEvent
			if err := json.Unmarshal(d, &ev); err != nil {
				return nil, err
			}
			ev.raw = string(d)
			out = append(out, ev)
		}
		if body.NextCursor == "" {
			break
		}
		q.Set("cursor", body.NextCursor)
	}
	return out, nil
}

// eventually retries check until it returns nil or the timeout passes.
func eventually(t *testing.T, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout())
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout(), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// storedOnce waits until exactly one event matching match is stored.
func storedOnce(t *testing.T, e boostEnv, q url.Values, what string, match func(storedEvent) bool) storedEvent {
	t.Helper()
	var found storedEvent
	eventually(t, func() error {
		evs, err := listEvents(e, q)
		if err != nil {
			return err
		}
		var n int
		for _, ev := range evs {
			if match(ev) {
				found = ev
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: stored %d times (want exactly once; %d events for %s)", what, n, len(evs), q.Encode())
		}
		return nil
	})
	return found
}

func near(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if d := got.Sub(want); d > time.Second || d < -time.Second {
		t.Errorf("%s: %s is not within 1 s of %s", what, got.UTC().Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano))
	}
}

// assertUser waits until the end user has these traits and anonymous ids.
func assertUser(t *testing.T, e boostEnv, userID string, traits map[string]any, anonymousIDs []string) {
	t.Helper()
	eventually(t, func() error {
		var u struct {
			Traits       map[string]any `json:"traits"`
			AnonymousIDs []string       `json:"anonymousIds"`
		}
		status, raw, err := getJSON(e, "/v1/projects/"+e.project+"/users/"+url.PathEscape(userID), &u)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("GET /v1/projects/{id}/users/%s answered %d %s", userID, status, raw)
		}
		for k, v := range traits {
			if !jsonEqual(u.Traits[k], v) {
				return fmt.Errorf("trait %s of %s is %v, want %v (traits %v)", k, userID, u.Traits[k], v, u.Traits)
			}
		}
		for _, a := range anonymousIDs {
			found := false
			for _, b := range u.AnonymousIDs {
				found = found || a == b
			}
			if !found {
				return fmt.Errorf("anonymousIds of %s are %v, missing %s", userID, u.AnonymousIDs, a)
			}
		}
		return nil
	})
}

// jsonEqual compares two values as they would be after a JSON round trip.
func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	return reflect.DeepEqual(va, vb)
}

func unique(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
