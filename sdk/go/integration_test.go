//go:build integration

// Run against a real server, e.g. `go run ./cmd/boost dev` at the
// repository root, with:
//
//	BOOST_URL=http://localhost:3000 BOOST_SECRET_KEY=sk_live_… \
//	BOOST_PROJECT_ID=… BOOST_ADMIN_TOKEN=… go test -tags integration -run Integration -v .
package boost_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	boost "github.com/gamify/boost/sdk/go"
)

type sentEvent struct {
	messageID string
	event     string
	props     map[string]any // the properties as the server should store them
}

func TestIntegration(t *testing.T) {
	baseURL, key := os.Getenv("BOOST_URL"), os.Getenv("BOOST_SECRET_KEY")
	project, admin := os.Getenv("BOOST_PROJECT_ID"), os.Getenv("BOOST_ADMIN_TOKEN")
	if baseURL == "" || key == "" || project == "" || admin == "" {
		t.Skip("set BOOST_URL, BOOST_SECRET_KEY, BOOST_PROJECT_ID and BOOST_ADMIN_TOKEN to run against a server")
	}
	baseURL = strings.TrimRight(baseURL, "/")

	var mu sync.Mutex
	serverIDs := map[string]string{} // messageId → event id
	var reported []error
	c, err := boost.New(boost.Config{
		APIKey:   key,
		Endpoint: baseURL,
		OnDelivered: func(ds []boost.Delivered) {
			mu.Lock()
			defer mu.Unlock()
			for _, d := range ds {
				serverIDs[d.MessageID] = d.ID
			}
		},
		OnError: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, err)
		},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	defer c.Close(ctx)

	run := fmt.Sprintf("go-sdk-%d", time.Now().UnixNano())
	user := "user-" + run
	var sent []sentEvent
	for i := 0; i < 50; i++ {
		mid := boost.NewMessageID()
		switch i % 5 {
		case 0, 1:
			p := boost.Purchase{
				UserID: user, OrderID: fmt.Sprintf("%s-order-%d", run, i), Amount: int64(100*i + 99), Currency: "EUR",
				Items:      []boost.Item{{ProductID: "sku-1", Name: "Sword", Quantity: 2, Price: int64(50*i + 49)}, {ProductID: "sku-2", Quantity: 1, Price: 1}},
				Properties: map[string]any{"run": run, "coupon": "SPRING"},
				MessageID:  mid,
			}
			props := map[string]any{"run": run, "coupon": "SPRING", "orderId": p.OrderID, "amount": p.Amount, "currency": "EUR", "items": p.Items}
			send := c.Purchase
			name := boost.EventPurchase
			if i%5 == 1 {
				send, name = c.CheckoutComplete, boost.EventCheckoutComplete
			}
			if err := send(ctx, p); err != nil {
				t.Fatalf("%s %d: %v", name, i, err)
			}
			sent = append(sent, sentEvent{mid, name, props})
		default:
			props := map[string]any{
				"run": run, "i": i, "label": "événement ✓ <b>&</b>", "ratio": 0.25, "flag": i%2 == 0,
				"nested": map[string]any{"list": []any{1, "two", 3.5, nil}, "empty": map[string]any{}},
			}
			if err := c.Track(ctx, boost.Event{Event: "integration_test", UserID: user, Properties: props, MessageID: mid}); err != nil {
				t.Fatalf("Track %d: %v", i, err)
			}
			sent = append(sent, sentEvent{mid, "integration_test", props})
		}
	}
	identify := boost.Identify{UserID: user, AnonymousID: "anon-" + run, MessageID: boost.NewMessageID(),
		Traits: map[string]any{"email": "ada+" + run + "@example.com", "plan": "pro", "seats": 3}}
	if err := c.Identify(ctx, identify); err != nil {
		t.Fatalf("Identify: %v", err)
	}
	identifySent := sentEvent{identify.MessageID, boost.EventIdentify, identify.Traits}

	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	mu.Lock()
	if len(reported) > 0 {
		t.Errorf("OnError: %v", reported)
	}
	ids := make(map[string]string, len(serverIDs))
	for k, v := range serverIDs {
		ids[k] = v
	}
	mu.Unlock()
	for _, s := range append(sent, identifySent) {
		if ids[s.messageID] == "" {
			t.Fatalf("no server id for %s %s: was it accepted?", s.event, s.messageID)
		}
	}

	// Resending a messageId must not create a second event: the server
	// derives the id from it, so the answer names the same id.
	first := sent[0]
	if err := c.Purchase(ctx, boost.Purchase{UserID: user, OrderID: first.props["orderId"].(string),
		Amount: first.props["amount"].(int64), Currency: "EUR", Items: first.props["items"].([]boost.Item),
		Properties: map[string]any{"run": run, "coupon": "SPRING"}, MessageID: first.messageID}); err != nil {
		t.Fatalf("resend: %v", err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush after resend: %v", err)
	}
	mu.Lock()
	again := serverIDs[first.messageID]
	mu.Unlock()
	if again != ids[first.messageID] {
		t.Errorf("resent messageId %s got id %s, first %s", first.messageID, again, ids[first.messageID])
	}

	t.Run("events", func(t *testing.T) {
		for _, s := range sent {
			checkStored(t, baseURL, project, admin, ids[s.messageID], s)
		}
	})
	t.Run("identify", func(t *testing.T) {
		checkStored(t, baseURL, project, admin, ids[identifySent.messageID], identifySent)
	})
}

// checkStored polls the admin API until the event is processed, then
// compares its properties with what was sent.
func checkStored(t *testing.T, baseURL, project, admin, id string, s sentEvent) {
	t.Helper()
	url := fmt.Sprintf("%s/v1/projects/%s/events/%s", baseURL, project, id)
	deadline := time.Now().Add(20 * time.Second)
	var lastStatus int
	var lastBody []byte
	for {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			lastStatus = resp.StatusCode
			lastBody, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				var got struct {
					Status     string          `json:"status"`
					Properties json.RawMessage `json:"properties"`
				}
				if err := json.Unmarshal(lastBody, &got); err != nil {
					t.Fatalf("GET %s: undecodable body %s: %v", url, lastBody, err)
				}
				if got.Status == "processed" {
					if !sameJSON(t, got.Properties, s.props) {
						t.Errorf("%s %s (id %s): properties came back as %s, sent %s",
							s.event, s.messageID, id, got.Properties, mustJSON(t, s.props))
					}
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s (id %s) not processed within 20s: last answer %d %s (err %v)",
				s.event, s.messageID, id, lastStatus, bytes.TrimSpace(lastBody), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameJSON compares by JSON value, so key order and number spelling do
// not matter.
func sameJSON(t *testing.T, got json.RawMessage, want map[string]any) bool {
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return false
	}
	if err := json.Unmarshal(mustJSON(t, want), &w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(g, w)
}
