package compat

// The real github.com/posthog/posthog-go client against a running Boost
// (BOOST_URL, BOOST_PROJECT_ID, BOOST_ADMIN_TOKEN, BOOST_SECRET_KEY,
// BOOST_PUBLISHABLE_KEY; compat/run.sh sets them). The client sends through a
// recording proxy, so a failure says what Boost answered; every check then
// reads back through the query API what Boost stored.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posthog/posthog-go"
)

// exchange is one request the client made and what Boost answered.
type exchange struct {
	Method, URL string
	Body        []byte
	Status      int
	Answer      string
}

// wireEvent is one event of a /batch/ body as posthog-go sends it.
type wireEvent struct {
	Type       string         `json:"type"`
	UUID       *string        `json:"uuid"`
	Event      string         `json:"event"`
	DistinctID string         `json:"distinct_id"`
	Timestamp  time.Time      `json:"timestamp"`
	Properties map[string]any `json:"properties"`
	Set        map[string]any `json:"$set"`
}

// recording is what one client run sent, shared by the checks.
type recording struct {
	exchanges []exchange
	events    []wireEvent
	ids       map[string]string
	past      time.Time
}

var (
	sendOnce sync.Once
	sent     *recording
	sendErr  error
)

type boostEnv struct{ url, project, admin, sk, pk string }

func env(t *testing.T) boostEnv {
	t.Helper()
	e := boostEnv{os.Getenv("BOOST_URL"), os.Getenv("BOOST_PROJECT_ID"), os.Getenv("BOOST_ADMIN_TOKEN"),
		os.Getenv("BOOST_SECRET_KEY"), os.Getenv("BOOST_PUBLISHABLE_KEY")}
	if e.url == "" || e.project == "" || e.admin == "" || e.sk == "" || e.pk == "" {
		t.Skip("set BOOST_URL, BOOST_PROJECT_ID, BOOST_ADMIN_TOKEN, BOOST_SECRET_KEY and BOOST_PUBLISHABLE_KEY (bash compat/run.sh does)")
	}
	e.url = strings.TrimRight(e.url, "/")
	return e
}

func timeout() time.Duration {
	var ms int
	if _, err := fmt.Sscan(os.Getenv("COMPAT_TIMEOUT_MS"), &ms); err == nil && ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return 15 * time.Second
}

// proxy forwards to Boost and records every exchange.
func proxy(target string, rec *recording, mu *sync.Mutex) *httptest.Server {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(res *http.Response) error {
		answer, _ := io.ReadAll(res.Body)
		res.Body = io.NopCloser(bytes.NewReader(answer))
		body, _ := res.Request.Context().Value(bodyKey{}).([]byte)
		mu.Lock()
		rec.exchanges = append(rec.exchanges, exchange{res.Request.Method, res.Request.URL.RequestURI(), body, res.StatusCode, strings.TrimSpace(string(answer))})
		mu.Unlock()
		return nil
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r = r.WithContext(contextWithBody(r, body))
		r.Host = u.Host
		rp.ServeHTTP(w, r)
	}))
}

// counter is a posthog.Callback counting reported messages.
type counter struct {
	mu   sync.Mutex
	done int
}

func (c *counter) Success(posthog.APIMessage)        { c.add() }
func (c *counter) Failure(posthog.APIMessage, error) { c.add() }
func (c *counter) add()                              { c.mu.Lock(); c.done++; c.mu.Unlock() }

