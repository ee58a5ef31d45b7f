// Command capture sends a representative set of calls through the real
// github.com/posthog/posthog-go client to -endpoint (the recorder of
// compat/node/capture/capture.mjs). Before each step it prints
// "STEP <name> | <note>" and waits until the client reports the step's
// messages delivered (or failed), so the recorder can file each request under
// its call; it prints "DONE" at the end.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/posthog/posthog-go"
)

// callback counts the messages the client reports as sent or failed.
type callback struct {
	mu   sync.Mutex
	cond *sync.Cond
	done int
}

func newCallback() *callback {
	c := &callback{}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *callback) Success(posthog.APIMessage) { c.add() }

func (c *callback) Failure(_ posthog.APIMessage, err error) {
	log.Printf("posthog-go reported a failure: %v", err)
	c.add()
}

func (c *callback) add() {
	c.mu.Lock()
	c.done++
	c.mu.Unlock()
	c.cond.Broadcast()
}

// waitFor blocks until n messages in all have been reported.
func (c *callback) waitFor(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.done < n {
		c.cond.Wait()
	}
}

func main() {
	endpoint := flag.String("endpoint", "", "recorder URL")
	key := flag.String("key", "", "project API key")
	flag.Parse()
	if *endpoint == "" || *key == "" {
		log.Fatal("usage: capture -endpoint URL -key KEY")
	}

	cb := newCallback()
	client, err := posthog.NewWithConfig(*key, posthog.Config{
		Endpoint:  *endpoint,
		BatchSize: 1,
		Callback:  cb,
		Logger:    posthog.StdLogger(log.New(os.Stderr, "posthog-go ", log.LstdFlags)),
	})
	if err != nil {
		log.Fatal(err)
	}
	sent := 0
	step := func(name, note string, msgs ...posthog.Message) {
		fmt.Printf("STEP %s | %s\n", name, note)
		for _, m := range msgs {
			if err := client.Enqueue(m); err != nil {
				log.Fatalf("%s: %v", name, err)
			}
			sent++
		}
		cb.waitFor(sent)
		time.Sleep(150 * time.Millisecond)
	}

	step("capture", "Capture with properties and a caller-chosen Uuid",
		posthog.Capture{
			DistinctId: "user-42",
			Event:      "Product Viewed",
			Uuid:       "0190a3c4-0000-7000-8000-0000000000a1",
			Properties: posthog.NewProperties().Set("productId", "sku-123").Set("price", 12.5).
				Set("tags", []string{"kitchen", "gift"}).Set("dims", map[string]any{"h": 10, "w": 8}),
		})
	step("capture purchase", "amount in cents",
		posthog.Capture{
			DistinctId: "user-42",
			Event:      "purchase",
			Uuid:       "0190a3c4-0000-7000-8000-0000000000a2",
			Properties: posthog.NewProperties().Set("orderId", "ord-1001").Set("amount", 1999).Set("currency", "EUR"),
		})
	step("capture without uuid", "no Uuid set: see what the uuid field carries",
		posthog.Capture{DistinctId: "user-42", Event: "No Uuid Event"})
	step("capture with timestamp", "Timestamp set by the caller (an hour ago)",
		posthog.Capture{
			DistinctId: "user-42",
			Event:      "Cart Viewed",
			Uuid:       "0190a3c4-0000-7000-8000-0000000000a3",
			Timestamp:  time.Now().Add(-time.Hour),
			Properties: posthog.NewProperties().Set("items", 2),
		})
	step("capture with $set and $set_once", "person properties inside a Capture",
		posthog.Capture{
			DistinctId: "user-42",
			Event:      "Plan Changed",
			Properties: posthog.NewProperties().Set("to", "pro").
				Set("$set", map[string]any{"plan": "pro"}).Set("$set_once", map[string]any{"first_plan": "free"}),
		})
	step("identify", "posthog.Identify: the Properties go to $set; the type has no anonymous id",
		posthog.Identify{
			DistinctId: "user-42",
			Properties: posthog.NewProperties().Set("email", "ada@example.com").Set("name", "Ada Lovelace").Set("plan", "pro"),
		})
	step("capture $identify with $anon_distinct_id", "how a Go server links an anonymous id: a Capture of $identify",
		posthog.Capture{
			DistinctId: "user-42",
			Event:      "$identify",
			Properties: posthog.NewProperties().Set("$anon_distinct_id", "anon-7f3c").
				Set("$set", map[string]any{"email": "ada@example.com"}).Set("$set_once", map[string]any{"signup_source": "ad"}),
		})
	step("alias ($create_alias)", "",
		posthog.Alias{DistinctId: "user-42", Alias: "anon-7f3c"})
	step("groupIdentify ($groupidentify)", "",
		posthog.GroupIdentify{Type: "company", Key: "org-9", Properties: posthog.NewProperties().Set("name", "Acme Inc").Set("employees", 120)})
	step("capture with groups", "",
		posthog.Capture{DistinctId: "user-42", Event: "Report Exported", Groups: posthog.NewGroups().Set("company", "org-9")})
	// The recorder answers the first request carrying these events with 503
	// (then 400): posthog-go retries every answer that is not 2xx.
	step("retry after 503", "the recorder answered the first attempt with 503",
		posthog.Capture{DistinctId: "user-42", Event: "Retried Event", Uuid: "0190a3c4-0000-7000-8000-0000000000a4"})
	step("retry after 400", "the recorder answered the first attempt with 400: posthog-go retries a 400 too",
		posthog.Capture{DistinctId: "user-42", Event: "Bad Request Event", Uuid: "0190a3c4-0000-7000-8000-0000000000a5"})
	if err := client.Close(); err != nil {
		log.Fatal(err)
	}

	// Default batching: BatchSize 250, Interval 5 s; Close sends what is queued.
	cb2 := newCallback()
	batched, err := posthog.NewWithConfig(*key, posthog.Config{Endpoint: *endpoint, Callback: cb2})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("STEP batch of 3 (Close) | three captures with the default settings, sent by Close()")
	for i := 1; i <= 3; i++ {
		if err := batched.Enqueue(posthog.Capture{DistinctId: "anon-batch", Event: fmt.Sprintf("Batch Event %d", i),
			Properties: posthog.NewProperties().Set("i", i)}); err != nil {
			log.Fatal(err)
		}
	}
	if err := batched.Close(); err != nil {
		log.Fatal(err)
	}
	cb2.waitFor(3)
	time.Sleep(150 * time.Millisecond)
	fmt.Println("DONE")
}