func send(e boostEnv) (*recording, error) {
	rec := &recording{ids: map[string]string{}}
	var mu sync.Mutex
	srv := proxy(e.url, rec, &mu)
	defer srv.Close()
	id := fmt.Sprintf("%x", time.Now().UnixNano())[6:]
	ids := map[string]string{"user": "posthog-go-" + id + "-user", "anon": "posthog-go-" + id + "-anon",
		"alias": "posthog-go-" + id + "-alias", "pk": "posthog-go-" + id + "-pk", "group": "org-" + id}
	rec.ids = ids
	rec.past = time.Now().Add(-time.Hour)

	run := func(key string, msgs ...posthog.Message) error {
		cb := &counter{}
		// A quick retry policy: posthog-go retries every answer that is not 2xx (404 and 400 too) 10 times.
		c, err := posthog.NewWithConfig(key, posthog.Config{Endpoint: srv.URL, Callback: cb, Interval: 100 * time.Millisecond,
			Logger:     posthog.StdLogger(log.New(io.Discard, "", 0)),
			RetryAfter: func(int) time.Duration { return 50 * time.Millisecond }})
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := c.Enqueue(m); err != nil {
				return err
			}
		}
		return c.Close()
	}
	u := ids["user"]
	props := func(kv ...any) posthog.Properties {
		p := posthog.NewProperties()
		for i := 0; i+1 < len(kv); i += 2 {
			p.Set(kv[i].(string), kv[i+1])
		}
		return p
	}
	err := run(e.sk,
		posthog.Capture{DistinctId: u, Event: "Product Viewed", Uuid: newUUID(), Properties: props("productId", "sku-1", "price", 12.5)},
		posthog.Capture{DistinctId: u, Event: "Product Added", Uuid: newUUID(), Properties: props("productId", "sku-1", "quantity", 2)},
		posthog.Capture{DistinctId: u, Event: "Search", Uuid: newUUID(), Properties: props("query", "mug", "results", 7)},
		posthog.Capture{DistinctId: u, Event: "Cart Viewed", Uuid: newUUID(), Timestamp: rec.past, Properties: props("items", 2)},
		posthog.Capture{DistinctId: u, Event: "No Uuid", Properties: props("n", 1)},
		posthog.Capture{DistinctId: u, Event: "No Uuid", Properties: props("n", 2)},
		posthog.Capture{DistinctId: u, Event: "purchase", Uuid: newUUID(), Properties: props("orderId", "ord-"+id, "amount", 1999, "currency", "EUR")},
		posthog.Capture{DistinctId: u, Event: "Plan Changed", Uuid: newUUID(),
			Properties: props("to", "pro", "$set", map[string]any{"plan": "pro"}, "$set_once", map[string]any{"first_plan": "free"})},
		posthog.Identify{DistinctId: u, Properties: props("email", id+"@example.com", "name", "Ada")},
		posthog.Capture{DistinctId: u, Event: "$identify", Uuid: newUUID(),
			Properties: props("$anon_distinct_id", ids["anon"], "$set", map[string]any{"company": "Acme"})},
		posthog.Alias{DistinctId: u, Alias: ids["alias"]},
		posthog.GroupIdentify{Type: "company", Key: ids["group"], Properties: props("name", "Acme Inc")},
	)
	if err != nil {
		return nil, err
	}
	err = run(e.pk,
		posthog.Capture{DistinctId: ids["pk"], Event: "Good Before", Uuid: newUUID(), Properties: props("n", 1)},
		posthog.Capture{DistinctId: ids["pk"], Event: "purchase", Uuid: newUUID(), Properties: props("orderId", "pk-"+id, "amount", 500, "currency", "EUR")},
		posthog.Capture{DistinctId: ids["pk"], Event: "Good After", Uuid: newUUID(), Properties: props("n", 2)},
	)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	for _, x := range rec.exchanges {
		var b struct {
			Batch []wireEvent `json:"batch"`
		}
		if json.Unmarshal(x.Body, &b) == nil {
			rec.events = append(rec.events, b.Batch...)
		}
	}
	return rec, nil
}

// sentEvents runs the client once for all checks and fails at once, with
// Boost's answer, when Boost refused everything.
func sentEvents(t *testing.T) (boostEnv, *recording) {
	t.Helper()
	e := env(t)
	sendOnce.Do(func() { sent, sendErr = send(e) })
	if sendErr != nil {
		t.Fatalf("posthog-go: %v", sendErr)
	}
	ok := 0
	var bad []string
	for _, x := range sent.exchanges {
		if x.Status >= 200 && x.Status < 300 {
			ok++
		} else if len(bad) < 3 {
			bad = append(bad, fmt.Sprintf("%s %s answered %d %.200s", x.Method, x.URL, x.Status, x.Answer))
		}
	}
	if len(sent.exchanges) == 0 {
		t.Fatal("posthog-go sent nothing to Boost")
	}
	if ok == 0 {
		t.Fatalf("Boost refused every request posthog-go sent:\n%s", strings.Join(bad, "\n"))
	}
	return e, sent
}

func (r *recording) event(t *testing.T, name, distinctID string) wireEvent {
	t.Helper()
	for _, ev := range r.events {
		if ev.Event == name && (distinctID == "" || ev.DistinctID == distinctID) {
			return ev
		}
	}
	t.Fatalf("posthog-go did not send %s", name)
	return wireEvent{}
}

func TestEveryRequestAnswered2xx(t *testing.T) {
	e := env(t)
	sendOnce.Do(func() { sent, sendErr = send(e) })
	if sendErr != nil {
		t.Fatal(sendErr)
	}
	var bad []string
	for _, x := range sent.exchanges {
		if x.Status < 200 || x.Status >= 300 {
			bad = append(bad, fmt.Sprintf("%s %s answered %d %.200s", x.Method, x.URL, x.Status, x.Answer))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%d of %d requests refused (posthog-go retries each 10 times):\n%s", len(bad), len(sent.exchanges), strings.Join(unique(bad), "\n"))
	}
}

func TestCapturesStoredOnceByUUID(t *testing.T) {
	e, r := sentEvents(t)
	u := r.ids["user"]
	for _, name := range []string{"Product Viewed", "Product Added", "Search"} {
		w := r.event(t, name, u)
		ev := storedOnce(t, e, url.Values{"userId": {u}}, name, func(s storedEvent) bool { return s.MessageID == *w.UUID })
		if ev.Event != name || ev.UserID != u {
			t.Errorf("%s: stored as %q for %q", name, ev.Event, ev.UserID)
		}
		for k, v := range w.Properties {
			if strings.HasPrefix(k, "$") {
				continue
			}
			if !jsonEqual(ev.Properties[k], v) {
				t.Errorf("%s: properties.%s is %v, sent %v", name, k, ev.Properties[k], v)
			}
		}
		near(t, name+": occurredAt vs the client's timestamp", ev.OccurredAt, w.Timestamp)
	}
}

func TestCaptureStampedAnHourAgo(t *testing.T) {
	e, r := sentEvents(t)
	w := r.event(t, "Cart Viewed", r.ids["user"])
	ev := storedOnce(t, e, url.Values{"userId": {r.ids["user"]}}, "Cart Viewed", func(s storedEvent) bool { return s.MessageID == *w.UUID })
	near(t, "occurredAt of a capture stamped an hour ago (no sent_at: posthog-go sends none)", ev.OccurredAt, r.past)
}

func TestEmptyUUIDIsNoIdempotencyKey(t *testing.T) {
	e, r := sentEvents(t)
	w := r.event(t, "No Uuid", r.ids["user"])
	if w.UUID == nil || *w.UUID != "" {
		t.Fatalf("expected posthog-go to send \"uuid\": \"\" for a Capture without Uuid, sent %v", w.UUID)
	}
	eventually(t, func() error {
		evs, err := listEvents(e, url.Values{"userId": {r.ids["user"]}, "event": {"No Uuid"}})
		if err != nil {
			return err
		}
		if len(evs) != 2 {
			return fmt.Errorf("two captures sent with \"uuid\": \"\" must both be stored (distinct events), %d stored", len(evs))
		}
		return nil
	})
}

func TestPurchaseWithSecretKey(t *testing.T) {
	e, r := sentEvents(t)
	w := r.event(t, "purchase", r.ids["user"])
	ev := storedOnce(t, e, url.Values{"userId": {r.ids["user"]}}, "purchase", func(s storedEvent) bool { return s.MessageID == *w.UUID })
	if !jsonEqual(ev.Properties["amount"], 1999) || ev.Properties["currency"] != "EUR" || ev.Properties["orderId"] != w.Properties["orderId"] {
		t.Errorf("purchase stored with properties %v", ev.Properties)
	}
	if ev.Status == "failed" {
		t.Errorf("purchase failed: %s", ev.raw)
	}
}

func TestSetAndSetOnceBecomeTraits(t *testing.T) {
	e, r := sentEvents(t)
	assertUser(t, e, r.ids["user"], map[string]any{"plan": "pro", "first_plan": "free"}, nil)
}

func TestIdentifyMergesSet(t *testing.T) {
	e, r := sentEvents(t)
	var set map[string]any
	for _, ev := range r.events {
		if ev.Type == "identify" && ev.DistinctID == r.ids["user"] {
			set = ev.Set // posthog.Identify sends its Properties as a top-level "$set"
		}
	}
	if set == nil {
		t.Fatal("posthog-go did not send the Identify")
	}
	assertUser(t, e, r.ids["user"], set, nil)
}

func TestIdentifyWithAnonDistinctIDLinks(t *testing.T) {
	e, r := sentEvents(t)
	assertUser(t, e, r.ids["user"], map[string]any{"company": "Acme"}, []string{r.ids["anon"]})
}

func TestAliasLinks(t *testing.T) {
	e, r := sentEvents(t)
	assertUser(t, e, r.ids["user"], nil, []string{r.ids["alias"]})
}

func TestGroupIdentifyKeepsGroup(t *testing.T) {
	e, r := sentEvents(t)
	w := r.event(t, "$groupidentify", "")
	eventually(t, func() error {
		evs, err := listEvents(e, url.Values{"userId": {w.DistinctID}})
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if ev.Event == "$groupidentify" && strings.Contains(ev.raw, r.ids["group"]) && strings.Contains(ev.raw, "Acme Inc") {
				return nil
			}
		}
		return fmt.Errorf("no $groupidentify for %s with group key %s and its properties stored (%d events)", w.DistinctID, r.ids["group"], len(evs))
	})
}

func TestPublishableKeyRefusesPurchaseKeepsTheRest(t *testing.T) {
	e, r := sentEvents(t)
	pk := r.ids["pk"]
	for _, name := range []string{"Good Before", "Good After"} {
		w := r.event(t, name, pk)
		storedOnce(t, e, url.Values{"userId": {pk}}, name, func(s storedEvent) bool { return s.MessageID == *w.UUID })
	}
	time.Sleep(1500 * time.Millisecond)
	evs, err := listEvents(e, url.Values{"userId": {pk}, "event": {"purchase"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Errorf("a purchase sent with a publishable key must not be stored: %s", evs[0].raw)
	}
}
